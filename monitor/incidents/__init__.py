"""Incidents: reports of one real-world event, across feeds, languages and spellings, as one.

Pure and fast: frozen values in (`Report`), decisions out (`Decision` with the `Incident`
as it now is); no I/O, no clock. The store persists decisions; `Incidents.restore()` loads
the open incidents back; `merge()` and `split()` apply an analyst's corrections, and later
reports follow them (each report's evidence is kept in its `ReportRef`, so an incident can
be rebuilt from its reports).

How a report is placed (DESIGN §10). Evidence needs no translation model (`Reader.read`):

* places: gazetteer entries named in any script, most specific only, with containment
  through `parent`. Governorates (and any container kind) contain what lies in them; a
  district is named for its seat town and news means the town, so Khanaqin and Jalawla (a
  town of Khanaqin district) are two places, while Diyala contains both. The title says
  where: a place the summary names beside the title's is dropped ("in Jalawla, near
  Khanaqin"); one inside or around it refines it (Diyala, then Khanaqin). A place right
  after a direction ("north-east of Baqubah", شمال شرقي بعقوبة, باکووری خانەقین, bakurê
  Miqdadiyê) is a landmark: the event was around it, so it counts as its governorate;
* terms: gazetteer `term` entries (suicide bomber, ISIS);
* event types: monitor/text/data/events.yaml, in five families — violence (attack,
  explosion, suicide attack, car bomb, IED, checkpoint, rocket/mortar, drone strike,
  airstrike, clashes, assassination, kidnapping), casualty (killed, wounded), aftermath
  (arrest, funeral, claim, identified, toll, investigation), disaster (flood, fire,
  earthquake), civic (visit, protest). A report is compared by its first family in that
  order (an attack report that mentions a visit is about the attack), and within violence
  by its specific types when it has any ("bomb" says less than "IED");
* numbers: digits in any script, and small counts written as words;
* time: published time, else fetch time.

The report joins the open incident with the highest score if that score is at least
`THRESHOLD` (4.5), else it opens a new incident. The score adds up:

| evidence | score |
|---|---|
| place: the same place | +3.0 |
| place: one contains the other (Diyala ~ Khanaqin) | +2.5 |
| place: both named, none the same or containing | veto |
| place: one side names none | 0 |
| event: the same type | +2.0 |
| event: related ("attack" ~ suicide attack; aftermath ~ its event; killed ~ attack) | +1.0 |
| event: unrelated (IED ~ airstrike; visit ~ protest; a killing after an arrest) | −1.0 |
| event: different families (visit ~ attack; flood ~ fire; an arrest ~ a visit) | veto |
| event: one side says nothing of what happened | −0.5 |
| time from the incident's first report: ≤ 6 h / fading to 0 at 18 h / to −3 at 30 h | +1.0 … −3.0 |
| time, a follow-up (aftermath words) and its event, either order, within `window` | +0.5 |
| shared gazetteer terms | +0.5 each, at most +1.0 |
| a shared number (a rising toll is not held against it) | +0.5 |
| English titles (an original or a translation on both sides): word overlap (Jaccard) | up to +1.5 |

So the same town and type within hours joins (3 + 2 + 1); the governorate and a related
type joins (2.5 + 1 + 1); a follow-up naming its event joins the next day (3 + 1 + 0.5);
the same town at the same time does not join on place and time alone (3 − 0.5 + 1, or
3 − 1 + 1 with unrelated types); the same type in the same town two days apart does not
(3 + 2 − 3).

What a user tunes (`Settings`): `window` (48 h: an incident stays open this long after its
last report), `breaking_outlets` (3) and `breaking_within` (60 min): an incident reported
by that many distinct outlets within that time is breaking, and its severity is raised one
step (info < low < medium < high < critical).

Cost: candidates come from an index by place (and the places that contain it) and event
family, the newest `CANDIDATES` (32) per key, so a report is never compared with every open
incident; a report naming no place is compared with the newest of its family anywhere.
`Incidents` is not thread-safe: one owner (the service's poll loop) adds reports and calls
`expire()` now and then to close incidents that have been quiet for `window`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from monitor.incidents._cluster import (
    SEVERITIES,
    THRESHOLD,
    Decision,
    Incidents,
    Settings,
    incident_id,
    raise_severity,
)
from monitor.models import Incident, ReportRef

# The reader's module (gazetteer, event lexicon, matcher) loads when one of its names is first
# used, so a poll that places no report never imports it (issue 14).
if TYPE_CHECKING:
    from monitor.incidents._evidence import Evidence, Reader, Report, default_reader

_EVIDENCE = frozenset({"Evidence", "Reader", "Report", "default_reader"})

__all__ = [
    "SEVERITIES",
    "THRESHOLD",
    "Decision",
    "Evidence",
    "Incident",
    "Incidents",
    "Reader",
    "Report",
    "ReportRef",
    "Settings",
    "default_reader",
    "incident_id",
    "raise_severity",
]


def __getattr__(name: str) -> Any:
    if name in _EVIDENCE:
        from monitor.incidents import _evidence

        return getattr(_evidence, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
