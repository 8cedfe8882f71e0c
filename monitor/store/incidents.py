"""Incidents, the reports that make them, and each sink's message of them (DESIGN §10).

Every write path that adds alerts (a poll, a translation, an article, a rescan) goes through
`_add_alerts`: the item's new alerts, its report, its incident and the deliveries commit in
the caller's transaction. Which incident a report joins is decided by a desk (`IncidentDesk`,
given by the service; without one each report is an incident of its own). Deliveries are one
per report and sink: `created` for the first of an incident to reach that sink, `updated`
after. A `version` counter, bumped with every incident write, tells a desk that another
process (`poll-once`, `rescan`, `incidents merge`) changed incidents: it restores them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlite_utils

from monitor.models import Incident, Match, ReportRef
from monitor.store.base import StoreBase
from monitor.store.dialect import json_values
from monitor.store.schema import iso

__all__ = [
    "AlertPlan",
    "IncidentDesk",
    "IncidentQueries",
    "NewReport",
    "Placement",
    "migrate",
    "solo_incident_id",
]

SEVERITIES = ("info", "low", "medium", "high", "critical")


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 2


def solo_incident_id(first_key: str) -> str:
    """The id of an incident first reported as `first_key` (as monitor.incidents names it)."""
    return "inc-" + hashlib.sha256(first_key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class AlertPlan:
    watchlist: str
    severity: str
    matches: tuple[Match, ...]
    sinks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NewReport:
    """An item that alerted, as the store hands it to the desk."""

    item_id: int
    key: str
    title: str
    summary: str
    language: str
    outlet: str
    published_at: datetime | None
    fetched_at: datetime
    url: str | None
    watchlists: tuple[str, ...]
    severity: str
    title_en: str | None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the desk put a report: its incident as it now is, and the report's row."""

    incident: Incident
    report: ReportRef
    score: float = 0.0
    why: tuple[str, ...] = ()


class IncidentDesk(Protocol):
    """Decides which incident a report joins; lives on the store's thread."""

    version: int | None
    """The `incident_state` version its incidents reflect; None before the first restore."""

    @property
    def window(self) -> timedelta: ...

    def restore(self, incidents: Sequence[Incident]) -> None: ...

    def place(self, report: NewReport) -> Placement: ...

    def expire(self, now: datetime) -> tuple[str, ...]:
        """Close incidents quiet for `window` (at most now and then); their ids."""
        ...


class _SoloDesk:
    """No clustering: each report is an incident of its own (a store used without a service)."""

    version: int | None = None
    window = timedelta(hours=48)

    def restore(self, incidents: Sequence[Incident]) -> None:
        del incidents

    def place(self, report: NewReport) -> Placement:
        at = report.published_at or report.fetched_at
        row = ReportRef(
            report.key,
            at,
            report.outlet,
            report.language,
            report.title,
            report.url,
            report.title_en,
            report.watchlists,
            report.severity,
            (),
            (),
            (),
            (),
        )
        english = report.title if report.language == "en" else report.title_en
        incident = Incident(
            solo_incident_id(report.key),
            english or report.title,
            at,
            at,
            report.watchlists,
            report.severity,
            False,
            (),
            (),
            (),
            (report.language,),
            (report.outlet,),
            (row,),
            (),
            (),
        )
        return Placement(incident, row)

    def expire(self, now: datetime) -> tuple[str, ...]:
        del now
        return ()


def _dumps(values: Iterable[Any]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def _strings(text: str | None) -> tuple[str, ...]:
    return tuple(str(v) for v in json.loads(text or "[]"))


def _matches_json(matches: Iterable[Match]) -> str:
    return json.dumps(
        [
            {"term": m.term, "form": m.form, "field": m.field, "start": m.start, "end": m.end}
            for m in matches
        ],
        ensure_ascii=False,
    )


def migrate(db: sqlite_utils.Database) -> None:
    """0009: incidents, their reports and sink messages; deliveries per report and sink.

    Existing alerts become incidents, one per story (they were one alert per story and
    watchlist); their reports carry no evidence (places, event types), so a later report
    joins them on nothing but their English title.
    """
    db.executescript(
        """
        CREATE TABLE incidents (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            watchlists TEXT NOT NULL,
            severity TEXT NOT NULL,
            breaking INTEGER NOT NULL DEFAULT 0,
            places TEXT NOT NULL DEFAULT '[]',
            terms TEXT NOT NULL DEFAULT '[]',
            events TEXT NOT NULL DEFAULT '[]',
            languages TEXT NOT NULL DEFAULT '[]',
            outlets TEXT NOT NULL DEFAULT '[]',
            reports INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            closed_at TEXT,
            merged_into TEXT
        );
        CREATE INDEX incidents_last_seen ON incidents(last_seen);
        CREATE TABLE incident_reports (
            id INTEGER PRIMARY KEY,
            incident_id TEXT NOT NULL REFERENCES incidents(id),
            item_id INTEGER UNIQUE REFERENCES items(id) ON DELETE SET NULL,
            key TEXT NOT NULL,
            at TEXT NOT NULL,
            outlet TEXT NOT NULL,
            language TEXT NOT NULL,
            title TEXT NOT NULL,
            url TEXT,
            title_en TEXT,
            watchlists TEXT NOT NULL,
            severity TEXT NOT NULL,
            places TEXT NOT NULL DEFAULT '[]',
            terms TEXT NOT NULL DEFAULT '[]',
            events TEXT NOT NULL DEFAULT '[]',
            numbers TEXT NOT NULL DEFAULT '[]',
            score REAL NOT NULL DEFAULT 0,
            why TEXT NOT NULL DEFAULT '[]',
            joined_at TEXT NOT NULL
        );
        CREATE INDEX incident_reports_incident ON incident_reports(incident_id, at);
        CREATE TABLE incident_messages (
            incident_id TEXT NOT NULL REFERENCES incidents(id),
            sink TEXT NOT NULL,
            message_id TEXT,
            thread_id TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT,
            PRIMARY KEY (incident_id, sink)
        );
        -- Bumped by every write of incidents: a daemon restores them when another process
        -- (poll-once, rescan, incidents merge/split) changed them.
        CREATE TABLE incident_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL
        );
        INSERT INTO incident_state (id, version) VALUES (1, 0);
        ALTER TABLE deliveries ADD COLUMN incident_id TEXT;
        ALTER TABLE deliveries ADD COLUMN item_id INTEGER;
        ALTER TABLE deliveries ADD COLUMN kind TEXT NOT NULL DEFAULT 'created'
            CHECK (kind IN ('created', 'updated'));
        """
    )
    reports = db.execute(
        """SELECT i.id, a.story_key, COALESCE(i.published_at, i.fetched_at), f.name,
                  COALESCE(i.language, 'und'), i.title, i.url, i.title_en,
                  json_group_array(a.watchlist), json_group_array(a.severity), MIN(a.created_at)
           FROM alerts a JOIN items i ON i.id = a.item_id JOIN feeds f ON f.id = i.feed_id
           GROUP BY i.id ORDER BY MIN(a.id)"""
    ).fetchall()
    stories: dict[str, list[Sequence[Any]]] = {}
    for row in reports:
        stories.setdefault(row[1], []).append(row)
    for story, rows in stories.items():
        ident = solo_incident_id(story)
        watchlists = list(dict.fromkeys(w for r in rows for w in json.loads(r[8])))
        severity = max((s for r in rows for s in json.loads(r[9])), key=_rank)
        english = next((r[5] for r in rows if r[4] == "en"), None)
        translated = next((r[7] for r in rows if r[7]), None)
        times = sorted(r[2] for r in rows)
        db.execute(
            """INSERT INTO incidents (id, title, first_seen, last_seen, watchlists, severity,
                   languages, outlets, reports, created_at, updated_at, closed_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                ident,
                english or translated or rows[0][5],
                times[0],
                times[-1],
                _dumps(watchlists),
                severity,
                _dumps(dict.fromkeys(r[4] for r in rows)),
                _dumps(dict.fromkeys(r[3] for r in rows)),
                len(rows),
                rows[0][10],
                rows[0][10],
                rows[0][10],  # closed: its reports hold no evidence to join on
            ],
        )
        for n, r in enumerate(rows):
            db.execute(
                """INSERT INTO incident_reports (incident_id, item_id, key, at, outlet, language,
                       title, url, title_en, watchlists, severity, joined_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    ident,
                    r[0],
                    story if n == 0 else f"{story}#{r[0]}",
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    r[6],
                    r[7],
                    _dumps(dict.fromkeys(json.loads(r[8]))),
                    max(json.loads(r[9]), key=_rank),
                    r[10],
                ],
            )
    db.executescript(
        """
        UPDATE deliveries SET
            item_id = (SELECT a.item_id FROM alerts a WHERE a.id = deliveries.alert_id),
            incident_id = (SELECT r.incident_id FROM alerts a
                           JOIN incident_reports r ON r.item_id = a.item_id
                           WHERE a.id = deliveries.alert_id);
        -- An item alerted once per watchlist: its first row per sink stays its report's.
        UPDATE deliveries SET item_id = NULL WHERE id NOT IN (
            SELECT MIN(id) FROM deliveries GROUP BY item_id, sink);
        UPDATE deliveries SET kind = 'updated' WHERE id NOT IN (
            SELECT MIN(id) FROM deliveries GROUP BY incident_id, sink);
        CREATE UNIQUE INDEX deliveries_report ON deliveries(item_id, sink)
            WHERE item_id IS NOT NULL;
        CREATE INDEX deliveries_incident ON deliveries(incident_id, sink, kind);
        """
    )


def _report_ref(row: Sequence[Any]) -> ReportRef:
    return ReportRef(
        row[0],
        datetime.fromisoformat(row[1]),
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        _strings(row[7]),
        row[8],
        _strings(row[9]),
        _strings(row[10]),
        _strings(row[11]),
        tuple(int(n) for n in json.loads(row[12] or "[]")),
    )


_REPORT_COLUMNS = """key, at, outlet, language, title, url, title_en, watchlists, severity,
                     places, terms, events, numbers"""


class IncidentQueries(StoreBase):
    """Incidents and their reports; the write path every alert takes."""

    desk: IncidentDesk = _SoloDesk()
    """Set by the service (and `rescan`) to its clustering desk."""

    # Writing (inside the caller's transaction) ---------------------------------------------

    def _add_alerts(
        self, item_id: int, story_key: str, plans: Sequence[AlertPlan], now: str | None
    ) -> tuple[int, int]:
        """The item's new alerts, its report and incident, and a delivery per report and sink.

        Returns (alerts, deliveries) made. A watchlist the story already alerted for makes no
        alert; an item with no new alert is no (new) report.
        """
        made: list[tuple[int, AlertPlan]] = []
        for plan in plans:
            row = self.db.execute(
                """INSERT INTO alerts (item_id, story_key, watchlist, severity, matches,
                       created_at)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (story_key, watchlist) DO NOTHING RETURNING id""",
                [
                    item_id,
                    story_key,
                    plan.watchlist,
                    plan.severity,
                    _matches_json(plan.matches),
                    now,
                ],
            ).fetchone()
            if row is not None:
                made.append((int(row[0]), plan))
        if not made:
            return 0, 0
        made.sort(key=lambda pair: -_rank(pair[1].severity))
        known = self.db.execute(
            "SELECT incident_id FROM incident_reports WHERE item_id = ?", [item_id]
        ).fetchone()
        if known is not None:
            incident = str(known[0])
            self._widen(incident, [plan.watchlist for _, plan in made], now)
        else:
            incident = self._place(item_id, story_key, made, now)
        deliveries = 0
        for sink in dict.fromkeys(s for _, plan in made for s in plan.sinks):
            alert = next(a for a, plan in made if sink in plan.sinks)
            first = self.db.execute(
                "SELECT 1 FROM deliveries WHERE incident_id = ? AND sink = ? LIMIT 1",
                [incident, sink],
            ).fetchone()
            cursor = self.db.execute(
                """INSERT INTO deliveries (alert_id, sink, next_attempt_at, created_at,
                       incident_id, item_id, kind)
                   VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
                [
                    alert,
                    sink,
                    now,
                    now,
                    incident,
                    item_id,
                    "created" if first is None else "updated",
                ],
            )
            deliveries += cursor.rowcount
        return len(made), deliveries

    def _place(
        self, item_id: int, story_key: str, made: Sequence[tuple[int, AlertPlan]], now: str | None
    ) -> str:
        item = self.db.execute(
            """SELECT i.title, i.summary, COALESCE(i.language, 'und'), f.name, i.published_at,
                      i.fetched_at, i.url, i.title_en
               FROM items i JOIN feeds f ON f.id = i.feed_id WHERE i.id = ?""",
            [item_id],
        ).fetchone()
        desk = self.desk
        self._sync_desk(datetime.fromisoformat(str(now)))
        report = NewReport(
            item_id,
            story_key,
            item[0],
            item[1],
            item[2],
            item[3],
            datetime.fromisoformat(item[4]) if item[4] else None,
            datetime.fromisoformat(item[5]),
            item[6],
            tuple(plan.watchlist for _, plan in made),
            made[0][1].severity,
            item[7],
        )
        placement = desk.place(report)
        self._save_incident(placement.incident, now)
        ref = placement.report
        self.db.execute(
            f"""INSERT INTO incident_reports (incident_id, item_id, {_REPORT_COLUMNS},
                    score, why, joined_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (item_id) DO NOTHING""",
            [
                placement.incident.id,
                item_id,
                ref.key,
                iso(ref.at),
                ref.outlet,
                ref.language,
                ref.title,
                ref.url,
                ref.title_en,
                _dumps(ref.watchlists),
                ref.severity,
                _dumps(ref.places),
                _dumps(ref.terms),
                _dumps(ref.events),
                _dumps(ref.numbers),
                placement.score,
                _dumps(placement.why),
                now,
            ],
        )
        self._retitle(placement.incident.id)
        closed = desk.expire(datetime.fromisoformat(str(now)))
        for ident in closed:
            self.db.execute(
                "UPDATE incidents SET closed_at = ? WHERE id = ? AND closed_at IS NULL",
                [now, ident],
            )
        desk.version = self._bump_version()
        return placement.incident.id

    def _sync_desk(self, now: datetime) -> None:
        """Restore the desk's incidents if another process changed them since it last did."""
        desk = self.desk
        version = self.incident_version()
        if desk.version != version:
            # Quiet for `window` counts from the newest report, not the clock: sample or
            # archive stories dated weeks ago still group (the desk expires the same way).
            row = self.db.execute(
                "SELECT MAX(last_seen) FROM incidents WHERE closed_at IS NULL"
            ).fetchone()
            newest = datetime.fromisoformat(row[0]) if row and row[0] else now
            desk.restore(self.open_incidents(min(now, newest) - desk.window))
            desk.version = version

    def restore_incidents(self, now: datetime) -> None:
        """Load the open incidents into the desk (the daemon, at start)."""
        self._sync_desk(now)

    def _save_incident(self, incident: Incident, now: str | None) -> None:
        self.db.execute(
            """INSERT INTO incidents (id, title, first_seen, last_seen, watchlists, severity,
                   breaking, places, terms, events, languages, outlets, reports, created_at,
                   updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET title = excluded.title,
                   first_seen = excluded.first_seen, last_seen = excluded.last_seen,
                   watchlists = excluded.watchlists, severity = excluded.severity,
                   breaking = excluded.breaking, places = excluded.places,
                   terms = excluded.terms, events = excluded.events,
                   languages = excluded.languages, outlets = excluded.outlets,
                   reports = excluded.reports, updated_at = excluded.updated_at,
                   closed_at = NULL, merged_into = NULL""",
            [
                incident.id,
                incident.title,
                iso(incident.first_seen),
                iso(incident.last_seen),
                _dumps(incident.watchlists),
                incident.severity,
                int(incident.breaking),
                _dumps(incident.places),
                _dumps(incident.terms),
                _dumps(incident.events),
                _dumps(incident.languages),
                _dumps(incident.outlets),
                len(incident.reports),
                now,
                now,
            ],
        )

    def _retitle(self, incident: str) -> None:
        """The incident's title: an English report's, else a translation (one that landed
        after its report was placed counts too), else the first report's."""
        self.db.execute(
            """UPDATE incidents SET title = COALESCE(
                   (SELECT r.title FROM incident_reports r
                    WHERE r.incident_id = incidents.id AND r.language = 'en'
                    ORDER BY r.at, r.id LIMIT 1),
                   (SELECT COALESCE(r.title_en, i.title_en) FROM incident_reports r
                    LEFT JOIN items i ON i.id = r.item_id
                    WHERE r.incident_id = incidents.id
                      AND COALESCE(r.title_en, i.title_en) IS NOT NULL
                    ORDER BY r.at, r.id LIMIT 1),
                   title)
               WHERE id = ?""",
            [incident],
        )

    def _translated_report(self, item_id: int, title_en: str) -> None:
        """A translation landed for an item: its report, and its incident's title, take it."""
        row = self.db.execute(
            """UPDATE incident_reports SET title_en = ? WHERE item_id = ?
               RETURNING incident_id""",
            [title_en, item_id],
        ).fetchone()
        if row is not None:
            self._retitle(str(row[0]))

    def _widen(self, incident: str, watchlists: Sequence[str], now: str | None) -> None:
        """A second pass made an item that already is a report alert for more watchlists."""
        row = self.db.execute("SELECT watchlists FROM incidents WHERE id = ?", [incident])
        found = row.fetchone()
        if found is None:
            return
        wider = list(dict.fromkeys([*_strings(found[0]), *watchlists]))
        self.db.execute(
            "UPDATE incidents SET watchlists = ?, updated_at = ? WHERE id = ?",
            [_dumps(wider), now, incident],
        )

    def incident_version(self) -> int:
        row = self.db.execute("SELECT version FROM incident_state WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def _bump_version(self) -> int:
        row = self.db.execute(
            "UPDATE incident_state SET version = version + 1 WHERE id = 1 RETURNING version"
        ).fetchone()
        return int(row[0])

    # Reading ---------------------------------------------------------------------------------

    def open_incidents(self, seen_since: datetime) -> list[Incident]:
        """Incidents not closed or merged with a report since `seen_since`, with their reports."""
        rows = self.db.execute(
            """SELECT id FROM incidents WHERE last_seen >= ? AND closed_at IS NULL
               AND merged_into IS NULL ORDER BY last_seen""",
            [iso(seen_since)],
        ).fetchall()
        return [found for (ident,) in rows if (found := self.incident(ident)) is not None]

    def incident(self, ident: str) -> Incident | None:
        row = self.db.execute(
            """SELECT id, title, first_seen, last_seen, watchlists, severity, breaking, places,
                      terms, events, languages, outlets FROM incidents WHERE id = ?""",
            [ident],
        ).fetchone()
        if row is None:
            return None
        reports = tuple(
            _report_ref(r)
            for r in self.db.execute(
                f"""SELECT {_REPORT_COLUMNS} FROM incident_reports WHERE incident_id = ?
                    ORDER BY at, id""",
                [ident],
            )
        )
        return Incident(
            row[0],
            row[1],
            datetime.fromisoformat(row[2]),
            datetime.fromisoformat(row[3]),
            _strings(row[4]),
            row[5],
            bool(row[6]),
            _strings(row[7]),
            _strings(row[8]),
            _strings(row[9]),
            _strings(row[10]),
            _strings(row[11]),
            reports,
            (),  # place_ids, term_ids: not stored; `Incidents.restore()` rebuilds them
            (),
        )

    def list_incidents(
        self, since: datetime, watchlist: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Incidents a report joined (or an analyst changed) since `since`, newest first."""
        where, params = ["updated_at >= ?", "merged_into IS NULL"], [iso(since)]
        if watchlist is not None:
            each = json_values(self.engine, "watchlists", "w")
            where.append(f"EXISTS (SELECT 1 FROM {each} WHERE w.value = ?)")
            params.append(watchlist)
        rows = self.db.execute(
            f"""SELECT id, title, severity, breaking, watchlists, places, terms, events,
                       languages, outlets, reports, first_seen, last_seen, updated_at, closed_at
                FROM incidents WHERE {" AND ".join(where)}
                ORDER BY updated_at DESC, last_seen DESC LIMIT ?""",
            [*params, limit],
        ).fetchall()
        return [_incident_json(row) for row in rows]

    def incident_timeline(self, ident: str) -> dict[str, Any] | None:
        """One incident with its reports, oldest first: time, outlet, language, title, link."""
        row = self.db.execute(
            """SELECT id, title, severity, breaking, watchlists, places, terms, events,
                      languages, outlets, reports, first_seen, last_seen, updated_at, closed_at
               FROM incidents WHERE id = ?""",
            [ident],
        ).fetchone()
        if row is None:
            return None
        reports = self.db.execute(
            """SELECT item_id, at, outlet, language, title, title_en, url, watchlists, score, why
               FROM incident_reports WHERE incident_id = ? ORDER BY at, id""",
            [ident],
        ).fetchall()
        merged = [r[0] for r in self.db.execute(
            "SELECT id FROM incidents WHERE merged_into = ? ORDER BY id", [ident]
        )]  # fmt: skip
        return {
            **_incident_json(row),
            "merged": merged,
            "timeline": [
                {
                    "item_id": r[0],
                    "at": r[1],
                    "outlet": r[2],
                    "language": r[3],
                    "title": r[4],
                    "title_en": r[5],
                    "url": r[6],
                    "watchlists": list(_strings(r[7])),
                    "score": r[8],
                    "why": list(_strings(r[9])),
                }
                for r in reports
            ],
        }

    def report_key(self, ident: str, item_id: int) -> str | None:
        row = self.db.execute(
            "SELECT key FROM incident_reports WHERE incident_id = ? AND item_id = ?",
            [ident, item_id],
        ).fetchone()
        return str(row[0]) if row else None

    def record_merge(self, kept: Incident, other: str, now: datetime) -> None:
        """An analyst merged `other` into `kept` (as it now is): its reports, deliveries and
        later reports follow; a daemon restores its incidents before its next report."""
        stamp = iso(now)
        with self.write():
            self._save_incident(kept, stamp)
            self.db.execute(
                "UPDATE incident_reports SET incident_id = ? WHERE incident_id = ?",
                [kept.id, other],
            )
            # The merged one's first message per sink is now an earlier report of the kept
            # one; where the kept one never reached a sink, it stays its first.
            self.db.execute(
                """UPDATE deliveries SET kind = 'updated' WHERE incident_id = ? AND kind = 'created'
                   AND sink IN (SELECT sink FROM deliveries WHERE incident_id = ?)""",
                [other, kept.id],
            )
            self.db.execute(
                "UPDATE deliveries SET incident_id = ? WHERE incident_id = ?", [kept.id, other]
            )
            self.db.execute(
                """INSERT INTO incident_messages (incident_id, sink, message_id,
                       thread_id, created_at, updated_at)
                   SELECT ?, sink, message_id, thread_id, created_at, updated_at
                   FROM incident_messages WHERE incident_id = ?
                   ON CONFLICT DO NOTHING""",
                [kept.id, other],
            )
            self.db.execute("DELETE FROM incident_messages WHERE incident_id = ?", [other])
            self.db.execute(
                """UPDATE incidents SET merged_into = ?, closed_at = ?, updated_at = ?, reports = 0
                   WHERE id = ?""",
                [kept.id, stamp, stamp, other],
            )
            self.db.execute(
                "UPDATE incidents SET merged_into = ? WHERE merged_into = ?", [kept.id, other]
            )
            self._retitle(kept.id)
            self._bump_version()

    def record_split(
        self, remaining: Incident, alone: Incident, item_id: int, now: datetime
    ) -> None:
        """An analyst split report `item_id` out into `alone`; later reports follow."""
        stamp = iso(now)
        with self.write():
            self._save_incident(remaining, stamp)
            self._save_incident(alone, stamp)
            self.db.execute(
                "UPDATE incident_reports SET incident_id = ? WHERE item_id = ?",
                [alone.id, item_id],
            )
            # Its deliveries went out (or go out) as what they were; from now on they count as
            # the new incident's first ones, and the incident it left keeps a first one per
            # sink (its earliest remaining report), so each incident is created once per sink.
            self.db.execute(
                "UPDATE deliveries SET incident_id = ?, kind = 'created' WHERE item_id = ?",
                [alone.id, item_id],
            )
            self.db.execute(
                """UPDATE deliveries SET kind = 'created' WHERE id IN (
                       SELECT MIN(id) FROM deliveries WHERE incident_id = ? GROUP BY sink
                       HAVING SUM(CASE WHEN kind = 'created' THEN 1 ELSE 0 END) = 0)""",
                [remaining.id],
            )
            self._retitle(remaining.id)
            self._retitle(alone.id)
            self._bump_version()


def _incident_json(row: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": row[0],
        "title": row[1],
        "severity": row[2],
        "breaking": bool(row[3]),
        "watchlists": list(_strings(row[4])),
        "places": list(_strings(row[5])),
        "terms": list(_strings(row[6])),
        "events": list(_strings(row[7])),
        "languages": list(_strings(row[8])),
        "outlets": list(_strings(row[9])),
        "reports": row[10],
        "first_seen": row[11],
        "last_seen": row[12],
        "updated_at": row[13],
        "closed_at": row[14],
    }
