"""Housekeeping on both engines: retention, checkpoints, the write probe, the summary.

`store` is a SQLite file or a PostgreSQL database (`store_target`, tests/pg.py); checkpoints
and the SQLite lock are SQLite's own (`sqlite_store`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_config

from monitor.cli.status import status
from monitor.config import FeedConfig
from monitor.models import Analysis, Item, Match
from monitor.store import AlertPlan, NewItem, PollWrite, Store

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _item(guid: str, *, alert: str | None = None, sinks: tuple[str, ...] = ("chat",)) -> NewItem:
    story = f"url:https://example.org/{guid}"
    match = Match(alert or "-", "Khanaqin", "Khanaqin", "title", 0, 8)
    plans = (AlertPlan(alert, "high", (match,), sinks),) if alert else ()
    return NewItem(
        Item(guid, f"https://example.org/{guid}", f"Khanaqin {guid}", "", NOW, story),
        Analysis("en", 0.99, (match,) if alert else ()),
        plans,
    )


def _poll(store: Store, feed_id: int, at: datetime, *items: NewItem) -> None:
    store.record_poll(
        PollWrite(feed_id, 200, None, None, None, "Feed", at + timedelta(minutes=10), items), at
    )


@pytest.fixture
def store(store_target: Path | str) -> Iterator[Store]:
    opened = Store.open(store_target)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "monitor.db")
    yield opened
    opened.close()


def _feeds(store: Store, *names: str) -> dict[str, int]:
    states = store.sync_feeds([FeedConfig(name=n, url=f"https://{n}.example/rss") for n in names])
    return {name: state.id for name, state in states.items()}


def test_prune_removes_old_items_but_keeps_those_with_alerts_and_their_deliveries(
    store: Store,
) -> None:
    feed = _feeds(store, "a")["a"]
    _poll(store, feed, NOW - timedelta(days=100), _item("old-1"), _item("old-alerted", alert="k"))
    _poll(store, feed, NOW - timedelta(days=10), _item("recent"))

    assert store.prune_items(NOW - timedelta(days=90)) == 1

    guids = {row[0] for row in store.db.execute("SELECT guid FROM items")}
    assert guids == {"old-alerted", "recent"}
    assert store.db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 1
    assert store.db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 1
    assert store.prune_items(NOW - timedelta(days=90)) == 0


def test_prune_goes_in_batches_of_at_most_limit(store: Store) -> None:
    feed = _feeds(store, "a")["a"]
    _poll(store, feed, NOW - timedelta(days=100), *(_item(f"old-{n}") for n in range(25)))
    removed = []
    while (count := store.prune_items(NOW - timedelta(days=90), limit=10)) > 0:
        removed.append(count)
    assert removed == [10, 10, 5]
    assert store.db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0


def test_prune_translations_drops_cache_entries_older_than_the_cutoff(store: Store) -> None:
    with store.db.atomic():
        for key, created in (("old", NOW - timedelta(days=91)), ("new", NOW)):
            store.db.execute(
                "INSERT INTO translations (key, text, created_at) VALUES (?, ?, ?)",
                [key, "text", created.isoformat(timespec="seconds")],
            )
    assert store.prune_translations(NOW - timedelta(days=90)) == 1
    assert [r[0] for r in store.db.execute("SELECT key FROM translations")] == ["new"]


def test_truncate_checkpoint_empties_the_wal_file(sqlite_store: Store) -> None:
    store = sqlite_store
    feed = _feeds(store, "a")["a"]
    _poll(store, feed, NOW, *(_item(f"i-{n}") for n in range(200)))
    wal = Path(str(store.path) + "-wal")
    assert wal.stat().st_size > 0
    result = store.checkpoint("TRUNCATE")
    assert not result.busy
    assert wal.stat().st_size == 0


def test_truncate_checkpoint_gives_up_quickly_while_a_reader_holds_an_old_snapshot(
    sqlite_store: Store,
) -> None:
    store = sqlite_store
    assert store.path is not None
    feed = _feeds(store, "a")["a"]
    reader = sqlite3.connect(store.path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM items").fetchone()
        _poll(store, feed, NOW, _item("during-read"))
        assert store.checkpoint("TRUNCATE", timeout=0.1).busy
    finally:
        reader.close()


def test_checkpoint_on_postgresql_is_left_to_the_server(pg_url: str) -> None:
    store = Store.open(pg_url)
    result = store.checkpoint("TRUNCATE")
    store.close()
    assert (result.busy, result.wal_pages, result.checkpointed) == (False, 0, 0)


def test_writable_on_postgresql_is_false_while_another_node_holds_the_write_lock(
    pg_url: str,
) -> None:
    store, other = Store.open(pg_url), Store.open(pg_url)
    assert store.writable()
    with other.write():
        assert not store.writable(timeout=0.1)
    assert store.writable()
    _feeds(store, "after-probe")
    reader = Store.open_readonly(pg_url)
    assert not reader.writable()
    for each in (store, other, reader):
        each.close()


def test_writable_is_true_for_a_healthy_file_and_false_while_another_writer_holds_the_lock(
    sqlite_store: Store,
) -> None:
    store = sqlite_store
    assert store.path is not None
    assert store.writable()
    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        assert not store.writable(timeout=0.1)
        other.execute("ROLLBACK")
        assert store.writable()
    finally:
        other.close()
    # The probe leaves the connection as it found it: normal writes still work.
    _feeds(store, "after-probe")


def test_summary_counts_configured_feeds_alerts_and_deliveries(store: Store) -> None:
    ids = _feeds(store, "ok", "failing", "fresh", "removed")
    _poll(store, ids["ok"], NOW - timedelta(hours=1), _item("a", alert="khanaqin"))
    _poll(store, ids["ok"], NOW - timedelta(days=3), _item("b", alert="khanaqin"))
    _poll(store, ids["removed"], NOW - timedelta(minutes=5), _item("c", alert="diyala"))
    store.record_failure(ids["failing"], "HTTP 503", 503, NOW, NOW - timedelta(minutes=2))
    store.record_failure(ids["failing"], "HTTP 503", 503, NOW, NOW - timedelta(minutes=1))
    with store.db.atomic():
        store.db.execute(
            "UPDATE deliveries SET status = 'sent' WHERE alert_id = "
            "(SELECT a.id FROM alerts a JOIN items i ON i.id = a.item_id WHERE i.guid = 'b')"
        )
        store.db.execute(
            "UPDATE deliveries SET status = 'dead' WHERE alert_id = "
            "(SELECT a.id FROM alerts a JOIN items i ON i.id = a.item_id WHERE i.guid = 'c')"
        )

    summary = store.summary(["ok", "failing", "fresh"], NOW)

    assert (summary.feeds_total, summary.feeds_ok, summary.feeds_failing) == (3, 1, 1)
    assert summary.feeds_never_polled == 1
    assert [(f.name, f.errors, f.last_error) for f in summary.failing_feeds] == [
        ("failing", 2, "HTTP 503")
    ]
    assert summary.items == 3
    assert [(a.watchlist, a.last_24h, a.total) for a in summary.alerts] == [
        ("diyala", 1, 1),
        ("khanaqin", 1, 2),
    ]
    assert [(d.sink, d.status, d.count) for d in summary.deliveries] == [
        ("chat", "dead", 1),
        ("chat", "pending", 1),
        ("chat", "sent", 1),
    ]
    assert summary.oldest_pending_seconds == 3600
    assert summary.last_poll_at == NOW - timedelta(minutes=1)
    assert summary.deliveries_with("pending") == 1
    assert (summary.alerts_24h(), summary.alerts_total()) == (2, 3)


def test_summary_of_an_empty_database(store: Store) -> None:
    summary = store.summary([], NOW)
    assert summary.feeds_total == summary.items == 0
    assert summary.alerts == () and summary.deliveries == ()
    assert summary.oldest_pending_seconds is None and summary.last_poll_at is None


def test_status_command_prints_the_picture_and_json(
    tmp_path: Path, store_target: Path | str
) -> None:
    config = write_config(
        tmp_path, feeds={"ok": "https://ok.example/rss"}, database=str(store_target)
    )
    store = Store.open(config.database)
    ids = _feeds(store, "ok")
    _poll(store, ids["ok"], datetime.now(UTC), _item("a", alert="khanaqin"))
    store.close()
    runner = CliRunner()
    obj = {"config_path": tmp_path / "config.yaml"}

    human = runner.invoke(status, [], obj=obj)
    assert human.exit_code == 0, human.output
    assert "feeds:      1 configured: 1 ok, 0 failing, 0 never polled" in human.output
    assert "alerts:     1 in the last 24h, 1 in all" in human.output
    assert "deliveries: 1 pending (oldest " in human.output
    assert "  chat: 1 pending, 0 sent, 0 dead" in human.output

    as_json = runner.invoke(status, ["--json"], obj=obj)
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["feeds_ok"] == 1 and data["items"] == 1
    assert data["alerts"] == [{"watchlist": "khanaqin", "last_24h": 1, "total": 1}]
    assert data["database"] == str(config.database)
    assert datetime.fromisoformat(data["last_poll_at"]).tzinfo is not None
