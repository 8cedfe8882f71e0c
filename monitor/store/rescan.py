"""Stored items looked at again (`news-monitor rescan`), and the alerts that adds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from monitor.store.dialect import json_array_agg
from monitor.store.feeds import AlertPlan, FeedQueries, WriteResult
from monitor.store.schema import iso, migrations, utcnow

__all__ = ["RescanQueries", "StoredItem"]

_PAGE = 1000
"""Items read per query: a rescan over months of items never holds them all in memory."""


@migrations(name="0008_feeds_held_back")
def _held_back(db: sqlite_utils.Database) -> None:
    """Items a feed stored without alerting because they were older than `backfill`."""
    db.execute("ALTER TABLE feeds ADD COLUMN held_back INTEGER NOT NULL DEFAULT 0")


@dataclass(frozen=True, slots=True)
class StoredItem:
    item_id: int
    story_key: str
    title: str
    summary: str
    title_en: str | None
    summary_en: str | None
    published_at: datetime | None
    fetched_at: datetime
    alerted: frozenset[str]
    """Watchlists this item's story already alerted for."""


class RescanQueries(FeedQueries):
    def stored_items(self, since: datetime, after_id: int = 0) -> list[StoredItem]:
        """One page of items fetched since `since`, oldest first, with the id past `after_id`."""
        watchlists = json_array_agg(self.engine, "a.watchlist")
        rows = self.db.execute(
            f"""SELECT i.id, i.story_key, i.title, i.summary, i.title_en, i.summary_en,
                      i.published_at, i.fetched_at,
                      (SELECT {watchlists} FROM alerts a WHERE a.story_key = i.story_key)
               FROM items i WHERE i.fetched_at >= ? AND i.id > ?
               ORDER BY i.id LIMIT ?""",
            [iso(since), after_id, _PAGE],
        ).fetchall()
        return [
            StoredItem(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                datetime.fromisoformat(row[6]) if row[6] else None,
                datetime.fromisoformat(row[7]),
                frozenset(_json_strings(row[8])),
            )
            for row in rows
        ]

    def add_alerts(
        self, plans: Sequence[tuple[StoredItem, tuple[AlertPlan, ...]]], now: datetime | None = None
    ) -> WriteResult:
        """The alerts and pending deliveries a rescan found, in one transaction.

        A story that alerted meanwhile (the daemon polled it) is skipped by the unique key.
        """
        now_text = iso(now or utcnow())
        alerts = deliveries = 0
        with self.write():
            for item, item_plans in plans:
                made, sent = self._add_alerts(item.item_id, item.story_key, item_plans, now_text)
                alerts += made
                deliveries += sent
        return WriteResult(len(plans), alerts, deliveries)


def _json_strings(text: str | None) -> list[str]:
    return [value for value in json.loads(text or "[]") if isinstance(value, str)]
