"""The engine protocol, and what every CTranslate2-backed engine shares.

An engine is one installed model that translates some source languages into the target. It is
cheap to construct (a directory scan reads only metadata) and loads its weights on `load()`,
on the translation thread, the first time a language needs it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import structlog

from monitor.config import TranslationConfig, TranslationEngine
from monitor.errors import MonitorError
from monitor.translate._text import split_sentences

__all__ = ["BEAM_SIZE", "Ct2Engine", "Engine", "ModelError", "fingerprint"]

log = structlog.get_logger("monitor.translate")

BEAM_SIZE = 2
"""Beam width for every engine. Argos runs 4; on a Transformer-base model, int8, 2 threads,
bench/translate_bench.py measured 19-21 items/s at beam 2 against 11-13 at beam 4 (greedy: 28),
and the second pass needs the content words more than the last bit of fluency."""


class ModelError(MonitorError):
    """A model that cannot be used: names the file, and the language it was meant to serve."""

    def __init__(self, path: Path | str, reason: str, language: str | None = None) -> None:
        self.path = path
        """The file (or URL) at fault."""
        self.reason = reason
        self.language = language
        super().__init__(str(self))

    def __str__(self) -> str:
        who = f" (needed for {self.language})" if self.language else ""
        return f"{self.path}: {self.reason}{who}"

    def needed_for(self, language: str) -> ModelError:
        return ModelError(self.path, self.reason, language)


class Engine(Protocol):
    """One installed model; `Translator` picks one per source language."""

    @property
    def kind(self) -> TranslationEngine: ...

    @property
    def model(self) -> str:
        """The model's name as `models list` shows it: its directory name."""

    @property
    def path(self) -> Path: ...

    @property
    def version(self) -> str:
        """Changes whenever the model's weights change: part of every cache key."""

    @property
    def languages(self) -> frozenset[str]:
        """Source languages (the project's codes: ar, ckb, kmr, ...) it translates to the target."""

    def load(self) -> None:
        """Load weights and tokenizer; idempotent. Raises ModelError naming the bad file."""

    def split(self, paragraph: str) -> list[str]:
        """Sentences of one paragraph, offline."""

    def translate(self, sentences: Sequence[tuple[str, str]]) -> list[str]:
        """(sentence, source language) pairs to target sentences, in one `translate_batch`."""


def fingerprint(path: Path) -> str:
    """Size and modification time of the weights: a reinstall invalidates cached translations."""
    stat = path.stat()
    return f"{stat.st_size:x}.{stat.st_mtime_ns:x}"


class Ct2Engine:
    """A CTranslate2 model directory and a tokenizer; subclasses say how text becomes tokens."""

    kind: TranslationEngine
    options: ClassVar[dict[str, Any]] = {}
    """Extra `translate_batch` arguments for this kind of model."""

    def __init__(
        self,
        path: Path,
        model_dir: Path,
        languages: frozenset[str],
        version: str,
        settings: TranslationConfig,
    ) -> None:
        self.path = path
        self.model = path.name
        self.languages = languages
        self.version = version
        self._model_dir = model_dir
        self._settings = settings
        self._translator: Any = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"

    def load(self) -> None:
        if self._translator is not None:
            return
        self._load_tokenizer()
        # Imported here: a daemon without models never loads the library.
        import ctranslate2  # type: ignore[import-untyped]

        started = time.perf_counter()
        try:
            self._translator = ctranslate2.Translator(
                str(self._model_dir),
                device="cpu",
                compute_type=self._settings.compute_type,
                inter_threads=1,
                intra_threads=self._settings.threads,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            reason = f"cannot load the {self.kind} model: {_one_line(exc)}"
            raise ModelError(self._model_dir / "model.bin", reason) from exc
        log.info(
            "translation.model_loaded",
            engine=self.kind,
            model=self.model,
            compute_type=self._settings.compute_type,
            threads=self._settings.threads,
            seconds=round(time.perf_counter() - started, 3),
        )

    def split(self, paragraph: str) -> list[str]:
        return split_sentences(paragraph)

    def translate(self, sentences: Sequence[tuple[str, str]]) -> list[str]:
        if not sentences:
            return []
        self.load()
        sources = [self._source(sentence, language) for sentence, language in sentences]
        prefix = self._target_prefix()
        try:
            results = self._translator.translate_batch(
                sources,
                target_prefix=[prefix] * len(sources) if prefix else None,
                max_batch_size=self._settings.batch_size,
                beam_size=BEAM_SIZE,
                **self.options,
            )
        except (RuntimeError, ValueError) as exc:
            reason = f"the {self.kind} model failed to translate: {_one_line(exc)}"
            raise ModelError(self._model_dir / "model.bin", reason) from exc
        return [self._decode(result.hypotheses[0]) for result in results]

    def _load_tokenizer(self) -> None:
        raise NotImplementedError

    def _source(self, sentence: str, language: str) -> list[str]:
        raise NotImplementedError

    def _target_prefix(self) -> list[str]:
        return []

    def _decode(self, tokens: list[str]) -> str:
        raise NotImplementedError


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
