"""The 304s of a cycle commit together: `StoreThread.record_unchanged` and `Monitor`'s polls."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import FeedServer, rss
from structlog.testing import capture_logs

from monitor.config import FeedConfig
from monitor.errors import StoreFileLost
from monitor.service import Monitor
from monitor.store import PollWrite, Store, iso
from monitor.store.thread import StoreThread

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ITEMS = [{"title": "News", "link": "https://example.org/1", "published": NOW}]


def _commits(store: Store) -> list[str]:
    """The COMMITs on the store's connection from now on (traced on the store's thread)."""
    seen: list[str] = []
    store.db.conn.set_trace_callback(
        lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None
    )
    return seen


def _feeds(store: Store, count: int) -> dict[str, int]:
    configs = [FeedConfig(name=f"f{n}", url=f"https://example.org/{n}.xml") for n in range(count)]
    return {name: state.id for name, state in store.sync_feeds(configs).items()}


def _unchanged(feed_id: int, etag: str = '"v2"') -> PollWrite:
    return PollWrite(feed_id, 304, etag, None, None, None, NOW + timedelta(minutes=10))


def test_a_cycle_of_304s_is_one_transaction(feed_server: FeedServer, make_config: Any) -> None:
    feeds = {f"f{n}": feed_server.route(f"/{n}.xml", rss(ITEMS), etag=f'"v{n}"') for n in range(20)}
    config = make_config(feeds=feeds)

    async def main() -> tuple[list[str], list[str], dict[str, dict[str, Any]]]:
        async with Monitor(config, parse_workers=1) as monitor:
            await monitor.poll_once()
            commits = _commits(monitor.store)
            reports = await monitor.poll_once()
            health = {row["name"]: row for row in monitor.store.feed_health()}
            return [r.outcome for r in reports], commits, health

    outcomes, commits, health = asyncio.run(main())
    assert outcomes == ["not_modified"] * 20
    # poll-once's lease of the 20 feeds (monitor.store.cluster), then their 304s in one.
    assert len(commits) == 2
    assert {row["last_status"] for row in health.values()} == {304}


def test_a_single_poll_is_committed_when_it_returns(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route("/a.xml", rss(ITEMS), etag='"v1"')
    config = make_config(feeds={"a": url})

    async def main() -> tuple[str, int | None]:
        async with Monitor(config, parse_workers=1) as monitor:
            await monitor.poll_feed(config.feeds[0])
            report = await monitor.poll_feed(config.feeds[0])
            (row,) = monitor.store.feed_health()
            return report.outcome, row["last_status"]

    assert asyncio.run(main()) == ("not_modified", 304)


def test_a_write_after_a_queued_304_lands_after_it(store_target: Path | str) -> None:
    store = Store.open(store_target)
    ids = _feeds(store, 1)
    thread = StoreThread(store)

    async def main() -> int:
        thread.record_unchanged(_unchanged(ids["f0"]), NOW, "f0")
        # A failure of the same feed made after the 304: it must not be overwritten by it.
        return await thread.call(
            store.record_failure, ids["f0"], "HTTP 500", 500, NOW + timedelta(hours=1), NOW
        )

    assert asyncio.run(main()) == 1
    (row,) = store.feed_health()
    thread.close()
    assert (row["last_status"], row["error_count"], row["last_error"]) == (500, 1, "HTTP 500")


def test_queued_304s_are_committed_on_close(store_target: Path | str) -> None:
    path = store_target
    store = Store.open(path)
    ids = _feeds(store, 3)
    thread = StoreThread(store)

    async def main() -> None:
        for feed_id in ids.values():
            thread.record_unchanged(_unchanged(feed_id), NOW, "f")

    asyncio.run(main())
    thread.close()
    reopened = Store.open(path)
    rows = reopened.feed_health()
    reopened.close()
    assert {(row["last_status"], row["last_ok_at"]) for row in rows} == {(304, iso(NOW))}


def test_a_failed_batch_is_logged_and_the_next_one_commits(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    store = Store.open(path)
    ids = _feeds(store, 2)
    store.db.execute("PRAGMA busy_timeout = 0")
    thread = StoreThread(store)
    other = sqlite3.connect(path, isolation_level=None)

    async def main() -> list[dict[str, Any]]:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with capture_logs() as logs:
            thread.record_unchanged(_unchanged(ids["f0"]), NOW, "f0")
            await thread.call(store.feed_states)  # hands the batch over, waits for it
        other.execute("ROLLBACK")
        thread.record_unchanged(_unchanged(ids["f1"]), NOW, "f1")
        await thread.flush()
        return logs

    logs = asyncio.run(main())
    other.close()
    rows = {row["name"]: row["last_status"] for row in store.feed_health()}
    thread.close()
    failed = [entry for entry in logs if entry["event"] == "store.write_failed"]
    assert [(e["feeds"], e["log_level"]) for e in failed] == [(1, "error")]
    assert "locked" in failed[0]["error"]
    assert rows == {"f0": None, "f1": 304}


def test_a_cycle_of_304s_is_one_log_line(feed_server: FeedServer, make_config: Any) -> None:
    """A line per 304 was a tenth of the daemon's CPU per poll (issue 14): one per batch."""
    feeds = {f"f{n}": feed_server.route(f"/{n}.xml", rss(ITEMS), etag=f'"v{n}"') for n in range(20)}
    config = make_config(feeds=feeds)

    async def main() -> list[dict[str, Any]]:
        async with Monitor(config, parse_workers=1) as monitor:
            await monitor.poll_once()
            with capture_logs() as logs:
                await monitor.poll_once()
            return logs

    logs = asyncio.run(main())
    [line] = [e for e in logs if e["event"] == "feeds.unchanged"]
    assert (line["log_level"], line["status"], line["count"]) == ("info", 304, 20)
    assert sorted(line["feeds"]) == sorted(feeds)
    assert "feed" not in line  # not tagged with the poll whose 304 opened the batch
    assert {e["log_level"] for e in logs if e["event"] == "feed.polled"} <= {"debug"}


def test_a_batch_that_finds_the_database_deleted_stops_the_daemon(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    store = Store.open(path)
    ids = _feeds(store, 1)
    lost: list[StoreFileLost] = []
    thread = StoreThread(store, on_lost=lost.append)

    async def main() -> None:
        path.unlink()
        thread.record_unchanged(_unchanged(ids["f0"]), NOW, "f0")
        with pytest.raises(StoreFileLost):
            await thread.flush()
        await asyncio.sleep(0)  # the batch's own report reaches the loop

    asyncio.run(main())
    thread.close()
    assert [error.how for error in lost] == ["deleted"]
