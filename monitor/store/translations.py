"""Translations: the cache, and the English text stored on items with its second-pass alerts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlite_utils

from monitor.store.feeds import AlertPlan, FeedQueries, WriteResult
from monitor.store.schema import iso, migrations, utcnow

__all__ = ["TranslatedItem", "TranslationQueries", "UntranslatedItem"]

_CHUNK = 500
"""Keys per `IN (...)`: below SQLite's default limit of 999 host parameters."""


@migrations(name="0003_translations")
def _translation_columns(db: sqlite_utils.Database) -> None:
    """Which engine and model produced `title_en` / `summary_en`, and when."""
    for column in ("translation_engine", "translation_model", "translated_at"):
        db.execute(f"ALTER TABLE items ADD COLUMN {column} TEXT")


@dataclass(frozen=True, slots=True)
class TranslatedItem:
    item_id: int
    story_key: str
    title: str
    summary: str
    engine: str
    model: str
    alerts: tuple[AlertPlan, ...]
    """Watchlists the translation matched: the second pass."""


@dataclass(frozen=True, slots=True)
class UntranslatedItem:
    item_id: int
    story_key: str
    title: str
    summary: str
    language: str
    alertable: bool
    """The backfill rule, as when the item was stored: may its translation alert?"""


class TranslationQueries(FeedQueries):
    """The translation cache and translated items; `Store` combines them."""

    def untranslated_items(
        self, since: datetime, backfill: timedelta, target: str = "en", limit: int = 1000
    ) -> list[UntranslatedItem]:
        """Items stored since `since`, not in `target` and never translated, newest first.

        They were queued when the daemon stopped, dropped from a full queue, or stored before
        a model for their language was installed. An item stored by its feed's first poll (the
        feed's earliest `fetched_at`) may alert only if it is dated within `backfill` of that
        poll, as when it was stored.
        """
        rows = self.db.execute(
            """SELECT i.id, i.story_key, i.title, i.summary, i.language, i.published_at,
                      i.fetched_at,
                      (SELECT MIN(j.fetched_at) FROM items j WHERE j.feed_id = i.feed_id)
               FROM items i
               WHERE i.translated_at IS NULL AND i.title_en IS NULL AND i.fetched_at >= ?
                 AND i.language IS NOT NULL AND i.language NOT IN (?, 'und')
               ORDER BY i.fetched_at DESC, i.id DESC LIMIT ?""",
            [iso(since), target, limit],
        ).fetchall()
        items = []
        for item_id, story_key, title, summary, language, published, fetched, first in rows:
            dated_within = (
                published is not None
                and datetime.fromisoformat(published) >= datetime.fromisoformat(fetched) - backfill
            )
            items.append(
                UntranslatedItem(
                    item_id, story_key, title, summary, language, fetched > first or dated_within
                )
            )
        return items

    def cached_translations(self, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(
                self.db.execute(
                    f"SELECT key, text FROM translations WHERE key IN ({marks})", chunk
                ).fetchall()
            )
        return found

    def cache_translations(self, entries: Mapping[str, str], now: datetime | None = None) -> None:
        with self.write():
            self._put(entries, iso(now or utcnow()))

    def record_translations(
        self,
        items: Sequence[TranslatedItem],
        cache: Mapping[str, str],
        now: datetime | None = None,
    ) -> WriteResult:
        """Store translations, cache entries and second-pass alerts in one transaction.

        An alert the original text already raised for a story is not raised again: the
        alerts table is unique per (story, watchlist). An item pruned meanwhile is skipped.
        """
        now_text = iso(now or utcnow())
        stored = alerts = deliveries = 0
        with self.write():
            self._put(cache, now_text)
            for item in items:
                cursor = self.db.execute(
                    """UPDATE items SET title_en = ?, summary_en = ?, translation_engine = ?,
                           translation_model = ?, translated_at = ?
                       WHERE id = ?""",
                    [item.title, item.summary, item.engine, item.model, now_text, item.item_id],
                )
                if cursor.rowcount == 0:
                    continue
                stored += 1
                if item.title:
                    self._translated_report(item.item_id, item.title)
                made, sent = self._add_alerts(item.item_id, item.story_key, item.alerts, now_text)
                alerts += made
                deliveries += sent
        return WriteResult(stored, alerts, deliveries)

    def _put(self, entries: Mapping[str, str], now: str | None) -> None:
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO translations (key, text, created_at) VALUES (?, ?, ?)",
            [(key, text, now) for key, text in entries.items()],
        )
