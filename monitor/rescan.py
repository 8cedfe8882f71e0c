"""`news-monitor rescan`: stored items matched again by the current watchlists.

A term added today would otherwise never see the items stored before it. A rescan alerts on
each stored item the current watchlists match and whose story has not alerted for them,
through the normal outbox, under the backfill rule unless asked otherwise.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import structlog

from monitor.analyze import Analyzer
from monitor.config import Config
from monitor.incident_desk import IncidentDesk, incident_settings
from monitor.models import Match
from monitor.service import alert_plans
from monitor.store import AlertPlan, Store
from monitor.store.rescan import StoredItem

__all__ = ["RescanReport", "rescan"]

log = structlog.get_logger("monitor.rescan")


@dataclass(frozen=True, slots=True)
class RescanReport:
    items: int
    """Stored items looked at."""
    matched: int
    """Items a watchlist matches that their story had not alerted for."""
    alerts: int
    deliveries: int
    too_old: int
    """Matched items older than `backfill`: not alerted (see `alert_old`)."""


def rescan(
    store: Store,
    analyzer: Analyzer,
    config: Config,
    since: datetime,
    now: datetime,
    *,
    watchlists: Collection[str] | None = None,
    alert_old: bool = False,
) -> RescanReport:
    """Match items fetched since `since` again; store the alerts they now raise.

    An item is as old as its published time, else its fetch time; with `alert_old` false,
    one older than `polling.backfill` is counted in `too_old` and does not alert, the rule
    a feed's first poll follows.
    """
    # The reports it finds join incidents as the daemon's would.
    store.desk = IncidentDesk(incident_settings(config.incidents))
    oldest = now - config.polling.backfill
    looked = matched = alerts = deliveries = too_old = 0
    after_id = 0
    while page := store.stored_items(since, after_id):
        after_id = page[-1].item_id
        looked += len(page)
        found: list[tuple[StoredItem, tuple[AlertPlan, ...]]] = []
        for item in page:
            matches = [
                m
                for m in _matches(analyzer, item)
                if m.watchlist not in item.alerted
                and (watchlists is None or m.watchlist in watchlists)
            ]
            if not matches:
                continue
            matched += 1
            if not alert_old and (item.published_at or item.fetched_at) < oldest:
                too_old += 1
                continue
            found.append((item, alert_plans(config, matches)))
        if found:
            result = store.add_alerts(found, now)
            alerts += result.alerts
            deliveries += result.deliveries
    log.info("rescan.done", items=looked, matched=matched, alerts=alerts, too_old=too_old)
    return RescanReport(looked, matched, alerts, deliveries, too_old)


def _matches(analyzer: Analyzer, item: StoredItem) -> list[Match]:
    matches = list(analyzer.match(item.title, item.summary))
    if item.title_en is not None or item.summary_en is not None:
        matches += analyzer.match_english(item.title_en or "", item.summary_en or "")
    return matches
