"""Argos Translate packages: listed and fetched through `argostranslate.package`, run directly.

`argostranslate.translate` is not imported, on purpose (bench/translate_bench.py, 2 cores):
importing it takes 1.3-1.6 s and leaves 318 MB resident (torch, through stanza and spaCy),
and its MiniSBD splitter downloads a model from GitHub at the first translation of a package
that carries none. Here a package runs on ctranslate2 + its own tokenizer object + its own
MiniSBD model when it ships one (else punctuation rules): 0.35 s from nothing to a first
translation, 111 MB resident, no torch; `argostranslate.package` alone imports in 0.05 s.

Global state the libraries force, and nothing more:
- `argostranslate.settings` creates its data, config and cache directories at import (under
  $HOME unless XDG_* and ARGOS_PACKAGES_DIR say otherwise; a systemd service has no writable
  HOME) and fixes them for the life of the process. `argos()` imports it once, with those
  variables pointed under `<state_dir>/models/.argos` for the duration of that import only.
  It also sets KMP_DUPLICATE_LIB_OK=True in the environment.
- onnxruntime (under MiniSBD) resolves mobile.events.data.microsoft.com from a native thread
  about 9 s after import, to upload telemetry, unless ORT_DISABLE_TELEMETRY=1 is in the
  environment before it is imported; `_minisbd()` sets it for the process.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import structlog

from monitor.config import TranslationConfig
from monitor.translate._engine import Ct2Engine, ModelError, fingerprint

__all__ = ["ArgosEngine", "argos", "download_from_index"]

log = structlog.get_logger("monitor.translate")

_IMPORT_LOCK = threading.Lock()
_INDEX_TIMEOUT = 60.0
"""Seconds any one socket operation of an index or package download may take."""
ARGOS_INSTALL = "pip install --no-deps 'argostranslate>=1.11,<1.12' (README: Run as a service)"
"""As the Makefile installs it: without the stanza and spaCy (and torch) it declares."""
_FROM_ARGOS = {"zh": "zh-cn", "zt": "zh-tw", "pb": "pt"}
"""Argos codes that differ from the project's (langdetect's) codes."""


def argos(models: Path) -> Any:
    """`argostranslate.package`, first imported with its directories under `models/.argos`."""
    with _IMPORT_LOCK:
        if "argostranslate.package" not in sys.modules:
            private = models / ".argos"
            overrides = {
                "XDG_DATA_HOME": private / "data",
                "XDG_CONFIG_HOME": private / "config",
                "XDG_CACHE_HOME": private / "cache",
                "ARGOS_PACKAGES_DIR": models / "argos",
            }
            saved = {name: os.environ.get(name) for name in overrides}
            os.environ.update({name: str(path) for name, path in overrides.items()})
            try:
                import argostranslate.package  # type: ignore[import-untyped]  # noqa: F401
            except ModuleNotFoundError as exc:
                # `make install` adds it without its dependencies; `pip install .` alone does not.
                ours = (exc.name or "").startswith("argostranslate")
                missing = "not installed" if ours else f"no {exc.name}"
                reason = f"{missing}; Argos packages need it: {ARGOS_INSTALL}"
                raise ModelError("argostranslate", reason) from exc
            finally:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
    return sys.modules["argostranslate.package"]


def project_code(argos_code: str) -> str:
    return _FROM_ARGOS.get(argos_code, argos_code)


def _minisbd() -> Any:
    if "onnxruntime" in sys.modules and os.environ.get("ORT_DISABLE_TELEMETRY") != "1":
        log.warning(
            "translation.onnxruntime_telemetry",
            hint="onnxruntime was imported before news-monitor could disable its telemetry; "
            "set ORT_DISABLE_TELEMETRY=1 in the service environment",
        )
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    import minisbd  # type: ignore[import-untyped]

    return minisbd


class ArgosEngine(Ct2Engine):
    """An installed `.argosmodel`: CTranslate2 model, SentencePiece/BPE tokenizer, MiniSBD."""

    kind = "argos"
    options: ClassVar[dict[str, Any]] = {"length_penalty": 0.2, "replace_unknowns": True}
    """As `argostranslate.translate` runs packages."""

    def __init__(self, package: Any, target: str, settings: TranslationConfig) -> None:
        path = Path(package.package_path)
        source = project_code(package.from_code)
        serves = project_code(package.to_code) == target
        version = f"{package.package_version}+{fingerprint(path / 'model' / 'model.bin')}"
        super().__init__(
            path, path / "model", frozenset({source} if serves else ()), version, settings
        )
        self.source = source
        self.pair = (package.from_code, package.to_code)
        self._package = package
        onnx = sorted((path / "minisbd").glob("*.onnx"))
        self._sbd_file = onnx[0] if onnx else None
        self._detector: Any = None

    @classmethod
    def open(
        cls, path: Path, models: Path, target: str, settings: TranslationConfig
    ) -> ArgosEngine:
        """Read an unpacked package's metadata and check its files; loads no weights.

        Raises:
            ModelError: naming the missing or unreadable file.
        """
        metadata = path / "metadata.json"
        try:
            package = argos(models).Package(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(metadata, f"not a readable Argos package: {exc}") from exc
        language = project_code(str(package.from_code))
        if package.type != "translate" or not package.from_code or not package.to_code:
            raise ModelError(metadata, "not a translation package (type, from_code, to_code)")
        weights = path / "model" / "model.bin"
        if not weights.is_file():
            raise ModelError(weights, "missing: the package has no CTranslate2 model", language)
        if not hasattr(package, "tokenizer"):
            reason = "missing: the package has neither sentencepiece.model nor bpe.model"
            raise ModelError(path / "sentencepiece.model", reason, language)
        return cls(package, target, settings)

    def load(self) -> None:
        if self._translator is not None:
            return
        if self._sbd_file is not None and self._detector is None:
            try:
                self._detector = _minisbd().SBDetect(
                    str(self._sbd_file), use_gpu=False, max_threads=1
                )
            # minisbd raises bare Exception for a model without its metadata.
            except Exception as exc:
                reason = f"cannot load the MiniSBD sentence splitter: {exc}"
                raise ModelError(self._sbd_file, reason, self.source) from exc
        super().load()

    def split(self, paragraph: str) -> list[str]:
        if self._detector is None:
            return super().split(paragraph)
        return [s.strip() for s in self._detector.sentences(paragraph) if s.strip()]

    def _load_tokenizer(self) -> None:
        tokenizer = self._package.tokenizer
        try:
            tokenizer.encode("")
        except (OSError, RuntimeError, ImportError) as exc:
            reason = f"cannot load the tokenizer: {exc}"
            raise ModelError(Path(tokenizer.model_file), reason, self.source) from exc

    def _source(self, sentence: str, language: str) -> list[str]:
        return list(self._package.tokenizer.encode(sentence))

    def _target_prefix(self) -> list[str]:
        prefix = self._package.target_prefix
        return [prefix] if prefix else []

    def _decode(self, tokens: list[str]) -> str:
        text = str(self._package.tokenizer.decode(tokens))
        prefix = self._package.target_prefix
        if prefix and text.startswith(prefix):
            text = text[len(prefix) :]
        return text.strip()


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """argostranslate opens URLs without a timeout; a stalled index must not hang the command."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def download_from_index(source: str, target: str, models: Path) -> Path:
    """Fetch the Argos index and the newest `source`→`target` package; returns the file.

    Raises:
        ModelError: offline, index unreachable, no such package, or the download failed.
    """
    package = argos(models)
    settings = sys.modules["argostranslate.settings"]
    index = Path(settings.local_package_index)
    url = str(settings.remote_package_index)
    before = index.stat().st_mtime_ns if index.exists() else None
    # argostranslate logs failures instead of raising them: collect them for the message.
    errors = _Errors()
    logger = logging.getLogger("argostranslate.utils")
    logger.addHandler(errors)
    propagate, logger.propagate = logger.propagate, False
    try:
        with _socket_timeout(_INDEX_TIMEOUT):
            package.update_package_index()
            if not index.exists():
                why = errors.messages[-1] if errors.messages else "no answer"
                reason = (
                    f"cannot fetch the Argos package index ({why}): is this machine online? "
                    "Offline, copy an .argosmodel here and run `news-monitor models install FILE`"
                )
                raise ModelError(url, reason)
            if index.stat().st_mtime_ns == before:
                log.warning("models.index_stale", index=str(index), errors=errors.messages)
            candidates = [
                p
                for p in package.get_available_packages()
                if p.type == "translate" and p.from_code == source and p.to_code == target
            ]
            if not candidates:
                pairs = sorted(
                    f"{p.from_code}→{p.to_code}"
                    for p in package.get_available_packages()
                    if target in (p.from_code, p.to_code)
                )
                reason = f"the Argos index has no {source}→{target} package; it has {pairs}"
                raise ModelError(url, reason, source)
            from packaging.version import InvalidVersion, Version

            def newest(p: Any) -> Version:
                try:
                    return Version(p.package_version)
                except InvalidVersion:
                    return Version("0")

            best = max(candidates, key=newest)
            try:
                return Path(best.download())
            # argostranslate raises bare Exception when every link failed.
            except Exception as exc:
                why = errors.messages[-1] if errors.messages else str(exc)
                raise ModelError(", ".join(best.links), f"download failed: {why}", source) from exc
    finally:
        logger.removeHandler(errors)
        logger.propagate = propagate
