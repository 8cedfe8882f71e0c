"""Feed servers that misbehave, against the real polling code, each next to a healthy feed.

Every case runs `Monitor.poll_once` over a real SQLite file (or the real daemon, at the end)
with the hostile feed and a healthy one in the same cycle, and checks that the hostile one is
bounded in time and memory (tracemalloc's peak during the cycle, parsing in-process) and that
the healthy one still gets its items and its alert. `invariants()` runs after each.

The basic cases of tests/test_fetch.py and tests/test_poll.py (a stalled server, a drip-fed
body, a capped body, a small gzip bomb, a redirect loop, an HTML page) are not repeated here;
these are the hostile versions of them, at the level of a whole poll cycle.

`RawServer` is a real TCP server on 127.0.0.1 for what an HTTP server library will not do:
a status line one byte a second, a body without end, a reset in the middle of a body.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from conftest import FeedServer, rss
from invariants import invariants

from monitor.config import Config, PollingConfig
from monitor.errors import FetchError
from monitor.fetch import Fetcher
from monitor.parse import parse_feed
from monitor.service import Monitor, PollReport

MB = 1_000_000
MAX_STALL = 0.4
"""Seconds the event loop may be blocked in one go while a hostile feed is handled."""
CAP = 1_000_000
"""polling.max_bytes where a case needs a small cap (the default is 10 MB)."""
_WARM_UP = rss([{"title": "Warm-up", "guid": "warm-up"}])
"""Parsed before a traced cycle, so the parsers' first import is not counted in it."""

WATCH = {"khanaqin": ["Khanaqin", "خانقين"], "diyala": ["Diyala", "ديالى"]}
HEALTHY = rss(
    [
        {
            "title": "Khanaqin water supply restored",
            "link": "https://healthy.example.org/1",
            "guid": "healthy-1",
            "summary": "Engineers finished the repairs overnight.",
        },
        {
            "title": "Farmers begin the autumn sowing",
            "link": "https://healthy.example.org/2",
            "guid": "healthy-2",
            "summary": "Seed prices are stable this year.",
        },
    ]
)


# A raw TCP server ----------------------------------------------------------------------------

Handler = Callable[["Conn"], None]


@dataclass
class Conn:
    """One accepted connection, as a handler sees it."""

    sock: socket.socket
    path: str
    server: RawServer

    def send(self, data: bytes) -> bool:
        """Write `data`; False once the client has gone (or the server is closing)."""
        if self.server.closing.is_set():
            return False
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        self.server.sent[self.path] += len(data)
        return True

    def wait(self, seconds: float) -> bool:
        """Sleep; False if the server is closing meanwhile."""
        return not self.server.closing.wait(seconds)

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


class RawServer:
    """Accepts on 127.0.0.1, reads one request head, hands the socket to the path's handler.

    Every connection is closed after its handler returns. `sent` counts the body bytes each
    path managed to write; `done` is set for a path when its handler has returned.
    """

    def __init__(self) -> None:
        self.closing = threading.Event()
        self.requests: list[str] = []
        self.sent: dict[str, int] = defaultdict(int)
        self.done: dict[str, threading.Event] = defaultdict(threading.Event)
        self.calls: dict[str, int] = defaultdict(int)
        self._routes: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, handler: Handler) -> str:
        self._routes[path] = handler
        return self.url(path)

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        path = "?"
        try:
            sock.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65_536:
                data = sock.recv(4096)
                if not data:
                    return
                head += data
            path = head.split(b" ", 2)[1].decode("latin-1")
            with self._lock:
                self.requests.append(path)
                self.calls[path] += 1
            handler = self._routes.get(path)
            conn = Conn(sock, path, self)
            if handler is None:
                conn.send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            else:
                handler(conn)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            self.done[path].set()

    def close(self) -> None:
        self.closing.set()
        self._listener.close()
        self._accepting.join(timeout=5)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)


@pytest.fixture
def raw() -> Iterator[RawServer]:
    server = RawServer()
    try:
        yield server
    finally:
        server.close()


def head(status: str = "200 OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


FEED_START = b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>x</title>'
FILLER = b"<item><title>Filler</title><description>" + b"f" * 900 + b"</description></item>\n"


def slow_status_line(conn: Conn) -> None:
    for byte in head(Content_Type="application/rss+xml") + HEALTHY:
        if not conn.send(bytes([byte])) or not conn.wait(1.0):
            return


def slow_body(conn: Conn) -> None:
    if not conn.send(head(Content_Type="application/rss+xml", Transfer_Encoding="chunked")):
        return
    for byte in HEALTHY:
        if not conn.send(chunk(bytes([byte]))) or not conn.wait(1.0):
            return


def endless(chunked: bool, limit: int = 500 * MB) -> Handler:
    """A feed that never ends (stops by itself at `limit`, so a broken client cannot hang)."""

    def handler(conn: Conn) -> None:
        framing = {"Transfer_Encoding": "chunked"} if chunked else {}
        if not conn.send(head(Content_Type="application/rss+xml", **framing)):
            return
        block = FILLER * 64
        data = chunk(block) if chunked else block
        conn.send(chunk(FEED_START) if chunked else FEED_START)
        sent = 0
        while sent < limit and conn.send(data):
            sent += len(data)

    return handler


def big(size: int, content_length: bool) -> Handler:
    def handler(conn: Conn) -> None:
        framing = {"Content_Length": str(size)} if content_length else {}
        framing = framing or {"Transfer_Encoding": "chunked"}
        if not conn.send(head(Content_Type="application/rss+xml", **framing)):
            return
        block = FILLER * 64
        remaining = size
        while remaining > 0:
            data = block[:remaining]
            if not conn.send(data if content_length else chunk(data)):
                return
            remaining -= len(data)
        if not content_length:
            conn.send(b"0\r\n\r\n")

    return handler


# Running cycles ------------------------------------------------------------------------------


@dataclass
class Cycle:
    reports: dict[str, PollReport]
    seconds: float
    peak_bytes: int = 0
    """tracemalloc's peak during the cycle (with `trace=True`)."""
    stall: float = 0.0
    """The longest the event loop was blocked during the cycle, in seconds (every feed's
    fetch waits while it is)."""


@dataclass
class Run:
    cycles: list[Cycle] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    health: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def last(self) -> Cycle:
        return self.cycles[-1]

    def items_of(self, feed: str) -> list[dict[str, Any]]:
        return [item for item in self.items if item["feed"] == feed]


def poll(
    config: Config,
    cycles: int = 1,
    *,
    trace: bool = False,
    between: Callable[[int], None] | None = None,
    parse_workers: int | None = 1,
) -> Run:
    """`cycles` poll cycles of one Monitor.

    Parsing is in-process by default (`parse_workers=1`), so tracemalloc sees it; None is the
    daemon's own setting (a process per core for documents over 4 KB).
    """
    run = Run()

    async def main() -> None:
        async with Monitor(config, parse_workers=parse_workers) as monitor:
            # Built before tracing: the peak measured is the fetch and parse alone. The language
            # profiles and the feed parsers load on first use: load them now.
            assert monitor.analyzer.analyze("Warm-up headline for the profiles", "").language
            assert parse_feed(_WARM_UP).items
            for number in range(cycles):
                if number and between is not None:
                    between(number)
                if trace:
                    tracemalloc.start()
                stalls = [0.0]
                watch = asyncio.create_task(_watch_loop(stalls))
                started = time.monotonic()
                try:
                    reports = await monitor.poll_once()
                    seconds = time.monotonic() - started
                    peak = tracemalloc.get_traced_memory()[1] if trace else 0
                finally:
                    watch.cancel()
                    if trace:
                        tracemalloc.stop()
                cycle = Cycle({r.feed: r for r in reports}, seconds, peak, max(stalls))
                run.cycles.append(cycle)
            store = monitor.store
            run.items = [
                dict(row)
                for row in store.db.query(
                    "SELECT f.name AS feed, i.* FROM items i JOIN feeds f ON f.id = i.feed_id "
                    "ORDER BY i.id"
                )
            ]
            run.alerts = store.alerts()
            run.health = {row["name"]: row for row in store.feed_health()}

    asyncio.run(main())
    invariants(config.database, config)
    return run


async def _watch_loop(stalls: list[float], tick: float = 0.01) -> None:
    """Wake every `tick`; how late each wake-up is, is how long the loop was blocked."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(tick)
        stalls[0] = max(stalls[0], loop.time() - before - tick)


def config_with(
    make_config: Any, feed_server: FeedServer, hostile: dict[str, str], **polling: Any
) -> Config:
    feeds = {**hostile, "healthy": feed_server.route("/healthy.xml", HEALTHY)}
    return make_config(feeds=feeds, watchlists=WATCH, polling=polling)


def assert_healthy(run: Run, cycle: int = 0, within: float | None = 1.0) -> None:
    """The healthy feed got its items and its alert, and (unless `within` is None) did not
    wait for the hostile one: the event loop never stood still for long."""
    report = run.cycles[cycle].reports["healthy"]
    assert (report.outcome, report.new_items, report.alerts) == ("new", 2, 1), report
    if within is not None:
        stall = run.cycles[cycle].stall
        assert stall < MAX_STALL, f"the event loop, and every fetch, stood still {stall:.2f}s"
        assert report.seconds < within, f"the healthy feed took {report.seconds:.2f}s"
    assert run.health["healthy"]["error_count"] == 0
    assert [a["item"]["title"] for a in run.alerts if a["feed"] == "healthy"] == [
        "Khanaqin water supply restored"
    ]


def assert_failed(run: Run, feed: str, *texts: str) -> None:
    """`feed` failed in the last cycle (and every one before), with one of `texts` in the
    error, and stored nothing."""
    report = run.last.reports[feed]
    assert report.outcome == "failed", report
    assert report.error is not None and any(t in report.error for t in texts), report.error
    assert run.health[feed]["error_count"] == len(run.cycles)
    assert run.items_of(feed) == []


# Slow, endless and large bodies --------------------------------------------------------------


@pytest.mark.parametrize("where", ["status-line", "body"])
def test_a_byte_per_second_is_cut_at_the_total_deadline(
    raw: RawServer, feed_server: FeedServer, make_config: Any, where: str
) -> None:
    handler = slow_status_line if where == "status-line" else slow_body
    config = config_with(
        make_config, feed_server, {"slowloris": raw.route("/slow.xml", handler)}, timeout="1s"
    )
    run = poll(config)
    assert_failed(run, "slowloris", "timed out after 1s")
    assert 0.9 < run.last.reports["slowloris"].seconds < 1.6
    assert run.last.seconds < 1.8
    assert_healthy(run)
    # The status line and headers, or the headers and two 1-byte chunks: nothing more.
    assert raw.sent["/slow.xml"] < 150, "more than a byte a second was sent"


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "until-close"])
def test_an_endless_body_is_stopped_at_max_bytes(
    raw: RawServer, feed_server: FeedServer, make_config: Any, chunked: bool
) -> None:
    url = raw.route("/endless.xml", endless(chunked))
    config = config_with(make_config, feed_server, {"endless": url}, max_bytes=CAP)
    run = poll(config, trace=True)
    assert_failed(run, "endless", "over the 1,000,000-byte cap (polling.max_bytes)")
    assert run.last.seconds < 2.0
    assert run.last.peak_bytes < 4 * CAP, f"peak {run.last.peak_bytes / MB:.1f} MB"
    assert_healthy(run)
    # The client hung up: the server's writes failed soon after the cap (socket buffers aside).
    assert raw.done["/endless.xml"].wait(5)
    assert raw.sent["/endless.xml"] < CAP + 16 * MB


@pytest.mark.parametrize("content_length", [True, False], ids=["declared", "streamed"])
def test_a_50_mb_body_is_refused_at_the_default_cap_in_bounded_memory(
    raw: RawServer, feed_server: FeedServer, make_config: Any, content_length: bool
) -> None:
    url = raw.route("/huge.xml", big(50 * MB, content_length))
    config = config_with(make_config, feed_server, {"huge": url})  # max_bytes: 10 MB default
    run = poll(config, trace=True)
    if content_length:
        assert_failed(run, "huge", "response of 50,000,000 bytes is over the 10,000,000-byte cap")
        assert run.last.peak_bytes < 5 * MB, "the declared length was not trusted"
    else:
        assert_failed(run, "huge", "over the 10,000,000-byte cap (polling.max_bytes)")
        assert run.last.peak_bytes < 25 * MB, f"peak {run.last.peak_bytes / MB:.1f} MB"
    assert run.last.seconds < 3.0
    assert_healthy(run, within=2.0)
    assert raw.done["/huge.xml"].wait(5)
    assert raw.sent["/huge.xml"] < 30 * MB


# Compression bombs ---------------------------------------------------------------------------


@cache
def gzip_zeros(size: int) -> bytes:
    """gzip of `size` zero bytes, built a megabyte at a time (about size / 1000 on the wire)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b"\0" * MB
    parts = [compressor.compress(block) for _ in range(size // MB)]
    return b"".join([*parts, compressor.flush()])


def gzip_body(body: bytes, encoding: str) -> Handler:
    def handler(conn: Conn) -> None:
        headers = head(
            Content_Type="application/rss+xml",
            Content_Encoding=encoding,
            Content_Length=str(len(body)),
        )
        conn.send(headers + body)

    return handler


def bomb(kind: str) -> tuple[bytes, str]:
    """A response body and its Content-Encoding that decode to 200 or 300 MB of zeros."""
    if kind == "gzip":
        return gzip_zeros(200 * MB), "gzip"
    return gzip.compress(gzip_zeros(300 * MB), 9), "gzip, gzip"


@pytest.mark.parametrize("kind", ["gzip", "gzip-in-gzip"])
def test_a_gzip_bomb_fails_and_the_other_feeds_still_get_their_items(
    raw: RawServer, feed_server: FeedServer, make_config: Any, kind: str
) -> None:
    body, encoding = bomb(kind)
    assert len(body) < 300_000
    url = raw.route("/bomb.xml", gzip_body(body, encoding))
    config = config_with(make_config, feed_server, {"bomb": url}, max_bytes=CAP)
    run = poll(config)
    # Refusing stacked encodings outright would do as well as stopping at the cap.
    assert_failed(run, "bomb", "over the 1,000,000-byte cap (polling.max_bytes)", "Encoding")
    assert run.last.seconds < 3.0
    assert_healthy(run, within=None)  # how long the others wait: the next test


@pytest.mark.parametrize("kind", ["gzip", "gzip-in-gzip"])
def test_a_gzip_bomb_costs_memory_and_time_bounded_by_the_cap(
    raw: RawServer, feed_server: FeedServer, make_config: Any, kind: str
) -> None:
    body, encoding = bomb(kind)
    url = raw.route("/bomb.xml", gzip_body(body, encoding))
    config = config_with(make_config, feed_server, {"bomb": url}, max_bytes=CAP)
    run = poll(config, trace=True)
    assert_failed(run, "bomb", "cap", "Encoding")
    assert run.last.peak_bytes < 4 * CAP + 8 * MB, f"peak {run.last.peak_bytes / MB:.1f} MB"
    assert_healthy(run)


# XML that attacks the parser -----------------------------------------------------------------

LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10)
        for n in range(1, 10)
    )
    + b"]>\n"
)
QUADRATIC = b'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY a "' + b"A" * 100_000 + b'">]>\n'


def feed_after(prolog: bytes, hostile_field: bytes) -> bytes:
    """A two-item RSS document under `prolog`; the first item's text holds `hostile_field`."""
    return (
        prolog
        + b'<rss version="2.0"><channel><title>Entities</title>\n'
        + b"<item><title>Storm warning "
        + hostile_field
        + b"</title><guid>e-1</guid><link>https://e.example.org/1</link>"
        + b"<description>"
        + hostile_field
        + b"</description></item>\n"
        + b"<item><title>Khanaqin council meets</title><guid>e-2</guid>"
        + b"<link>https://e.example.org/2</link><description>On water.</description></item>\n"
        + b"</channel></rss>\n"
    )


@pytest.mark.parametrize(
    "document",
    [feed_after(LAUGHS, b"&lol9;"), feed_after(QUADRATIC, b"&a;" * 5_000)],
    ids=["billion-laughs", "quadratic-blowup"],
)
def test_xml_entity_expansion_is_bounded_and_the_rest_of_the_feed_is_read(
    feed_server: FeedServer, make_config: Any, document: bytes
) -> None:
    url = feed_server.route("/entities.xml", document)
    config = config_with(make_config, feed_server, {"entities": url})
    run = poll(config, trace=True)
    assert run.last.peak_bytes < 30 * MB, f"peak {run.last.peak_bytes / MB:.1f} MB"
    assert run.last.seconds < 2.0
    assert_healthy(run)
    items = run.items_of("entities")
    assert "Khanaqin council meets" in [item["title"] for item in items]
    longest = max(len(item["title"]) + len(item["summary"]) for item in items)
    assert longest < len(document), "an entity was expanded"
    assert not any(
        "lollol" in item["summary"] or "AAAA" * 1000 in item["summary"] for item in items
    )


def test_external_entities_read_no_file_and_fetch_nothing(
    raw: RawServer, feed_server: FeedServer, make_config: Any, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a", encoding="utf-8")
    raw.route("/xxe.txt", lambda conn: conn.send(head(Content_Length="12") + b"NETWORK-8c1d"))
    raw.route("/pe.dtd", lambda conn: conn.send(head(Content_Length="0")))
    prolog = (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n'
        f' <!ENTITY file SYSTEM "file://{secret}">\n'
        f' <!ENTITY net SYSTEM "{raw.url("/xxe.txt")}">\n'
        f' <!ENTITY % pe SYSTEM "{raw.url("/pe.dtd")}"> %pe;\n'
        "]>\n"
    ).encode()
    url = feed_server.route("/xxe.xml", feed_after(prolog, b"&file; &net;"))
    config = config_with(make_config, feed_server, {"xxe": url})
    run = poll(config)
    assert_healthy(run)
    stored = json.dumps(run.items, ensure_ascii=False)
    assert "TOP-SECRET" not in stored
    assert "NETWORK-8c1d" not in stored
    assert raw.requests == [], "an external entity was fetched"
    assert "Khanaqin council meets" in [item["title"] for item in run.items_of("xxe")]


# Broken text ---------------------------------------------------------------------------------

ARABIC = [
    {
        "title": "افتتاح جسر جديد في خانقين",
        "link": "https://ar.example.org/1",
        "guid": "ar-1",
        "summary": "قال مسؤولون إن الجسر يربط الأحياء الشرقية.",
    },
    {
        "title": "أسعار القمح في السوق المحلية",
        "link": "https://ar.example.org/2",
        "guid": "ar-2",
        "summary": "ارتفعت الأسعار BROKEN هذا الأسبوع.",
    },
    {
        "title": "أمطار غزيرة في محافظة ديالى",
        "link": "https://ar.example.org/3",
        "guid": "ar-3",
        "summary": "حذرت السلطات من السيول.",
    },
]
ARABIC_TITLES = [item["title"] for item in ARABIC]


def with_invalid_utf8() -> bytes:
    body = rss(ARABIC, title="أخبار")
    return body.replace(b"BROKEN", b"\xff\xfe\xc3")


def utf8_declared_as(where: str) -> tuple[bytes, str]:
    body = rss(ARABIC, title="أخبار")
    if where == "header":
        return body, "application/rss+xml; charset=windows-1256"
    return body.replace(b'encoding="utf-8"', b'encoding="iso-8859-1"'), "application/rss+xml"


def test_invalid_utf8_does_not_fail_the_feed_or_its_neighbours(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route("/bad.xml", with_invalid_utf8())
    config = config_with(make_config, feed_server, {"bad": url})
    run = poll(config)
    assert run.last.reports["bad"].outcome == "new"
    assert len(run.items_of("bad")) == 3
    assert_healthy(run)


def test_one_invalid_byte_does_not_garble_the_other_items(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route("/bad.xml", with_invalid_utf8())
    run = poll(config_with(make_config, feed_server, {"bad": url}))
    titles = [item["title"] for item in run.items_of("bad")]
    assert titles == ARABIC_TITLES
    assert {a["watchlist"] for a in run.alerts if a["feed"] == "bad"} == {"khanaqin", "diyala"}


@pytest.mark.parametrize("where", ["header", "xml-declaration"])
def test_a_wrong_declared_charset_does_not_fail_the_feed_or_its_neighbours(
    feed_server: FeedServer, make_config: Any, where: str
) -> None:
    body, content_type = utf8_declared_as(where)
    url = feed_server.route("/wrong.xml", body, content_type=content_type)
    run = poll(config_with(make_config, feed_server, {"wrong": url}))
    assert run.last.reports["wrong"].outcome == "new"
    assert len(run.items_of("wrong")) == 3
    assert_healthy(run)


def test_utf8_under_a_wrong_charset_in_the_header_is_still_read_as_utf8(
    feed_server: FeedServer, make_config: Any
) -> None:
    body, content_type = utf8_declared_as("header")
    url = feed_server.route("/wrong.xml", body, content_type=content_type)
    run = poll(config_with(make_config, feed_server, {"wrong": url}))
    assert [item["title"] for item in run.items_of("wrong")] == ARABIC_TITLES
    assert {a["watchlist"] for a in run.alerts if a["feed"] == "wrong"} == {"khanaqin", "diyala"}


# Not a feed, nowhere, broken off -------------------------------------------------------------


def test_an_html_page_under_a_feed_content_type_fails_without_slowing_the_others(
    feed_server: FeedServer, make_config: Any
) -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>Home</title></head><body>"
        + b"<div><p>Latest news from Khanaqin and the province.</p></div>" * 40_000
        + b"</body></html>"
    )
    assert len(page) > 2 * MB
    url = feed_server.route("/feed.xml", page, content_type="application/rss+xml")
    # As the daemon runs: a large document is parsed in a worker process, off the thread that
    # parses small feeds and analyses every item.
    run = poll(config_with(make_config, feed_server, {"page": url}), parse_workers=None)
    assert_failed(run, "page", "not a feed: the server sent an HTML page")
    assert run.last.seconds < 6.0  # a 2.4 MB page is about 0.7 s of parsing, plus pool start
    assert_healthy(run)


@pytest.mark.parametrize("kind", ["self", "pair"])
def test_a_redirect_loop_fails_after_a_bounded_number_of_requests_and_is_not_remembered(
    feed_server: FeedServer, make_config: Any, kind: str
) -> None:
    if kind == "self":
        url = feed_server.redirect("/loop.xml", "/loop.xml", status=301)
    else:
        url = feed_server.redirect("/a.xml", "/b.xml", status=301)
        feed_server.redirect("/b.xml", "/a.xml", status=308)
    config = config_with(make_config, feed_server, {"loop": url})
    run = poll(config, 2)
    assert_failed(run, "loop", "more than 5 redirects")
    assert run.health["loop"]["moved_to"] is None, "a permanent loop was taken as a move"
    looping = [r for r in feed_server.requests if r.path != "/healthy.xml"]
    assert len(looping) == 2 * 6
    assert run.last.seconds < 1.0
    assert_healthy(run)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("close", ["reset", "fin"])
def test_a_connection_broken_mid_body_stores_nothing_until_a_whole_body_arrives(
    raw: RawServer, feed_server: FeedServer, make_config: Any, framing: str, close: str
) -> None:
    body = rss(
        [
            {"title": f"Khanaqin bulletin {n}", "guid": f"b-{n}", "link": f"https://b.org/{n}"}
            for n in range(40)
        ]
    )
    cut = len(body) // 2  # several whole <item>s are in the first half

    def handler(conn: Conn) -> None:
        chunked = framing == "chunked"
        framing_headers = (
            {"Transfer_Encoding": "chunked"} if chunked else {"Content_Length": str(len(body))}
        )
        conn.send(head(Content_Type="application/rss+xml", **framing_headers))
        if raw.calls["/cut.xml"] > 1:  # the second poll gets the whole document
            conn.send(chunk(body) + b"0\r\n\r\n" if chunked else body)
            return
        conn.send(chunk(body[:cut]) if chunked else body[:cut])
        time.sleep(0.05)
        if close == "reset":
            conn.reset()

    url = raw.route("/cut.xml", handler)
    config = config_with(make_config, feed_server, {"cut": url})
    first: list[list[dict[str, Any]]] = []
    run = poll(config, 2, between=lambda n: first.append(list(run_items(config))))
    assert first == [[]], "items were stored from half a body"
    report = run.cycles[0].reports["cut"]
    assert report.outcome == "failed"
    assert report.error is not None and (
        "broke the connection" in report.error or "ReadError" in report.error
    ), report.error
    assert_healthy(run)
    second = run.last.reports["cut"]
    assert (second.outcome, second.new_items, second.alerts) == ("new", 40, 40)


@pytest.mark.parametrize(
    "answer",
    [
        b"garbage\r\nmore garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Filler: " + b"a" * 20_000 + b"\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    ],
    ids=["not-http", "huge-header", "short-body", "bad-chunk"],
)
def test_a_broken_answer_fails_with_a_short_one_line_error(raw: RawServer, answer: bytes) -> None:
    url = raw.route("/broken.xml", lambda conn: bool(conn.send(answer)))

    async def fetch() -> None:
        async with Fetcher(PollingConfig(timeout="5s")) as fetcher:
            await fetcher.fetch(url)

    with pytest.raises(FetchError) as caught:
        asyncio.run(fetch())
    message = str(caught.value)
    assert "\n" not in message and len(message) <= 200, message
    assert caught.value.status is None


def run_items(config: Config) -> list[dict[str, Any]]:
    """Items of the feed 'cut' as stored so far (read from the file by another connection)."""
    db = sqlite3.connect(config.database)
    try:
        return [
            {"guid": row[0]}
            for row in db.execute(
                "SELECT guid FROM items JOIN feeds f ON f.id = feed_id WHERE f.name = 'cut'"
            )
        ]
    finally:
        db.close()


@pytest.mark.parametrize("body", [b"", b" \r\n\t "], ids=["empty", "whitespace"])
def test_an_empty_200_fails_and_neither_loses_nor_repeats_items(
    feed_server: FeedServer, make_config: Any, body: bytes
) -> None:
    document = rss(
        [{"title": "Khanaqin bridge opens", "guid": "g-1", "link": "https://g.example.org/1"}]
    )
    url = feed_server.sequence("/flaky.xml", {"body": document}, {"body": body}, {"body": document})
    run = poll(config_with(make_config, feed_server, {"flaky": url}), 3)
    outcomes = [cycle.reports["flaky"] for cycle in run.cycles]
    assert [r.outcome for r in outcomes] == ["new", "failed", "new"]
    assert outcomes[1].error == "not a feed: the response body is empty"
    assert outcomes[1].http_status == 200
    assert (outcomes[2].new_items, outcomes[2].alerts) == (0, 0)
    assert len(run.items_of("flaky")) == 1
    assert run.health["flaky"]["error_count"] == 0  # recovered
    assert_healthy(run)


@pytest.mark.parametrize("identity", ["link-with-tracking", "no-link"])
def test_items_whose_guid_changes_every_poll_do_not_alert_again(
    feed_server: FeedServer, make_config: Any, identity: str
) -> None:
    def document(poll_number: int) -> bytes:
        items = []
        for n, title in enumerate(
            ["Khanaqin checkpoint reopens", "Diyala river level falls", "Football league resumes"]
        ):
            item: dict[str, Any] = {"title": title, "guid": f"churn-{poll_number}-{n}"}
            if identity == "link-with-tracking":
                item["link"] = f"https://churn.example.org/{n}?utm_source=rss{poll_number}"
            items.append(item)
        return rss(items)

    url = feed_server.sequence("/churn.xml", *({"body": document(p)} for p in range(3)))
    run = poll(config_with(make_config, feed_server, {"churn": url}), 3)
    reports = [cycle.reports["churn"] for cycle in run.cycles]
    assert [r.new_items for r in reports] == [3, 3, 3]  # new guids are new items
    assert [r.alerts for r in reports] == [2, 0, 0]  # but the same stories
    churn_alerts = [a for a in run.alerts if a["feed"] == "churn"]
    assert sorted(a["watchlist"] for a in churn_alerts) == ["diyala", "khanaqin"]
    assert_healthy(run)


# The real daemon with every kind of hostile feed at once -------------------------------------


def test_the_daemon_keeps_polling_a_healthy_feed_among_hostile_ones(
    raw: RawServer, feed_server: FeedServer, make_config: Any, tmp_path: Path
) -> None:
    hostile = {
        "slowloris": raw.route("/slow.xml", slow_status_line),
        "endless": raw.route("/endless.xml", endless(chunked=True)),
        "huge": raw.route("/huge.xml", big(50 * MB, content_length=False)),
        "bomb": raw.route("/bomb.xml", gzip_body(gzip_zeros(200 * MB), "gzip")),
        "laughs": feed_server.route("/laughs.xml", feed_after(LAUGHS, b"&lol9;")),
        "invalid-utf8": feed_server.route("/bad.xml", with_invalid_utf8()),
        "page": feed_server.route("/page.html", b"<html><body>hi</body></html>"),
        "loop": feed_server.redirect("/loop.xml", "/loop.xml"),
        "empty": feed_server.route("/empty.xml", b""),
    }
    feeds = {**hostile, "healthy": feed_server.route("/healthy.xml", HEALTHY, etag='"h1"')}
    config = make_config(
        feeds=feeds,
        watchlists=WATCH,
        polling={"interval": "1s", "timeout": "2s", "max_bytes": 2 * MB, "backfill": "1d"},
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config.source), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    events: list[dict[str, Any]] = []
    peak_kb = 0
    try:
        assert process.stderr is not None
        os.set_blocking(process.stderr.fileno(), False)
        deadline = time.monotonic() + 20
        healthy: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            while line := process.stderr.readline():
                with contextlib.suppress(ValueError):  # APScheduler logs plain text lines
                    events.append(json.loads(line))
            peak_kb = max(peak_kb, _vm_hwm_kb(process.pid))
            # Its 200 is a `feed.polled` line; its 304s are in their batch's `feeds.unchanged`.
            healthy = [
                e
                for e in events
                if (e.get("feed") == "healthy" and "status" in e)
                or (e["event"] == "feeds.unchanged" and "healthy" in e["feeds"])
            ]
            failed = {e["feed"] for e in events if e["event"] == "feed.failed"}
            if len(healthy) >= 3 and failed >= set(hostile) - {"laughs", "invalid-utf8"}:
                break
            assert process.poll() is None, f"the daemon exited: {events[-5:]}"
            time.sleep(0.1)
        else:
            raise AssertionError(f"timed out; healthy polls {healthy}, last events {events[-8:]}")
        assert [e["status"] for e in healthy[:3]] == [200, 304, 304]
        assert healthy[0]["alerts"] == 1
        # Scheduled every second, a 304 keeps coming every ~1 s however the others behave.
        crashed = [e for e in events if e["event"] in ("feed.crashed", "monitor.crashed")]
        assert crashed == []
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
        assert process.stderr is not None
        process.stderr.close()
    assert code == 0
    assert peak_kb < 400_000, f"the daemon peaked at {peak_kb / 1000:.0f} MB"
    invariants(config.database, config)


def _vm_hwm_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0
