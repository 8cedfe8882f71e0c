"""Shared test fixtures: a real HTTP server whose answers each test scripts, configs, feed bytes.

Nothing here is a mock: `feed_server` is a `ThreadingHTTPServer` on 127.0.0.1 speaking
HTTP/1.1, configs are real YAML files read by `load_config`, and databases are real SQLite files
under `tmp_path`. The feed builders write the project's own sample text.

Helpers are plain functions so test modules can `from conftest import rss, write_config, ...`;
`feed_server` and `make_config` are fixtures.
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip as gzip_module
import http.server
import json
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import hypothesis
import pytest
import structlog
import yaml

from monitor.config import Config, load_config

# `postgres_server` and `pg_url`: a real PostgreSQL started by the tests (tests/pg.py).
pytest_plugins = ["pg", "daemons"]

# Property tests explore new examples on every local run; CI runs a fixed sequence, so a
# landing never depends on the luck of a draw (a failure found locally becomes a test).
hypothesis.settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    hypothesis.settings.load_profile("ci")

__all__ = [
    "FeedServer",
    "Reply",
    "Request",
    "ago",
    "atom",
    "json_feed",
    "rdf",
    "rss",
    "write_config",
]

_STALL_LIMIT = 30.0
"""A stalled or delayed reply gives up after this long even if teardown never releases it."""


# The server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    `etag` / `last_modified` are sent as validators, and a request presenting them gets 304.
    `delay` waits before answering at all; `stall` sends the status line, the headers (with the
    full Content-Length) and half the body, then waits until teardown. `chunked` sends the body
    with `Transfer-Encoding: chunked` and no Content-Length, `chunk_size` bytes at a time with
    `chunk_delay` seconds between chunks; `gzip` compresses it.
    """

    body: bytes = b""
    status: int = 200
    content_type: str | None = "application/rss+xml"
    etag: str | None = None
    last_modified: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    stall: bool = False
    chunked: bool = False
    chunk_size: int = 1024
    chunk_delay: float = 0.0
    gzip: bool = False


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    at: float
    """time.monotonic() when the request line arrived."""


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (for a server a test starts itself)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TrackedHandler(http.server.BaseHTTPRequestHandler):
    """An HTTP/1.1 handler that keeps its server's table of open connections."""

    protocol_version = "HTTP/1.1"
    timeout = 10  # an idle keep-alive connection's thread ends after this
    server: LoopbackServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Handler(TrackedHandler):
    def do_GET(self) -> None:
        owner = self.server.owner
        request = Request(
            self.command,
            self.path,
            {name.lower(): value for name, value in self.headers.items()},
            time.monotonic(),
        )
        reply = owner._next_reply(request)
        try:
            self._answer(reply, request)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True

    def _wait(self, seconds: float) -> None:
        self.server.owner.released.wait(seconds)

    def _not_modified(self, reply: Reply, request: Request) -> bool:
        if reply.status != 200:
            return False
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None:
            if reply.etag is None:
                return False
            tags = [tag.strip() for tag in if_none_match.split(",")]
            return "*" in tags or reply.etag in tags
        if_modified_since = request.headers.get("if-modified-since")
        return reply.last_modified is not None and if_modified_since == reply.last_modified

    def _answer(self, reply: Reply | None, request: Request) -> None:
        if reply is None:
            self._send(404, {"Content-Type": "text/plain"}, b"no such route\n")
            return
        if reply.delay:
            self._wait(reply.delay)
        validators = {}
        if reply.etag is not None:
            validators["ETag"] = reply.etag
        if reply.last_modified is not None:
            validators["Last-Modified"] = reply.last_modified
        if self._not_modified(reply, request):
            self._send(304, validators, None)
            return
        body = gzip_module.compress(reply.body) if reply.gzip else reply.body
        headers = dict(validators)
        if reply.content_type is not None:
            headers["Content-Type"] = reply.content_type
        if reply.gzip:
            headers["Content-Encoding"] = "gzip"
        headers.update(reply.headers)
        if reply.stall:
            self.send_response(reply.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self._wait(_STALL_LIMIT)
            self.close_connection = True
            return
        if reply.chunked:
            self.send_response(reply.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), reply.chunk_size):
                if start and reply.chunk_delay:
                    self._wait(reply.chunk_delay)
                chunk = body[start : start + reply.chunk_size]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return
        self._send(reply.status, headers, body)

    def _send(self, status: int, headers: Mapping[str, str], body: bytes | None) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()


class LoopbackServer(http.server.ThreadingHTTPServer):
    """A threaded server on 127.0.0.1, serving from its own thread as soon as it is made.

    `stop()` ends it completely: no thread serving, no connection open, the port free, so a
    test that closes a server sees exactly what a client sees when a service goes down.
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, owner: Any, port: int, handler: type[TrackedHandler]) -> None:
        self.owner = owner
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        super().__init__(("127.0.0.1", port), handler)
        self.port: int = self.server_address[1]
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections[connection] = threading.current_thread()
            else:
                self._connections.pop(connection, None)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up is part of the tests, not a failure of the server

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
        with self._lock:
            connections = dict(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in connections.values():
            thread.join(timeout=5)


class FeedServer:
    """A scripted HTTP/1.1 server: `route()` what each path answers, read `requests` back."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.requests: list[Request] = []
        self._routes: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer(self, 0, _Handler)
        self.port = self._server.port
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, body: bytes = b"", **reply: Any) -> str:
        """Answer every request for `path` with one reply (see `Reply`); returns its URL."""
        return self.sequence(path, Reply(body, **reply))

    def sequence(self, path: str, *replies: Reply | Mapping[str, Any]) -> str:
        """Answer successive requests for `path` with `replies` in turn; the last one repeats."""
        if not replies:
            raise ValueError("at least one reply")
        script = [r if isinstance(r, Reply) else Reply(**r) for r in replies]
        with self._lock:
            self._routes[path] = script
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 301) -> str:
        """`path` answers `status` with a Location: `to` (a path is made absolute)."""
        location = self.url(to) if to.startswith("/") else to
        return self.route(path, status=status, content_type=None, headers={"Location": location})

    def requests_for(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _next_reply(self, request: Request) -> Reply | None:
        with self._lock:
            self.requests.append(request)
            script = self._routes.get(request.path)
            if script is None:
                script = self._routes.get(request.path.split("?", 1)[0])
            if script is None:
                return None
            return script.pop(0) if len(script) > 1 else script[0]

    def close(self) -> None:
        """Release stalled replies, stop serving, and end every connection's thread."""
        self.released.set()
        self._server.stop()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    try:
        yield server
    finally:
        server.close()


# Configs -----------------------------------------------------------------------------------

_DEFAULT_POLLING: dict[str, Any] = {
    "interval": "10m",
    "timeout": "2s",
    "jitter": 0,
    "backfill": "24h",
    "max_backoff": "1h",
}


def write_config(directory: Path, **overrides: Any) -> Config:
    """Write `directory/config.yaml` (database `monitor.db` beside it) and load it.

    `feeds` may be a list of mappings or `{name: url}`; `watchlists` a list of mappings or
    `{name: [terms]}`; `polling` is merged over fast test defaults (timeout 2s, jitter 0).
    Any other key is written as given.
    """
    data: dict[str, Any] = {"database": "monitor.db"}
    polling = {**_DEFAULT_POLLING, **overrides.pop("polling", {})}
    feeds = overrides.pop("feeds", [])
    if isinstance(feeds, Mapping):
        feeds = [{"name": name, "url": url} for name, url in feeds.items()]
    watchlists = overrides.pop("watchlists", [])
    if isinstance(watchlists, Mapping):
        watchlists = [{"name": name, "terms": list(terms)} for name, terms in watchlists.items()]
    data.update(polling=polling, feeds=list(feeds), watchlists=list(watchlists))
    data.update(overrides)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_config(path, env={})


@pytest.fixture
def make_config(tmp_path: Path) -> Any:
    """`make_config(**overrides)`: `write_config` into this test's `tmp_path`."""

    def make(**overrides: Any) -> Config:
        return write_config(tmp_path, **overrides)

    return make


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


# Feed documents ----------------------------------------------------------------------------


def ago(**delta: float) -> datetime:
    """An aware UTC moment `delta` before now: `ago(hours=2)`."""
    return datetime.now(UTC) - timedelta(**delta)


def _date(value: datetime | str, rfc822: bool) -> str:
    if isinstance(value, str):
        return value
    moment = value.astimezone(UTC)
    return email.utils.format_datetime(moment, usegmt=True) if rfc822 else moment.isoformat()


def _text(tag: str, value: object, attrs: str = "") -> str:
    return f"<{tag}{attrs}>{escape(str(value))}</{tag}>"


def _dated(item: Mapping[str, Any]) -> datetime | str | None:
    """An item's date: `pubDate` if given (None for none), otherwise now."""
    return item["pubDate"] if "pubDate" in item else datetime.now(UTC)


def _prolog(encoding: str, declare_encoding: bool) -> str:
    if declare_encoding:
        return f'<?xml version="1.0" encoding="{encoding}"?>\n'
    return '<?xml version="1.0"?>\n'


def rss(
    items: Iterable[Mapping[str, Any]],
    *,
    title: str = "Test feed",
    encoding: str = "utf-8",
    declare_encoding: bool = True,
) -> bytes:
    """RSS 2.0 bytes. Item keys: title, summary, link, guid, pubDate (datetime or text).

    A missing key is left out, except pubDate, which defaults to now; `pubDate=None` omits it.
    """
    parts = [
        _prolog(encoding, declare_encoding),
        '<rss version="2.0">\n<channel>\n',
        _text("title", title),
        _text("link", "https://feeds.example.org/"),
        _text("description", "A feed written for the news-monitor tests"),
        "\n",
    ]
    for item in items:
        parts.append("<item>")
        if "title" in item:
            parts.append(_text("title", item["title"]))
        if "link" in item:
            parts.append(_text("link", item["link"]))
        if "guid" in item:
            parts.append(_text("guid", item["guid"], ' isPermaLink="false"'))
        if (date := _dated(item)) is not None:
            parts.append(_text("pubDate", _date(date, rfc822=True)))
        if "summary" in item:
            parts.append(_text("description", item["summary"]))
        parts.append("</item>\n")
    parts.append("</channel>\n</rss>\n")
    return "".join(parts).encode(encoding)


def atom(
    entries: Iterable[Mapping[str, Any]], *, title: str = "Test feed", encoding: str = "utf-8"
) -> bytes:
    """Atom 1.0 bytes. Entry keys as for `rss`; `guid` becomes the entry's `<id>`."""
    parts = [
        _prolog(encoding, True),
        '<feed xmlns="http://www.w3.org/2005/Atom">\n',
        _text("title", title),
        _text("id", "urn:news-monitor:test-feed"),
        _text("updated", datetime.now(UTC).isoformat()),
        "\n",
    ]
    for entry in entries:
        parts.append("<entry>")
        if "guid" in entry:
            parts.append(_text("id", entry["guid"]))
        if "title" in entry:
            parts.append(_text("title", entry["title"]))
        if "link" in entry:
            parts.append(f'<link rel="alternate" href={quoteattr(entry["link"])}/>')
        if (date := _dated(entry)) is not None:
            parts.append(_text("updated", _date(date, rfc822=False)))
        if "summary" in entry:
            parts.append(_text("summary", entry["summary"]))
        parts.append("</entry>\n")
    parts.append("</feed>\n")
    return "".join(parts).encode(encoding)


def rdf(items: Sequence[Mapping[str, Any]], *, title: str = "Test feed") -> bytes:
    """RSS 1.0 (RDF) bytes, UTF-8. Item keys as for `rss`; the date is `dc:date`."""
    about = [
        str(item.get("link") or item.get("guid") or f"urn:item:{n}") for n, item in enumerate(items)
    ]
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n',
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">\n',
        '<channel rdf:about="https://feeds.example.org/rdf">',
        _text("title", title),
        _text("link", "https://feeds.example.org/"),
        _text("description", "An RSS 1.0 feed written for the news-monitor tests"),
        "<items><rdf:Seq>",
        *(f"<rdf:li rdf:resource={quoteattr(a)}/>" for a in about),
        "</rdf:Seq></items></channel>\n",
    ]
    for item, resource in zip(items, about, strict=True):
        parts.append(f"<item rdf:about={quoteattr(resource)}>")
        if "title" in item:
            parts.append(_text("title", item["title"]))
        if "link" in item:
            parts.append(_text("link", item["link"]))
        if "summary" in item:
            parts.append(_text("description", item["summary"]))
        if (date := _dated(item)) is not None:
            parts.append(_text("dc:date", _date(date, rfc822=False)))
        parts.append("</item>\n")
    parts.append("</rdf:RDF>\n")
    return "".join(parts).encode("utf-8")


def json_feed(items: Iterable[Mapping[str, Any]], *, title: str = "Test feed") -> bytes:
    """JSON Feed 1.1 bytes. Item keys as for `rss`; `guid` → id, `summary` → content_text."""
    out = []
    for item in items:
        entry: dict[str, Any] = {}
        if "guid" in item:
            entry["id"] = item["guid"]
        if "link" in item:
            entry["url"] = item["link"]
        if "title" in item:
            entry["title"] = item["title"]
        if "summary" in item:
            entry["content_text"] = item["summary"]
        if (date := _dated(item)) is not None:
            entry["date_published"] = _date(date, rfc822=False)
        out.append(entry)
    document = {"version": "https://jsonfeed.org/version/1.1", "title": title, "items": out}
    return json.dumps(document, ensure_ascii=False).encode("utf-8")
