"""Where models live, what is installed there, and installing more — all without a network.

    <state_dir>/models/argos/<package>/   unpacked .argosmodel packages
    <state_dir>/models/ct2/<name>/        NLLB-200 / MADLAD-400 style CTranslate2 directories
    <state_dir>/models/.argos/            argostranslate's own data, config and cache dirs

An install is staged under `models/.install-*`, loaded once (a broken file fails the install,
not a translation at 3 a.m.), then renamed into place, replacing a model of the same name.
Archives are checked member by member before anything is unpacked (`_archive`).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from monitor.config import Config, TranslationConfig, TranslationEngine
from monitor.translate._argos import ArgosEngine, download_from_index
from monitor.translate._ct2 import MultilingualEngine
from monitor.translate._engine import Engine, ModelError

__all__ = ["InstalledModel", "Scan", "install", "install_from_index", "models_dir", "scan"]


@dataclass(frozen=True, slots=True)
class InstalledModel:
    engine: TranslationEngine
    model: str
    path: Path
    languages: tuple[str, ...]
    """Source languages it translates into the configured target."""


@dataclass(frozen=True, slots=True)
class Scan:
    engines: tuple[Engine, ...]
    problems: tuple[ModelError, ...]
    """Models found but unusable, each naming its file."""


def models_dir(config: Config) -> Path:
    return config.state_dir / "models"


def scan(models: Path, settings: TranslationConfig) -> Scan:
    """Every installed model, by directory order; reads metadata and vocabularies only."""
    engines: list[Engine] = []
    problems: list[ModelError] = []
    for path in _children(models / "argos"):
        try:
            engines.append(ArgosEngine.open(path, models, settings.target, settings))
        except ModelError as exc:
            problems.append(exc)
    for path in _children(models / "ct2"):
        try:
            engines.append(MultilingualEngine.open(path, settings.target, settings))
        except ModelError as exc:
            problems.append(exc)
    return Scan(tuple(engines), tuple(problems))


def _children(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def install(source: Path, config: Config) -> InstalledModel:
    """Install an `.argosmodel`, a CTranslate2 model directory, or a .zip/.tar(.gz) of one.

    Raises:
        ModelError: the file is not a model, is broken, or serves no language into the target.
    """
    models = models_dir(config)
    models.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".install-", dir=models))
    try:
        root = _stage(source, staging)
        engine = _open(root, models, config.translation)
        if not engine.languages:
            reason = f"serves no language into the target {config.translation.target!r}"
            if isinstance(engine, ArgosEngine):
                reason = f"translates {'→'.join(engine.pair)}, not into the target language"
            raise ModelError(source, reason)
        engine.load()
        kind = "argos" if isinstance(engine, ArgosEngine) else "ct2"
        final = models / kind / root.name
        superseded = _same_pair(engine, models, config.translation)
        del engine  # frees the weights loaded for the check before the rename
        _replace(root, final)
        for path in superseded:
            if path != final:
                shutil.rmtree(path, ignore_errors=True)
        placed = _open(final, models, config.translation)
        return InstalledModel(placed.kind, placed.model, final, tuple(sorted(placed.languages)))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def install_from_index(source: str, target: str, config: Config) -> InstalledModel:
    """`install` the newest Argos `source`→`target` package from the Argos index (online).

    Raises:
        ModelError: offline, no such package, or the package is broken.
    """
    download = download_from_index(source, target, models_dir(config))
    try:
        return install(download, config)
    finally:
        download.unlink(missing_ok=True)


def _stage(source: Path, staging: Path) -> Path:
    """A copy of the model `source` holds, under `staging`, in a folder named for the model."""
    import tarfile  # with an install, not with every start (issue 14)

    from monitor.translate._archive import extract

    if source.is_dir():
        return Path(shutil.copytree(source, staging / source.name))
    if not (zipfile.is_zipfile(source) or tarfile.is_tarfile(source)):
        raise ModelError(
            source,
            "not a translation model: expected an .argosmodel file, a CTranslate2 model "
            "directory, or a .zip/.tar.gz of one",
        )
    extracted = staging / _stem(source)
    extract(source, extracted)
    for folder in (extracted, *sorted(p for p in extracted.iterdir() if p.is_dir())):
        if (folder / "model.bin").is_file() or (folder / "metadata.json").is_file():
            return folder
    raise ModelError(source, "holds neither metadata.json (Argos) nor model.bin (CTranslate2)")


def _stem(archive: Path) -> str:
    name = archive.name
    for suffix in (".tar.gz", ".tar.xz", ".tar.bz2", ".tgz", ".tar", ".zip"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return archive.stem


def _open(root: Path, models: Path, settings: TranslationConfig) -> Engine:
    if (root / "metadata.json").is_file():
        return ArgosEngine.open(root, models, settings.target, settings)
    return MultilingualEngine.open(root, settings.target, settings)


def _same_pair(engine: Engine, models: Path, settings: TranslationConfig) -> list[Path]:
    """Installed Argos packages for the same language pair: the new one supersedes them."""
    if not isinstance(engine, ArgosEngine):
        return []
    return [
        other.path
        for other in scan(models, settings).engines
        if isinstance(other, ArgosEngine) and other.pair == engine.pair
    ]


def _replace(staged: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
    if final.exists():
        final.rename(old)
    staged.rename(final)
    shutil.rmtree(old, ignore_errors=True)
