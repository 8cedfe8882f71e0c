"""What must hold in a news-monitor database after anything at all: faults, kills, restarts.

    from invariants import invariants

    summary = invariants(db_path)            # structure only: alerts, deliveries, integrity
    summary = invariants(db_path, config)    # and against the config's watchlists and sinks
    summary = invariants("postgresql://…")   # a PostgreSQL database (or `config.database`)

Checked, each problem listed in one AssertionError:

- SQLite: `PRAGMA integrity_check` is ok and `PRAGMA foreign_key_check` finds nothing
  (PostgreSQL enforces its foreign keys itself).
- At most one alert per (story, watchlist), each pointing at an item of that story.
- With `config`: every stored item that matches a watchlist (the config's own `Analyzer`) and
  was alertable (DESIGN's backfill rule: on a feed's first successful poll, only items dated
  within `polling.backfill`) has exactly one alert for its story and that watchlist; and no
  alert names a watchlist the item does not match.
- Every delivery is `sent` (with `sent_at`), `pending` (with `next_attempt_at`) or `dead` (with
  `last_error`): none lost in between. At most one delivery per (alert, sink).
- Incidents: every item that alerted is exactly one report, of an incident that exists; at
  most one delivery per (report, sink), of the report's incident; exactly one `created`
  delivery per (incident, sink) that has any, so each incident is created once per sink and
  each later report updates it once.
- With `config`: every report has exactly one delivery row for each sink one of its item's
  watchlists targets (`Config.sinks_for`) and none for any other. Alerts of a watchlist no
  longer configured are only checked for duplicates.

The database is opened read-only, so this can run while a daemon still has it open.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.analyze import Analyzer
from monitor.config import Config, DatabaseURL
from monitor.store import Store

__all__ = ["Summary", "invariants"]


@dataclass(frozen=True)
class Summary:
    items: int
    alerts: int
    deliveries: dict[str, int]
    """Deliveries by status."""


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def _is_postgresql(target: object) -> bool:
    return isinstance(target, DatabaseURL) or str(target).startswith(("postgresql:", "postgres:"))


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def invariants(db_path: Path | str | DatabaseURL, config: Config | None = None) -> Summary:
    """Check every invariant; raise AssertionError listing each violation.

    Raises:
        AssertionError: with one line per problem found.
    """
    path: Path | str | DatabaseURL
    problems: list[str] = []
    db: Any
    if _is_postgresql(db_path):
        # Read-only, through the store's own connection (`?` placeholders as on SQLite).
        path = db_path
        db = Store.open_readonly(db_path).db
    else:
        path = Path(db_path)
        db = _connect(path)
    try:
        if isinstance(db, sqlite3.Connection):
            integrity = [row[0] for row in db.execute("PRAGMA integrity_check")]
            if integrity != ["ok"]:
                problems.append(f"integrity_check: {integrity[:5]}")
            foreign = db.execute("PRAGMA foreign_key_check").fetchall()
            if foreign:
                problems.append(f"foreign_key_check: {foreign[:5]}")

        items = db.execute(
            """SELECT i.id, i.feed_id, i.title, i.summary, i.published_at, i.fetched_at,
                      i.story_key, f.language, i.title_en, i.summary_en
               FROM items i JOIN feeds f ON f.id = i.feed_id"""
        ).fetchall()
        alerts = db.execute(
            """SELECT a.id, a.story_key, a.watchlist, a.item_id, i.story_key
               FROM alerts a LEFT JOIN items i ON i.id = a.item_id"""
        ).fetchall()
        deliveries = db.execute(
            "SELECT id, alert_id, sink, status, sent_at, next_attempt_at, last_error "
            "FROM deliveries"
        ).fetchall()
        problems += _incidents(db)
        report_sinks = db.execute(
            """SELECT a.item_id, a.watchlist, d.sink FROM alerts a
               LEFT JOIN deliveries d ON d.item_id = a.item_id"""
        ).fetchall()
    finally:
        db.close()

    per_story: dict[tuple[str, str], list[int]] = defaultdict(list)
    watchlist_of: dict[int, str] = {}
    for alert_id, story_key, watchlist, item_id, item_story in alerts:
        per_story[(story_key, watchlist)].append(alert_id)
        watchlist_of[alert_id] = watchlist
        if item_story is None:
            problems.append(f"alert {alert_id}: its item {item_id} does not exist")
        elif item_story != story_key:
            problems.append(f"alert {alert_id}: story {story_key!r} but its item is {item_story!r}")
    for (story_key, watchlist), ids in per_story.items():
        if len(ids) > 1:
            problems.append(f"{len(ids)} alerts for story {story_key!r} × {watchlist!r}: {ids}")

    statuses: dict[str, int] = defaultdict(int)
    per_alert: dict[int, list[str]] = defaultdict(list)
    for delivery_id, alert_id, sink, status, sent_at, next_attempt_at, last_error in deliveries:
        statuses[status] += 1
        per_alert[alert_id].append(sink)
        if alert_id not in watchlist_of:
            problems.append(f"delivery {delivery_id}: alert {alert_id} does not exist")
        if status == "sent" and not sent_at:
            problems.append(f"delivery {delivery_id}: sent without sent_at")
        elif status == "pending" and not next_attempt_at:
            problems.append(f"delivery {delivery_id}: pending without next_attempt_at")
        elif status == "dead" and not last_error:
            problems.append(f"delivery {delivery_id}: dead without last_error")
        elif status not in ("sent", "pending", "dead"):
            problems.append(f"delivery {delivery_id}: status {status!r}")
    for alert_id, sinks in per_alert.items():
        repeated = sorted({s for s in sinks if sinks.count(s) > 1})
        if repeated:
            problems.append(f"alert {alert_id}: more than one delivery to {repeated}")

    if config is not None:
        problems += _against_config(config, items, per_story, report_sinks)

    if problems:
        shown = "\n  ".join(problems[:50])
        more = f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise AssertionError(f"{path}: {len(problems)} invariant(s) broken:\n  {shown}{more}")
    return Summary(len(items), len(alerts), dict(statuses))


def _incidents(db: Any) -> list[str]:
    problems: list[str] = []
    unreported = db.execute(
        """SELECT DISTINCT a.item_id FROM alerts a
           WHERE NOT EXISTS (SELECT 1 FROM incident_reports r WHERE r.item_id = a.item_id)"""
    ).fetchall()
    problems += [f"item {row[0]} alerted but is no incident's report" for row in unreported]
    orphans = db.execute(
        """SELECT r.item_id, r.incident_id FROM incident_reports r
           WHERE NOT EXISTS (SELECT 1 FROM incidents i WHERE i.id = r.incident_id)"""
    ).fetchall()
    problems += [f"report {row[0]}: incident {row[1]} does not exist" for row in orphans]
    twice = db.execute(
        """SELECT item_id, sink, COUNT(*) FROM deliveries WHERE item_id IS NOT NULL
           GROUP BY item_id, sink HAVING COUNT(*) > 1"""
    ).fetchall()
    problems += [f"report {r[0]}: {r[2]} deliveries to {r[1]}" for r in twice]
    elsewhere = db.execute(
        """SELECT d.id, d.incident_id, r.incident_id FROM deliveries d
           JOIN incident_reports r ON r.item_id = d.item_id
           WHERE d.incident_id IS DISTINCT FROM r.incident_id"""
    ).fetchall()
    problems += [f"delivery {r[0]}: incident {r[1]}, its report's is {r[2]}" for r in elsewhere]
    created = db.execute(
        """SELECT incident_id, sink, SUM(CASE WHEN kind = 'created' THEN 1 ELSE 0 END)
           FROM deliveries WHERE incident_id IS NOT NULL GROUP BY incident_id, sink
           HAVING SUM(CASE WHEN kind = 'created' THEN 1 ELSE 0 END) != 1"""
    ).fetchall()
    problems += [f"incident {r[0]}: created {r[2]} times for {r[1]}" for r in created]
    return problems


def _against_config(
    config: Config,
    items: list[tuple[Any, ...]],
    per_story: dict[tuple[str, str], list[int]],
    report_sinks: list[tuple[Any, ...]],
) -> list[str]:
    problems: list[str] = []
    analyzer = Analyzer(config.watchlists)
    backfill = config.polling.backfill
    first_fetch: dict[int, str] = {}
    for row in items:
        feed_id, fetched = row[1], str(row[5])
        if feed_id not in first_fetch or fetched < first_fetch[feed_id]:
            first_fetch[feed_id] = fetched
    expected: set[tuple[str, str]] = set()
    matched: set[tuple[str, str]] = set()
    for row in items:
        _id, feed_id, title, summary, published, fetched, story, language, title_en, summary_en = (
            row
        )
        analysis = analyzer.analyze(title, summary, language)
        published_at, fetched_at = _when(published), _when(fetched)
        alertable = fetched != first_fetch[feed_id] or (
            published_at is not None
            and fetched_at is not None
            and published_at >= fetched_at - backfill
        )
        for watchlist in analysis.watchlists:
            matched.add((story, watchlist))
            if alertable:
                expected.add((story, watchlist))
        if title_en or summary_en:
            # The translation stage may alert on the English text alone.
            english = analyzer.match_english(title_en or "", summary_en or "")
            matched.update((story, m.watchlist) for m in english)
    for key in sorted(expected - set(per_story)):
        problems.append(f"no alert for story {key[0]!r} × {key[1]!r}, which matches")
    for key in sorted(set(per_story) - matched):
        problems.append(f"alert for story {key[0]!r} × {key[1]!r}, which no stored item matches")

    watchlists = {w.name: w for w in config.watchlists}
    wanted: dict[int, set[str]] = defaultdict(set)
    have: dict[int, set[str]] = defaultdict(set)
    known: set[int] = set()
    for item_id, name, sink in report_sinks:
        watchlist = watchlists.get(name)
        if watchlist is None:
            continue
        known.add(item_id)
        wanted[item_id].update(config.sinks_for(watchlist))
        if sink is not None:
            have[item_id].add(sink)
    for item_id in sorted(known):
        if sorted(have[item_id]) != sorted(wanted[item_id]):
            problems.append(
                f"report {item_id}: deliveries to {sorted(have[item_id])},"
                f" want {sorted(wanted[item_id])}"
            )
    return problems
