"""Translations: the cache, the English text stored on items with its second-pass alerts, and
the claims that make untranslated items one queue shared by every node (issue 13).

The store is the queue: an item is untranslated while `translated_at` and `title_en` are NULL.
A node claims the items of a translation round before it translates them (`translating_by`,
`translating_until`); recording the translation clears the claim. A claim that runs out (its
node died) frees the item for any node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlite_utils

from monitor.store.feeds import AlertPlan, FeedQueries, WriteResult
from monitor.store.schema import iso, migrations, utcnow

__all__ = ["TranslatedItem", "TranslationQueries", "UntranslatedItem", "migrate_claims"]

_CHUNK = 500
"""Keys per `IN (...)`: below SQLite's default limit of 999 host parameters."""


@migrations(name="0003_translations")
def _translation_columns(db: sqlite_utils.Database) -> None:
    """Which engine and model produced `title_en` / `summary_en`, and when."""
    for column in ("translation_engine", "translation_model", "translated_at"):
        db.execute(f"ALTER TABLE items ADD COLUMN {column} TEXT")


def migrate_claims(db: sqlite_utils.Database) -> None:
    """0011: which node translates an item now, and until when (registered in `__init__`)."""
    for statement in (
        "ALTER TABLE items ADD COLUMN translating_by TEXT",
        "ALTER TABLE items ADD COLUMN translating_until TEXT",
        # The queue: untranslated items by time (most items of a day get translated, or are
        # English, so this stays much smaller than the items table).
        "CREATE INDEX items_untranslated ON items(fetched_at) WHERE translated_at IS NULL",
        # A feed's first poll (its earliest `fetched_at`), which the backfill rule of
        # `untranslated_items` reads for every item it returns.
        "CREATE INDEX items_feed_fetched ON items(feed_id, fetched_at)",
    ):
        db.execute(statement)


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
    fetched_at: str = ""
    """When it was stored: with `item_id`, where the next page of `untranslated_items` starts."""


class TranslationQueries(FeedQueries):
    """The translation cache and translated items; `Store` combines them."""

    def untranslated_items(
        self,
        since: datetime,
        backfill: timedelta,
        target: str = "en",
        limit: int = 1000,
        *,
        now: datetime | None = None,
        languages: Sequence[str] | None = None,
        before: tuple[str, int] | None = None,
    ) -> list[UntranslatedItem]:
        """Items stored since `since`, not in `target` and never translated, newest first.

        They were queued when the daemon stopped, dropped from a full queue, polled by a busy
        node, or stored before a model for their language was installed. An item stored by
        its feed's first poll (the feed's earliest `fetched_at`) may alert only if it is dated
        within `backfill` of that poll, as when it was stored.

        With `now`, an item some node has claimed until after `now` is left out (it is being
        translated); `languages` keeps only those languages; `before` (a `fetched_at` and an
        id) starts after that item, for the next page.
        """
        where = ""
        params: list[object] = [iso(since), target]
        if now is not None:
            where += " AND (i.translating_until IS NULL OR i.translating_until < ?)"
            params.append(iso(now))
        if languages is not None:
            if not languages:
                return []
            where += f" AND i.language IN ({','.join('?' * len(languages))})"
            params.extend(languages)
        if before is not None:
            where += " AND (i.fetched_at < ? OR (i.fetched_at = ? AND i.id < ?))"
            params.extend([before[0], before[0], before[1]])
        rows = self.db.execute(
            f"""SELECT i.id, i.story_key, i.title, i.summary, i.language, i.published_at,
                      i.fetched_at,
                      (SELECT MIN(j.fetched_at) FROM items j WHERE j.feed_id = i.feed_id)
               FROM items i
               WHERE i.translated_at IS NULL AND i.title_en IS NULL AND i.fetched_at >= ?
                 AND i.language IS NOT NULL AND i.language NOT IN (?, 'und'){where}
               ORDER BY i.fetched_at DESC, i.id DESC LIMIT ?""",
            [*params, limit],
        ).fetchall()
        items = []
        for item_id, story_key, title, summary, language, published, fetched, first in rows:
            dated_within = (
                published is not None
                and datetime.fromisoformat(published) >= datetime.fromisoformat(fetched) - backfill
            )
            items.append(
                UntranslatedItem(
                    item_id,
                    story_key,
                    title,
                    summary,
                    language,
                    fetched > first or dated_within,
                    fetched,
                )
            )
        return items

    def claim_translations(
        self, node: str, ids: Sequence[int], now: datetime, until: datetime
    ) -> set[int]:
        """Claim these items for `node` until `until`; returns the ids claimed.

        An item is left out when it is translated already, or claimed by another node until
        after `now` (its own claims `node` renews). On PostgreSQL rows another node is claiming
        at this moment are skipped, not waited for (`FOR UPDATE SKIP LOCKED`), and the claim
        does not take the store-wide write lock: claims of different nodes run side by side.
        """
        claimed: set[int] = set()
        postgresql = self.engine == "postgresql"
        lock = " ORDER BY id FOR UPDATE SKIP LOCKED" if postgresql else ""
        with self.write(serial=not postgresql):
            unique = list(dict.fromkeys(ids))
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                rows = self.db.execute(
                    f"""UPDATE items SET translating_by = ?, translating_until = ?
                        WHERE id IN (
                            SELECT id FROM items
                            WHERE id IN ({",".join("?" * len(chunk))})
                              AND translated_at IS NULL AND title_en IS NULL
                              AND (translating_until IS NULL OR translating_until < ?
                                   OR translating_by = ?){lock})
                        RETURNING id""",
                    [node, iso(until), *chunk, iso(now), node],
                ).fetchall()
                claimed.update(row[0] for row in rows)
        return claimed

    def release_translations(self, node: str, ids: Sequence[int]) -> None:
        """Give back `node`'s claims on these items (it could not translate them)."""
        postgresql = self.engine == "postgresql"
        with self.write(serial=not postgresql):
            unique = list(dict.fromkeys(ids))
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                self.db.execute(
                    f"""UPDATE items SET translating_by = NULL, translating_until = NULL
                        WHERE id IN ({",".join("?" * len(chunk))}) AND translating_by = ?""",
                    [*chunk, node],
                )

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
        alerts table is unique per (story, watchlist). An item pruned meanwhile is skipped,
        and so is one another node translated meanwhile (its claim had run out): the first
        translation stays. Storing a translation clears the item's claim.
        """
        now_text = iso(now or utcnow())
        stored = alerts = deliveries = 0
        with self.write():
            self._put(cache, now_text)
            for item in items:
                cursor = self.db.execute(
                    """UPDATE items SET title_en = ?, summary_en = ?, translation_engine = ?,
                           translation_model = ?, translated_at = ?,
                           translating_by = NULL, translating_until = NULL
                       WHERE id = ? AND translated_at IS NULL AND title_en IS NULL""",
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
            """INSERT INTO translations (key, text, created_at) VALUES (?, ?, ?)
               ON CONFLICT (key) DO NOTHING""",
            [(key, text, now) for key, text in entries.items()],
        )
