"""One runtime per config (`monitor.runtime`): a reload replaces it whole.

Real polls against scripted servers on 127.0.0.1 and a real SQLite file; what the servers saw
(headers, their own arrival times) and what the store wrote say which settings a poll used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import FeedServer, rss, write_config

from monitor.config import Config, PollingConfig
from monitor.fetch import Fetcher, FetchResult
from monitor.runtime import LazyAnalyzer, build_runtime
from monitor.service import Monitor, PollReport
from monitor.store import utcnow

FEED = rss([{"title": "Dam gates opened", "guid": "d-1", "link": "https://d.example.org/1"}])
DELAY = 0.4
"""Seconds each of the limit test's feeds takes to answer."""

# Every polling setting, each with a different value after the reload.
OLD: dict[str, Any] = {
    "interval": "10m",
    "timeout": "5s",
    "concurrency": 16,
    "per_host": 4,
    "backfill": "24h",
    "max_backoff": "6h",
    "max_bytes": 10_000_000,
    "jitter": 0.5,
    "user_agent": "desk/1",
    "allow_private": False,
}
NEW: dict[str, Any] = {
    "interval": "20m",
    "timeout": "1s",
    "concurrency": 2,
    "per_host": 1,
    "backfill": "7d",
    "max_backoff": "5m",
    "max_bytes": 2048,
    "jitter": 0,
    "user_agent": "desk/2",
    "allow_private": True,
}


def test_the_reload_test_changes_every_polling_setting() -> None:
    """A polling setting added later fails here until the test below covers it."""
    assert set(OLD) == set(NEW) == set(PollingConfig.model_fields)
    old, new = PollingConfig.model_validate(OLD), PollingConfig.model_validate(NEW)
    assert [k for k in OLD if getattr(old, k) == getattr(new, k)] == []


class _Recording(Fetcher):
    """A real fetcher that notes the settings of each request it makes, and its closing."""

    events: ClassVar[list[tuple[str, PollingConfig]]] = []

    async def get(self, *args: Any, **kwargs: Any) -> FetchResult:
        self.events.append(("get", self.polling))
        try:
            return await super().get(*args, **kwargs)
        finally:
            self.events.append(("got", self.polling))

    async def aclose(self) -> None:
        self.events.append(("closed", self.polling))
        await super().aclose()


@pytest.fixture
def recording() -> Iterator[list[tuple[str, PollingConfig]]]:
    events: list[tuple[str, PollingConfig]] = []
    _Recording.events = events
    yield events


@pytest.fixture
def more_servers() -> Iterator[tuple[FeedServer, FeedServer]]:
    """Two more hosts (another port is another host to the per-host limit)."""
    servers = FeedServer(), FeedServer()
    try:
        yield servers
    finally:
        for server in servers:
            server.close()


def test_a_reload_that_changes_every_polling_setting_leaves_no_old_value_in_a_later_poll(
    feed_server: FeedServer,
    more_servers: tuple[FeedServer, FeedServer],
    recording: list[tuple[str, PollingConfig]],
    tmp_path: Path,
) -> None:
    b, c = more_servers
    three_days_ago = utcnow() - timedelta(days=3)
    feeds = {
        "Wire": feed_server.route("/wire.xml", FEED),
        "Slow": feed_server.route("/slow.xml", FEED, delay=1.5),
        "Big": feed_server.route("/big.xml", FEED + b" " * 4096),
        "Down": feed_server.route("/down.xml", status=500),
        # Never polled before the reload: its first poll decides by `backfill`.
        "Archive": feed_server.route(
            "/archive.xml",
            rss([{"title": "Flood at the dam", "guid": "a-1", "pubDate": three_days_ago}]),
        ),
        # The limits: two feeds on one host, one on each of two others.
        "A1": feed_server.route("/a1.xml", FEED, delay=DELAY),
        "A2": feed_server.route("/a2.xml", FEED, delay=DELAY),
        "B": b.route("/b.xml", FEED, delay=DELAY),
        "C": c.route("/c.xml", FEED, delay=DELAY),
    }
    watchlists = {"Dams": ["flood"]}

    def config(polling: dict[str, Any]) -> Config:
        return write_config(tmp_path, feeds=feeds, watchlists=watchlists, polling=polling)

    old, new = config(OLD), config(NEW)

    async def main() -> tuple[dict[str, PollReport], datetime, list[dict[str, Any]]]:
        async with Monitor(old, parse_workers=1, make_fetcher=_Recording) as monitor:
            await monitor.poll_once(["Wire"])
            recording.clear()
            await monitor.reload(new)
            reports = {r.feed: r for r in await monitor.poll_once(["A1", "A2", "B", "C"])}
            before = utcnow()
            for name in ("Wire", "Slow", "Big", "Down", "Archive"):
                (reports[name],) = await monitor.poll_once([name])
            rows = list(monitor.store.feed_health())
        return reports, before, rows

    reports, before, rows = asyncio.run(main())
    by_name = {row["name"]: row for row in rows}

    # Every request after the reload went through a fetcher of the new settings (this is
    # what covers `allow_private` too), and the old fetcher was closed.
    gets = [polling for event, polling in recording if event == "get"]
    assert len(gets) == 9 and all(p == new.polling for p in gets)
    assert ("closed", old.polling) in recording

    # user_agent
    assert [r.headers["user-agent"] for r in feed_server.requests_for("/wire.xml")] == [
        "desk/1",
        "desk/2",
    ]
    # timeout, max_bytes
    assert (reports["Slow"].outcome, reports["Slow"].error) == ("failed", "timed out after 1s")
    assert reports["Big"].error is not None and "2,048-byte cap" in reports["Big"].error
    # interval and jitter: exactly the new interval (the store may round up to a second).
    wire = by_name["Wire"]
    gap = datetime.fromisoformat(wire["next_poll_at"]) - datetime.fromisoformat(
        wire["last_polled_at"]
    )
    assert timedelta(minutes=20) <= gap <= timedelta(minutes=20, seconds=1), gap
    # max_backoff: a first failure waits min(interval, max_backoff), so 5 min, not 18-22.
    down = datetime.fromisoformat(by_name["Down"]["next_poll_at"])
    assert reports["Down"].outcome == "failed"
    assert down <= before + timedelta(minutes=5, seconds=2), down - before
    # backfill: a three-day-old item alerts on a first poll under 7d (24h would hold it back).
    assert (reports["Archive"].alerts, reports["Archive"].held_back) == (1, 0)

    # per_host 1: the two feeds of one host one after the other (each takes DELAY to answer);
    # concurrency 2: of four requests on three hosts, the third waits for one of the first two.
    a1, a2 = (feed_server.requests_for(p)[0].at for p in ("/a1.xml", "/a2.xml"))
    assert abs(a2 - a1) >= DELAY
    arrivals = sorted([a1, a2, b.requests_for("/b.xml")[0].at, c.requests_for("/c.xml")[0].at])
    assert arrivals[2] - arrivals[0] >= DELAY
    assert all(reports[n].outcome == "new" for n in ("A1", "A2", "B", "C"))


def test_a_poll_under_way_finishes_under_the_runtime_it_started_with(
    feed_server: FeedServer, recording: list[tuple[str, PollingConfig]], tmp_path: Path
) -> None:
    """A reload during a poll changes nothing in it: its fetcher (old timeout, old user agent)
    is closed only after it; the next poll has the new settings."""
    url = feed_server.route("/feed.xml", FEED, delay=1.5)
    feeds = {"Wire": url}
    old = write_config(tmp_path, feeds=feeds, polling={"timeout": "5s", "user_agent": "desk/1"})
    new = write_config(tmp_path, feeds=feeds, polling={"timeout": "1s", "user_agent": "desk/2"})

    async def main() -> tuple[PollReport, PollReport]:
        async with Monitor(old, parse_workers=1, make_fetcher=_Recording) as monitor:
            polling = asyncio.create_task(monitor.poll_once())
            while not feed_server.requests_for("/feed.xml"):  # the request is on the wire
                await asyncio.sleep(0.01)
            await monitor.reload(new)
            assert monitor.runtime.config is new
            (during,) = await polling
            (after,) = await monitor.poll_once()
        return during, after

    during, after = asyncio.run(main())
    assert during.outcome == "new"
    assert (after.outcome, after.error) == ("failed", "timed out after 1s")
    agents = [r.headers["user-agent"] for r in feed_server.requests_for("/feed.xml")]
    assert agents == ["desk/1", "desk/2"]
    # The old fetcher's request ended before it was closed.
    assert recording.index(("got", old.polling)) < recording.index(("closed", old.polling))


def test_a_poll_that_finds_nothing_new_builds_no_analyzer(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.route("/feed.xml", FEED, etag='"v1"')
    config = write_config(tmp_path, feeds={"Wire": url}, watchlists={"Dams": ["flood"]})

    async def main() -> tuple[bool, bool, str]:
        async with Monitor(config, parse_workers=1) as monitor:
            await monitor.poll_once()  # stores the item: analyzed
        async with Monitor(config, parse_workers=1) as monitor:
            (report,) = await monitor.poll_once()  # 304
            unbuilt = monitor.runtime.analyzer.built is None
            await monitor.reload(config)
            still = monitor.runtime.analyzer.built is None
        return unbuilt, still, report.outcome

    assert asyncio.run(main()) == (True, True, "not_modified")


def test_a_runtime_keeps_the_parts_whose_settings_did_not_change(tmp_path: Path) -> None:
    base = write_config(tmp_path, polling={"concurrency": 4})
    same = write_config(tmp_path, polling={"concurrency": 4}, watchlists={"Dams": ["flood"]})
    slower = write_config(tmp_path, polling={"concurrency": 4, "timeout": "9s"})
    fewer = write_config(tmp_path, polling={"concurrency": 2})

    first = build_runtime(base, Fetcher)
    kept = build_runtime(same, Fetcher, first)
    refetched = build_runtime(slower, Fetcher, kept)
    narrowed = build_runtime(fewer, Fetcher, refetched)
    assert (kept.config, kept.fetcher, kept.slots) == (same, first.fetcher, first.slots)
    assert kept.analyzer is not first.analyzer  # new watchlists, new analyzer
    assert refetched.fetcher is not kept.fetcher and refetched.slots is kept.slots
    assert refetched.fetcher.polling == slower.polling
    assert narrowed.slots is not refetched.slots
    with pytest.raises(AttributeError):
        narrowed.config = base  # type: ignore[misc]  # frozen: replaced whole, never edited


def test_a_new_configs_analyzer_reuses_the_language_identifier_and_keeps_no_chain(
    tmp_path: Path,
) -> None:
    first = write_config(tmp_path, watchlists={"Dams": ["flood"]})
    second = write_config(tmp_path, watchlists={"Dams": ["flood", "dam"]})
    old = LazyAnalyzer(first)
    assert old.built is None
    old.get().analyze("The river rose overnight and the dam held", "")  # builds the identifier
    new = LazyAnalyzer(second, old)
    assert new.built is None  # built on first use, not when the config arrives
    assert new.get().identifier is not None and new.get().identifier is old.get().identifier
    assert [m.term for m in new.get().match("Dam gates opened", "")] == ["dam"]
    # Holders never used in between take nothing from each other, and hold on to nothing.
    unused = LazyAnalyzer(first, LazyAnalyzer(second, LazyAnalyzer(first)))
    assert unused._previous is None


def test_reloads_that_overlap_leave_one_runtime_and_close_every_fetcher_they_replaced(
    recording: list[tuple[str, PollingConfig]], tmp_path: Path
) -> None:
    first, second, third = (
        write_config(tmp_path, polling={"user_agent": name}) for name in ("one", "two", "three")
    )

    async def main() -> Config:
        async with Monitor(first, parse_workers=1, make_fetcher=_Recording) as monitor:
            assert monitor.analyzer is not None  # built: a reload now builds the next off the loop
            await asyncio.gather(monitor.reload(second), monitor.reload(third))
            current = monitor.runtime
            assert current.fetcher.polling == current.config.polling
            return current.config

    last = asyncio.run(main())
    closed = [polling.user_agent for event, polling in recording if event == "closed"]
    # Each replaced fetcher closed by the reload that retired it, the last one by aclose().
    assert sorted(closed) == ["one", "three", "two"]
    assert closed[-1] == last.polling.user_agent
