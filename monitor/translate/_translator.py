"""The translator: one engine per source language, many items per `translate_batch`, a cache."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

from monitor.config import Config, TranslationConfig, TranslationEngine
from monitor.text.langid import UNDETERMINED
from monitor.translate._engine import Engine, ModelError
from monitor.translate._models import Scan, models_dir, scan
from monitor.translate._text import clean, paragraphs

__all__ = [
    "CORE_LANGUAGES",
    "EngineChoice",
    "Translation",
    "TranslationCache",
    "Translator",
]

log = structlog.get_logger("monitor.translate")

CORE_LANGUAGES = ("ar", "ckb", "kmr")
"""Languages the project exists for: `models list` and the start-up log always name them."""


@dataclass(frozen=True, slots=True)
class EngineChoice:
    language: str
    engine: TranslationEngine
    model: str
    path: Path


@dataclass(frozen=True, slots=True)
class Translation:
    """An item's title and summary in the target language, and what produced them."""

    title: str
    summary: str
    language: str
    """The source language."""
    engine: TranslationEngine
    model: str

    def as_json(self) -> dict[str, str]:
        """The `translation` object of `analyze` output."""
        return {
            "title": self.title,
            "summary": self.summary,
            "engine": self.engine,
            "model": self.model,
        }


class TranslationCache(Protocol):
    """Translated texts by cache key; `Store` is one."""

    def cached_translations(self, keys: Sequence[str]) -> Mapping[str, str]: ...

    def cache_translations(self, entries: Mapping[str, str]) -> None: ...


@dataclass(frozen=True, slots=True)
class _Item:
    language: str
    engine: Engine
    texts: tuple[str, str]
    keys: tuple[str | None, str | None]
    """None for an empty field."""


class Translator:
    """Synchronous and confined to one thread: models load on first use, on that thread."""

    def __init__(
        self,
        settings: TranslationConfig,
        installed: Scan,
        languages: Iterable[str] = CORE_LANGUAGES,
    ) -> None:
        self._settings = settings
        self._engines = installed.engines
        self.problems = installed.problems
        """Models found but unusable; each names its file."""
        self._broken: set[Path] = set()
        self.languages = frozenset(
            lang
            for engine in installed.engines
            if engine.kind in settings.engines
            for lang in engine.languages
        )
        """Source languages some installed, enabled model serves."""
        self._wanted = frozenset(languages) - {settings.target}

    @classmethod
    def from_config(cls, config: Config) -> Translator:
        """Scan `<state_dir>/models`; loads no weights, touches no network."""
        feeds = {feed.language for feed in config.feeds if feed.language}
        installed = scan(models_dir(config), config.translation)
        return cls(config.translation, installed, {*CORE_LANGUAGES, *feeds})

    def plan(self) -> dict[str, EngineChoice | None]:
        """For every language of interest or served: the model that will translate it."""
        plan: dict[str, EngineChoice | None] = {}
        for language in sorted(self._wanted | self.languages):
            engine = next(self._candidates(language), None)
            plan[language] = (
                None
                if engine is None
                else EngineChoice(language, engine.kind, engine.model, engine.path)
            )
        return plan

    def cache_keys(self, items: Sequence[tuple[str, str, str]]) -> list[str]:
        """The cache keys `translate_items` will look up for these items."""
        keys: list[str] = []
        for title, summary, language in items:
            engine = next(self._candidates(language), None)
            if engine is not None and self._translatable(language):
                for text in self._texts(title, summary):
                    if text:
                        keys.append(self._key(text, language, engine))
        return keys

    def translate_items(
        self, items: Sequence[tuple[str, str, str]], cache: TranslationCache | None = None
    ) -> list[Translation | None]:
        """(title, summary, language) → the target language; None where no model serves it.

        Every text the cache lacks is split into sentences, and the sentences of all items
        served by one model go to it in one `translate_batch` call. Texts repeated within
        `items` are translated once.
        """
        started = time.perf_counter()
        prepared = [self._prepare(*item) for item in items]
        keys = [key for p in prepared if p is not None for key in p.keys if key is not None]
        done: dict[str, str] = dict(cache.cached_translations(keys)) if cache and keys else {}
        cached = len(done)
        pending: dict[str, tuple[Engine, str, str]] = {}
        for p in prepared:
            if p is None:
                continue
            for text, key in zip(p.texts, p.keys, strict=True):
                if key is not None and key not in done:
                    pending.setdefault(key, (p.engine, p.language, text))
        fresh, failed, sentences = self._run(pending)
        done.update(fresh)
        if cache is not None and fresh:
            cache.cache_translations(fresh)
        results: list[Translation | None] = []
        for p in prepared:
            if p is None or any(key in failed for key in p.keys):
                results.append(None)
                continue
            title, summary = (done[key] if key is not None else "" for key in p.keys)
            results.append(Translation(title, summary, p.language, p.engine.kind, p.engine.model))
        if keys:
            log.info(
                "translation.done",
                items=len(items),
                translated=sum(r is not None for r in results),
                texts=len(pending),
                cached=cached,
                sentences=sentences,
                engines=sorted({p.engine.model for p in prepared if p is not None}),
                seconds=round(time.perf_counter() - started, 3),
            )
        return results

    # Internals ---------------------------------------------------------------------------

    def _translatable(self, language: str) -> bool:
        return language not in (self._settings.target, UNDETERMINED)

    def _candidates(self, language: str) -> Iterator[Engine]:
        for kind in self._settings.engines:
            for engine in self._engines:
                if (
                    engine.kind == kind
                    and language in engine.languages
                    and engine.path not in self._broken
                ):
                    yield engine

    def _ready(self, language: str) -> Engine | None:
        """The first enabled model for `language` that loads; a broken one is logged once."""
        for engine in self._candidates(language):
            try:
                engine.load()
            except ModelError as exc:
                self._fail(engine, exc if exc.language else exc.needed_for(language))
                continue
            return engine
        return None

    def _fail(self, engine: Engine, error: ModelError) -> None:
        self._broken.add(engine.path)
        log.error(
            "translation.model_failed",
            error=str(error),
            file=str(error.path),
            language=error.language,
            engine=engine.kind,
            model=engine.model,
        )

    def _texts(self, title: str, summary: str) -> tuple[str, str]:
        limit = self._settings.max_chars
        return clean(title, limit), clean(summary, limit)

    def _key(self, text: str, language: str, engine: Engine) -> str:
        parts = (text, language, self._settings.target, engine.kind, engine.model, engine.version)
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def _prepare(self, title: str, summary: str, language: str) -> _Item | None:
        if not self._translatable(language):
            return None
        engine = self._ready(language)
        if engine is None:
            return None
        texts = self._texts(title, summary)
        keys = (
            self._key(texts[0], language, engine) if texts[0] else None,
            self._key(texts[1], language, engine) if texts[1] else None,
        )
        return _Item(language, engine, texts, keys)

    def _run(
        self, pending: Mapping[str, tuple[Engine, str, str]]
    ) -> tuple[dict[str, str], set[str], int]:
        """Translate texts, one batch per model: (translations, keys that failed, sentences)."""
        groups: dict[Path, list[str]] = {}
        for key, (engine, _, _) in pending.items():
            groups.setdefault(engine.path, []).append(key)
        fresh: dict[str, str] = {}
        failed: set[str] = set()
        total = 0
        for keys in groups.values():
            engine = pending[keys[0]][0]
            segments: list[tuple[str, str]] = []
            layout: list[list[range]] = []
            for key in keys:
                _, language, text = pending[key]
                shape = []
                for paragraph in paragraphs(text):
                    start = len(segments)
                    segments.extend((s, language) for s in engine.split(paragraph))
                    shape.append(range(start, len(segments)))
                layout.append(shape)
            try:
                outputs = engine.translate(segments)
            except ModelError as exc:
                languages = ", ".join(sorted({pending[key][1] for key in keys}))
                self._fail(engine, exc if exc.language else exc.needed_for(languages))
                failed.update(keys)
                continue
            total += len(segments)
            for key, shape in zip(keys, layout, strict=True):
                fresh[key] = "\n".join(" ".join(outputs[i] for i in part) for part in shape)
        return fresh, failed, total
