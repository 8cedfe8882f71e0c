"""One thread that owns the store: SQLite has one writer, and the event loop never waits on it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

import structlog

from monitor.errors import StoreError, StoreFileLost
from monitor.store import Store

__all__ = ["StoreThread"]

log = structlog.get_logger("monitor.store")

P = ParamSpec("P")
T = TypeVar("T")


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
        self.lost: StoreFileLost | None = None
        """Set once the database file was found deleted or replaced."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` on the store's thread, once the database file is known to be still there.

        Raises:
            StoreFileLost: the database file was deleted or replaced; every call raises it
                from then on.
            StoreError: SQLite failed, e.g. another process held the write lock past the busy
                timeout; it names the database file.
        """
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, partial(self._run, fn, *args, **kwargs)
            )
        except StoreFileLost as exc:
            self._lose(exc)
            raise
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.store.path}: {exc}") from exc

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
        log.critical(event, database=str(self.store.path), error=str(exc))
        if self._on_lost is not None:
            self._on_lost(exc)

    def close(self) -> None:
        self._executor.submit(self.store.close).result()
        self._executor.shutdown(wait=True)
