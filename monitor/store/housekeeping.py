"""Housekeeping: retention, checkpoints and the summary behind status, /healthz and /metrics."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import sqlite_utils

from monitor.errors import StoreError, StoreFileLost
from monitor.store.base import StoreBase
from monitor.store.schema import iso, migrations, utcnow

__all__ = [
    "Checkpoint",
    "DeliveryCount",
    "FailingFeed",
    "HousekeepingQueries",
    "StoreSummary",
    "WatchlistAlerts",
]


@migrations(name="0004_alerts_item_index")
def _alerts_item_index(db: sqlite_utils.Database) -> None:
    # Pruning an item asks whether an alert points at it: without this index every batch
    # scans the alerts table (1.4 s per 1,000 items with 20,000 alerts; 1.4 ms with it).
    db.execute("CREATE INDEX IF NOT EXISTS alerts_item_id ON alerts(item_id)")


@dataclass(frozen=True, slots=True)
class FailingFeed:
    name: str
    errors: int
    """Consecutive failed polls."""
    last_error: str | None
    last_ok_at: str | None
    failing_since: str | None = None
    """The first failed poll of this run of failures."""


@dataclass(frozen=True, slots=True)
class WatchlistAlerts:
    watchlist: str
    last_24h: int
    total: int


@dataclass(frozen=True, slots=True)
class DeliveryCount:
    sink: str
    status: str
    """pending, sent or dead."""
    count: int


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """What the database says about the service, at `at`."""

    at: datetime
    feeds_total: int
    feeds_ok: int
    feeds_failing: int
    feeds_never_polled: int
    failing_feeds: tuple[FailingFeed, ...]
    """Most consecutive errors first."""
    items: int
    alerts: tuple[WatchlistAlerts, ...]
    """By watchlist name."""
    deliveries: tuple[DeliveryCount, ...]
    """By sink, then status."""
    oldest_pending_seconds: float | None
    """Age of the oldest pending delivery; None when nothing is pending."""
    last_poll_at: datetime | None
    dead_last_24h: tuple[DeliveryCount, ...] = ()
    """Deliveries given up on in the 24 hours before `at`, by sink (status `dead`)."""

    def deliveries_with(self, status: str) -> int:
        return sum(d.count for d in self.deliveries if d.status == status)

    def alerts_total(self) -> int:
        return sum(a.total for a in self.alerts)

    def alerts_24h(self) -> int:
        return sum(a.last_24h for a in self.alerts)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The result of `PRAGMA wal_checkpoint`: `busy` when a reader kept it from finishing."""

    busy: bool
    wal_pages: int
    checkpointed: int


class HousekeepingQueries(StoreBase):
    """Retention, checkpoints, the write probe and the summary; `Store` combines them."""

    def prune_items(self, older_than: datetime, limit: int = 1000) -> int:
        """Delete up to `limit` items fetched before `older_than`; returns how many went.

        Items an alert points at stay, so alerts and their deliveries stay whole. One call is
        one short transaction: the caller repeats until fewer than `limit` go, letting other
        writes in between instead of holding the write lock for the whole backlog.
        """
        with self.write():
            cursor = self.db.execute(
                """DELETE FROM items WHERE id IN (
                       SELECT i.id FROM items i
                       WHERE i.fetched_at < ?
                         AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.item_id = i.id)
                       ORDER BY i.fetched_at LIMIT ?)""",
                [iso(older_than), limit],
            )
            return int(cursor.rowcount)

    def prune_translations(self, older_than: datetime, limit: int = 1000) -> int:
        """Delete up to `limit` cached translations made before `older_than` (as prune_items)."""
        with self.write():
            cursor = self.db.execute(
                """DELETE FROM translations WHERE key IN (
                       SELECT key FROM translations WHERE created_at < ? LIMIT ?)""",
                [iso(older_than), limit],
            )
            return int(cursor.rowcount)

    def checkpoint(
        self, mode: Literal["PASSIVE", "TRUNCATE"] = "PASSIVE", timeout: float = 1.0
    ) -> Checkpoint:
        """Copy the WAL into the database; TRUNCATE also empties the WAL file on disk.

        SQLite checkpoints PASSIVE by itself every 1000 pages; TRUNCATE after a prune gives the
        space of a large WAL back. TRUNCATE waits for readers of older snapshots (someone's
        `sqlite3` session) at most `timeout` seconds, then reports `busy` instead of stalling
        every write queued behind it. PostgreSQL checkpoints by itself (and only a superuser
        may ask it to): there this does nothing.
        """
        if self.engine == "postgresql":
            return Checkpoint(False, 0, 0)
        with self._busy_timeout(timeout):
            row = self.db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return Checkpoint(bool(row[0]), int(row[1]), int(row[2]))

    def writable(self, timeout: float = 2.0) -> bool:
        """Whether a write can be committed now (the /healthz probe).

        It rewrites `user_version` with its own value: a real WAL frame, no data changed. That
        fails on a read-only or full disk, a broken file, or a write lock held by another
        connection for longer than `timeout` seconds.
        """
        if self.engine == "postgresql":
            return self._pg_writable(timeout)
        connection = self.db.conn
        try:
            self.check_file()
        except StoreFileLost:
            return False
        try:
            with self._busy_timeout(timeout):
                connection.execute("BEGIN IMMEDIATE")
                version = int(connection.execute("PRAGMA user_version").fetchone()[0])
                connection.execute(f"PRAGMA user_version = {version}")
                connection.execute("COMMIT")
        except sqlite3.Error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            return False
        return True

    def _pg_writable(self, timeout: float) -> bool:
        # The same probe on PostgreSQL: the write lock, and a row rewritten with its own value
        # (a real WAL record), within `timeout`; a read-only server, a full disk or a lost
        # connection fails it.
        from monitor.store._postgres import WRITE_LOCK

        try:
            with self.db.transaction(serial=False):
                # Set before the lock, so that waiting for it counts too.
                self.db.execute(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                self.db.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")
                self.db.execute("UPDATE incident_state SET version = version WHERE id = 1")
        except StoreError:
            return False
        except Exception as exc:  # psycopg's errors: a timeout, a read-only transaction
            if type(exc).__module__.startswith("psycopg"):
                return False
            raise
        return True

    @contextlib.contextmanager
    def _busy_timeout(self, seconds: float) -> Iterator[None]:
        """A shorter wait for locks than the connection's own, for this block only."""
        connection = self.db.conn
        previous = int(connection.execute("PRAGMA busy_timeout").fetchone()[0])
        connection.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
        try:
            yield
        finally:
            connection.execute(f"PRAGMA busy_timeout = {previous}")

    def summary(
        self, feeds: Collection[str] | None = None, now: datetime | None = None
    ) -> StoreSummary:
        """The state of feeds (those named, default all), items, alerts and deliveries."""
        now = now or utcnow()
        rows = self.db.execute(
            """SELECT name, error_count, last_error, last_ok_at, last_polled_at, failing_since
               FROM feeds"""
        ).fetchall()
        if feeds is not None:
            wanted = set(feeds)
            rows = [row for row in rows if row[0] in wanted]
        failing = sorted(
            (FailingFeed(r[0], r[1], r[2], r[3], r[5]) for r in rows if r[1] > 0),
            key=lambda f: (-f.errors, f.name),
        )
        never = sum(1 for r in rows if r[1] == 0 and r[3] is None)
        polled = [r[4] for r in rows if r[4]]
        day_ago = iso(now - timedelta(days=1))
        alerts = tuple(
            WatchlistAlerts(r[0], int(r[1]), int(r[2]))
            for r in self.db.execute(
                """SELECT watchlist, SUM(CASE WHEN created_at >= ? THEN 1 ELSE 0 END), COUNT(*)
                   FROM alerts
                   GROUP BY watchlist ORDER BY watchlist""",
                [day_ago],
            )
        )
        deliveries = tuple(
            DeliveryCount(r[0], r[1], int(r[2]))
            for r in self.db.execute(
                "SELECT sink, status, COUNT(*) FROM deliveries GROUP BY sink, status ORDER BY 1, 2"
            )
        )
        oldest = self.db.execute(
            "SELECT MIN(created_at) FROM deliveries WHERE status = 'pending'"
        ).fetchone()[0]
        items = int(self.db.execute("SELECT COUNT(*) FROM items").fetchone()[0])
        dead_recent = tuple(
            DeliveryCount(r[0], "dead", int(r[1]))
            for r in self.db.execute(
                """SELECT sink, COUNT(*) FROM deliveries
                   WHERE status = 'dead' AND dead_at >= ? GROUP BY sink ORDER BY sink""",
                [day_ago],
            )
        )
        return StoreSummary(
            at=now,
            feeds_total=len(rows),
            feeds_ok=len(rows) - len(failing) - never,
            feeds_failing=len(failing),
            feeds_never_polled=never,
            failing_feeds=tuple(failing),
            items=items,
            alerts=alerts,
            deliveries=deliveries,
            oldest_pending_seconds=(
                None if oldest is None else (now - datetime.fromisoformat(oldest)).total_seconds()
            ),
            last_poll_at=datetime.fromisoformat(max(polled)) if polled else None,
            dead_last_24h=dead_recent,
        )
