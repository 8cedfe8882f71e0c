"""The views for people (migration 0005) and the Datasette metadata that labels them.

Read with plain `sqlite3` (or psycopg), as a person or Datasette would, on a real store with
alerts, on both engines (`store_target`); the Datasette metadata is SQLite's own.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
import yaml

import monitor.store
from monitor.config import FeedConfig
from monitor.models import Analysis, Item, Match
from monitor.store import VIEWS, AlertPlan, NewItem, PollWrite, Store
from monitor.store.schema import migrations
from monitor.store.translations import TranslatedItem

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
METADATA = Path(monitor.store.__file__).with_name("datasette.yaml")


def _arabic_item() -> NewItem:
    title = "هجوم على حاجز قرب خانقين وانفجار في ديالى"
    matches = (
        Match("khanaqin", "Khanaqin", "خانقين", "title", 18, 24),
        Match("khanaqin", "Khanaqin", "بخانقين", "summary", 0, 7),
        Match("khanaqin", "checkpoint", "حاجز", "title", 9, 13),
        Match("diyala", "Diyala", "ديالى", "title", 36, 41),
    )
    return NewItem(
        Item("g-1", "https://news.example.org/1", title, "بخانقين", NOW, "url:news/1"),
        Analysis("ar", 0.97, matches),
        (
            AlertPlan("khanaqin", "high", matches[:3], ("desk-chat", "siem")),
            AlertPlan("diyala", "medium", matches[3:], ("desk-chat",)),
        ),
    )


@pytest.fixture
def path(store_target: Path | str) -> Path | str:
    """A store with one Arabic item alerting on two watchlists, one delivery dead, one feed
    failing; then closed, as a person finds it."""
    return _populated(store_target)


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """The same on SQLite, the one engine Datasette reads."""
    path = tmp_path / "monitor.db"
    _populated(path)
    return path


def _populated(path: Path | str) -> Path | str:
    store = Store.open(path)
    states = store.sync_feeds(
        [
            FeedConfig(name="Arabic desk", url="https://ar.example.org/rss", language="ar"),
            FeedConfig(name="Broken", url="https://broken.example.org/rss"),
        ]
    )
    desk, broken = states["Arabic desk"].id, states["Broken"].id
    write = PollWrite(desk, 200, None, None, None, "Desk", NOW + timedelta(minutes=10))
    store.record_poll(
        PollWrite(**{**_fields(write), "items": (_arabic_item(),)}),
        NOW,
    )
    english = "Attack on a checkpoint near Khanaqin"
    store.record_translations(
        [TranslatedItem(1, "url:news/1", english, "", "argos", "ar-en", ())], {}, NOW
    )
    [siem] = [row[0] for row in store.db.execute("SELECT id FROM deliveries WHERE sink = 'siem'")]
    store.mark_dead([siem], "HTTP 410: gone", 410, NOW + timedelta(minutes=1))
    store.record_failure(broken, "HTTP 503", 503, NOW + timedelta(hours=1), NOW)
    store.close()
    return path


def _fields(write: PollWrite) -> dict[str, Any]:
    return {name: getattr(write, name) for name in PollWrite.__dataclass_fields__}


def _rows(path: Path | str, sql: str) -> list[dict[str, Any]]:
    if isinstance(path, str):
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(path, row_factory=dict_row) as connection:
            return list(connection.execute(sql))
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in db.execute(sql)]
    finally:
        db.close()


def test_alerts_view_spells_out_each_alert(path: Path | str) -> None:
    rows = _rows(path, "SELECT * FROM alerts_view ORDER BY watchlist")
    assert rows == [
        {
            "alert_id": 2,
            "time": "2026-11-24T12:00:00.000+00:00",
            "watchlist": "diyala",
            "severity": "medium",
            "matched_terms": "Diyala",
            "matched_text": "ديالى",
            "feed": "Arabic desk",
            "language": "ar",
            "title": "هجوم على حاجز قرب خانقين وانفجار في ديالى",
            "title_english": "Attack on a checkpoint near Khanaqin",
            "link": "https://news.example.org/1",
            "published": "2026-11-24T12:00:00.000+00:00",
        },
        {
            "alert_id": 1,
            "time": "2026-11-24T12:00:00.000+00:00",
            "watchlist": "khanaqin",
            "severity": "high",
            # Each term once, in English as the watchlist spells it, however the item wrote it.
            "matched_terms": "Khanaqin, checkpoint",
            "matched_text": "بخانقين, حاجز, خانقين",
            "feed": "Arabic desk",
            "language": "ar",
            "title": "هجوم على حاجز قرب خانقين وانفجار في ديالى",
            "title_english": "Attack on a checkpoint near Khanaqin",
            "link": "https://news.example.org/1",
            "published": "2026-11-24T12:00:00.000+00:00",
        },
    ]


def test_deliveries_view_shows_status_attempts_and_errors(path: Path | str) -> None:
    rows = _rows(
        path,
        "SELECT sink, status, attempts, last_error, dead_at, watchlist, alert_title"
        " FROM deliveries_view ORDER BY delivery_id",
    )
    title = "Attack on a checkpoint near Khanaqin"
    assert rows == [
        {
            "sink": "desk-chat",
            "status": "pending",
            "attempts": 0,
            "last_error": None,
            "dead_at": None,
            "watchlist": "khanaqin",
            "alert_title": title,
        },
        {
            "sink": "siem",
            "status": "dead",
            "attempts": 1,
            "last_error": "HTTP 410: gone",
            "dead_at": "2026-11-24T12:01:00.000+00:00",
            "watchlist": "khanaqin",
            "alert_title": title,
        },
    ]  # one item is one report: one delivery per sink, whatever watchlists it matched


def test_feeds_view_shows_each_feeds_health(path: Path | str) -> None:
    rows = _rows(
        path, "SELECT feed, state, failing_since, failed_polls, last_error, items FROM feeds_view"
    )
    assert sorted(rows, key=lambda row: row["feed"]) == [
        {
            "feed": "Arabic desk",
            "state": "ok",
            "failing_since": None,
            "failed_polls": 0,
            "last_error": None,
            "items": 1,
        },
        {
            "feed": "Broken",
            "state": "failing",
            "failing_since": "2026-11-24T12:00:00.000+00:00",
            "failed_polls": 1,
            "last_error": "HTTP 503",
            "items": 0,
        },
    ]


def test_the_datasette_metadata_names_only_what_exists_and_its_queries_run(
    sqlite_path: Path,
) -> None:
    path = sqlite_path
    metadata = yaml.safe_load(METADATA.read_text(encoding="utf-8"))
    database = metadata["databases"]["monitor"]
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        for view in VIEWS:
            assert view in database["tables"], f"{view} has no labels"
        for table, labels in database["tables"].items():
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            assert columns, f"no table or view named {table}"
            assert set(labels.get("columns", {})) <= set(columns), table
            if table in VIEWS:
                assert list(labels["columns"]) == columns, f"{table}: every column, in order"
        results = {
            name: db.execute(query["sql"]).fetchall() for name, query in database["queries"].items()
        }
    finally:
        db.close()
    assert results["dead_deliveries"][0][2:4] == ("siem", 1)
    assert [row[0] for row in results["failing_feeds"]] == ["Broken"]
    # "today" is the real today, after the fixture's alerts: the query runs, and finds none.
    assert results["alerts_today_by_watchlist"] == []


def test_migrating_an_existing_database_backfills_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    db = sqlite3.connect(path)
    old = sqlite_utils.Database(db)
    migrations.apply(old, stop_before="0005_views")
    old.execute(
        """INSERT INTO feeds (name, url, error_count, last_ok_at, last_polled_at)
           VALUES ('down', 'https://x.example/rss', 4, '2026-11-20T00:00:00+00:00',
                   '2026-11-24T00:00:00+00:00')"""
    )
    db.commit()
    db.close()
    store = Store.open(path)
    try:
        row = store.db.execute("SELECT failing_since FROM feeds WHERE name = 'down'").fetchone()
        assert row == ("2026-11-20T00:00:00+00:00",)
    finally:
        store.close()
