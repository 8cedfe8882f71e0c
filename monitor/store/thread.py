"""One thread that owns the store: SQLite has one writer, and the event loop never waits on it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

from monitor.errors import StoreError
from monitor.store import Store

__all__ = ["StoreThread"]

P = ParamSpec("P")
T = TypeVar("T")


class StoreThread:
    """Runs every store call on one thread; `await thread.call(thread.store.method, ...)`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` on the store's thread.

        Raises:
            StoreError: SQLite failed, e.g. another process held the write lock past the busy
                timeout; it names the database file.
        """
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, partial(fn, *args, **kwargs))
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.store.path}: {exc}") from exc

    def close(self) -> None:
        self._executor.submit(self.store.close).result()
        self._executor.shutdown(wait=True)
