"""One runtime per config: the settings a poll reads and the parts built from them.

`build_runtime` makes a `Runtime` from a `Config`; the daemon holds one, and a reload builds
the next and swaps it in with one assignment. A poll takes the runtime once, when it starts,
and reads nothing else to its end: a poll started after a reload sees every new setting, one
under way finishes under the settings it started with, and no setting can be left behind by a
reload that forgot to copy it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from monitor.config import Config, FeedConfig, PollingConfig
from monitor.fetch import Fetcher

# The matcher and its gazetteer load with monitor.analyze: a `poll-once` that finds nothing
# new imports it only when it needs it.
if TYPE_CHECKING:
    from monitor.analyze import Analyzer, WorkerAnalyzer

__all__ = ["LazyAnalyzer", "Runtime", "build_runtime"]


class LazyAnalyzer:
    """A config's analyzer, built on first use (the compiled matcher: about 0.1 s and 4 MB),
    so a `poll-once` that finds nothing new never pays for it.

    Used from the analysis, translation and article threads, hence the lock. The language
    identifier (16 MB of profiles, built by the first `analyze()`) is taken over from the
    previous config's analyzer if that one had built it.
    """

    __slots__ = ("_built", "_config", "_lock", "_previous", "_spec")

    def __init__(self, config: Config, previous: LazyAnalyzer | None = None) -> None:
        if previous is not None and previous._built is None:
            # Never built: its own predecessor may have been. One step is enough, as each
            # holder did the same, so reloads that never analyze keep no chain of configs.
            previous = previous._previous
        self._config = config
        self._previous: LazyAnalyzer | None = previous
        self._built: Analyzer | None = None
        self._spec: WorkerAnalyzer | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> Analyzer | None:
        """The analyzer if it was built, without building it."""
        return self._built

    def get(self) -> Analyzer:
        with self._lock:
            if self._built is None:
                from monitor.analyze import Analyzer

                previous = self._previous.built if self._previous is not None else None
                identifier = previous.identifier if previous is not None else None
                self._built = Analyzer(self._config.watchlists, identifier)
                self._previous = None  # nothing more to take from it: let it go
            return self._built

    def worker_spec(self) -> WorkerAnalyzer:
        """What a parse worker needs to build this analyzer (monitor.analyze.worker_analyzer):
        once per config, so polls under an old config and a new one do not evict each other's."""
        with self._lock:
            if self._spec is None:
                from monitor.analyze import worker_analyzer

                self._spec = worker_analyzer(self._config.watchlists)
            return self._spec


@dataclass(frozen=True, slots=True, eq=False)
class Runtime:
    """What one config makes of the daemon's polling: replaced whole by a reload."""

    config: Config
    fetcher: Fetcher
    """Built from `config.polling`: user agent, timeout, size cap, per-host limit."""
    slots: asyncio.Semaphore
    """`config.polling.concurrency` polls at once, each holding one from fetch to store."""
    analyzer: LazyAnalyzer
    feeds: Mapping[str, FeedConfig] = field(default_factory=dict)
    """The config's feeds by name: a lookup per poll, not a scan (thousands of feeds)."""

    @property
    def polling(self) -> PollingConfig:
        return self.config.polling


def build_runtime(
    config: Config,
    make_fetcher: Callable[[PollingConfig], Fetcher],
    previous: Runtime | None = None,
    *,
    analyzer: LazyAnalyzer | None = None,
) -> Runtime:
    """The runtime of `config`. Parts whose settings did not change are kept from `previous`:
    the fetcher (its connections, its hosts' backoff) when `polling` is equal, the slots when
    `concurrency` is, since polls under way hold them and the limit is the daemon's, not one
    config's. The caller retires `previous.fetcher` when it is not the new one. `analyzer` is
    one made for `config` ahead (a reload builds it off the loop first)."""
    if previous is not None and previous.fetcher.polling == config.polling:
        fetcher = previous.fetcher
    else:
        fetcher = make_fetcher(config.polling)
    if previous is not None and previous.polling.concurrency == config.polling.concurrency:
        slots = previous.slots
    else:
        slots = asyncio.Semaphore(config.polling.concurrency)
    if analyzer is None:
        analyzer = LazyAnalyzer(config, previous.analyzer if previous is not None else None)
    return Runtime(
        config=config,
        fetcher=fetcher,
        slots=slots,
        analyzer=analyzer,
        feeds=MappingProxyType({feed.name: feed for feed in config.feeds}),
    )
