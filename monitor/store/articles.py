"""Articles of `full_text` feeds: the text read from each page, cached by canonical URL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from monitor.store.feeds import AlertPlan, FeedQueries, WriteResult
from monitor.store.schema import iso, migrations, utcnow

__all__ = ["ArticleQueries", "CachedArticle"]


@migrations(name="0007_articles")
def _articles(db: sqlite_utils.Database) -> None:
    """One row per article page read: its text, or why there is none (fetched once)."""
    db.execute(
        """CREATE TABLE articles (
               url TEXT PRIMARY KEY,
               fetched_at TEXT NOT NULL,
               text TEXT,
               error TEXT
           )"""
    )


@dataclass(frozen=True, slots=True)
class CachedArticle:
    url: str
    """The canonical URL (`monitor.parse.canonical_url`)."""
    text: str | None
    error: str | None
    """Why the page gave no text: fetch failed, not HTML, no main text."""


class ArticleQueries(FeedQueries):
    def cached_article(self, url: str, retry_before: datetime) -> CachedArticle | None:
        """The cached article; a failure cached before `retry_before` counts as not cached,
        so a page that timed out once is read again later (a text is kept for good)."""
        row = self.db.execute(
            """SELECT url, text, error FROM articles
               WHERE url = ? AND (error IS NULL OR fetched_at >= ?)""",
            [url, iso(retry_before)],
        ).fetchone()
        return CachedArticle(*row) if row is not None else None

    def prune_articles(self, older_than: datetime, limit: int = 1000) -> int:
        """Delete up to `limit` articles read before `older_than` (as `prune_items`)."""
        with self.write():
            cursor = self.db.execute(
                """DELETE FROM articles WHERE url IN (
                       SELECT url FROM articles WHERE fetched_at < ? LIMIT ?)""",
                [iso(older_than), limit],
            )
            return int(cursor.rowcount)

    def record_article(
        self,
        article: CachedArticle,
        item_id: int,
        story_key: str,
        plans: Sequence[AlertPlan],
        now: datetime | None = None,
    ) -> WriteResult:
        """Cache the article and add the alerts its text raised for the item, in one transaction.

        A story that already alerted for a watchlist is skipped by the unique key; an item
        pruned meanwhile gets no alert, but the article is cached all the same.
        """
        now_text = iso(now or utcnow())
        alerts = deliveries = 0
        with self.write():
            self.db.execute(
                """INSERT INTO articles (url, fetched_at, text, error) VALUES (?, ?, ?, ?)
                   ON CONFLICT (url) DO UPDATE SET fetched_at = excluded.fetched_at,
                       text = excluded.text, error = excluded.error
                   WHERE articles.error IS NOT NULL""",
                [article.url, now_text, article.text, article.error],
            )
            exists = self.db.execute("SELECT 1 FROM items WHERE id = ?", [item_id]).fetchone()
            if exists is not None:
                alerts, deliveries = self._add_alerts(item_id, story_key, plans, now_text)
        return WriteResult(1 if exists is not None else 0, alerts, deliveries)
