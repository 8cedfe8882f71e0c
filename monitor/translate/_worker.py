"""The translation worker: one queue shared by every node, drained on one thread of its own.

The store is the queue (issue 13): an item is untranslated until its translation is stored.
The worker's own bounded queue is a hint: polls `submit` their new items to it and never wait
(what does not fit waits in the store). A round takes a batch of jobs and first claims them in
the store for this node (`claim_translations`, for `cluster.lease`); a job it cannot claim is
dropped (another node translates it, or has). It then looks their texts up in the cache on the
store thread, translates the rest on the translation thread, matches the English text
(`second_pass`) there too, and writes translations, cache entries and second-pass alerts in one
transaction on the store thread, which clears the claims.

With its queue empty, a running worker pulls recent untranslated items nobody has claimed from
the store (`untranslated_items`), when woken and every `pull_every` seconds: so a node with
spare CPU takes the backlog of a busy node, items stored before a model was installed are
translated, and a dead node's claims are taken once they run out.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import ParamSpec, TypeVar

import structlog

from monitor.config import Config
from monitor.store import AlertPlan, utcnow
from monitor.store.thread import StoreThread
from monitor.store.translations import TranslatedItem, UntranslatedItem
from monitor.translate._translator import Translation, Translator

__all__ = ["TranslationJob", "TranslationWorker"]

log = structlog.get_logger("monitor.translate")

P = ParamSpec("P")
T = TypeVar("T")

_ITEMS_PER_SENTENCE_BATCH = 4
"""A round takes `batch_size / 4` items: a title and about three summary sentences each, so
one round is about one CTranslate2 batch, and shutdown never waits on more than one."""

PULL_WINDOW = timedelta(hours=24)
"""Untranslated items stored this recently are pulled from the store; older ones are left."""

_PULL_ROUNDS = 2
"""A pull queues about this many rounds of items: enough to keep the thread busy until the
next pull, few enough that other idle nodes find work too and a node's own polls find room."""

_PULL_PAGE = 256
"""Rows per read of the store's untranslated items."""

_PULL_PAGES = 4
"""Reads per pull at most: an idle node's pull stays cheap however long the window is."""

_PASSED_MAX = 100_000
"""Items the pull judged unwanted (`translation.mode: matched`) are remembered, so they are
not matched again at every pull; beyond this many, the memory starts over."""


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


JobsFor = Callable[[Sequence[UntranslatedItem]], Awaitable[list[TranslationJob]]]
"""Jobs for items pulled from the store: whether each matched is the analyzer's to say."""


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
        node: str = "local",
        jobs_for: JobsFor | None = None,
        pull_every: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`observe(items, seconds)` is called after each round (for /metrics). `node` names
        this daemon in its claims (`cluster.node`). `jobs_for` turns items pulled from the
        store into jobs; without it `run` pulls nothing. `clock` says when claims end."""
        self._settings = config.translation
        self._config = config
        self._node = node
        self._jobs_for = jobs_for
        self._pull_every = pull_every
        self._clock = clock
        self._passed: set[int] = set()
        self._page: tuple[str, int] | None = None
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
        """Queue the jobs `translation.mode` wants; never waits. Returns how many were queued.

        What does not fit stays untranslated in the store, where a later pull finds it."""
        wanted = [job for job in jobs if self._wanted(job)]
        room = max(self._settings.queue - len(self._queue), 0)
        self._queue.extend(wanted[:room])
        if len(wanted) > room:
            log.warning(
                "translation.queue_full",
                dropped=len(wanted) - room,
                queue=self._settings.queue,
                pulled_later=self._jobs_for is not None,
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
        self._config = config
        self._rebuild = config
        # New watchlists, mode or models: what the pull passed over may be wanted now.
        self._passed.clear()
        self._page = None
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Translate queued jobs until `stopping` is set; the round in progress finishes.

        With the queue empty, pull from the store; when that finds nothing, wait to be woken
        (`submit`, `wake`) or `pull_every` seconds, then pull again."""
        await self._refresh()
        stop = asyncio.ensure_future(stopping.wait())
        try:
            while not stopping.is_set():
                if not self._queue:
                    self._wake.clear()
                    if await self._pull_guarded():
                        continue
                    wake = asyncio.ensure_future(self._wake.wait())
                    timeout = self._pull_every if self._jobs_for is not None else None
                    await asyncio.wait(
                        {wake, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                    wake.cancel()
                    continue
                await self._round()
        finally:
            stop.cancel()
            if self._queue:
                log.info("translation.stopped", untranslated=len(self._queue))

    async def flush(self) -> None:
        """Translate everything queued now, then return (for `poll-once`): what another node
        claimed is left to it."""
        if self._rebuild is not None:
            await self._refresh()
        while self._queue:
            await self._round()

    def wake(self) -> None:
        """Pull from the store now if the queue is empty (another node's backlog, a model
        installed)."""
        self._wake.set()

    async def pull(self) -> int:
        """Claim and queue recent untranslated items that no node has claimed, as many as
        about two rounds take; returns how many were queued (0: nothing found this time).

        The window is read newest first, a page at a time, and where one pull stops the next
        goes on (then starts again from the newest): items this node passed over (`matched`
        mode) are not read again and again, so the ones further down get their turn. A pull
        reads at most `_PULL_PAGES` pages.
        """
        jobs_for = self._jobs_for
        if jobs_for is None or self._settings.mode == "off":
            return 0
        languages = sorted(self._translator.languages)
        settings = self._settings
        want = min(_PULL_ROUNDS * self._round_size(), max(settings.queue - len(self._queue), 0))
        if not languages or want <= 0:
            return 0
        store = self._store.store
        now = self._clock()
        wanted: list[TranslationJob] = []
        for _ in range(_PULL_PAGES):
            rows = await self._store.call(
                store.untranslated_items,
                now - PULL_WINDOW,
                self._config.polling.backfill,
                settings.target,
                _PULL_PAGE,
                now=now,
                languages=languages,
                before=self._page,
            )
            full = len(rows) == _PULL_PAGE
            self._page = (rows[-1].fetched_at, rows[-1].item_id) if full else None
            fresh = [row for row in rows if row.item_id not in self._passed]
            for job in await jobs_for(fresh) if fresh else []:
                if self._wanted(job) and len(wanted) < want:
                    wanted.append(job)
                elif not self._wanted(job):
                    self._passed.add(job.item_id)
            if len(wanted) >= want:
                # Wanted items of this page beyond `want` are read again next time.
                self._page = None
                break
            if self._page is None:
                break
        if len(self._passed) > _PASSED_MAX:
            self._passed.clear()
        if wanted:
            # Claimed now, so that other idle nodes' pulls pass over them rather than queue
            # the same items and lose the race at every round (the round renews the claim).
            claimed = await self._store.call(
                store.claim_translations,
                self._node,
                [job.item_id for job in wanted],
                now,
                now + self._config.cluster.lease,
            )
            wanted = [job for job in wanted if job.item_id in claimed]
        self._queue.extend(wanted)
        if wanted:
            log.debug("translation.pulled", items=len(wanted))
        return len(wanted)

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

    def _round_size(self) -> int:
        return max(1, self._settings.batch_size // _ITEMS_PER_SENTENCE_BATCH)

    async def _pull_guarded(self) -> int:
        try:
            return await self.pull()
        except Exception as exc:
            # The store may be briefly unreachable: try again at the next pull.
            log.warning("translation.pull_failed", error=str(exc))
            return 0

    async def _round(self) -> None:
        async with self._round_lock:
            if self._rebuild is not None:
                await self._refresh()
            size = self._round_size()
            jobs = [self._queue.popleft() for _ in range(min(size, len(self._queue)))]
            if not jobs:
                return
            started = time.perf_counter()
            translated = 0
            try:
                translated = await self._translate(jobs)
            except Exception as exc:
                # A bug must not stop translation for good: these jobs stay untranslated (in
                # the store, claimed until the claim runs out).
                log.exception("translation.crashed", items=len(jobs), error=repr(exc))
                translated = len(jobs)
            if self._observe is not None and translated:
                self._observe(translated, time.perf_counter() - started)

    async def _translate(self, jobs: list[TranslationJob]) -> int:
        """Claim, translate, store; returns how many jobs this node claimed."""
        store = self._store.store
        now = self._clock()
        claimed = await self._store.call(
            store.claim_translations,
            self._node,
            [job.item_id for job in jobs],
            now,
            now + self._config.cluster.lease,
        )
        if len(claimed) < len(jobs):
            log.debug("translation.taken_elsewhere", items=len(jobs) - len(claimed))
        jobs = [job for job in jobs if job.item_id in claimed]
        if not jobs:
            return 0
        items = [(job.title, job.summary, job.language) for job in jobs]
        keys = await self._in_thread(self._translator.cache_keys, items)
        cache = _Prefetched(await self._store.call(store.cached_translations, keys))
        written = await self._in_thread(self._translate_and_match, jobs, items, cache)
        done = {item.item_id for item in written}
        failed = [job.item_id for job in jobs if job.item_id not in done]
        if failed:
            # No English for these here (a broken model): another node may have a working one,
            # and this one does not pull them again until its models change.
            self._passed.update(failed)
            await self._store.call(store.release_translations, self._node, failed)
        if not written:
            return len(jobs)
        result = await self._store.call(store.record_translations, written, cache.added)
        if result.alerts:
            log.info("translation.alerts", alerts=result.alerts, deliveries=result.deliveries)
            self._on_alerts()
        return len(jobs)

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
