"""One thread that owns the store: SQLite has one writer, and the event loop never waits on it."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime
from functools import partial
from typing import ParamSpec, TypeVar

import structlog

from monitor.errors import StoreError, StoreFileLost
from monitor.store import PollWrite, Store

__all__ = ["StoreThread"]

log = structlog.get_logger("monitor.store")

P = ParamSpec("P")
T = TypeVar("T")

_BATCH_WINDOW = 0.25
"""Seconds the 304s of a cycle gather before they commit in one transaction: a transaction per
poll cost more than the poll (issue 14); a crash loses at most this much of their bookkeeping."""
_BATCH_MAX = 1000
"""Queued 304s that go to the store at once, without waiting for the window."""


class StoreThread:
    """Runs every store call on one thread; `await thread.call(thread.store.method, ...)`.

    Args:
        store: the open store; the thread owns it from now on.
        on_lost: called once, on the event loop, when the database file turns out to have been
            deleted or replaced (the daemon stops on it).
    """

    def __init__(
        self, store: Store, on_lost: Callable[[StoreFileLost], None] | None = None
    ) -> None:
        self.store = store
        self._on_lost = on_lost
        self._loop: asyncio.AbstractEventLoop | None = None
        self.lost: StoreFileLost | None = None
        """Set once the database file was found deleted or replaced."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._unchanged: list[tuple[PollWrite, datetime]] = []
        self._unchanged_feeds: list[str] = []
        self._flush_at: asyncio.TimerHandle | None = None

    def record_unchanged(self, write: PollWrite, now: datetime, feed: str) -> None:
        """Queue a poll of `feed` that found nothing new (304); it commits with the others
        queued within `_BATCH_WINDOW` (`Store.record_unchanged` says what a crash before then
        loses), and is logged with them: one `feeds.unchanged` line names the batch's feeds.

        Every `call` runs after what was queued before it, so the writes to one feed keep the
        order in which they were made; `flush` waits for the commit.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._write_unchanged()  # queued on a loop that has ended: its timer never fires
            self._loop = loop
        self._unchanged.append((write, now))
        self._unchanged_feeds.append(feed)
        if len(self._unchanged) >= _BATCH_MAX:
            self._write_unchanged()
        elif self._flush_at is None:
            self._flush_at = loop.call_later(_BATCH_WINDOW, self._write_unchanged)

    async def flush(self) -> None:
        """Return once everything queued so far is committed."""
        await self.call(_nothing)

    def _write_unchanged(self) -> Future[None] | None:
        """Hand the queued 304s to the store's thread, ahead of any later call."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        if not self._unchanged:
            return None
        polls, self._unchanged = self._unchanged, []
        feeds, self._unchanged_feeds = self._unchanged_feeds, []
        # One line per batch, not per feed: a line per 304 was a tenth of the daemon's CPU per
        # poll (issue 14). In an empty context: the caller's, or the timer's, is a poll's, and
        # its `feed` would tag the line.
        contextvars.Context().run(
            log.info, "feeds.unchanged", status=304, count=len(feeds), feeds=feeds
        )
        future = self._executor.submit(self._run, self.store.record_unchanged, polls)
        future.add_done_callback(partial(self._unchanged_written, len(polls)))
        return future

    def _unchanged_written(self, feeds: int, future: Future[None]) -> None:
        # On the store's thread. Nobody awaits these writes: failures are logged here, and
        # the feeds are polled again at their next turn anyway.
        exc = future.exception()
        if exc is None:
            return
        if isinstance(exc, StoreFileLost):
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._lose, exc)
            return
        log.error("store.write_failed", database=self.store.location, feeds=feeds, error=str(exc))

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` on the store's thread, once the database file is known to be still there.

        Raises:
            StoreFileLost: the database file was deleted or replaced; every call raises it
                from then on.
            StoreError: SQLite failed, e.g. another process held the write lock past the busy
                timeout; it names the database file.
        """
        loop = self._loop = asyncio.get_running_loop()
        self._write_unchanged()
        try:
            return await loop.run_in_executor(
                self._executor, partial(self._run, fn, *args, **kwargs)
            )
        except StoreFileLost as exc:
            self._lose(exc)
            raise
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.store.location}: {exc}") from exc

    def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        # A stat per call (microseconds): reads of a deleted file are stale, and the daemon
        # notices within one status refresh even when no feed is due.
        self.store.check_file()
        return fn(*args, **kwargs)

    def _lose(self, exc: StoreFileLost) -> None:
        if self.lost is not None:
            return
        self.lost = exc
        event = "store.deleted" if exc.how == "deleted" else "store.replaced"
        log.critical(event, database=self.store.location, error=str(exc))
        if self._on_lost is not None:
            self._on_lost(exc)

    def close(self) -> None:
        written = self._write_unchanged()
        if written is not None:
            wait([written])
        self._executor.submit(self.store.close).result()
        self._executor.shutdown(wait=True)


def _nothing() -> None:
    return None
