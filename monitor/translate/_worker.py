"""The translation worker: a bounded queue filled by polls, drained on one thread of its own.

Polling never waits for it: `submit` only appends to a bounded queue (what does not fit is
not translated, and says so). A round takes a batch of jobs, looks their texts up in the
cache on the store thread, translates the rest on the translation thread, matches the English
text (`second_pass`) there too, and writes translations, cache entries and second-pass alerts
in one transaction on the store thread.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import ParamSpec, TypeVar

import structlog

from monitor.config import Config
from monitor.store import AlertPlan
from monitor.store.thread import StoreThread
from monitor.store.translations import TranslatedItem
from monitor.translate._translator import Translation, Translator

__all__ = ["TranslationJob", "TranslationWorker"]

log = structlog.get_logger("monitor.translate")

P = ParamSpec("P")
T = TypeVar("T")

_ITEMS_PER_SENTENCE_BATCH = 4
"""A round takes `batch_size / 4` items: a title and about three summary sentences each, so
one round is about one CTranslate2 batch, and shutdown never waits on more than one."""


@dataclass(frozen=True, slots=True)
class TranslationJob:
    item_id: int
    story_key: str
    title: str
    summary: str
    language: str
    matched: bool
    """Whether the original text matched a watchlist (for `mode: matched`)."""
    alertable: bool = True
    """False for backfilled items: translated and stored, but never alerted on."""


class _Prefetched:
    """The store's cache entries for one round, read beforehand; new entries collected."""

    def __init__(self, found: Mapping[str, str]) -> None:
        self._found = found
        self.added: dict[str, str] = {}

    def cached_translations(self, keys: Sequence[str]) -> Mapping[str, str]:
        return {key: self._found[key] for key in keys if key in self._found}

    def cache_translations(self, entries: Mapping[str, str]) -> None:
        self.added.update(entries)


class TranslationWorker:
    """Call `submit`, `flush` and `reconfigure` from the event loop's thread."""

    def __init__(
        self,
        config: Config,
        store: StoreThread,
        translator: Translator,
        second_pass: Callable[[TranslationJob, Translation], tuple[AlertPlan, ...]],
        on_alerts: Callable[[], None],
        *,
        observe: Callable[[int, float], None] | None = None,
    ) -> None:
        """`observe(items, seconds)` is called after each round (for /metrics)."""
        self._settings = config.translation
        self._store = store
        self._translator = translator
        self._rebuild: Config | None = None
        self._second_pass = second_pass
        self._on_alerts = on_alerts
        self._observe = observe
        self._queue: deque[TranslationJob] = deque()
        self._wake = asyncio.Event()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="translate")
        self._round_lock = asyncio.Lock()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def submit(self, jobs: Sequence[TranslationJob]) -> int:
        """Queue the jobs `translation.mode` wants; never waits. Returns how many were queued."""
        wanted = [job for job in jobs if self._wanted(job)]
        room = max(self._settings.queue - len(self._queue), 0)
        self._queue.extend(wanted[:room])
        if len(wanted) > room:
            log.warning(
                "translation.queue_full",
                dropped=len(wanted) - room,
                queue=self._settings.queue,
            )
        if room and wanted:
            self._wake.set()
        return min(len(wanted), room)

    def untranslated_reason(self, language: str | None) -> str | None:
        """Why an item in `language` will get no English (for messages), or None if it may."""
        if self._settings.mode == "off":
            return "translation is off"
        if language and language not in self._translator.languages:
            return f"no model for {language}"
        return None

    def reconfigure(self, config: Config) -> None:
        """Take a reloaded config: models are re-scanned before the next round."""
        self._settings = config.translation
        self._rebuild = config

    async def run(self, stopping: asyncio.Event) -> None:
        """Translate queued jobs until `stopping` is set; the round in progress finishes."""
        await self._refresh()
        stop = asyncio.ensure_future(stopping.wait())
        try:
            while not stopping.is_set():
                if not self._queue:
                    self._wake.clear()
                    wake = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait({wake, stop}, return_when=asyncio.FIRST_COMPLETED)
                    wake.cancel()
                    continue
                await self._round()
        finally:
            stop.cancel()
            if self._queue:
                log.info("translation.stopped", untranslated=len(self._queue))

    async def flush(self) -> None:
        """Translate everything queued now, then return (for `poll-once`)."""
        if self._rebuild is not None:
            await self._refresh()
        while self._queue:
            await self._round()

    def close(self) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)

    # Internals ---------------------------------------------------------------------------

    def _wanted(self, job: TranslationJob) -> bool:
        mode = self._settings.mode
        if mode == "off" or job.language not in self._translator.languages:
            return False
        return mode == "all" or job.matched

    async def _in_thread(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, partial(fn, *args, **kwargs))

    async def _refresh(self) -> None:
        """Re-scan models after a reload (on the translation thread); log what serves what."""
        if self._rebuild is not None:
            config, self._rebuild = self._rebuild, None
            self._translator = await self._in_thread(Translator.from_config, config)
        translator, settings = self._translator, self._settings
        for problem in translator.problems:
            log.error(
                "translation.model_invalid",
                error=str(problem),
                file=str(problem.path),
                language=problem.language,
            )
        if settings.mode == "off":
            log.info("translation.off")
            return
        plan = translator.plan()
        served = {lang: f"{c.engine}:{c.model}" for lang, c in plan.items() if c is not None}
        log.info("translation.ready", mode=settings.mode, languages=served)
        missing = sorted(lang for lang, choice in plan.items() if choice is None)
        if missing:
            log.warning(
                "translation.untranslated",
                languages=missing,
                engines=list(settings.engines),
                hint="install a model: news-monitor models install FILE",
            )

    async def _round(self) -> None:
        async with self._round_lock:
            if self._rebuild is not None:
                await self._refresh()
            size = max(1, self._settings.batch_size // _ITEMS_PER_SENTENCE_BATCH)
            jobs = [self._queue.popleft() for _ in range(min(size, len(self._queue)))]
            if not jobs:
                return
            started = time.perf_counter()
            try:
                await self._translate(jobs)
            except Exception as exc:
                # A bug must not stop translation for good: these jobs stay untranslated.
                log.exception("translation.crashed", items=len(jobs), error=repr(exc))
            if self._observe is not None:
                self._observe(len(jobs), time.perf_counter() - started)

    async def _translate(self, jobs: list[TranslationJob]) -> None:
        store = self._store.store
        items = [(job.title, job.summary, job.language) for job in jobs]
        keys = await self._in_thread(self._translator.cache_keys, items)
        cache = _Prefetched(await self._store.call(store.cached_translations, keys))
        written = await self._in_thread(self._translate_and_match, jobs, items, cache)
        if not written:
            return
        result = await self._store.call(store.record_translations, written, cache.added)
        if result.alerts:
            log.info("translation.alerts", alerts=result.alerts, deliveries=result.deliveries)
            self._on_alerts()

    def _translate_and_match(
        self,
        jobs: list[TranslationJob],
        items: list[tuple[str, str, str]],
        cache: _Prefetched,
    ) -> list[TranslatedItem]:
        """On the translation thread: translate, then match the English text."""
        translations = self._translator.translate_items(items, cache)
        written = []
        for job, translation in zip(jobs, translations, strict=True):
            if translation is None:
                continue
            plans: tuple[AlertPlan, ...] = ()
            if job.alertable:
                plans = self._second_pass(job, translation)
            written.append(
                TranslatedItem(
                    job.item_id,
                    job.story_key,
                    translation.title,
                    translation.summary,
                    translation.engine,
                    translation.model,
                    plans,
                )
            )
        return written
