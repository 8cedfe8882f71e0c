"""The store on both engines: schema, migrations, and the one-transaction rule for alerts.

Tests taking `store_target` run twice: on a SQLite file and on a fresh PostgreSQL database
(tests/pg.py). The ones about what is one engine's own say so in their name."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pg import integrity_errors

from monitor.config import FeedConfig
from monitor.errors import StoreError
from monitor.models import Analysis, Item, Match
from monitor.store import AlertPlan, NewItem, PollWrite, Store, iso, shown

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


def test_migrations_apply_once_and_reopen_cleanly(store_target: Path | str) -> None:
    path = store_target
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
    if again.engine == "sqlite":
        assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    path.write_text("not a database " * 100)
    with pytest.raises(StoreError, match=r"monitor\.db: cannot open the database"):
        Store.open(path)


def test_alert_and_its_deliveries_are_written_together_once_per_story(
    store_target: Path | str,
) -> None:
    store = Store.open(store_target)
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


def test_stored_times_have_milliseconds_and_are_shown_to_the_second() -> None:
    moment = datetime(2026, 11, 24, 15, 0, 0, 123456, tzinfo=timezone(timedelta(hours=3)))
    assert iso(moment) == "2026-11-24T12:00:00.123+00:00"
    assert iso(NOW) == "2026-11-24T12:00:00.000+00:00"
    assert iso(None) is None
    # People see what they always saw, from a stored time of either format or a datetime.
    assert shown(iso(moment)) == shown("2026-11-24T12:00:00+00:00") == shown(moment)
    assert shown(moment) == "2026-11-24T12:00:00+00:00"


def test_rows_from_before_milliseconds_are_due_in_the_right_order_among_new_ones(
    store_target: Path | str,
) -> None:
    """A database written before stored times had milliseconds keeps its whole-second rows
    (`...T12:00:00+00:00`); they are compared as text with new ones (`...T12:00:00.250+00:00`)
    in one query. `+` sorts before `.`: a whole second is never after a time within it."""
    old, old_next = "2026-11-24T12:00:00+00:00", "2026-11-24T12:00:01+00:00"
    ms = timedelta(milliseconds=1)
    store = Store.open(store_target)
    try:
        names = ["old", "old-next", "new"]
        states = store.sync_feeds(
            [FeedConfig(name=n, url=f"https://{n}.example/rss") for n in names]
        )
        store.schedule_feeds(names, {"new": NOW + 250 * ms})
        for name, text in (("old", old), ("old-next", old_next)):
            store.db.execute("UPDATE feeds SET next_poll_at = ? WHERE name = ?", [text, name])
        lease = timedelta(minutes=1)
        # Due feeds: the old row at 12:00:00 is due 100 ms later, the new one is not yet.
        first = store.lease_due("a", NOW + 100 * ms, NOW + lease, 10)
        assert [s.name for s in first.feeds] == ["old"]
        assert first.next_due == "2026-11-24T12:00:00.250+00:00"
        second = store.lease_due("a", NOW + 999 * ms, NOW + lease, 10)
        assert [s.name for s in second.feeds] == ["new"]
        assert second.next_due == old_next
        assert [s.name for s in store.lease_due("a", NOW + 1000 * ms, NOW + lease, 10).feeds] == [
            "old-next"
        ]

        # Due deliveries: the same on the outbox, one sink, three reports.
        items = [_item(f"a-{n}", f"url:https://example.org/{n}") for n in range(3)]
        store.record_poll(_write(states["old"].id, *items), NOW)
        ids = [
            row[0]
            for row in store.db.execute(
                "SELECT id FROM deliveries WHERE sink = 'chat' ORDER BY id"
            ).fetchall()
        ]
        for delivery, text in zip(ids, (old, old_next, iso(NOW + 750 * ms)), strict=True):
            store.db.execute(
                "UPDATE deliveries SET next_attempt_at = ? WHERE id = ?", [text, delivery]
            )
        window = NOW - timedelta(hours=1)
        due = [d.id for d in store.outbox_batch("chat", NOW + 500 * ms, window).due]
        assert due == [ids[0]]
        due = [d.id for d in store.outbox_batch("chat", NOW + 999 * ms, window).due]
        assert due == [ids[0], ids[2]]
        assert store.next_due("chat") == NOW
    finally:
        store.close()


def test_schema_refuses_duplicate_items_and_unknown_delivery_status(
    store_target: Path | str,
) -> None:
    store = Store.open(store_target)
    feed_id = store.sync_feeds([FeedConfig(name="a", url="https://a.example/rss")])["a"].id
    store.record_poll(_write(feed_id, _item("a-1")), NOW)
    assert store.record_poll(_write(feed_id, _item("a-1")), NOW).items == 0
    with pytest.raises(integrity_errors()):
        store.db.execute("UPDATE deliveries SET status = 'lost'")
    store.close()


def test_changing_a_feeds_url_resets_its_validators_and_errors(store_target: Path | str) -> None:
    store = Store.open(store_target)
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


def test_untranslated_items_keep_the_backfill_rule_they_were_stored_under(
    store_target: Path | str,
) -> None:
    store = Store.open(store_target)
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


# PostgreSQL's own ------------------------------------------------------------------------


def test_pyformat_turns_placeholders_into_psycopg_ones_outside_quotes_and_comments() -> None:
    from monitor.store.dialect import pyformat

    sql = (
        "SELECT '?', \"a?\", x || '%' FROM t -- why?\n"
        "WHERE a = ? AND b LIKE 'it''s ?%' AND c % 2 = ?"
    )
    assert pyformat(sql) == (
        "SELECT '?', \"a?\", x || '%%' FROM t -- why?\n"
        "WHERE a = %s AND b LIKE 'it''s ?%%' AND c %% 2 = %s"
    )


def test_nodes_starting_together_on_a_fresh_database_migrate_once(
    store_target: Path | str,
) -> None:
    import threading

    opened: list[Store] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def node() -> None:
        start.wait()
        try:
            opened.append(Store.open(store_target))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=node) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = opened[0]
    rows = store.db.execute(
        "SELECT name, COUNT(*) FROM _sqlite_migrations GROUP BY name ORDER BY name"
    ).fetchall()
    assert [name for name, _ in rows] == store.applied_migrations()
    assert {count for _, count in rows} == {1}
    assert store.db.execute("SELECT COUNT(*) FROM incident_state").fetchone()[0] == 1
    for each in opened:
        each.close()


def test_a_postgresql_password_is_never_shown(postgres_server: object, tmp_path: Path) -> None:
    import socket

    from monitor.config import load_config

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://news:s3cret-pw@127.0.0.1:{port}/news"
    with pytest.raises(StoreError) as caught:
        Store.open(url)
    assert str(caught.value).startswith(f"postgresql://news@127.0.0.1:{port}/news: cannot connect")
    assert "s3cret-pw" not in str(caught.value)
    (tmp_path / "config.yaml").write_text("database: ${DB_URL}\n")
    config = load_config(tmp_path / "config.yaml", env={"DB_URL": url})
    assert str(config.database) == f"postgresql://news@127.0.0.1:{port}/news"
    assert "s3cret-pw" not in repr(config.database)


def test_a_postgresql_reader_finds_no_tables_or_cannot_write(pg_url: str) -> None:
    from monitor.errors import StoreMissing

    with pytest.raises(StoreMissing, match="no news-monitor tables in postgresql://"):
        Store.open_readonly(pg_url)
    with pytest.raises(StoreMissing):
        Store.open(pg_url, create=False)
    Store.open(pg_url).close()
    reader = Store.open_readonly(pg_url)
    assert reader.counts()["feeds"] == 0
    with pytest.raises(Exception, match="read-only transaction"):
        reader.sync_feeds([FeedConfig(name="a", url="https://a.example/rss")])
    reader.close()


def test_a_lost_postgresql_connection_is_a_store_error_then_connects_again(pg_url: str) -> None:
    store = Store.open(pg_url)
    pid = store.db.execute("SELECT pg_backend_pid()").fetchone()[0]
    other = Store.open(pg_url)
    other.db.execute("SELECT pg_terminate_backend(?)", [pid])
    with pytest.raises(StoreError, match=r"^postgresql://postgres@127\.0\.0\.1:\d+/\w+: "):
        store.counts()
    # The next call connects again: a database restart does not need a daemon restart.
    assert store.counts()["feeds"] == 0
    assert store.db.execute("SELECT pg_backend_pid()").fetchone()[0] != pid
    store.sync_feeds([FeedConfig(name="a", url="https://a.example/rss")])
    # Lost inside a write transaction: nothing of it lands, and the next write does.
    with pytest.raises(StoreError), store.write():
        store.db.execute("INSERT INTO feeds (name, url) VALUES ('lost', 'https://l.example/')")
        other.db.execute(
            "SELECT pg_terminate_backend(?)",
            [store.db.execute("SELECT pg_backend_pid()").fetchone()[0]],
        )
        store.db.execute("INSERT INTO feeds (name, url) VALUES ('lost2', 'https://l.example/')")
    store.sync_feeds([FeedConfig(name="b", url="https://b.example/rss")])
    assert sorted(store.feed_states()) == ["a", "b"]
    other.close()
    store.close()


def test_postgresql_writes_wait_for_each_other_across_connections(pg_url: str) -> None:
    import threading

    first, second = Store.open(pg_url), Store.open(pg_url)
    done = threading.Event()

    def write() -> None:
        second.sync_feeds([FeedConfig(name="b", url="https://b.example/rss")])
        done.set()

    with first.write():
        first.db.execute("INSERT INTO feeds (name, url) VALUES ('a', 'https://a.example/rss')")
        writer = threading.Thread(target=write)
        writer.start()
        # The server says when the second write waits on the lock the first one holds.
        waiting = 0
        for _ in range(500):
            waiting = first.db.execute(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()[0]
            if waiting:
                break
            done.wait(0.01)
        assert waiting == 1
        assert not done.is_set()
    writer.join()
    assert [row[0] for row in first.db.execute("SELECT name FROM feeds ORDER BY id")] == ["a", "b"]
    first.close()
    second.close()


def test_a_sqlite_store_never_imports_psycopg(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from monitor.store import Store\n"
        f"store = Store.open({str(tmp_path / 'monitor.db')!r})\n"
        "store.writable(); store.checkpoint(); store.summary(); store.close()\n"
        "print('psycopg' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout == "False\n"


def test_both_engines_have_the_same_tables_views_columns_and_migrations(
    tmp_path: Path, pg_url: str
) -> None:
    sqlite, pg = Store.open(tmp_path / "monitor.db"), Store.open(pg_url)
    lite_names = [
        row[0]
        for row in sqlite.db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
            " AND name NOT LIKE 'sqlite%' ORDER BY name"
        )
    ]
    pg_names = [
        row[0]
        for row in pg.db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " ORDER BY table_name"
        )
    ]
    assert sorted(pg_names) == sorted(lite_names)
    for name in lite_names:
        lite = [row[1] for row in sqlite.db.execute(f"PRAGMA table_info({name})")]
        ours = [
            row[0]
            for row in pg.db.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = ? ORDER BY ordinal_position",
                [name],
            )
        ]
        assert ours == lite, name
    lite_indexes = {
        row[0]
        for row in sqlite.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            " AND tbl_name != '_sqlite_migrations'"
        )
    }
    pg_indexes = {
        row[0]
        for row in pg.db.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            " AND indexdef NOT LIKE '%_sqlite_migrations%'"
        )
    }
    # PostgreSQL names the indexes of its keys and UNIQUE constraints itself; SQLite keeps
    # those implicit: every index SQLite has by name, PostgreSQL has too.
    assert lite_indexes <= pg_indexes
    assert pg.applied_migrations() == sqlite.applied_migrations()
    sqlite.close()
    pg.close()


def test_a_nested_write_is_a_savepoint_on_both_engines(store_target: Path | str) -> None:
    store = Store.open(store_target)
    with store.write():
        store.db.execute("INSERT INTO feeds (name, url) VALUES ('kept', 'https://k.example/')")
        with pytest.raises(ValueError), store.write():
            store.db.execute("INSERT INTO feeds (name, url) VALUES ('gone', 'https://g.example/')")
            raise ValueError("inner")
    assert sorted(store.feed_states()) == ["kept"]
    store.close()


def test_a_postgresql_write_waits_no_longer_than_the_lock_timeout(pg_url: str) -> None:
    from monitor.store._postgres import LOCK_TIMEOUT_MS

    holder, waiter = Store.open(pg_url), Store.open(pg_url)
    assert waiter.db.execute("SHOW lock_timeout").fetchone()[0] == f"{LOCK_TIMEOUT_MS // 1000}s"
    waiter.db.execute("SET lock_timeout = 50")  # milliseconds: the test need not wait 30s
    with holder.write(), pytest.raises(StoreError, match="lock timeout"):
        waiter.sync_feeds([FeedConfig(name="a", url="https://a.example/rss")])
    waiter.sync_feeds([FeedConfig(name="a", url="https://a.example/rss")])
    assert list(waiter.feed_states()) == ["a"]
    holder.close()
    waiter.close()
