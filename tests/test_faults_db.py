"""The database locked by another process for a while: news-monitor waits, then carries on.

Another process (a plain `sqlite3` connection, as a `sqlite3` shell or a backup job would be)
holds a write transaction on the daemon's database for a couple of seconds. The store's busy
timeout (30 s) is meant to cover that: polls wait, then store everything; nothing crashes and
nothing is lost. `invariants()` and `PRAGMA integrity_check` run afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from conftest import FeedServer, rss
from invariants import invariants

from monitor.service import Monitor

WATCH = {"khanaqin": ["Khanaqin"], "diyala": ["Diyala"]}
FIRST = [
    {"title": "Khanaqin market reopens", "guid": "d-1", "link": "https://db.example.org/1"},
    {"title": "Farmers begin the sowing", "guid": "d-2", "link": "https://db.example.org/2"},
]
SECOND = [
    {"title": "Diyala bridge repaired", "guid": "d-3", "link": "https://db.example.org/3"},
    {"title": "Rain expected on Sunday", "guid": "d-4", "link": "https://db.example.org/4"},
    *FIRST,
]

_LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN " + sys.argv[2])
db.execute("CREATE TABLE IF NOT EXISTS _lock_probe (x)")  # really hold the write lock
print("locked", flush=True)
time.sleep(float(sys.argv[3]))
db.execute("ROLLBACK")
print("released", flush=True)
"""


@contextlib.contextmanager
def write_locked(db_path: Path, seconds: float, mode: str = "EXCLUSIVE") -> Iterator[float]:
    """Another process holds a write transaction on `db_path` for `seconds` from entry.

    Yields the monotonic time the lock will be released; waits for the release on exit.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", _LOCKER, str(db_path), mode, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        assert process.stdout.readline().strip() == "locked"
        yield time.monotonic() + seconds
        assert process.stdout.readline().strip() == "released"
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def assert_intact(db_path: Path) -> None:
    db = sqlite3.connect(db_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        probe = "SELECT COUNT(*) FROM sqlite_master WHERE name = '_lock_probe'"
        assert db.execute(probe).fetchone() == (0,), "the other process's rollback was lost"
    finally:
        db.close()


def test_a_poll_waits_for_a_write_lock_and_stores_everything(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route("/a.xml", rss(FIRST))
    config = make_config(feeds={"a": url}, watchlists=WATCH)

    async def main() -> tuple[float, int, int]:
        async with Monitor(config, parse_workers=1) as monitor:
            await monitor.poll_once()
            feed_server.route("/a.xml", rss(SECOND))
            with write_locked(config.database, 1.5) as released:
                [report] = await monitor.poll_once()
                finished = time.monotonic()
            assert report.outcome == "new", report
            return finished - released, report.new_items, report.alerts

    after_release, new_items, alerts = asyncio.run(main())
    assert after_release > -0.05, "the poll finished while the database was still locked"
    assert after_release < 1.0, "the poll did not go on promptly after the lock was released"
    assert (new_items, alerts) == (2, 1)
    summary = invariants(config.database, config)
    assert (summary.items, summary.alerts) == (4, 2)
    assert_intact(config.database)


class Daemon:
    """`news-monitor run` as a real process; its JSON log events are collected as they come."""

    def __init__(self, config_path: Path) -> None:
        self.events: list[dict[str, Any]] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config_path), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stderr is not None
        os.set_blocking(self.process.stderr.fileno(), False)

    def read(self) -> None:
        assert self.process.stderr is not None
        while line := self.process.stderr.readline():
            with contextlib.suppress(ValueError):  # APScheduler writes plain text lines too
                self.events.append(json.loads(line))

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], since: int = 0, timeout: float = 15.0
    ) -> dict[str, Any]:
        """The first event from number `since` on that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read()
            for event in self.events[since:]:
                if predicate(event):
                    return event
            if self.process.poll() is not None:
                self.read()
                raise AssertionError(
                    f"the daemon exited ({self.process.returncode}): {self.events[-5:]}"
                )
            time.sleep(0.05)
        raise AssertionError(f"no such event within {timeout}s; last: {self.events[-5:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=15)
        self.read()
        assert self.process.stderr is not None
        self.process.stderr.close()
        return code


def polled(new: int | None = None, status: int | None = None) -> Callable[[dict[str, Any]], bool]:
    def check(event: dict[str, Any]) -> bool:
        return (
            event.get("event") == "feed.polled"
            and (new is None or event.get("new") == new)
            and (status is None or event.get("status") == status)
        )

    return check


def assert_no_errors(daemon: Daemon) -> None:
    bad = [e for e in daemon.events if e.get("level") in ("error", "critical")]
    bad += [e for e in daemon.events if e.get("event") in ("feed.crashed", "feed.failed")]
    assert bad == [], bad


def test_the_daemon_waits_out_a_locked_database_and_loses_nothing(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route("/a.xml", rss(FIRST), etag='"v1"')
    config = make_config(feeds={"a": url}, watchlists=WATCH, polling={"interval": "1s"})
    daemon = Daemon(config.source)
    try:
        daemon.wait_for(polled(new=2, status=200))
        feed_server.route("/a.xml", rss(SECOND), etag='"v2"')
        with write_locked(config.database, 2.5) as released:
            mark = len(daemon.events)
            # The next poll fetches the new document, then waits to store it.
            time.sleep(1.5)
            daemon.read()
            unchanged = [e for e in daemon.events[mark:] if e.get("event") == "feeds.unchanged"]
            assert [e for e in daemon.events[mark:] if polled()(e)] + unchanged == [], (
                "a poll was stored while the database was locked"
            )
        stored = daemon.wait_for(polled(new=2, status=200), since=mark)
        assert stored["alerts"] == 1
        assert time.monotonic() >= released
        # Either the feed was leased before the lock and its poll waited to store, or the
        # lease itself waited (the schedule is in the store): then it fetched only after.
        fetched = max(r.at for r in feed_server.requests if r.path == "/a.xml")
        assert stored["seconds"] > 0.5 or fetched >= released - 0.1, (
            "the poll that met the lock did not wait for it"
        )
        # And it carries on: the next scheduled poll is an ordinary 304 (one line per batch).
        daemon.wait_for(lambda e: e.get("event") == "feeds.unchanged", since=mark)
        assert_no_errors(daemon)
    finally:
        code = daemon.stop()
    assert code == 0
    summary = invariants(config.database, config)
    assert (summary.items, summary.alerts) == (4, 2)
    assert_intact(config.database)


def test_the_daemon_starts_while_another_process_holds_the_write_lock(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route("/a.xml", rss(FIRST), etag='"v1"')
    config = make_config(feeds={"a": url}, watchlists=WATCH, polling={"interval": "1s"})
    asyncio.run(_create(config))  # the database exists, as on any restart
    with write_locked(config.database, 2.0):
        daemon = Daemon(config.source)
        time.sleep(1.0)  # the daemon starts up under the lock
    try:
        daemon.wait_for(polled(new=2, status=200))
        assert_no_errors(daemon)
    finally:
        code = daemon.stop()
    assert code == 0
    invariants(config.database, config)
    assert_intact(config.database)


async def _create(config: Any) -> None:
    async with Monitor(config, parse_workers=1):
        pass
