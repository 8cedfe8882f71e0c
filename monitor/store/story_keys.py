"""Migration 0006: story keys of stored items and alerts recomputed under the canonical rules.

Before 0006 a link's path and query were kept as written, so one Sorani link written raw and
percent-encoded, or with its parameters in another order, had several keys and alerted once
per spelling. The keys are recomputed with the current `story_key`, which is what new items get.
"""

from __future__ import annotations

import sqlite_utils

from monitor._storykey import story_key
from monitor.store.schema import migrations

__all__: list[str] = []

_TITLE_CHARS = 200
"""The summary's share of a linkless, untitled item's key, as `parse` takes it."""


@migrations(name="0006_canonical_story_keys")
def _canonical_story_keys(db: sqlite_utils.Database) -> None:
    items = [
        (key, item_id)
        for item_id, url, title, summary, old in db.execute(
            "SELECT id, url, title, summary, story_key FROM items WHERE url IS NOT NULL"
        ).fetchall()
        if (key := story_key(url, title or summary[:_TITLE_CHARS])) != old
    ]
    db.conn.executemany("UPDATE items SET story_key = ? WHERE id = ?", items)
    # An alert takes its item's new key. Where several alerts of one watchlist now share a key,
    # the earliest holds it, so the story alerts no more; the later ones are kept, their key
    # marked `#duplicate-<id>` (a canonical link has no fragment), as (key, watchlist) is unique.
    claimed: set[tuple[str, str]] = set()
    alerts: list[tuple[int, str]] = []
    for alert_id, watchlist, old, key in db.execute(
        """SELECT a.id, a.watchlist, a.story_key, COALESCE(i.story_key, a.story_key)
           FROM alerts a LEFT JOIN items i ON i.id = a.item_id
           ORDER BY a.created_at, a.id"""
    ).fetchall():
        if (key, watchlist) in claimed:
            key = f"{key}#duplicate-{alert_id}"
        claimed.add((key, watchlist))
        if key != old:
            alerts.append((alert_id, key))
    # In two steps, so no row takes a key that another still holds until later in the loop.
    db.conn.executemany(
        "UPDATE alerts SET story_key = ? WHERE id = ?",
        [(f"migrating:{alert_id}", alert_id) for alert_id, _ in alerts],
    )
    db.conn.executemany(
        "UPDATE alerts SET story_key = ? WHERE id = ?",
        [(key, alert_id) for alert_id, key in alerts],
    )
