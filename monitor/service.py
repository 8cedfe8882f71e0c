"""The daemon: one `Monitor` owns the runtime, the store and the scheduler.

The runtime (`monitor.runtime`: the config, its analyzer, fetcher and limits) is one immutable
object; a reload builds the next one and swaps it in whole, and each poll runs under the one it
started with. A poll is one pipeline (`Monitor._pipeline`: fetch → parse → new items → analyze
→ store). Stages run where they cannot block the event loop: parsing in worker processes,
analysis on one thread, the store on one writer thread. The schedule lives in the store
(`monitor.scheduler`), so several daemons on one database share the feeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import structlog

from monitor.analyze import Analyzer, analyze_in_worker, parse_and_analyze
from monitor.article import ArticleJob, ArticleReader
from monitor.config import Config, FeedConfig, PollingConfig
from monitor.deliver import Dispatcher, DispatchReport
from monitor.errors import FetchError, StoreFileLost
from monitor.fetch import Fetcher, FetchResult, backoff_delay
from monitor.incident_desk import IncidentDesk, incident_settings
from monitor.models import Analysis, Item, Match, ParsedFeed
from monitor.parse import CONTENT_CHARS, parse_feed
from monitor.runtime import LazyAnalyzer, Runtime, build_runtime
from monitor.scheduler import Scheduler, default_node_name
from monitor.store import AlertPlan, FeedState, NewItem, PollWrite, Store, shown, utcnow
from monitor.store.thread import StoreThread
from monitor.store.translations import UntranslatedItem
from monitor.translate import Translation, TranslationJob, TranslationWorker, Translator

# Operations brings /healthz and /metrics (prometheus-client): only `run` builds one (issue 14).
if TYPE_CHECKING:
    from monitor.ops import Operations

__all__ = ["Monitor", "PollReport", "alert_plans", "alertable", "analyze_records"]

log = structlog.get_logger("monitor.service")

P = ParamSpec("P")
T = TypeVar("T")

_SHUTDOWN_GRACE = 5.0
"""Seconds in-flight polls get to finish on SIGTERM (deliveries get theirs at the same time)."""
_STOP_BUDGET = 6.5
"""Seconds from SIGTERM to the end of `run()`. Closing the store and the clients fits in the
rest of the stop deadline (7.5 s, `monitor.ops`), inside systemd's stop timeout of 10 s."""
_DELIVER_ONCE_TIMEOUT = 30.0
"""Seconds `poll-once` waits for its deliveries before leaving the rest pending."""
_INLINE_PARSE_BYTES = 4_000
"""Documents smaller than this parse on the analysis thread: a process hop would cost more."""


@dataclass(frozen=True, slots=True)
class PollReport:
    feed: str
    outcome: str
    """'new' (200), 'not_modified' (304), 'failed', or 'skipped' (`poll-once`: another node
    polls the feed now; `error` says which)."""
    http_status: int | None = None
    items: int = 0
    new_items: int = 0
    alerts: int = 0
    error: str | None = None
    seconds: float = 0.0
    held_back: int = 0
    """New items that matched but are older than `backfill` (a first poll): stored only."""


def alertable(item: Item, first_poll: bool, now: datetime, backfill: timedelta) -> bool:
    """Whether a new item may alert: on a feed's first poll only items within `backfill` do.

    Undated items on a first poll are of unknown age, so they are stored without alerting
    rather than flooding the desk with a feed's whole history.
    """
    if not first_poll:
        return True
    return item.published_at is not None and item.published_at >= now - backfill


def alert_plans(config: Config, matches: Sequence[Match]) -> tuple[AlertPlan, ...]:
    """One alert per watchlist the matches name, with its severity and the sinks it notifies.

    Matches of a watchlist no longer configured (a reload between match and store) are dropped.
    """
    watchlists = {w.name: w for w in config.watchlists}
    names = dict.fromkeys(m.watchlist for m in matches if m.watchlist in watchlists)
    return tuple(
        AlertPlan(
            name,
            watchlists[name].severity,
            tuple(m for m in matches if m.watchlist == name),
            config.sinks_for(watchlists[name]),
        )
        for name in names
    )


def analyze_records(
    analyzer: Analyzer,
    records: Iterable[dict[str, Any]],
    translator: Translator | None = None,
) -> Iterator[dict[str, Any]]:
    """The `analyze` command's work: one result per `{"id","title","summary","content"?,
    "language"?}`. The content is cut where the daemon cuts an article body.

    With a `translator`, a non-English item is translated as the daemon would, and matches
    the English text adds are listed with fields `title_en` / `summary_en`. `evidence` is
    what the incident stage reads: places and terms by their English names, event types,
    numbers.
    """
    from monitor.incidents import Report, default_reader

    reader = default_reader()
    for record in records:
        title = str(record.get("title") or "")
        summary = str(record.get("summary") or "")
        content = str(record.get("content") or "")[:CONTENT_CHARS]
        analysis = analyzer.analyze(title, summary, record.get("language"), content=content)
        matches = list(analysis.matches)
        translation = None
        if translator is not None:
            (translation,) = translator.translate_items([(title, summary, analysis.language)])
            if translation is not None:
                matches += analyzer.match_english(translation.title, translation.summary)
        evidence = reader.read(
            Report(
                key=str(record.get("id")),
                title=title,
                fetched_at=utcnow(),
                summary=summary,
                language=analysis.language or "und",
                title_en=translation.title if translation is not None else None,
            )
        )
        yield {
            "id": record.get("id"),
            "language": analysis.language,
            "language_confidence": analysis.language_confidence,
            # What the incident stage reads, in English: how reports of one event join.
            "evidence": {
                "places": [reader.english_name(p) for p in evidence.places],
                "terms": [reader.english_name(t) for t in evidence.terms],
                "events": list(evidence.events),
                "numbers": list(evidence.numbers),
            },
            "matches": [
                {"watchlist": m.watchlist, "term": m.term, "form": m.form, "field": m.field}
                for m in matches
            ],
            "translation": translation.as_json() if translation is not None else None,
        }


class Monitor:
    """The service object: `poll_once()` for one cycle, `run()` for the daemon."""

    def __init__(
        self,
        config: Config,
        *,
        parse_workers: int | None = None,
        make_fetcher: Callable[[PollingConfig], Fetcher] = Fetcher,
        ops: Operations | None = None,
    ) -> None:
        self._ops = ops
        self._database = config.database
        self.node = config.cluster.node or default_node_name()
        """This daemon's name among the nodes sharing the database."""
        self.restart_needed: tuple[str, ...] = ()
        """Settings changed by a reload that take effect only at the next start."""
        store = Store.open(config.database)
        # Incidents are decided on the store's thread, in the transaction that writes the
        # report (monitor.incident_desk says why).
        self._desk = IncidentDesk(incident_settings(config.incidents))
        store.desk = self._desk
        self._store = StoreThread(store, on_lost=self._store_lost)
        self._make_fetcher = make_fetcher
        self._runtime: Runtime = build_runtime(config, make_fetcher)
        """Replaced whole by `reload`; a poll takes it once, when it starts."""
        self._retiring: dict[Fetcher, asyncio.Task[None]] = {}
        self._analysis = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analyze")
        self._rng = random.Random()
        self._dispatcher = Dispatcher(
            config,
            self._store,
            rng=self._rng,
            observe=ops.metrics.observe_delivery if ops is not None else None,
            untranslated=lambda language: self._translation.untranslated_reason(language),
        )
        # Scans the installed models; none is loaded until an item needs it.
        self._translation = TranslationWorker(
            config,
            self._store,
            Translator.from_config(config),
            self._second_pass,
            self._dispatcher.wake,
            observe=self._translated,
            # Translation is a queue shared by the nodes: a worker with nothing queued pulls
            # untranslated items from the store (monitor.translate._worker).
            node=self.node,
            jobs_for=self._pulled_jobs,
        )
        self._articles = ArticleReader(
            config.polling,
            self._store,
            self._article_pass,
            self._dispatcher.wake,
            make_fetcher=make_fetcher,
        )
        self._parse_workers = parse_workers if parse_workers is not None else (os.cpu_count() or 1)
        self._parse_pool: Executor | None = None
        self._scheduler: Scheduler | None = None
        self._in_flight: set[asyncio.Task[Any]] = set()
        """The scheduled polls under way, drained on SIGTERM."""
        self._polls: set[asyncio.Task[Any]] = set()
        """Every poll under way, scheduled or `poll-once`'s: a retired fetcher waits for them."""
        self.stopping = asyncio.Event()
        self.store_lost: StoreFileLost | None = None
        """Set when the database file was deleted or replaced: `run` returns, to exit non-zero."""

    @property
    def config(self) -> Config:
        """The config in force: the current runtime's."""
        return self._runtime.config

    @property
    def runtime(self) -> Runtime:
        """The current config's runtime (`monitor.runtime`); a reload replaces it whole."""
        return self._runtime

    @property
    def analyzer(self) -> Analyzer:
        """The current config's analyzer, built on first use (`monitor.runtime.LazyAnalyzer`),
        so a `poll-once` that finds nothing new never pays for it."""
        return self._runtime.analyzer.get()

    @property
    def store_thread(self) -> StoreThread:
        return self._store

    @property
    def store(self) -> Store:
        """For reads from the thread that owns the monitor when nothing else runs."""
        return self._store.store

    async def __aenter__(self) -> Monitor:
        await self.sync_feeds()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._articles.aclose()
        await self._dispatcher.aclose()
        self._translation.close()
        retiring = dict(self._retiring)
        for closing in retiring.values():
            closing.cancel()
        await asyncio.gather(*retiring.values(), return_exceptions=True)
        for fetcher in [*retiring, self._runtime.fetcher]:
            await fetcher.aclose()
        self._analysis.shutdown(wait=True)
        if self._parse_pool is not None:
            self._parse_pool.shutdown(wait=True, cancel_futures=True)
        self._store.close()

    def _store_lost(self, error: StoreFileLost) -> None:
        """The database file is gone from under us: stop, so the service manager restarts us."""
        self.store_lost = error
        self.stopping.set()

    async def sync_feeds(self) -> None:
        """The configured feeds in the store: new ones get a first poll spread over
        min(interval, 30 s), so a start does not fetch them all at once; the others are no
        longer leased by any node."""
        config = self.config
        feeds = config.feeds
        await self._store.call(self.store.sync_feeds, feeds)
        now = utcnow()
        first = {
            feed.name: now
            + timedelta(
                seconds=min(config.feed_interval(feed).total_seconds(), 30.0) * self._rng.random()
            )
            for feed in feeds
        }
        await self._store.call(self.store.schedule_feeds, [feed.name for feed in feeds], first)

    def _next_poll(self, rt: Runtime, feed: FeedConfig, now: datetime) -> datetime:
        """The feed's next turn: its interval ± `jitter` of it."""
        interval = rt.config.feed_interval(feed).total_seconds()
        jitter = rt.polling.jitter
        if jitter:
            interval *= 1 + jitter * self._rng.uniform(-1.0, 1.0)
        return now + timedelta(seconds=interval)

    # One poll ----------------------------------------------------------------------------

    def _parse_executor(self, size: int) -> Executor:
        if size < _INLINE_PARSE_BYTES or self._parse_workers <= 1:
            return self._analysis
        if self._parse_pool is None:
            # The process pool's modules load with the first large document (issue 14).
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("forkserver")
            self._parse_pool = ProcessPoolExecutor(
                self._parse_workers,
                mp_context=context,
                initializer=_exit_with,
                initargs=(os.getpid(),),
            )
        return self._parse_pool

    async def poll_feed(self, feed: FeedConfig) -> PollReport:
        """One poll (unless another node polls the feed now); what it found is committed when
        it returns."""
        (report,) = await self.poll_once([feed.name])
        return report

    async def _poll_feed(self, rt: Runtime, feed: FeedConfig, state: FeedState) -> PollReport:
        """One poll of `feed`, leased to this node (`state`), under `rt`, the runtime it
        started with: its limits around `_pipeline`, and any failure recorded as the feed's."""
        started = time.perf_counter()
        # Tokens rather than `bound_contextvars`, which reads the whole context to restore it
        # (per poll, issue 14). The task is a poll until it ends: a fetcher a reload replaced is
        # closed only after it.
        bound = structlog.contextvars.bind_contextvars(feed=feed.name)
        task = asyncio.current_task()
        if task is not None:
            self._polls.add(task)
        try:
            try:
                # The host's turn first, a global slot only then: feeds queued behind a slow
                # host hold no slot that another host's feed could use. A slot is held from
                # fetch to store, so fetched bodies cannot pile up in memory faster than they
                # are parsed and stored.
                async with rt.fetcher.host_slot(state.fetch_url), rt.slots:
                    report = await self._pipeline(rt, feed, state, started)
            except FetchError as exc:  # the host is backed off: failed without a request
                report = await self._failed(
                    rt, feed, state, str(exc), None, exc.retry_after, started
                )
            except StoreFileLost:
                raise  # not this feed's failure, and nothing can record it: the daemon stops
            except Exception as exc:
                # A bug in one feed's poll must not stop the others; it shows as failing.
                log.exception("feed.crashed", error=repr(exc))
                report = await self._failed(
                    rt, feed, state, f"internal error: {exc!r}", None, None, started
                )
        finally:
            if task is not None:
                self._polls.discard(task)
            structlog.contextvars.reset_contextvars(**bound)
        return report

    async def _pipeline(
        self, rt: Runtime, feed: FeedConfig, state: FeedState, started: float
    ) -> PollReport:
        """The per-feed pipeline: fetch → parse → new items → analyze → store, then queue
        translations and articles. It reads settings from `rt` only, never `self.config`: a
        reload during the poll changes nothing in it."""
        try:
            fetched = await rt.fetcher.get(
                state.fetch_url, state.etag, state.last_modified, origin=feed.url
            )
        except FetchError as exc:
            return await self._failed(
                rt, feed, state, str(exc), exc.status, exc.retry_after, started
            )
        now = utcnow()
        next_poll = self._next_poll(rt, feed, now)
        if fetched.moved_to:
            log.warning("feed.moved", url=state.fetch_url, moved_to=fetched.moved_to)
        if fetched.not_modified:
            write = PollWrite(
                state.id,
                304,
                fetched.etag,
                fetched.last_modified,
                fetched.moved_to,
                None,
                next_poll,
            )
            # Committed, and logged at info, with the cycle's other 304s: one `feeds.unchanged`
            # line per batch (StoreThread.record_unchanged).
            self._store.record_unchanged(write, now, feed.name)
            seconds = _since(started)
            log.debug("feed.polled", status=304, new=0, seconds=seconds)
            return PollReport(feed.name, "not_modified", 304, seconds=seconds)
        try:
            parsed, analyzed = await self._parse(rt, fetched, feed, state.never_polled)
        except FetchError as exc:
            return await self._failed(rt, feed, state, str(exc), fetched.status, None, started)
        if parsed.warning:
            log.info("feed.parse_warning", warning=parsed.warning, items=len(parsed.items))
        items = list({item.guid: item for item in reversed(parsed.items)}.values())[::-1]
        known = await self._store.call(self.store.known_guids, state.id, [i.guid for i in items])
        fresh = [item for item in items if item.guid not in known]
        new_items = await self._analyze(
            rt, fresh, feed, state.never_polled, now, len(fetched.content), analyzed
        )
        held_back = sum(1 for new in new_items if new.analysis.matches and not new.alerts)
        write = PollWrite(
            state.id,
            fetched.status,
            fetched.etag,
            fetched.last_modified,
            fetched.moved_to,
            parsed.title,
            next_poll,
            tuple(new_items),
            held_back,
        )
        result = await self._store.call(self.store.record_poll, write, now)
        if result.deliveries:
            self._dispatcher.wake()
        self._translation.submit(
            [
                TranslationJob(
                    item_id,
                    new.item.story_key,
                    new.item.title,
                    new.item.summary,
                    new.analysis.language,
                    matched=bool(new.analysis.matches),
                    alertable=alertable(new.item, state.never_polled, now, rt.polling.backfill),
                )
                for item_id, new in result.stored
            ]
        )
        if self._ops is not None:
            self._ops.metrics.set_translation_queue(self._translation.queued)
        if feed.full_text:
            self._read_articles(rt, feed, result.stored, state.never_polled, now)
        log.info(
            "feed.polled",
            status=fetched.status,
            items=len(items),
            new=result.items,
            alerts=result.alerts,
            held_back=held_back,
            seconds=_since(started),
        )
        return PollReport(
            feed.name,
            "new",
            fetched.status,
            len(items),
            result.items,
            result.alerts,
            seconds=_since(started),
            held_back=held_back,
        )

    async def _parse(
        self, rt: Runtime, fetched: FetchResult, feed: FeedConfig, first_poll: bool
    ) -> tuple[ParsedFeed, dict[int, Analysis]]:
        """The document parsed where its size says (`_parse_executor`), and on a feed's first
        poll, when every item is new, its items analyzed in the same worker task (issue 14):
        analyses by `id(item)`."""
        executor = self._parse_executor(len(fetched.content))
        args = (fetched.content, fetched.content_type, fetched.url)
        if executor is self._analysis or not first_poll:
            return await self._in_executor(executor, parse_feed, *args), {}
        spec = rt.analyzer.worker_spec()
        parsed, analyses = await self._in_executor(
            executor, parse_and_analyze, spec.key, None, feed.language, *args
        )
        if analyses is None:  # that worker lacks these watchlists: send them
            analyses = await self._analyze_in_worker(rt, executor, feed, parsed.items, spec.payload)
        return parsed, {id(item): a for item, a in zip(parsed.items, analyses, strict=True)}

    async def _in_executor(self, executor: Executor, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on `executor`; a parse pool that lost a worker is replaced.

        A worker killed under the pool (the OOM killer, a crash in a C extension) breaks the
        whole `ProcessPoolExecutor`: without a new one, every later large document would fail.
        The poll that found it fails; the feed's next turn gets the new pool.
        """
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        except BrokenExecutor:  # BrokenProcessPool, whose module loads with the pool (issue 14)
            if self._parse_pool is executor:
                self._parse_pool = None
                executor.shutdown(wait=False, cancel_futures=True)
                log.error("parse.workers_lost", workers=self._parse_workers)
            raise

    async def _analyze_in_worker(
        self,
        rt: Runtime,
        executor: Executor,
        feed: FeedConfig,
        items: Sequence[Item],
        payload: bytes | None = None,
    ) -> tuple[Analysis, ...]:
        spec = rt.analyzer.worker_spec()
        texts = [(item.title, item.summary, item.content) for item in items]
        analyses = await self._in_executor(
            executor, analyze_in_worker, spec.key, payload, feed.language, texts
        )
        if analyses is None:  # that worker lacks these watchlists: send them
            analyses = await self._in_executor(
                executor, analyze_in_worker, spec.key, spec.payload, feed.language, texts
            )
        assert analyses is not None  # sent with the watchlists, a worker always analyzes
        return analyses

    async def _analyze(
        self,
        rt: Runtime,
        items: Sequence[Item],
        feed: FeedConfig,
        first_poll: bool,
        now: datetime,
        size: int,
        analyzed: dict[int, Analysis],
    ) -> list[NewItem]:
        """New items with their analyses and alert plans. Items of a document parsed in a
        worker are analyzed in one too, so both cores share the work; small documents' on
        the analysis thread, as they were parsed."""
        executor = self._parse_executor(size)
        todo = [item for item in items if id(item) not in analyzed]
        if todo and executor is not self._analysis:
            done = await self._analyze_in_worker(rt, executor, feed, todo)
            analyzed = {**analyzed, **{id(i): a for i, a in zip(todo, done, strict=True)}}
            todo = []
        if not todo:  # alert plans only: no need to leave the loop
            return self._analyze_items(rt, items, feed, first_poll, now, analyzed)
        return await asyncio.get_running_loop().run_in_executor(
            self._analysis, self._analyze_items, rt, items, feed, first_poll, now, analyzed
        )

    def _analyze_items(
        self,
        rt: Runtime,
        items: Sequence[Item],
        feed: FeedConfig,
        first_poll: bool,
        now: datetime,
        analyzed: dict[int, Analysis] | None = None,
    ) -> list[NewItem]:
        config = rt.config
        out = []
        for item in items:
            analysis = (analyzed or {}).get(id(item)) or rt.analyzer.get().analyze(
                item.title, item.summary, feed.language, content=item.content
            )
            plans: tuple[AlertPlan, ...] = ()
            if analysis.matches and alertable(item, first_poll, now, config.polling.backfill):
                plans = alert_plans(config, analysis.matches)
            out.append(NewItem(item, analysis, plans))
        return out

    async def _pulled_jobs(self, rows: Sequence[UntranslatedItem]) -> list[TranslationJob]:
        """Jobs for untranslated items the translation worker pulled from the store (stored
        by any node, before a model was installed, or left when a daemon stopped): matched
        again off the loop, for `translation.mode: matched`."""
        return await asyncio.get_running_loop().run_in_executor(
            self._analysis, self._requeue_jobs, rows
        )

    def _requeue_jobs(self, rows: Sequence[UntranslatedItem]) -> list[TranslationJob]:
        analyzer = self._runtime.analyzer.get()
        return [
            TranslationJob(
                row.item_id,
                row.story_key,
                row.title,
                row.summary,
                row.language,
                matched=bool(analyzer.match(row.title, row.summary)),
                alertable=row.alertable,
            )
            for row in rows
        ]

    def _translated(self, items: int, seconds: float) -> None:
        """After each translation round (on the loop): the metrics of /metrics."""
        if self._ops is not None:
            self._ops.metrics.observe_translation(items, seconds)
            self._ops.metrics.set_translation_queue(self._translation.queued)

    def _second_pass(self, job: TranslationJob, translation: Translation) -> tuple[AlertPlan, ...]:
        """On the translation thread: the alerts the English text adds (DESIGN §4).

        A story that already alerted for a watchlist is skipped by the store's unique key, so
        this may return plans for watchlists the original text matched too.
        """
        rt = self._runtime  # once: its analyzer and its watchlists agree
        matches = rt.analyzer.get().match_english(translation.title, translation.summary)
        return alert_plans(rt.config, matches)

    def _read_articles(
        self,
        rt: Runtime,
        feed: FeedConfig,
        stored: Sequence[tuple[int, NewItem]],
        first_poll: bool,
        now: datetime,
    ) -> None:
        """Queue the articles of a `full_text` feed's new items, after the poll stored them and
        their alerts. Items that may not alert (backfill) are not read: nothing could come of it.
        """
        backfill = rt.polling.backfill
        self._articles.submit(
            [
                ArticleJob(
                    item_id,
                    new.item.story_key,
                    new.item.url,
                    feed.url,
                    new.item.title,
                    new.item.summary,
                )
                for item_id, new in stored
                if new.item.url and alertable(new.item, first_poll, now, backfill)
            ]
        )

    def _article_pass(self, job: ArticleJob, text: str) -> tuple[AlertPlan, ...]:
        """On the article thread: the alerts an article's text adds (field `content`).

        The text is matched with the item's title and summary, so a watchlist's `none` term in
        any of them excludes the item; only watchlists the text itself matched are planned.
        """
        rt = self._runtime  # once: its analyzer and its watchlists agree
        matches = rt.analyzer.get().match(job.title, job.summary, text)
        found = {m.watchlist for m in matches if m.field == "content"}
        return alert_plans(rt.config, [m for m in matches if m.watchlist in found])

    async def _failed(
        self,
        rt: Runtime,
        feed: FeedConfig,
        state: FeedState,
        error: str,
        status: int | None,
        retry_after: float | None,
        started: float,
    ) -> PollReport:
        errors = state.error_count + 1
        delay = backoff_delay(
            rt.config.feed_interval(feed),
            errors,
            rt.polling.max_backoff,
            retry_after,
            self._rng,
        )
        next_poll = utcnow() + delay
        errors = await self._store.call(
            self.store.record_failure, state.id, error, status, next_poll
        )
        log.warning(
            "feed.failed",
            error=error,
            status=status,
            errors=errors,
            retry_in=round(delay.total_seconds()),
        )
        return PollReport(feed.name, "failed", status, error=error, seconds=_since(started))

    async def poll_once(self, names: Sequence[str] | None = None) -> list[PollReport]:
        """One cycle over the feeds (all, or those named), concurrently, whatever their
        schedule; a feed another live node polls now is skipped (its lease says so)."""
        rt = self._runtime  # the whole cycle runs under it, whatever a reload does meanwhile
        feeds = [f for f in rt.config.feeds if names is None or f.name in names]
        now = utcnow()
        # A name of its own, even beside a daemon of this config with a fixed `cluster.node`.
        node = default_node_name()
        leased, held = await self._store.call(
            self.store.lease_named,
            node,
            [feed.name for feed in feeds],
            now,
            now + rt.config.cluster.lease,
        )
        try:
            reports = list(
                await asyncio.gather(
                    *(
                        self._poll_feed(rt, feed, leased[feed.name])
                        if feed.name in leased
                        else self._skipped(feed, held.get(feed.name))
                        for feed in feeds
                    )
                )
            )
            await self._store.flush()
        except BaseException:
            # Each poll's write ends its lease: these are what a cancelled poll-once leaves.
            with contextlib.suppress(Exception):
                await self._store.call(
                    self.store.release_leases, node, [s.id for s in leased.values()]
                )
            raise
        return reports

    async def _skipped(self, feed: FeedConfig, holder: tuple[str, str] | None) -> PollReport:
        node, until = holder or ("?", "?")
        why = f"polled by node {node} now (its lease ends {shown(until) if holder else until})"
        log.info("feed.skipped", feed=feed.name, node=node, lease_until=until)
        return PollReport(feed.name, "skipped", error=why)

    async def read_queued_articles(self) -> None:
        """Read the articles the polls queued, storing any alerts they add (`poll-once`)."""
        await self._articles.flush()

    async def translate_queued(self) -> None:
        """Translate what the polls queued, storing it and any alerts it adds (`poll-once`)."""
        await self._translation.flush()

    async def deliver_due(self, timeout: float = _DELIVER_ONCE_TIMEOUT) -> DispatchReport:
        """Send every delivery due now, once each (`poll-once`); failures stay pending."""
        return await self._dispatcher.drain(timeout)

    # The daemon --------------------------------------------------------------------------

    async def _scheduled_poll(self, state: FeedState) -> None:
        rt = self._runtime  # taken once: the poll runs under it to its end
        feed = rt.feeds.get(state.name)
        if feed is None or self.stopping.is_set():
            # Leased just before a reload removed it, or while stopping: another node (or the
            # next start) decides.
            with contextlib.suppress(Exception):
                await self._store.call(self.store.release_leases, self.node, [state.id])
            return
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            report = await self._poll_feed(rt, feed, state)
        except StoreFileLost:
            return  # logged once by the store thread, which stops the daemon
        except asyncio.CancelledError:
            # Only the shutdown drain cancels a poll, and it logs that; its lease is given
            # back when the daemon leaves.
            return
        finally:
            if task is not None:
                self._in_flight.discard(task)
        if self._ops is not None:
            self._ops.polled(report)

    async def reload(self, config: Config) -> None:
        """Swap in a new, already validated config; in-flight polls finish under the old one.

        The polling side is one `Runtime`, built whole from `config` and swapped in with one
        assignment: a poll started after it reads only new settings. The long-lived parts
        with queues of their own (deliveries, translations, articles, the incident desk) are
        reconfigured from the same config right after."""
        analyzer = LazyAnalyzer(config, self._runtime.analyzer)
        if self._runtime.analyzer.built is not None:
            # A daemon's analyzer is in use (run() built it): build the new one now, off the
            # loop, rather than in the first poll or translation that needs it.
            await asyncio.get_running_loop().run_in_executor(self._analysis, analyzer.get)
        # No await from here to the swap: a reload under way meanwhile cannot interleave.
        old = self._runtime
        rt = build_runtime(config, self._make_fetcher, old, analyzer=analyzer)
        self._runtime = rt
        if rt.fetcher is not old.fetcher:
            self._retire(old.fetcher)
        await self._store.call(self._desk.reconfigure, incident_settings(config.incidents))
        self._dispatcher.reconfigure(config)
        self._translation.reconfigure(config)
        self._articles.reconfigure(config.polling)
        await self.sync_feeds()
        if self._scheduler is not None:
            self._scheduler.lease = config.cluster.lease
            self._scheduler.wake()
        # The store stays open on the file it started with, the node keeps its name; the
        # rest applies now.
        self.restart_needed = tuple(
            key
            for key, changed in (
                ("database", config.database != self._database),
                ("cluster.node", (config.cluster.node or self.node) != self.node),
            )
            if changed
        )
        if self.restart_needed:
            log.warning(
                "config.restart_needed",
                keys=list(self.restart_needed),
                database=str(self._database),
            )
        log.info("config.reloaded", feeds=len(config.feeds), watchlists=len(config.watchlists))
        _log_warnings(config)

    def _retire(self, fetcher: Fetcher) -> None:
        """Close a replaced fetcher once the polls that may still use it have finished."""
        polls = set(self._polls)

        async def close() -> None:
            if polls:
                await asyncio.wait(polls)
            del self._retiring[fetcher]
            await fetcher.aclose()

        self._retiring[fetcher] = asyncio.get_running_loop().create_task(close())

    async def run(self) -> None:
        """Poll every feed on its schedule until `stopping` is set, then drain and return."""
        # The daemon will need the analyzer: build it now, off the loop, not in a first poll.
        await asyncio.get_running_loop().run_in_executor(self._analysis, lambda: self.analyzer)
        # The open incidents, restored now rather than in the first poll that alerts.
        await self._store.call(self.store.restore_incidents, utcnow())
        self._scheduler = scheduler = Scheduler(
            self._store,
            self.node,
            self.config.cluster.lease,
            self._scheduled_poll,
            # Room for polls waiting on a host's turn or a slot, bounded so that other
            # nodes get their share of a burst of due feeds.
            lambda: 4 * self._runtime.polling.concurrency,
        )
        await scheduler.join()
        scheduling = asyncio.create_task(scheduler.run(self.stopping))
        log.info(
            "monitor.started",
            node=self.node,
            feeds=len(self.config.feeds),
            watchlists=len(self.config.watchlists),
            sinks=len(self.config.sinks),
            database=str(self.config.database),
        )
        _log_warnings(self.config)
        # The dispatcher watches `stopping` itself: its in-flight sends wind down while the
        # polls drain, both inside systemd's stop timeout.
        delivering = asyncio.create_task(self._dispatcher.run(self.stopping))
        translating = asyncio.create_task(self._translation.run(self.stopping))
        if self._ops is not None:
            self._ops.started()
        try:
            await self.stopping.wait()
        finally:
            # No new leases, then drain the polls under way, then give back the leases left.
            stop_by = time.monotonic() + _STOP_BUDGET
            # A lease query waiting on a locked database gets a moment, not the whole budget.
            _, lingering = await asyncio.wait([scheduling], timeout=1.0)
            for task in lingering:
                task.cancel()
            await asyncio.gather(scheduling, return_exceptions=True)
            await self._drain()
            # The dispatcher's sends had their grace beside the polls'; a translation round
            # that is still running is cut (its items are queued again at the next start).
            work = {delivering: "deliveries", translating: "translation"}
            _, late = await asyncio.wait(work, timeout=max(0.0, stop_by - time.monotonic()))
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
                log.warning("monitor.cut_short", work=sorted(work[task] for task in late))
            await scheduler.leave()
            self._scheduler = None
            log.info("monitor.stopped")

    async def _drain(self) -> None:
        pending = set(self._in_flight)
        if not pending:
            return
        log.info("monitor.draining", in_flight=len(pending))
        _, still = await asyncio.wait(pending, timeout=_SHUTDOWN_GRACE)
        for task in still:
            task.cancel()
        if still:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*still, return_exceptions=True)
            log.warning("monitor.cancelled", polls=len(still))


def _log_warnings(config: Config) -> None:
    for warning in config.warnings:
        log.warning("config.warning", warning=warning)


def _exit_with(daemon_pid: int) -> None:
    """In each parse worker: exit once the daemon is gone, even if it was SIGKILLed.

    A pool worker blocks on a queue whose write end it holds itself, so it never sees its
    parent die; it, and the forkserver kept alive for it, would linger forever (systemd
    kills the whole cgroup; a `kill -9` by hand does not).
    """

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(daemon_pid, 0)
            except ProcessLookupError:
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-daemon", daemon=True).start()


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
