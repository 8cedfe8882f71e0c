"""One host that never answers must not hold up the feeds of other hosts (and backs off).

A `HangingServer` accepts connections on 127.0.0.1 and never answers; many feeds live on it.
A healthy feed is on a `FeedServer` (another port: another host for the per-host limit). The
servers' own clocks decide the order of events, not wall-clock bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import FeedServer, rss

from monitor.config import PollingConfig
from monitor.errors import FetchError
from monitor.fetch import Fetcher
from monitor.service import Monitor

HEALTHY = rss([{"title": "Khanaqin market reopens", "guid": "h-1", "link": "https://h.org/1"}])


class HangingServer:
    """Accepts every connection and never sends a byte; `accepted` holds when each came."""

    def __init__(self) -> None:
        self.accepted: list[float] = []
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(time.monotonic())
            self._sockets.append(sock)

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    server = HangingServer()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("hung_feeds", [60])
def test_feeds_queued_on_a_hung_host_do_not_hold_up_another_host(
    hanging: HangingServer, feed_server: FeedServer, make_config: Any, hung_feeds: int
) -> None:
    feeds = [{"name": f"hung-{n}", "url": hanging.url(f"/{n}.xml")} for n in range(hung_feeds)]
    feeds.append({"name": "healthy", "url": feed_server.route("/healthy.xml", HEALTHY)})
    config = make_config(
        feeds=feeds,
        watchlists={"khanaqin": ["Khanaqin"]},
        polling={"timeout": "1s", "concurrency": 4, "per_host": 2},
    )

    async def main() -> list[Any]:
        async with Monitor(config, parse_workers=1) as monitor:
            return await monitor.poll_once()

    reports = {r.feed: r for r in asyncio.run(main())}
    assert (reports["healthy"].outcome, reports["healthy"].new_items) == ("new", 1)
    # The healthy feed was asked for before the first round of hung requests had even timed
    # out: its host's turn never waited behind theirs.
    (healthy,) = feed_server.requests_for("/healthy.xml")
    assert len(hanging.accepted) > 2
    assert healthy.at < hanging.accepted[2], "the healthy feed waited for the hung host"


def test_a_host_that_keeps_timing_out_is_backed_off_as_a_host(
    hanging: HangingServer, feed_server: FeedServer, make_config: Any
) -> None:
    feeds = [{"name": f"hung-{n}", "url": hanging.url(f"/{n}.xml")} for n in range(40)]
    config = make_config(feeds=feeds, polling={"timeout": "1s", "concurrency": 16, "per_host": 2})

    async def main() -> list[Any]:
        async with Monitor(config, parse_workers=1) as monitor:
            return await monitor.poll_once()

    reports = asyncio.run(main())
    assert all(r.outcome == "failed" for r in reports)
    timed_out = [r for r in reports if r.error == "timed out after 1s"]
    backed_off = [r for r in reports if r not in timed_out]
    # Two rounds of two at once: the third timeout in a row starts the host's backoff, and the
    # feeds still queued fail at once instead of waiting a full timeout each.
    assert len(timed_out) == 4
    assert len(hanging.accepted) == 4
    pattern = (
        rf"host 127\.0\.0\.1:{hanging.port} timed out [34] times in a row;"
        r" backing off until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    )
    assert len(backed_off) == 36
    for report in backed_off:
        assert re.fullmatch(pattern, report.error or ""), report.error


def test_a_backed_off_host_is_tried_again_when_its_backoff_ends(
    hanging: HangingServer,
) -> None:
    clock = [1000.0]
    polling = PollingConfig(timeout="1s", interval="10m", max_backoff="1h")

    async def outcome(fetcher: Fetcher, n: int) -> str:
        try:
            await fetcher.fetch(hanging.url(f"/{n}.xml"))
        except FetchError as exc:
            return str(exc)
        return "fetched"

    async def main() -> list[str]:
        async with Fetcher(polling, clock=lambda: clock[0]) as fetcher:
            outcomes = [await outcome(fetcher, n) for n in range(4)]
            clock[0] += 599  # within the 10 minutes
            outcomes.append(await outcome(fetcher, 4))
            clock[0] += 2  # past them: one more try, and a timeout doubles the backoff
            outcomes.append(await outcome(fetcher, 5))
            clock[0] += 1199
            outcomes.append(await outcome(fetcher, 6))
            return outcomes

    outcomes = asyncio.run(main())
    assert outcomes[:3] == ["timed out after 1s"] * 3
    assert "timed out 3 times in a row; backing off until" in outcomes[3]
    assert "timed out 3 times in a row; backing off until" in outcomes[4]
    assert outcomes[5] == "timed out after 1s"
    assert "timed out 4 times in a row; backing off until" in outcomes[6]
    assert len(hanging.accepted) == 4
