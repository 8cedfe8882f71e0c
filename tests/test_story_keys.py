"""One story, one key: links written differently by two feeds alert once, and migration
0006 recomputes the keys of a database written under the old rules without losing alerts."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils
from conftest import FeedServer, ago, rss, write_config

from monitor.config import Config
from monitor.models import Analysis, Item, Match
from monitor.parse import story_key
from monitor.service import Monitor, PollReport
from monitor.store import AlertPlan, NewItem, PollWrite, Store
from monitor.store.schema import migrations

MIGRATION = "0006_canonical_story_keys"
HOST = "https://ckb.example.org"
PATH = "/هەواڵ/خانەقین"
ENCODED = "/%D9%87%DB%95%D9%88%D8%A7%DA%B5/%D8%AE%D8%A7%D9%86%DB%95%D9%82%DB%8C%D9%86"
RAW = f"{HOST}{PATH}?id=7&lang=ckb"
UPPER_REORDERED = f"{HOST}{ENCODED}?lang=ckb&id=7"
LOWER = f"{HOST}{ENCODED.lower()}?id=7&lang=ckb"
KEY = f"url:{HOST}{ENCODED}?id=7&lang=ckb"
TITLE = "خانەقین: داخستنی ڕێگای سەرەکی"


def poll_once(config: Config) -> tuple[list[PollReport], list[dict[str, Any]]]:
    async def main() -> tuple[list[PollReport], list[dict[str, Any]]]:
        async with Monitor(config, parse_workers=1) as monitor:
            reports = await monitor.poll_once()
            return reports, monitor.store.alerts()

    return asyncio.run(main())


def test_one_story_linked_differently_by_two_feeds_alerts_once(
    feed_server: FeedServer, tmp_path: Path, store_target: Path | str
) -> None:
    def make_config(**overrides: Any) -> Config:  # on both engines
        return write_config(tmp_path, database=str(store_target), **overrides)

    published = ago(minutes=20)
    one = feed_server.route(
        "/one.xml",
        rss([{"title": TITLE, "guid": "one-1", "link": RAW, "pubDate": published}]),
        content_type="application/rss+xml",
    )
    tracked = f"http://www.ckb.example.org{ENCODED.lower()}/?utm_source=telegram&lang=ckb&id=7"
    two = feed_server.route(
        "/two.xml",
        rss([{"title": TITLE, "guid": "two-1", "link": tracked, "pubDate": published}]),
        content_type="application/rss+xml",
    )
    config = make_config(feeds={"one": one, "two": two}, watchlists={"khanaqin": ["Khanaqin"]})
    reports, alerts = poll_once(config)
    assert sorted((r.feed, r.outcome, r.new_items) for r in reports) == [
        ("one", "new", 1),
        ("two", "new", 1),
    ]
    assert [(a["watchlist"], a["story_key"]) for a in alerts] == [("khanaqin", KEY)]


# Migration 0006 ----------------------------------------------------------------------------

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat(timespec="seconds")


def _database_before_0006(path: Path) -> sqlite_utils.Database:
    """A database as the previous release left it, its keys written under the old rules
    (the link as written, query order kept: `url:` + the link, for these links)."""
    db = sqlite_utils.Database(sqlite3.connect(path))
    db.execute("PRAGMA foreign_keys=ON")
    migrations.apply(db, stop_before=MIGRATION)
    db.execute("INSERT INTO feeds (id, name, url) VALUES (1, 'one', 'https://one.example/f')")
    db.execute("INSERT INTO feeds (id, name, url) VALUES (2, 'two', 'https://two.example/f')")
    items = [
        (1, 1, "one-1", RAW, TITLE, f"url:{RAW}"),
        (2, 2, "two-1", UPPER_REORDERED, TITLE, f"url:{UPPER_REORDERED}"),
        (3, 2, "two-2", LOWER, TITLE, f"url:{LOWER}"),
        (
            4,
            1,
            "one-2",
            None,
            "A bulletin without a link",
            story_key(None, "A bulletin without a link"),
        ),
        (5, 1, "one-3", "https://example.org/a", "Diyala", "url:https://example.org/a"),
    ]
    for item_id, feed_id, guid, url, title, key in items:
        db.execute(
            """INSERT INTO items (id, feed_id, guid, url, title, summary, fetched_at, story_key)
               VALUES (?, ?, ?, ?, ?, '', ?, ?)""",
            [item_id, feed_id, guid, url, title, _at(0), key],
        )
    alerts = [
        # id, item, watchlist, minutes after T0: the story alerted three times for khanaqin
        # (once per spelling) and once for diyala; the earliest khanaqin alert is item 2's.
        (11, 1, "khanaqin", 5),
        (12, 2, "khanaqin", 0),
        (13, 3, "khanaqin", 7),
        (14, 1, "diyala", 5),
        (15, 4, "khanaqin", 1),
        (16, 5, "diyala", 2),
    ]
    for alert_id, item_id, watchlist, minutes in alerts:
        key = db.execute("SELECT story_key FROM items WHERE id = ?", [item_id]).fetchone()[0]
        db.execute(
            """INSERT INTO alerts (id, item_id, story_key, watchlist, severity, matches, created_at)
               VALUES (?, ?, ?, ?, 'high', '[]', ?)""",
            [alert_id, item_id, key, watchlist, _at(minutes)],
        )
        status = "sent" if alert_id == 12 else "pending"
        db.execute(
            """INSERT INTO deliveries (alert_id, sink, status, next_attempt_at, created_at)
               VALUES (?, 'chat', ?, ?, ?)""",
            [alert_id, status, _at(minutes), _at(minutes)],
        )
    db.conn.commit()
    return db


def test_migration_gives_old_items_and_alerts_the_canonical_key(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    _database_before_0006(path).close()
    store = Store.open(path)
    assert MIGRATION in store.applied_migrations()
    items = dict(store.db.execute("SELECT id, story_key FROM items").fetchall())
    assert items == {
        1: KEY,
        2: KEY,
        3: KEY,
        4: story_key(None, "A bulletin without a link"),
        5: "url:https://example.org/a",
    }
    alerts = dict(store.db.execute("SELECT id, story_key FROM alerts").fetchall())
    # The earliest alert of the story holds its key; the later ones are kept, marked as
    # duplicates so (story_key, watchlist) stays unique.
    assert alerts == {
        11: f"{KEY}#duplicate-11",
        12: KEY,
        13: f"{KEY}#duplicate-13",
        14: KEY,
        15: items[4],
        16: "url:https://example.org/a",
    }
    # No alert and no delivery is lost.
    deliveries = store.db.execute(
        "SELECT alert_id, status FROM deliveries ORDER BY alert_id"
    ).fetchall()
    assert deliveries == [
        (11, "pending"),
        (12, "sent"),
        (13, "pending"),
        (14, "pending"),
        (15, "pending"),
        (16, "pending"),
    ]
    assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
    store.close()


def test_after_the_migration_another_spelling_of_the_story_does_not_alert_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "monitor.db"
    _database_before_0006(path).close()
    store = Store.open(path)
    link = f"{HOST}{PATH}/?lang=ckb&id=7&fbclid=abc"
    match = Match("khanaqin", "Khanaqin", "خانەقین", "title", 0, 7)
    new = NewItem(
        Item("one-9", link, TITLE, "", T0, story_key(link, TITLE)),
        Analysis("ckb", 0.9, (match,)),
        (AlertPlan("khanaqin", "high", (match,), ("chat",)),),
    )
    result = store.record_poll(PollWrite(1, 200, None, None, None, "one", T0, (new,)), T0)
    assert (result.items, result.alerts) == (1, 0)
    store.close()


def test_migration_runs_once(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    _database_before_0006(path).close()
    Store.open(path).close()
    store = Store.open(path)
    assert store.applied_migrations().count(MIGRATION) == 1
    assert store.db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 6
    store.close()
