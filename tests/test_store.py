"""The SQLite store: schema, migrations, and the one-transaction rule for alerts."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import FeedConfig
from monitor.errors import StoreError
from monitor.models import Analysis, Item, Match
from monitor.store import AlertPlan, NewItem, PollWrite, Store

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _item(guid: str, story: str = "url:https://example.org/a") -> NewItem:
    match = Match("khanaqin", "Khanaqin", "Khanaqin", "title", 0, 8)
    return NewItem(
        Item(guid, "https://example.org/a", "Khanaqin attack", "", NOW, story),
        Analysis("en", 0.99, (match,)),
        (AlertPlan("khanaqin", "high", (match,), ("chat", "siem")),),
    )


def _write(feed_id: int, *items: NewItem) -> PollWrite:
    return PollWrite(feed_id, 200, '"v1"', None, None, "Feed", NOW + timedelta(minutes=10), items)


def test_migrations_apply_once_and_reopen_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    store = Store.open(path)
    # In the order they were written: each builds on the ones before.
    assert store.applied_migrations()[:5] == [
        "0001_initial",
        "0002_outbox",
        "0003_translations",
        "0004_alerts_item_index",
        "0005_views",
    ]
    first = store.applied_migrations()
    store.close()
    again = Store.open(path)
    assert again.applied_migrations() == first
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    path.write_text("not a database " * 100)
    with pytest.raises(StoreError, match=r"monitor\.db: cannot open the database"):
        Store.open(path)


def test_alert_and_its_deliveries_are_written_together_once_per_story(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "monitor.db")
    states = store.sync_feeds(
        [
            FeedConfig(name="a", url="https://a.example/rss"),
            FeedConfig(name="b", url="https://b.example/rss"),
        ]
    )
    first = store.record_poll(_write(states["a"].id, _item("a-1")), NOW)
    assert (first.items, first.alerts, first.deliveries) == (1, 1, 2)
    # The same story from another feed: stored as an item, no second alert or deliveries.
    second = store.record_poll(_write(states["b"].id, _item("b-9")), NOW)
    assert (second.items, second.alerts, second.deliveries) == (1, 0, 0)
    statuses = store.db.execute("SELECT sink, status FROM deliveries ORDER BY sink").fetchall()
    assert statuses == [("chat", "pending"), ("siem", "pending")]
    store.close()


def test_schema_refuses_duplicate_items_and_unknown_delivery_status(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "monitor.db")
    feed_id = store.sync_feeds([FeedConfig(name="a", url="https://a.example/rss")])["a"].id
    store.record_poll(_write(feed_id, _item("a-1")), NOW)
    assert store.record_poll(_write(feed_id, _item("a-1")), NOW).items == 0
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute("UPDATE deliveries SET status = 'lost'")
    store.close()


def test_changing_a_feeds_url_resets_its_validators_and_errors(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "monitor.db")
    feed_id = store.sync_feeds([FeedConfig(name="a", url="https://a.example/rss")])["a"].id
    store.record_poll(_write(feed_id), NOW)
    store.record_failure(feed_id, "HTTP 500", 500, NOW + timedelta(minutes=20), NOW)
    state = store.sync_feeds([FeedConfig(name="a", url="https://a.example/new")])["a"]
    assert (state.id, state.url, state.etag, state.error_count) == (
        feed_id,
        "https://a.example/new",
        None,
        0,
    )
    store.close()


def test_a_sqlite_failure_on_the_store_thread_is_a_store_error_naming_the_file(
    tmp_path: Path,
) -> None:
    import asyncio
    import sqlite3

    from monitor.errors import StoreError
    from monitor.store.thread import StoreThread

    thread = StoreThread(Store.open(tmp_path / "monitor.db"))

    def locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    try:
        with pytest.raises(StoreError, match=r"monitor\.db: database is locked"):
            asyncio.run(thread.call(locked))
    finally:
        thread.close()


def test_untranslated_items_keep_the_backfill_rule_they_were_stored_under(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "monitor.db")
    feed_id = store.sync_feeds([FeedConfig(name="ar", url="https://example.org/ar")])["ar"].id

    def arabic(guid: str, published: datetime) -> NewItem:
        item = Item(guid, None, f"خبر {guid}", "", published, f"title:{guid}")
        return NewItem(item, Analysis("ar", 0.99, ()), ())

    first_poll = [
        arabic("old", NOW - timedelta(days=30)),
        arabic("fresh", NOW - timedelta(hours=1)),
    ]
    store.record_poll(_write(feed_id, *first_poll), NOW)
    store.record_poll(
        _write(feed_id, arabic("later", NOW - timedelta(days=30))), NOW + timedelta(hours=1)
    )
    english = NewItem(
        Item("en", None, "English", "", NOW, "title:en"), Analysis("en", 0.99, ()), ()
    )
    store.record_poll(_write(feed_id, english), NOW + timedelta(hours=2))

    found = store.untranslated_items(NOW - timedelta(days=1), backfill=timedelta(hours=24))
    store.close()
    # Newest first; English is never translated; an old item of the feed's first poll was
    # backfill then and stays so, while a later poll's old item alerts as it would have.
    assert [(i.title, i.alertable) for i in found] == [
        ("خبر later", True),
        ("خبر fresh", True),
        ("خبر old", False),
    ]
