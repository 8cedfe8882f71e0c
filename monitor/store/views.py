"""Views for people: alerts and deliveries as rows to read, and feeds with their health.

The tables keep what the service needs (matches as JSON, ids); these views join and spell it
out for `sqlite3`, `sqlite-utils` and Datasette (`monitor/store/datasette.yaml` labels them and
adds canned queries). A view holds no data, so the migration costs nothing on a large file.
"""

from __future__ import annotations

import sqlite_utils

from monitor.store.schema import migrations

__all__ = ["DELIVERIES_VIEW", "FEEDS_VIEW", "VIEWS"]

VIEWS = ("alerts_view", "deliveries_view", "feeds_view")


DELIVERIES_VIEW = """
CREATE VIEW deliveries_view AS
SELECT d.id AS delivery_id,
       d.created_at AS time,
       d.sink,
       d.status,
       d.attempts,
       d.last_status AS last_http_status,
       d.last_error,
       d.next_attempt_at AS next_attempt,
       d.sent_at,
       d.dead_at,
       a.id AS alert_id,
       a.watchlist,
       a.severity,
       COALESCE(i.title_en, i.title) AS alert_title,
       i.url AS link
FROM deliveries d
JOIN alerts a ON a.id = d.alert_id
JOIN items i ON i.id = a.item_id;
"""
"""`deliveries_view`, the same SQL on both engines (the PostgreSQL baseline uses it too)."""

FEEDS_VIEW = """
CREATE VIEW feeds_view AS
SELECT f.name AS feed,
       CASE WHEN f.error_count > 0 THEN 'failing'
            WHEN f.last_ok_at IS NULL THEN 'never polled'
            ELSE 'ok' END AS state,
       f.failing_since,
       f.error_count AS failed_polls,
       f.last_error,
       f.last_status AS last_http_status,
       f.last_ok_at AS last_success,
       f.last_polled_at AS last_poll,
       f.next_poll_at AS next_poll,
       f.language,
       COALESCE(f.moved_to, f.url) AS url,
       (SELECT COUNT(*) FROM items i WHERE i.feed_id = f.id) AS items
FROM feeds f;
"""
"""`feeds_view`, the same SQL on both engines."""


@migrations(name="0005_views")
def _views(db: sqlite_utils.Database) -> None:
    db.executescript(
        f"""
        -- When the current run of failed polls began (NULL while the feed is fine): /healthz
        -- reports a feed failing for longer than max(3 intervals, 1h). Existing failing feeds
        -- count from their last success, else from their last poll.
        ALTER TABLE feeds ADD COLUMN failing_since TEXT;
        UPDATE feeds SET failing_since = COALESCE(last_ok_at, last_polled_at)
            WHERE error_count > 0;
        -- When a delivery was given up on; existing dead rows died at their last attempt.
        ALTER TABLE deliveries ADD COLUMN dead_at TEXT;
        UPDATE deliveries SET dead_at = next_attempt_at WHERE status = 'dead';
        CREATE INDEX deliveries_dead_at ON deliveries(dead_at) WHERE status = 'dead';

        CREATE VIEW alerts_view AS
        SELECT a.id AS alert_id,
               a.created_at AS time,
               a.watchlist,
               a.severity,
               -- The watchlist's terms as written in the config (English for English
               -- watchlists), whatever language or spelling the item used.
               (SELECT group_concat(term, ', ') FROM (
                    SELECT DISTINCT json_extract(m.value, '$.term') AS term
                    FROM json_each(a.matches) AS m ORDER BY 1)) AS matched_terms,
               -- The words as they appear in the item.
               (SELECT group_concat(form, ', ') FROM (
                    SELECT DISTINCT json_extract(m.value, '$.form') AS form
                    FROM json_each(a.matches) AS m ORDER BY 1)) AS matched_text,
               f.name AS feed,
               i.language,
               i.title,
               i.title_en AS title_english,
               i.url AS link,
               i.published_at AS published
        FROM alerts a
        JOIN items i ON i.id = a.item_id
        JOIN feeds f ON f.id = i.feed_id;

        {DELIVERIES_VIEW}
        {FEEDS_VIEW}
        """
    )
