"""The schema: migrations in order, and how times are stored (`iso`) and shown (`shown`).

Each query module registers the migrations it needs on `migrations`; `monitor.store` imports
them in a fixed order, which is the order they are applied in.

Migrations 0001-0009 run on SQLite only: a PostgreSQL database starts from
`_postgres.BASELINE`, the schema they leave, recorded as applied. Later ones run on both
engines (`db` is then `_postgres.PgDatabase`, with the same `execute`/`executescript`), so
their SQL must be what both take: ALTER TABLE ... ADD COLUMN one at a time, no PRAGMA.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

import sqlite_utils
from sqlite_utils.migrations import Migrations

__all__ = ["iso", "migrations", "shown", "utcnow"]

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


@overload
def iso(moment: datetime) -> str: ...
@overload
def iso(moment: None) -> None: ...
@overload
def iso(moment: datetime | None) -> str | None: ...
def iso(moment: datetime | None) -> str | None:
    """Every stored time: ISO 8601 UTC text with milliseconds (`2026-12-07T15:00:00.123+00:00`),
    which sorts as time does. Milliseconds, because retries, rate limits and a feed's next turn
    work below a second. Rows written by earlier versions have whole seconds
    (`...T15:00:00+00:00`) and are compared with these as text in the same queries: `+` sorts
    before `.` (and every time is UTC), so a whole second is never after a time within it."""
    if moment is None:
        return None
    if moment.tzinfo is not UTC:  # the clock's own times are UTC already: no conversion
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")


@overload
def shown(moment: datetime | str) -> str: ...
@overload
def shown(moment: None) -> None: ...
@overload
def shown(moment: datetime | str | None) -> str | None: ...
def shown(moment: datetime | str | None) -> str | None:
    """A time as shown to people (status, CLI lines, messages): ISO 8601 UTC to the second, as
    they always showed; `moment` is a datetime or a stored time (`iso`)."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(UTC).isoformat(timespec="seconds")
