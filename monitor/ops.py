"""Running as a service: signals, reload, sd_notify and the watchdog, health, metrics, retention.

One `Operations` object sits beside the `Monitor` in `news-monitor run`:

    ops = Operations(Notifier.from_env())
    async with Monitor(config, ops=ops) as monitor, ops.serve(monitor):
        await monitor.run()

`serve()` installs the signal handlers and starts the background tasks (watchdog heartbeat,
config watcher, status refresh, retention, the HTTP listener); the monitor calls `started()`
once its scheduler runs and `polled()` after each scheduled poll. Everything here runs on the
event loop; database work goes through the monitor's store thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
import traceback
from collections.abc import AsyncIterator, Coroutine
from dataclasses import asdict
from datetime import timedelta
from typing import Any, Protocol

import structlog

from monitor.config import Config, HttpConfig, load_config
from monitor.errors import ConfigError, MonitorError
from monitor.health import HealthReport, HealthServer, degradations
from monitor.metrics import Metrics
from monitor.notify import Notifier
from monitor.redact import Redactor
from monitor.store import iso, shown, utcnow
from monitor.store.housekeeping import StoreSummary
from monitor.store.thread import StoreThread
from monitor.watch import ConfigWatcher, config_files

__all__ = ["Daemon", "Operations", "PollResult"]

log = structlog.get_logger("monitor.ops")

_HEARTBEAT = 5.0
"""Seconds between event-loop heartbeats when systemd set no watchdog."""
_STATUS_EVERY = 15.0
"""Seconds between reads of the database for STATUS= and the /metrics gauges."""
_PRUNE_BATCH = 1000
_STOP_DEADLINE = 7.5
"""Seconds from SIGTERM after which the process ends whatever is still stuck: systemd's
default stop timeout is 10 s, and a stop must not end in its SIGKILL."""


class Daemon(Protocol):
    """What operations need from the monitor."""

    @property
    def config(self) -> Config: ...

    @property
    def stopping(self) -> asyncio.Event: ...

    @property
    def store_thread(self) -> StoreThread: ...

    @property
    def restart_needed(self) -> tuple[str, ...]:
        """Config keys a reload changed that take effect only at the next start."""
        ...

    async def reload(self, config: Config) -> None: ...


class PollResult(Protocol):
    """The parts of a poll report operations use (`monitor.service.PollReport`)."""

    @property
    def feed(self) -> str: ...

    @property
    def outcome(self) -> str: ...

    @property
    def http_status(self) -> int | None: ...

    @property
    def new_items(self) -> int: ...

    @property
    def seconds(self) -> float: ...


def _stop_now() -> None:
    """The stop deadline passed: end as the second SIGTERM would (the handler is SIG_DFL)."""
    log.error("monitor.stop_deadline", seconds=_STOP_DEADLINE)
    os.kill(os.getpid(), signal.SIGTERM)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class Operations:
    """Service-manager integration, health, metrics and housekeeping for one daemon.

    Args:
        notifier: where READY=1, STATUS= and the watchdog go (`Notifier.from_env()`).
        watch_interval: seconds between checks of the config files for edits.
        retention_every: how often old items are pruned (also once at start).
    """

    def __init__(
        self,
        notifier: Notifier | None = None,
        *,
        watch_interval: float = 1.0,
        retention_every: timedelta = timedelta(days=1),
    ) -> None:
        self.notifier = notifier or Notifier(None)
        self.metrics = Metrics(lambda: self._summary)
        self._watch_interval = watch_interval
        self._retention_every = retention_every
        self._daemon: Daemon | None = None
        self._summary: StoreSummary | None = None
        self._failing: set[str] = set()
        self._config_error: tuple[str, ...] = ()
        self._loop_lag = 0.0
        self._ready = False
        self._stopping = False
        self._last_status = ""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reload_task: asyncio.Task[None] | None = None
        self._reload_again = False
        self._watcher: ConfigWatcher | None = None
        self._http: HealthServer | None = None
        self._http_config: HttpConfig | None = None

    # Life cycle ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def serve(self, daemon: Daemon) -> AsyncIterator[Operations]:
        await self.start(daemon)
        try:
            yield self
        finally:
            await self.aclose()

    @property
    def daemon(self) -> Daemon:
        if self._daemon is None:
            raise RuntimeError("Operations.start(daemon) has not been called")
        return self._daemon

    async def start(self, daemon: Daemon) -> None:
        """Signal handlers, the HTTP listener and the background tasks; READY=1 comes later.

        Raises:
            MonitorError: the configured HTTP listener cannot listen.
        """
        self._daemon = daemon
        await self.refresh()
        self._http = await self._listen(daemon.config.http)
        self._http_config = daemon.config.http
        files = await asyncio.to_thread(config_files, daemon.config.source)
        self._watcher = ConfigWatcher(files, self.request_reload, self._watch_interval)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop, signum)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        self._spawn(self._heartbeat())
        self._spawn(self._watcher.run(daemon.stopping))
        self._spawn(self._refresh_status())
        self._spawn(self._housekeeping())

    def started(self) -> None:
        """The monitor's scheduler runs: tell systemd we are ready."""
        self._ready = True
        self._last_status = self.status_line()
        self.notifier.ready(self._last_status)
        log.info("service.ready", status=self._last_status, watchdog=self._watchdog_period())

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """First SIGTERM/SIGINT: stop taking work and drain. The second one kills at once."""
        if self._stopping:
            return
        self._stopping = True
        log.info("monitor.stopping", signal=signal.Signals(signum).name)
        self.notifier.stopping("stopping: finishing in-flight polls")
        loop = asyncio.get_running_loop()
        for other in (signal.SIGTERM, signal.SIGINT):
            # The kernel's default action, not a handler on the loop: a second signal ends the
            # process even if the loop is stuck in the shutdown. SQLite's WAL keeps whatever
            # was committed and drops the rest, so nothing is left half-written.
            loop.remove_signal_handler(other)
            signal.signal(other, signal.SIG_DFL)
        self.daemon.stopping.set()
        # A thread, not the loop: what might overrun is a call that blocks the loop.
        deadline = threading.Timer(_STOP_DEADLINE, _stop_now)
        deadline.daemon = True
        deadline.start()

    async def aclose(self) -> None:
        if not self._stopping:
            self._stopping = True
            self.notifier.stopping("stopping")
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        tasks = [*self._tasks, *([self._reload_task] if self._reload_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        self.notifier.close()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # What the monitor reports -------------------------------------------------------------

    def polled(self, report: PollResult) -> None:
        self.metrics.observe_poll(
            report.outcome, report.http_status, report.new_items, report.seconds
        )
        before = len(self._failing)
        if report.outcome == "failed":
            self._failing.add(report.feed)
        else:
            self._failing.discard(report.feed)
        if len(self._failing) != before:
            self._send_status()

    # Reload -------------------------------------------------------------------------------

    def request_reload(self) -> None:
        """SIGHUP or an edited config file: reload now, or once more after the running one."""
        if self._stopping:
            return
        if self._reload_task is not None and not self._reload_task.done():
            self._reload_again = True
            return
        self._reload_task = asyncio.get_running_loop().create_task(self._reloads())

    async def _reloads(self) -> None:
        while True:
            self._reload_again = False
            await self.reload()
            if not self._reload_again or self._stopping:
                return

    async def reload(self) -> bool:
        """Read the config file again; swap it in if valid, else keep the old one and say why.

        Returns whether the new config is running.
        """
        daemon = self.daemon
        path = daemon.config.source
        if self._ready:
            self.notifier.reloading("reloading the config")
        error: list[str] = []
        try:
            config = await asyncio.to_thread(load_config, path)
        except ConfigError as exc:
            log.error("config.invalid", file=str(path), problems=exc.problems)
            error = exc.problems
        else:
            try:
                await daemon.reload(config)
            except Exception as exc:
                # The old config keeps running whatever went wrong; the error shows as for an
                # invalid file, with no secret of either config in it (/healthz is open).
                redact = Redactor.for_sinks([*daemon.config.sinks, *config.sinks])
                log.error(
                    "config.reload_failed",
                    file=str(path),
                    error=redact(repr(exc)),
                    traceback=redact("".join(traceback.format_exception(exc))),
                )
                error = [f"{path.name}: reload failed: {redact(str(exc))}"]
            else:
                await self._relisten(config.http)
        self._config_error = tuple(error)
        self.metrics.observe_reload(not error)
        if self._watcher is not None:
            # Catalogs may have been added or dropped; read from the file on disk even when it
            # is invalid, so that fixing a broken catalog is noticed too.
            self._watcher.set_paths(await asyncio.to_thread(config_files, path))
        await self.refresh()
        if self._ready:
            self._last_status = self.status_line()
            self.notifier.ready(self._last_status)
        return not error

    async def _listen(self, http: HttpConfig | None) -> HealthServer | None:
        if http is None:
            return None
        server = HealthServer(http.listen, self.health, self.metrics, refresh=self.refresh)
        try:
            await server.start()
        except OSError as exc:
            raise MonitorError(f"http.listen {http.listen}: cannot listen: {exc}") from exc
        return server

    async def _relisten(self, http: HttpConfig | None) -> None:
        """A changed `http:` takes effect on reload; the old listener stays if the new fails."""
        if http == self._http_config:
            return
        try:
            server = await self._listen(http)
        except MonitorError as exc:
            log.error("http.listen_failed", error=str(exc))
            return
        if self._http is not None:
            await self._http.aclose()
        self._http, self._http_config = server, http

    # Status, health, metrics --------------------------------------------------------------

    def status_line(self) -> str:
        """STATUS=: `polling 84 feeds, 2 failing, 0 pending deliveries`, plus any config error."""
        config = self.daemon.config
        pending = self._summary.deliveries_with("pending") if self._summary else 0
        line = (
            f"polling {_plural(len(config.feeds), 'feed')}, {len(self._failing)} failing,"
            f" {pending} pending deliveries"
        )
        if self._config_error:
            line += f"; config invalid, running the previous one: {self._config_error[0]}"
        if self.daemon.restart_needed:
            line += f"; restart to apply: {', '.join(self.daemon.restart_needed)}"
        return line

    def _send_status(self) -> None:
        line = self.status_line()
        if self._ready and not self._stopping and line != self._last_status:
            self._last_status = line
            self.notifier.status(line)

    async def refresh(self) -> None:
        """Read the database summary behind STATUS=, /healthz and the /metrics gauges."""
        daemon = self.daemon
        names = [feed.name for feed in daemon.config.feeds]
        store = daemon.store_thread
        try:
            self._summary = await store.call(store.store.summary, names)
        except Exception as exc:
            log.warning("store.summary_failed", error=repr(exc))
            return
        self._failing = {feed.name for feed in self._summary.failing_feeds}

    async def _refresh_status(self) -> None:
        while True:
            await asyncio.sleep(_STATUS_EVERY)
            await self.refresh()
            self._send_status()

    async def health(self) -> HealthReport:
        """The /healthz report: database writable, not stopping; and whatever is failing."""
        store = self.daemon.store_thread
        try:
            writable = await store.call(store.store.writable)
        except Exception as exc:
            log.warning("store.probe_failed", error=repr(exc))
            writable = False
        await self.refresh()
        summary = self._summary
        details: dict[str, Any] = {
            # Which of the daemons sharing the database answers (`cluster.node`).
            "node": getattr(self.daemon, "node", None),
            "status_line": self.status_line(),
            "config": {
                "file": str(self.daemon.config.source),
                "error": list(self._config_error) or None,
            },
            "restart_needed": list(self.daemon.restart_needed),
            "event_loop_lag_seconds": round(self._loop_lag, 3),
        }
        if summary is not None:
            details["feeds"] = {
                "total": summary.feeds_total,
                "ok": summary.feeds_ok,
                "failing": summary.feeds_failing,
                "never_polled": summary.feeds_never_polled,
                "failing_feeds": [asdict(feed) for feed in summary.failing_feeds],
            }
            details["deliveries"] = {
                "pending": summary.deliveries_with("pending"),
                "dead": summary.deliveries_with("dead"),
                "oldest_pending_seconds": summary.oldest_pending_seconds,
                "dead_by_sink": {d.sink: d.count for d in summary.deliveries if d.status == "dead"},
            }
            details["last_poll_at"] = shown(summary.last_poll_at)
        return HealthReport(
            writable,
            self._stopping,
            details,
            degraded=degradations(self.daemon.config, summary, self._config_error, utcnow()),
            database_error=str(store.lost) if store.lost is not None else None,
        )

    # Background tasks ---------------------------------------------------------------------

    def _watchdog_period(self) -> float | None:
        interval = self.notifier.watchdog_interval()
        return None if interval is None else interval / 2

    async def _heartbeat(self) -> None:
        """WATCHDOG=1 from the event loop itself: if the loop hangs, the pings stop."""
        period = self._watchdog_period() or _HEARTBEAT
        watchdog = self._watchdog_period() is not None
        while True:
            if watchdog:
                self.notifier.watchdog()
            due = time.monotonic() + period
            await asyncio.sleep(period)
            self._loop_lag = max(0.0, time.monotonic() - due)
            self.metrics.set_loop_lag(self._loop_lag)

    async def _housekeeping(self) -> None:
        while True:
            try:
                await self.prune()
            except Exception as exc:
                log.exception("store.prune_failed", error=repr(exc))
            await asyncio.sleep(self._retention_every.total_seconds())

    async def prune(self) -> int:
        """Drop items older than `retention.items` (not those with alerts); returns how many.

        Batch by batch, each its own call on the store thread, so polls' writes queue behind
        one batch at most; then a TRUNCATE checkpoint gives the WAL's space back.
        """
        daemon = self.daemon
        started = time.perf_counter()
        cutoff = utcnow() - daemon.config.retention.items
        store = daemon.store_thread
        counts = []
        for query in (
            store.store.prune_items,
            store.store.prune_translations,
            store.store.prune_articles,
        ):
            total = 0
            while not daemon.stopping.is_set():
                removed = await store.call(query, cutoff, _PRUNE_BATCH)
                total += removed
                if removed < _PRUNE_BATCH:
                    break
            counts.append(total)
        checkpoint = await store.call(store.store.checkpoint, "TRUNCATE")
        log.info(
            "store.pruned",
            items=counts[0],
            translations=counts[1],
            articles=counts[2],
            before=iso(cutoff),
            wal_busy=checkpoint.busy,
            seconds=round(time.perf_counter() - started, 3),
        )
        return counts[0]
