"""The optional HTTP listener: `/healthz` and `/metrics`, on the daemon's own event loop.

A few dozen lines of strict HTTP/1.1 on `asyncio.start_server` rather than a web framework or
prometheus_client's threaded server: both endpoints need the daemon's state, which lives on the
event loop; serving them from it needs no locks, and answering at all proves the loop is alive.
It is meant for a scraper and a probe on localhost, so it is deliberately small: GET and HEAD
only, no request bodies, one request per connection, a size limit on the request head, a
deadline on every read and write, and a cap on open connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from monitor.config import Config
from monitor.metrics import Metrics
from monitor.store.housekeeping import StoreSummary
from monitor.store.schema import shown

__all__ = ["HealthReport", "HealthServer", "degradations", "failing_too_long"]

log = structlog.get_logger("monitor.health")

_HEAD_LIMIT = 8192
"""Bytes of request line plus headers; a scraper sends a few hundred."""
_WRITE_TIMEOUT = 10.0
_MAX_CONNECTIONS = 32

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


@dataclass(frozen=True, slots=True)
class HealthReport:
    """What /healthz says (the rule is in the README, "Run as a service"):

    - 503 `unhealthy` when the database takes no writes (or its file was deleted or replaced),
      or the daemon is stopping: a restart is what fixes those;
    - 200 `degraded` when the process works but something needs a person: the config file on
      disk is invalid (the previous one runs), a feed has failed for longer than
      max(3 intervals, 1 h), deliveries died in the last 24 h (`degradations`);
    - 200 `ok` otherwise.
    """

    database_writable: bool
    stopping: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)
    """Everything else worth knowing, as JSON-ready values."""
    degraded: tuple[str, ...] = ()
    """Problems that need a person but not a restart, one line each."""
    database_error: str | None = None
    """Why the database takes no writes, when known."""

    @property
    def healthy(self) -> bool:
        return self.database_writable and not self.stopping

    def to_json(self) -> dict[str, Any]:
        problems = []
        if not self.database_writable:
            problems.append(
                f"database not writable: {self.database_error}"
                if self.database_error
                else "database not writable"
            )
        if self.stopping:
            problems.append("stopping")
        problems.extend(self.degraded)
        status = "degraded" if self.degraded else "ok"
        return {
            "status": status if self.healthy else "unhealthy",
            "problems": problems,
            "database_writable": self.database_writable,
            "stopping": self.stopping,
            **self.details,
        }


_FAILING_FLOOR = timedelta(hours=1)
_FAILING_INTERVALS = 3
_DEAD_WINDOW = "24h"
_MAX_CONFIG_LINES = 5
"""Config problems listed on /healthz; `check-config` prints them all."""


def failing_too_long(interval: timedelta) -> timedelta:
    """How long a feed may fail before /healthz reports it: max(3 intervals, 1 h).

    A few failed polls are normal (a site's deploy, a blip); a feed still failing after three
    of its intervals and at least an hour is something a person should look at.
    """
    return max(interval * _FAILING_INTERVALS, _FAILING_FLOOR)


def degradations(
    config: Config,
    summary: StoreSummary | None,
    config_error: Sequence[str],
    now: datetime,
) -> tuple[str, ...]:
    """The `degraded` problems /healthz lists, one line each, at `now`.

    Args:
        config: the running config (each feed's interval).
        summary: the database's picture (`Store.summary`), None if it could not be read.
        config_error: the problems of the config file on disk, when a reload rejected it.
        now: the clock.
    """
    problems = [f"config invalid on disk (the previous one runs): {line}" for line in config_error]
    if len(problems) > _MAX_CONFIG_LINES:
        more = len(problems) - _MAX_CONFIG_LINES
        problems[_MAX_CONFIG_LINES:] = [f"config invalid on disk: {more} more problems"]
    if summary is None:
        return tuple(problems)
    intervals = {feed.name: config.feed_interval(feed) for feed in config.feeds}
    for feed in summary.failing_feeds:
        if feed.failing_since is None or feed.name not in intervals:
            continue
        since = datetime.fromisoformat(feed.failing_since)
        if now - since >= failing_too_long(intervals[feed.name]):
            problems.append(
                f"feed {feed.name!r} failing since {shown(feed.failing_since)}"
                f" ({feed.errors} failed polls): {feed.last_error}"
            )
    dead = sum(row.count for row in summary.dead_last_24h)
    if dead:
        sinks = ", ".join(f"{row.sink}: {row.count}" for row in summary.dead_last_24h)
        problems.append(
            f"{dead} {'delivery' if dead == 1 else 'deliveries'} dead in the last {_DEAD_WINDOW}"
            f" ({sinks}): see `news-monitor deliveries --dead`"
        )
    return tuple(problems)


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    """Without the query string."""
    accept: str


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HealthServer:
    """Serves `/healthz` (JSON, 200 or 503) and `/metrics` (Prometheus) on `listen` (host:port).

    Args:
        listen: `127.0.0.1:9464`, `[::1]:9464`; port 0 picks a free one (see `port`).
        health: builds the report for one /healthz request.
        metrics: rendered for /metrics.
        refresh: awaited before rendering /metrics, so database-derived series are current.
        read_timeout: seconds a client gets to send its request head.
        check_timeout: seconds `health` and `refresh` get; then 503, or the last numbers.
    """

    def __init__(
        self,
        listen: str,
        health: Callable[[], Awaitable[HealthReport]],
        metrics: Metrics,
        *,
        refresh: Callable[[], Awaitable[None]] | None = None,
        read_timeout: float = 5.0,
        check_timeout: float = 5.0,
    ) -> None:
        host, _, port = listen.rpartition(":")
        self.host = host.removeprefix("[").removesuffix("]")
        self.port = int(port)
        self._health = health
        self._metrics = metrics
        self._refresh = refresh
        self._read_timeout = read_timeout
        self._check_timeout = check_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=_HEAD_LIMIT, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("http.listening", host=self.host, port=self.port)

    async def aclose(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        try:
            if task is None or len(self._connections) >= _MAX_CONNECTIONS:
                return
            self._connections.add(task)
            try:
                request = await asyncio.wait_for(_read_head(reader), self._read_timeout)
            except _BadRequest as exc:
                await _respond(writer, exc.status, "text/plain; charset=utf-8", f"{exc}\n".encode())
                return
            except TimeoutError:
                await _respond(writer, 408, "text/plain; charset=utf-8", b"request timeout\n")
                return
            status, content_type, body = await self._route(request)
            await _respond(writer, status, content_type, body, head_only=request.method == "HEAD")
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away or stopped reading; nothing to answer
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), _WRITE_TIMEOUT)

    async def _route(self, request: _Request) -> tuple[int, str, bytes]:
        if request.path == "/healthz":
            try:
                report = await asyncio.wait_for(self._health(), self._check_timeout)
            except TimeoutError:
                report = HealthReport(False, details={"error": "health check timed out"})
            body = json.dumps(report.to_json(), ensure_ascii=False, default=str).encode()
            return 200 if report.healthy else 503, "application/json", body + b"\n"
        if request.path == "/metrics":
            if self._refresh is not None:
                try:
                    await asyncio.wait_for(self._refresh(), self._check_timeout)
                except TimeoutError:
                    log.warning("http.metrics_stale", reason="refresh timed out")
            body, content_type = self._metrics.render(request.accept)
            return 200, content_type, body
        return 404, "text/plain; charset=utf-8", b"not found: try /healthz or /metrics\n"


async def _read_head(reader: asyncio.StreamReader) -> _Request:
    """One request's head; anything unexpected is a 4xx."""
    head = b""
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise _BadRequest(431, "request head too large") from None
        head += line
        if len(head) > _HEAD_LIMIT:
            raise _BadRequest(431, "request head too large")
        if line in (b"\r\n", b"\n"):
            break
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise _BadRequest(400, "request head is not ASCII") from None
    request_line, *header_lines = text.split("\n")
    parts = request_line.strip().split(" ")
    if len(parts) != 3:
        raise _BadRequest(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(505, "HTTP/1.1 only")
    if method not in ("GET", "HEAD"):
        raise _BadRequest(405, "GET or HEAD only")
    if not target.startswith("/"):
        raise _BadRequest(400, "expected an absolute path")
    accept = ""
    for raw in header_lines:
        header = raw.strip()
        if not header:
            continue
        name, colon, value = header.partition(":")
        if not colon or not name or name != name.strip():
            raise _BadRequest(400, "malformed header line")
        name = name.lower()
        if name in ("content-length", "transfer-encoding") and value.strip() not in ("", "0"):
            raise _BadRequest(400, "requests take no body")
        if name == "accept":
            accept = value.strip()
    return _Request(method, target.split("?", 1)[0], accept)


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    content_type: str,
    body: bytes,
    *,
    head_only: bool = False,
) -> None:
    headers = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    if status == 405:
        headers.append("Allow: GET, HEAD")
    writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("ascii"))
    if not head_only:
        writer.write(body)
    await asyncio.wait_for(writer.drain(), _WRITE_TIMEOUT)
