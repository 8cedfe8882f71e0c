"""Translations: the cache, and the English text stored on items with its second-pass alerts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from monitor.store.feeds import AlertPlan, FeedQueries, WriteResult
from monitor.store.schema import iso, migrations, utcnow

__all__ = ["TranslatedItem", "TranslationQueries"]

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


class TranslationQueries(FeedQueries):
    """The translation cache and translated items; `Store` combines them."""

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
                for plan in item.alerts:
                    made = self._add_alert(item.item_id, item.story_key, plan, now_text)
                    if made is not None:
                        alerts += 1
                        deliveries += made
        return WriteResult(stored, alerts, deliveries)

    def _put(self, entries: Mapping[str, str], now: str | None) -> None:
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO translations (key, text, created_at) VALUES (?, ?, ?)",
            [(key, text, now) for key, text in entries.items()],
        )
