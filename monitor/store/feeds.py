"""Feeds, items and alerts: what a poll writes in one transaction, and what commands read."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.config import FeedConfig
from monitor.models import Analysis, Item
from monitor.store.incidents import AlertPlan, IncidentQueries
from monitor.store.schema import iso, utcnow

__all__ = ["AlertPlan", "FeedQueries", "FeedState", "NewItem", "PollWrite", "WriteResult"]


@dataclass(frozen=True, slots=True)
class FeedState:
    id: int
    name: str
    url: str
    etag: str | None
    last_modified: str | None
    last_ok_at: str | None
    error_count: int
    next_poll_at: str | None
    moved_to: str | None

    @property
    def fetch_url(self) -> str:
        return self.moved_to or self.url

    @property
    def never_polled(self) -> bool:
        return self.last_ok_at is None


@dataclass(frozen=True, slots=True)
class NewItem:
    item: Item
    analysis: Analysis
    alerts: tuple[AlertPlan, ...]
    """Empty for items stored without alerting (backfill, or no watchlist matched)."""


@dataclass(frozen=True, slots=True)
class PollWrite:
    """What one successful poll of one feed changes."""

    feed_id: int
    status: int
    etag: str | None
    last_modified: str | None
    moved_to: str | None
    title: str | None
    next_poll_at: datetime
    items: tuple[NewItem, ...] = ()
    held_back: int = 0
    """Items that matched but were older than `backfill`: stored without alerting."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    items: int
    alerts: int
    deliveries: int
    stored: tuple[tuple[int, NewItem], ...] = ()
    """The row id of each item this write inserted, with the item."""


_POLLED = """UPDATE feeds SET etag = ?, last_modified = ?, last_polled_at = ?, last_ok_at = ?,
    last_status = ?, last_error = NULL, error_count = 0, failing_since = NULL, next_poll_at = ?,
    moved_to = COALESCE(?, moved_to), title = COALESCE(?, title), held_back = held_back + ?,
    leased_by = NULL, lease_until = NULL
    WHERE id = ?"""
"""The poll's next turn and the end of its lease, in one statement (monitor.store.cluster)."""


def _polled_row(write: PollWrite, now_text: str | None) -> list[Any]:
    return [
        write.etag,
        write.last_modified,
        now_text,
        now_text,
        write.status,
        iso(write.next_poll_at),
        write.moved_to,
        write.title,
        write.held_back,
        write.feed_id,
    ]


class FeedQueries(IncidentQueries):
    """Feeds, their items and alerts: what a poll writes and the commands read."""

    # Feeds -------------------------------------------------------------------------------

    def sync_feeds(self, feeds: Sequence[FeedConfig]) -> dict[str, FeedState]:
        """Make the `feeds` table hold a row per configured feed; return their states.

        A feed whose URL changed in the config starts afresh: no validators, no error count.
        Rows of feeds no longer configured are kept with their items and alerts.
        """
        with self.write():
            for feed in feeds:
                row = self.db.execute(
                    "SELECT id, url FROM feeds WHERE name = ?", [feed.name]
                ).fetchone()
                if row is None:
                    self.db.execute(
                        "INSERT INTO feeds (name, url, language) VALUES (?, ?, ?)",
                        [feed.name, feed.url, feed.language],
                    )
                elif row[1] != feed.url:
                    self.db.execute(
                        """UPDATE feeds SET url = ?, language = ?, etag = NULL,
                           last_modified = NULL, error_count = 0, last_error = NULL,
                           failing_since = NULL, moved_to = NULL, next_poll_at = NULL
                       WHERE id = ?""",
                        [feed.url, feed.language, row[0]],
                    )
                else:
                    self.db.execute(
                        "UPDATE feeds SET language = ? WHERE id = ?", [feed.language, row[0]]
                    )
        states = self.feed_states()
        return {feed.name: states[feed.name] for feed in feeds}

    def feed_states(self) -> dict[str, FeedState]:
        rows = self.db.execute(
            """SELECT id, name, url, etag, last_modified, last_ok_at, error_count,
                      next_poll_at, moved_to FROM feeds"""
        ).fetchall()
        return {row[1]: FeedState(*row) for row in rows}

    def known_guids(self, feed_id: int, guids: Sequence[str]) -> set[str]:
        known: set[str] = set()
        for start in range(0, len(guids), 500):
            chunk = list(guids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            known.update(
                row[0]
                for row in self.db.execute(
                    f"SELECT guid FROM items WHERE feed_id = ? AND guid IN ({marks})",
                    [feed_id, *chunk],
                )
            )
        return known

    def record_poll(self, write: PollWrite, now: datetime | None = None) -> WriteResult:
        """Store a successful poll: new items, their alerts and deliveries, the feed's state.

        All in one transaction: a crash before commit re-does the poll, after commit loses
        nothing; an alert is never without its deliveries.
        """
        now_text = iso(now or utcnow())
        items = alerts = deliveries = 0
        stored: list[tuple[int, NewItem]] = []
        with self.write():
            for new in write.items:
                item, analysis = new.item, new.analysis
                row = self.db.execute(
                    """INSERT INTO items (feed_id, guid, url, title, summary, published_at,
                           fetched_at, language, language_confidence, story_key)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (feed_id, guid) DO NOTHING RETURNING id""",
                    [
                        write.feed_id,
                        item.guid,
                        item.url,
                        item.title,
                        item.summary,
                        iso(item.published_at),
                        now_text,
                        analysis.language,
                        analysis.language_confidence,
                        item.story_key,
                    ],
                ).fetchone()
                if row is None:
                    continue
                items += 1
                stored.append((row[0], new))
                made, sent = self._add_alerts(row[0], item.story_key, new.alerts, now_text)
                alerts += made
                deliveries += sent
            self.db.execute(_POLLED, _polled_row(write, now_text))
        return WriteResult(items, alerts, deliveries, tuple(stored))

    def record_unchanged(self, polls: Sequence[tuple[PollWrite, datetime]]) -> None:
        """Store many polls that found nothing new (304s) in one transaction.

        Only the feeds' bookkeeping (validators, last success, next poll): a crash before the
        commit loses it, and that only means those feeds are polled again at the next start,
        their stored next poll being due, with the validators of their previous poll.
        """
        with self.write():
            self.db.conn.executemany(
                _POLLED, [_polled_row(write, iso(now)) for write, now in polls]
            )

    def record_failure(
        self,
        feed_id: int,
        error: str,
        status: int | None,
        next_poll_at: datetime,
        now: datetime | None = None,
    ) -> int:
        """Count one more consecutive failure; returns the new count."""
        now_text = iso(now or utcnow())
        with self.write():
            self.db.execute(
                """UPDATE feeds SET last_polled_at = ?, last_status = ?, last_error = ?,
                       error_count = error_count + 1, failing_since = COALESCE(failing_since, ?),
                       next_poll_at = ?, leased_by = NULL, lease_until = NULL WHERE id = ?""",
                [now_text, status, error, now_text, iso(next_poll_at), feed_id],
            )
            row = self.db.execute("SELECT error_count FROM feeds WHERE id = ?", [feed_id])
            return int(row.fetchone()[0])

    # Reading -----------------------------------------------------------------------------

    def alerts(
        self, since: datetime | None = None, watchlist: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Recent alerts, newest first, with their item and feed."""
        where, params = ["1 = 1"], []
        if since is not None:
            where.append("a.created_at >= ?")
            params.append(iso(since))
        if watchlist is not None:
            where.append("a.watchlist = ?")
            params.append(watchlist)
        rows = self.db.execute(
            f"""SELECT a.id, a.watchlist, a.severity, a.matches, a.created_at, a.story_key,
                       i.id, i.title, i.summary, i.url, i.published_at, i.language,
                       i.language_confidence, i.title_en, f.name
                FROM alerts a JOIN items i ON i.id = a.item_id JOIN feeds f ON f.id = i.feed_id
                WHERE {" AND ".join(where)}
                ORDER BY a.created_at DESC, a.id DESC LIMIT ?""",
            [*params, limit],
        ).fetchall()
        return [
            {
                "id": r[0],
                "watchlist": r[1],
                "severity": r[2],
                "matches": json.loads(r[3]),
                "created_at": r[4],
                "story_key": r[5],
                "item": {
                    "id": r[6],
                    "title": r[7],
                    "summary": r[8],
                    "url": r[9],
                    "published_at": r[10],
                    "language": r[11],
                    "language_confidence": r[12],
                    "title_en": r[13],
                },
                "feed": r[14],
            }
            for r in rows
        ]

    def feed_health(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            """SELECT f.name, f.url, f.last_ok_at, f.last_polled_at, f.last_status, f.last_error,
                      f.error_count, f.next_poll_at, f.moved_to,
                      (SELECT COUNT(*) FROM items i WHERE i.feed_id = f.id), f.held_back
               FROM feeds f ORDER BY f.name"""
        ).fetchall()
        keys = [
            "name",
            "url",
            "last_ok_at",
            "last_polled_at",
            "last_status",
            "last_error",
            "error_count",
            "next_poll_at",
            "moved_to",
            "items",
            "held_back",
        ]
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def counts(self) -> dict[str, int]:
        return {
            table: int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in ("feeds", "items", "alerts", "deliveries")
        }
