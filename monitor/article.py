"""The article stage: for `full_text` feeds, the page an item links to, read for its main text.

Polls never wait for it. Once a poll has stored its items (and committed their alerts), the
items of a `full_text` feed that have a link are submitted here; beyond `_QUEUE` articles
waiting, the rest are skipped and logged. Each article is fetched through a `Fetcher` of its
own, with the feeds' deadline, redirect rule and private-address rule (the link is treated as a
redirect from the feed's URL), at most `polling.per_host` pages per host and `_CONCURRENCY` in
all, and at most `_MAX_HTML_BYTES` of HTML. trafilatura extracts the main text on a thread of
its own, from pages of at most `_MAX_ELEMENTS` elements (its time grows faster than the page's
size). The text, or why there is none, is cached by canonical URL, so each article is fetched
once; it is matched with the item's title and summary (field `content`), and the alerts it adds
are stored with the cache entry in one transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog

from monitor.config import PollingConfig
from monitor.errors import FetchError
from monitor.fetch import Fetcher
from monitor.parse import CONTENT_CHARS, canonical_url
from monitor.store import AlertPlan, utcnow
from monitor.store.articles import CachedArticle
from monitor.store.thread import StoreThread

__all__ = ["ArticleJob", "ArticleReader", "article_polling", "extract_text"]

log = structlog.get_logger("monitor.article")

_CONCURRENCY = 4
"""Article pages fetched at once, over all hosts: reading articles never crowds out polls."""
_QUEUE = 200
"""Articles waiting or in flight; beyond this, new ones are skipped (and logged)."""
_MAX_HTML_BYTES = 2_000_000
"""An article page's HTML read at most (or `polling.max_bytes`, if smaller)."""
_MAX_ELEMENTS = 15_000
"""Elements a page may have for its text to be extracted. trafilatura's time grows faster than
linearly with them (about 1 s at 15,000, 3 s at 27,000, minutes at 160,000); news pages have a
few thousand."""
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_RETRY_FAILED_AFTER = timedelta(hours=1)
"""A page that failed (timed out, refused, not HTML) is read again when an item links it after
this long; a page's text, once read, is kept until retention prunes it."""


@dataclass(frozen=True, slots=True)
class ArticleJob:
    item_id: int
    story_key: str
    url: str
    """The item's link."""
    feed_url: str
    """The feed's configured URL: the link must pass the redirect rule from it."""
    title: str
    summary: str


def article_polling(polling: PollingConfig) -> PollingConfig:
    """The feeds' settings, with the article stage's own size cap and global limit."""
    return polling.model_copy(
        update={
            "max_bytes": min(polling.max_bytes, _MAX_HTML_BYTES),
            "concurrency": min(polling.concurrency, _CONCURRENCY),
        }
    )


def extract_text(html: bytes, url: str) -> tuple[str | None, str | None]:
    """The main text of an HTML page, cut at `CONTENT_CHARS`; or None and why there is none.

    Comments are left out (a reader's comment is not the story); tables are kept.
    """
    # Imported here: trafilatura and what it loads take 0.2 to 0.5 s, which every command
    # would pay at start, while only `full_text` feeds need it.
    import trafilatura

    tree = trafilatura.load_html(html)
    if tree is None:
        return None, "not an HTML page"
    elements = sum(1 for _ in tree.iter())
    if elements > _MAX_ELEMENTS:
        return None, f"page of {elements:,} elements is over the {_MAX_ELEMENTS:,}-element cap"
    text = trafilatura.extract(
        tree, url=url, fast=True, include_comments=False, include_tables=True
    )
    if not text:
        return None, "no main text found"
    return text[:CONTENT_CHARS], None


class ArticleReader:
    """Call `submit`, `flush`, `reconfigure` and `aclose` from the event loop's thread.

    Args:
        polling: the feeds' settings (`article_polling` derives the stage's own).
        store: where articles are cached and alerts stored.
        match: on the article thread, the alerts an article's text adds to its item.
        on_alerts: called on the loop after alerts were stored (wakes the dispatcher).
        make_fetcher: builds the stage's `Fetcher` from its settings.
    """

    def __init__(
        self,
        polling: PollingConfig,
        store: StoreThread,
        match: Callable[[ArticleJob, str], tuple[AlertPlan, ...]],
        on_alerts: Callable[[], None],
        *,
        make_fetcher: Callable[[PollingConfig], Fetcher] = Fetcher,
    ) -> None:
        self._store = store
        self._match = match
        self._on_alerts = on_alerts
        self._make_fetcher = make_fetcher
        self._settings = article_polling(polling)
        # Made on first use: its TLS context costs 0.15 s, which a monitor with no
        # `full_text` feed need not pay.
        self._fetcher: Fetcher | None = None
        self._closing: set[asyncio.Task[None]] = set()
        """Replaced fetchers, closed once the articles that may still use them are read."""
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="article")
        self._tasks: set[asyncio.Task[None]] = set()
        self._reading: dict[str, asyncio.Future[tuple[CachedArticle, bool]]] = {}
        """Articles being fetched, by canonical URL: a second item linking one waits for it."""

    @property
    def queued(self) -> int:
        return len(self._tasks)

    def submit(self, jobs: Sequence[ArticleJob]) -> int:
        """Start reading the jobs' articles; never waits. Returns how many were taken.

        Links other than http(s) (`urn:`, `mailto:`) are not articles, nor are links that
        cannot be read (a port out of range, a broken IPv6 host): they are passed over.
        """
        jobs = [job for job in jobs if _readable(job.url)]
        room = max(_QUEUE - len(self._tasks), 0)
        for job in jobs[:room]:
            task = asyncio.get_running_loop().create_task(self._read(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if len(jobs) > room:
            log.warning("article.queue_full", skipped=len(jobs) - room, queue=_QUEUE)
        return min(len(jobs), room)

    def reconfigure(self, polling: PollingConfig) -> None:
        """Take reloaded settings: articles submitted from now on use them."""
        settings = article_polling(polling)
        retired, reading = self._fetcher, set(self._tasks)
        if settings == self._settings or retired is None:
            self._settings = settings
            return
        self._settings, self._fetcher = settings, None

        async def close() -> None:
            if reading:
                await asyncio.wait(reading)
            await retired.aclose()

        closing = asyncio.get_running_loop().create_task(close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def flush(self) -> None:
        """Wait until every article submitted so far is read and stored (for `poll-once`)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def aclose(self) -> None:
        """Stop reading: articles in flight are cut, and logged."""
        unread = len(self._tasks)
        cut: list[asyncio.Future[Any]] = [*self._tasks, *self._reading.values()]
        for task in cut:
            task.cancel()
        await asyncio.gather(*cut, return_exceptions=True)
        if unread:
            log.info("article.stopped", unread=unread)
        await asyncio.gather(*self._closing, return_exceptions=True)
        if self._fetcher is not None:
            await self._fetcher.aclose()
        self._thread.shutdown(wait=True, cancel_futures=True)

    # Internals ---------------------------------------------------------------------------

    async def _read(self, job: ArticleJob) -> None:
        key = canonical_url(job.url)
        reading = self._reading.get(key)
        owner = reading is None
        if reading is None:
            reading = self._reading[key] = asyncio.ensure_future(self._load(key, job))
        try:
            article, fresh = await asyncio.shield(reading)
            plans: tuple[AlertPlan, ...] = ()
            if article.text:
                loop = asyncio.get_running_loop()
                plans = await loop.run_in_executor(self._thread, self._match, job, article.text)
            if not plans and not (owner and fresh):
                return
            store = self._store.store
            result = await self._store.call(
                store.record_article, article, job.item_id, job.story_key, plans
            )
            if result.alerts:
                log.info(
                    "article.alerts",
                    url=job.url,
                    alerts=result.alerts,
                    deliveries=result.deliveries,
                )
                self._on_alerts()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug must not stop the stage: this article stays unread.
            log.exception("article.crashed", url=job.url, error=repr(exc))
        finally:
            # Only once the article is cached: an item linking it meanwhile waits, not fetches.
            if owner:
                self._reading.pop(key, None)

    async def _load(self, key: str, job: ArticleJob) -> tuple[CachedArticle, bool]:
        """The article from the cache, else fetched and its text extracted (not yet stored);
        and whether it was fetched."""
        cached = await self._store.call(
            self._store.store.cached_article, key, utcnow() - _RETRY_FAILED_AFTER
        )
        if cached is not None:
            return cached, False
        started = time.perf_counter()
        try:
            if self._fetcher is None:
                self._fetcher = self._make_fetcher(self._settings)
            fetched = await self._fetcher.fetch(job.url, origin=job.feed_url)
        except FetchError as exc:
            log.info("article.failed", url=job.url, error=str(exc), status=exc.status)
            return CachedArticle(key, None, str(exc)), True
        media_type = (fetched.content_type or "text/html").split(";", 1)[0].strip().lower()
        if media_type not in _HTML_TYPES:
            log.info("article.failed", url=job.url, error="not HTML", content_type=media_type)
            return CachedArticle(key, None, f"not an HTML page ({media_type})"), True
        loop = asyncio.get_running_loop()
        text, error = await loop.run_in_executor(
            self._thread, extract_text, fetched.content, fetched.url
        )
        log.info(
            "article.read",
            url=job.url,
            bytes=len(fetched.content),
            chars=len(text or ""),
            error=error,
            seconds=round(time.perf_counter() - started, 3),
        )
        return CachedArticle(key, text, error), True


def _readable(url: str) -> bool:
    try:
        return urlsplit(url).scheme in ("http", "https") and bool(canonical_url(url))
    except ValueError:
        return False
