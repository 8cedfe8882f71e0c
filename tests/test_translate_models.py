"""`models install` and `models list`: packages, model directories and archives, offline.

The commands run through click's CliRunner on the `models` group, with a real config file.
`--from-index` runs in a subprocess against an Argos index served on 127.0.0.1, because
argostranslate reads ARGOS_PACKAGE_INDEX once per process.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import socketserver
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import write_config
from tiny_models import (
    NetworkGuard,
    TinyModels,
    random_transformer,
    session_models,
    train_sentencepiece,
)

from monitor.cli.models import models
from monitor.config import Config
from monitor.translate import ModelError, Translator, install, install_from_index

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return session_models(tmp_path_factory)


@pytest.fixture(autouse=True)
def offline() -> Iterator[NetworkGuard]:
    guard = NetworkGuard()
    with guard.armed():
        yield guard
    assert guard.attempts == [], f"network access: {guard.attempts}"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(tmp_path, state_dir="state")


def run(config: Config, *args: str) -> Result:
    return CliRunner().invoke(models, list(args), obj={"config_path": config.source})


def installed_dirs(config: Config) -> list[str]:
    root = config.state_dir / "models"
    return sorted(
        str(p.relative_to(root)) for p in root.glob("*/*") if not p.parent.name.startswith(".")
    )


# install FILE ----------------------------------------------------------------------------


def test_install_an_argosmodel_then_list_shows_what_serves_each_language(
    config: Config, tiny: TinyModels
) -> None:
    result = run(config, "install", str(tiny.argos_ar))
    assert result.exit_code == 0, result.output
    assert "installed argos model translate-ar_en for ar" in result.stdout
    assert installed_dirs(config) == ["argos/translate-ar_en"]
    listed = run(config, "list")
    assert listed.exit_code == 0
    lines = [line.split()[:3] for line in listed.stdout.splitlines()]
    assert lines == [
        ["ar", "argos", "translate-ar_en"],
        ["ckb", "untranslated"],
        ["kmr", "untranslated"],
    ]


def test_models_alone_lists_like_models_list(config: Config, tiny: TinyModels) -> None:
    assert run(config, "install", str(tiny.argos_ar)).exit_code == 0
    alone = run(config)
    assert alone.exit_code == 0, alone.output
    assert alone.stdout == run(config, "list").stdout
    assert alone.stdout.split()[:3] == ["ar", "argos", "translate-ar_en"]


def test_install_nllb_and_madlad_directories(config: Config, tiny: TinyModels) -> None:
    assert run(config, "install", str(tiny.nllb)).exit_code == 0
    result = run(config, "install", str(tiny.madlad))
    assert "installed madlad model madlad-400-tiny for ar, ckb, kmr" in result.stdout
    listed = run(config, "list", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["language"], r["engine"], r["model"]) for r in rows] == [
        ("ar", "nllb", "nllb-200-tiny"),
        ("ckb", "nllb", "nllb-200-tiny"),
        ("kmr", "nllb", "nllb-200-tiny"),
    ]
    assert rows[0]["path"] == str(config.state_dir / "models" / "ct2" / "nllb-200-tiny")


@pytest.mark.parametrize("kind", ["tar.gz", "zip", "zip-bare"])
def test_install_a_ct2_model_from_an_archive(
    config: Config, tiny: TinyModels, tmp_path: Path, kind: str
) -> None:
    if kind == "tar.gz":
        archive = tmp_path / "nllb-200-tiny.tar.gz"
        with tarfile.open(archive, "w:gz") as bundle:
            bundle.add(tiny.nllb, arcname="nllb-200-tiny")
    else:
        archive = tmp_path / "nllb-200-tiny.zip"
        with zipfile.ZipFile(archive, "w") as bundle:
            for path in tiny.nllb.iterdir():
                prefix = "" if kind == "zip-bare" else "nllb-200-tiny/"
                bundle.write(path, prefix + path.name)
    result = run(config, "install", str(archive))
    assert result.exit_code == 0, result.output
    assert installed_dirs(config) == ["ct2/nllb-200-tiny"]
    assert not list((config.state_dir / "models").glob(".install-*"))


def test_a_newer_package_for_the_same_pair_replaces_the_old_one(
    config: Config, tiny: TinyModels, tmp_path: Path
) -> None:
    renamed = tmp_path / "translate-ar_en-1_1.argosmodel"
    with zipfile.ZipFile(tiny.argos_ar) as old, zipfile.ZipFile(renamed, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename.endswith("metadata.json"):
                data = json.dumps({**json.loads(data), "package_version": "1.1"}).encode()
            new.writestr(info.filename.replace("translate-ar_en/", "translate-ar_en-1_1/"), data)
    assert run(config, "install", str(tiny.argos_ar)).exit_code == 0
    assert run(config, "install", str(renamed)).exit_code == 0
    assert installed_dirs(config) == ["argos/translate-ar_en-1_1"]
    assert run(config, "install", str(tiny.argos_ar)).exit_code == 0
    assert installed_dirs(config) == ["argos/translate-ar_en"]


def test_install_needs_a_file_or_the_index_not_both(config: Config, tiny: TinyModels) -> None:
    assert run(config, "install").exit_code == 2
    both = run(config, "install", str(tiny.argos_ar), "--from-index", "ar", "en")
    assert both.exit_code == 2
    assert "either FILE or --from-index" in both.stderr


def _not_a_model(tmp_path: Path, tiny: TinyModels, kind: str) -> tuple[Path, str]:
    if kind == "text":
        path = tmp_path / "notes.txt"
        path.write_text("hello")
        return path, "not a translation model"
    if kind == "zip-without-model":
        path = tmp_path / "photos.zip"
        with zipfile.ZipFile(path, "w") as bundle:
            bundle.writestr("photos/a.jpg", b"\xff\xd8")
        return path, "holds neither metadata.json (Argos) nor model.bin"
    if kind == "unknown-style":
        sp = train_sentencepiece(tmp_path / "plain")
        import sentencepiece as spm

        processor = spm.SentencePieceProcessor(model_file=str(sp))
        vocab = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
        path = random_transformer(tmp_path / "mystery", vocab)
        shutil.copy(sp, path / "spiece.model")
        return path, "not an NLLB-200 or MADLAD-400 style model"
    if kind == "corrupt-weights":
        path = Path(shutil.copytree(tiny.nllb, tmp_path / "broken-nllb"))
        weights = path / "model.bin"
        weights.write_bytes(weights.read_bytes()[:1000])
        return path, "broken-nllb/model.bin: cannot load the nllb model"
    path = Path(shutil.copytree(tiny.nllb, tmp_path / "no-tokenizer"))
    (path / "sentencepiece.bpe.model").unlink()
    return path, "holds no SentencePiece model"


@pytest.mark.parametrize(
    "kind", ["text", "zip-without-model", "unknown-style", "corrupt-weights", "no-tokenizer"]
)
def test_install_refuses_what_is_not_a_usable_model_and_leaves_nothing_behind(
    config: Config, tiny: TinyModels, tmp_path: Path, kind: str
) -> None:
    path, message = _not_a_model(tmp_path, tiny, kind)
    result = run(config, "install", str(path))
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert installed_dirs(config) == []
    assert not list((config.state_dir / "models").glob(".install-*"))


def test_install_refuses_a_package_into_another_target_language(
    config: Config, tiny: TinyModels, tmp_path: Path
) -> None:
    reverse = tmp_path / "translate-en_ar.argosmodel"
    with zipfile.ZipFile(tiny.argos_ar) as old, zipfile.ZipFile(reverse, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename.endswith("metadata.json"):
                meta = {**json.loads(data), "from_code": "en", "to_code": "ar"}
                data = json.dumps(meta).encode()
            new.writestr(info.filename, data)
    result = run(config, "install", str(reverse))
    assert result.exit_code == 1
    assert "translates en→ar, not into the target language" in result.stderr


def test_list_shows_unusable_models_as_errors_naming_the_file(
    config: Config, tiny: TinyModels
) -> None:
    install(tiny.argos_ar, config)
    metadata = config.state_dir / "models" / "argos" / "translate-ar_en" / "metadata.json"
    metadata.write_text("{not json")
    result = run(config, "list")
    assert result.exit_code == 0
    assert result.stdout.split()[:2] == ["ar", "untranslated"]
    (error,) = result.stderr.splitlines()
    assert error.startswith(f"error: {metadata}: not a readable Argos package")


def test_list_reads_feed_languages_and_notes_mode_off(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        state_dir="state",
        feeds=[{"name": "tr", "url": "https://tr.example/rss", "language": "tr"}],
        translation={"mode": "off"},
    )
    result = run(config, "list")
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["ar", "ckb", "kmr", "tr"]
    assert "translation.mode is off" in result.stderr


def test_argostranslate_directories_stay_under_the_state_dir(
    config: Config, tiny: TinyModels
) -> None:
    install(tiny.argos_ar, config)
    import argostranslate.settings as settings  # type: ignore[import-untyped]

    # Whichever test imported it first fixed these for the process: all under a state dir.
    for path in (settings.data_dir, settings.config_dir, settings.cache_dir):
        assert "/models/.argos/" in str(path)


def test_no_writable_home_is_needed(tiny: TinyModels, tmp_path: Path) -> None:
    """Under systemd (DynamicUser, ProtectHome) HOME is not writable: install, list, translate."""
    config = write_config(tmp_path, state_dir="state")
    script = f"""
import json, os, sys
from pathlib import Path
from monitor.config import load_config
from monitor.translate import Translator, install
config = load_config({str(config.source)!r})
install(Path({str(tiny.argos_ar)!r}), config)
(result,) = Translator.from_config(config).translate_items([("هجوم. قتلى", "", "ar")])
print(json.dumps({{"title": result.title, "xdg": [k for k in os.environ if k.startswith("XDG")]}}))
"""
    env = {**os.environ, "HOME": "/proc/nonexistent-home", "PYTHONPATH": str(ROOT)}
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "ARGOS_PACKAGES_DIR"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout.splitlines()[-1])
    assert output == {"title": "suicide bomber suicide bomber", "xdg": []}
    assert "telemetry" not in done.stderr


# --from-index ------------------------------------------------------------------------------


def test_from_index_offline_is_a_clear_error(config: Config, offline: NetworkGuard) -> None:
    with pytest.raises(ModelError, match="cannot fetch the Argos package index") as error:
        install_from_index("ar", "en", config)
    assert "models install FILE" in str(error.value)
    assert offline.attempts, "the index fetch was tried, and refused"
    offline.attempts.clear()


class _LocalServer(http.server.ThreadingHTTPServer):
    def server_bind(self) -> None:
        # HTTPServer looks its own name up (gethostbyaddr): not needed on 127.0.0.1.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


class _Index(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        self.requests.append(self.path)


def test_from_index_installs_the_package_the_index_names(tiny: TinyModels, tmp_path: Path) -> None:
    served = tmp_path / "index"
    served.mkdir()
    shutil.copy(tiny.argos_ar, served / "translate-ar_en-1_0.argosmodel")
    requests: list[str] = []
    handler = functools.partial(
        type("Handler", (_Index,), {"requests": requests}), directory=str(served)
    )
    server = _LocalServer(("127.0.0.1", 0), handler)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    entry = {
        "package_version": "1.0",
        "argos_version": "1.9",
        "from_code": "ar",
        "from_name": "Arabic",
        "to_code": "en",
        "to_name": "English",
        "type": "translate",
        "links": [base + "translate-ar_en-1_0.argosmodel"],
    }
    (served / "index.json").write_text(json.dumps([entry]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = write_config(tmp_path, state_dir="state")
    script = (
        "import sys; from pathlib import Path; from monitor.cli.models import models; "
        "models(['install', '--from-index', 'ar', 'en'], obj={'config_path': Path(sys.argv[1])})"
    )
    env = {**os.environ, "ARGOS_PACKAGE_INDEX": base, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, str(config.source)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    assert "installed argos model translate-ar_en for ar" in done.stdout
    assert requests == ["/index.json", "/translate-ar_en-1_0.argosmodel"]
    downloads = config.state_dir / "models" / ".argos" / "cache" / "argos-translate" / "downloads"
    assert list(downloads.iterdir()) == []
    plan = Translator.from_config(config).plan()
    assert plan["ar"] is not None and plan["ar"].model == "translate-ar_en"
