"""The schema: migrations in order, and how timestamps are stored.

Each query module registers the migrations it needs on `migrations`; `monitor.store` imports
them in a fixed order, which is the order they are applied in.

Migrations 0001-0009 run on SQLite only: a PostgreSQL database starts from
`_postgres.BASELINE`, the schema they leave, recorded as applied. Later ones run on both
engines (`db` is then `_postgres.PgDatabase`, with the same `execute`/`executescript`), so
their SQL must be what both take: ALTER TABLE ... ADD COLUMN one at a time, no PRAGMA.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlite_utils
from sqlite_utils.migrations import Migrations

__all__ = ["iso", "migrations", "utcnow"]

migrations = Migrations("news_monitor")


@migrations(name="0001_initial")
def _initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE feeds (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            url TEXT NOT NULL,
            language TEXT,
            etag TEXT,
            last_modified TEXT,
            last_polled_at TEXT,
            last_ok_at TEXT,
            last_status INTEGER,
            last_error TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            next_poll_at TEXT,
            moved_to TEXT,
            title TEXT
        );
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
            guid TEXT NOT NULL,
            url TEXT,
            title TEXT NOT NULL,
            summary TEXT NOT NULL,
            published_at TEXT,
            fetched_at TEXT NOT NULL,
            language TEXT,
            language_confidence REAL,
            title_en TEXT,
            summary_en TEXT,
            story_key TEXT NOT NULL,
            UNIQUE (feed_id, guid)
        );
        CREATE INDEX items_story_key ON items(story_key);
        CREATE INDEX items_fetched_at ON items(fetched_at);
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            story_key TEXT NOT NULL,
            watchlist TEXT NOT NULL,
            severity TEXT NOT NULL,
            matches TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (story_key, watchlist)
        );
        CREATE INDEX alerts_created_at ON alerts(created_at);
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
            sink TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            last_error TEXT,
            sent_at TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (alert_id, sink)
        );
        CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
        CREATE TABLE translations (
            key TEXT PRIMARY KEY,
            text TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        """
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """Timestamps are stored as ISO 8601 UTC text, which sorts as time does."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds")
