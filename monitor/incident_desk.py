"""The incident stage in the daemon: the store's desk, deciding with `monitor.incidents`.

The desk lives on the store's writer thread. Every path that adds alerts (a poll, a
translation, an article, a rescan) already commits there, one transaction at a time, so the
desk sees reports in commit order with no lock, and decides inside the transaction that writes
the report: the incident in memory and the one on disk cannot drift apart. Deciding costs well
under a millisecond per report (`bench/incidents_bench.py`), which the writer can afford.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from monitor.config import IncidentsConfig
from monitor.errors import MonitorError
from monitor.incidents import Incident, Incidents, Settings
from monitor.store import Store, utcnow
from monitor.store.incidents import NewReport, Placement

if TYPE_CHECKING:
    from monitor.incidents import Decision, Reader

__all__ = ["IncidentDesk", "incident_settings", "merge_incidents", "split_incident"]

_EXPIRE_EVERY = timedelta(minutes=1)
"""How often closing quiet incidents is considered: a scan of the open ones."""


def incident_settings(config: IncidentsConfig) -> Settings:
    return Settings(
        window=config.window,
        breaking_outlets=config.breaking.outlets,
        breaking_within=config.breaking.within,
    )


class IncidentDesk:
    """`monitor.store.incidents.IncidentDesk` over `monitor.incidents.Incidents`."""

    def __init__(self, settings: Settings, reader: Reader | None = None) -> None:
        self.settings = settings
        self._reader = reader
        self._incidents: Incidents | None = None
        self._expired_at: datetime | None = None
        self._newest: datetime | None = None
        """The newest report's time: incidents are quiet for `window` counting from it (never
        from later than the clock), so old sample or archive stories still group."""
        self.version: int | None = None

    @property
    def window(self) -> timedelta:
        return self.settings.window

    def reconfigure(self, settings: Settings) -> None:
        """New settings apply from the next report: the open incidents are restored under
        them (the breaking rule and the window)."""
        if settings != self.settings:
            self.settings = settings
            self.version = None

    @property
    def incidents(self) -> Incidents:
        if self._incidents is None:
            self._incidents = Incidents(self.settings, self._reader)
        return self._incidents

    def restore(self, incidents: Sequence[Incident]) -> None:
        self._incidents = Incidents(self.settings, self._reader)
        self._incidents.restore(incidents)
        self._newest = max((row.last_seen for row in incidents), default=None)

    def place(self, report: NewReport) -> Placement:
        from monitor.incidents import Report  # with the first report, not at start (issue 14)

        decision: Decision = self.incidents.add(
            Report(
                key=report.key,
                title=report.title,
                fetched_at=report.fetched_at,
                summary=report.summary,
                language=report.language,
                outlet=report.outlet,
                published_at=report.published_at,
                url=report.url,
                watchlists=report.watchlists,
                severity=report.severity,
                title_en=report.title_en,
            )
        )
        incident = decision.incident
        ref = next(r for r in incident.reports if r.key == report.key)
        self._newest = max(self._newest or ref.at, ref.at)
        return Placement(incident, ref, decision.score, decision.why)

    def expire(self, now: datetime) -> tuple[str, ...]:
        if self._expired_at is not None and now - self._expired_at < _EXPIRE_EVERY:
            return ()
        self._expired_at = now
        moment = min(now, self._newest or now)
        return tuple(incident.id for incident in self.incidents.expire(moment))


def _open(store: Store, ident: str) -> Incident:
    row = store.incident(ident)
    if row is None or not row.reports:
        raise MonitorError(f"no incident {ident} (see `news-monitor incidents`)")
    return row


def merge_incidents(store: Store, keep: str, other: str, settings: Settings) -> Incident:
    """An analyst's correction: `other`'s reports join `keep`, stored at once; a running
    daemon restores its incidents before it places its next report.

    Raises:
        MonitorError: an id names no incident, or both name the same one.
    """
    if keep == other:
        raise MonitorError(f"{keep} and {other} are the same incident")
    kept, gone = _open(store, keep), _open(store, other)
    incidents = Incidents(settings)
    incidents.restore([kept, gone])
    merged = incidents.merge(keep, other)
    store.record_merge(merged, other, utcnow())
    return merged


def split_incident(
    store: Store, ident: str, item_id: int, settings: Settings
) -> tuple[Incident, Incident]:
    """An analyst's correction: the report of item `item_id` leaves `ident` for an incident
    of its own; returns both as they now are.

    Raises:
        MonitorError: no such incident or report, or it is the incident's only report.
    """
    row = _open(store, ident)
    key = store.report_key(ident, item_id)
    if key is None:
        raise MonitorError(f"item {item_id} is not a report of {ident} (see `incidents show`)")
    if len(row.reports) < 2:
        raise MonitorError(f"{ident} has only one report: there is nothing to split")
    incidents = Incidents(settings)
    incidents.restore([row])
    remaining, alone = incidents.split(ident, key)
    store.record_split(remaining, alone, item_id, utcnow())
    return remaining, alone
