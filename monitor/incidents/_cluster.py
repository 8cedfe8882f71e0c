"""Join or create: each report goes to the best-scoring open incident, or starts its own."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from monitor.models import Incident, ReportRef

# The reader (gazetteer, event lexicon, matcher) loads with the first `Incidents`, so a
# command that places no report never imports it (issue 14).
if TYPE_CHECKING:
    from monitor.incidents._evidence import Evidence, Reader, Report
    from monitor.text.events import EventType

SEVERITIES = ("info", "low", "medium", "high", "critical")

# Weights (documented in the package docstring; change them there too).
PLACE_SAME = 3.0
PLACE_WITHIN = 2.5
TYPE_SAME = 2.0
TYPE_RELATED = 1.0
TYPE_UNRELATED = -1.0
TYPE_UNKNOWN = -0.5
TERM = 0.5
TERMS_MAX = 1.0
NUMBER = 0.5
TITLE = 1.5
NEAR = 1.0
NEAR_HOURS = 6.0
FADED_HOURS = 18.0
STALE_HOURS = 30.0
STALE = -3.0
FOLLOW_UP = 0.5
THRESHOLD = 4.5
CANDIDATES = 32
"""At most this many incidents are scored per index key, newest first."""

_VIOLENCE, _CASUALTY, _AFTERMATH, _DISASTER, _CIVIC = (
    "violence", "casualty", "aftermath", "disaster", "civic",
)  # fmt: skip
_PRIORITY = (_VIOLENCE, _DISASTER, _CIVIC, _AFTERMATH, _CASUALTY)
# The families of types an incident of a family keeps (a visit mentioned in an attack's
# follow-up does not make the attack a visit).
_KEEPS = {
    _VIOLENCE: frozenset({_VIOLENCE, _CASUALTY, _AFTERMATH}),
    _DISASTER: frozenset({_DISASTER, _CASUALTY, _AFTERMATH}),
    _CIVIC: frozenset({_CIVIC}),
    _AFTERMATH: frozenset({_AFTERMATH, _CASUALTY, _VIOLENCE, _DISASTER}),
    _CASUALTY: frozenset({_CASUALTY, _VIOLENCE, _DISASTER, _AFTERMATH}),
}
_UNTYPED = ""
# Incident families a report of a family can join (the index is keyed by family).
_JOINS = {
    _VIOLENCE: (_VIOLENCE, _AFTERMATH, _CASUALTY, _UNTYPED),
    _DISASTER: (_DISASTER, _AFTERMATH, _CASUALTY, _UNTYPED),
    _CIVIC: (_CIVIC, _UNTYPED),
    _AFTERMATH: (_VIOLENCE, _DISASTER, _AFTERMATH, _CASUALTY, _UNTYPED),
    _CASUALTY: (_VIOLENCE, _DISASTER, _AFTERMATH, _CASUALTY, _UNTYPED),
}
_ALL_FAMILIES = (*_PRIORITY, _UNTYPED)
_ANYWHERE = "*"


@dataclass(frozen=True, slots=True)
class Settings:
    """What a user may tune (config `incidents:`); weights and threshold are fixed."""

    window: timedelta = timedelta(hours=48)
    """An incident stays open this long after its last report; follow-ups (arrests, the
    funeral, the toll) join within this long of its first."""
    breaking_outlets: int = 3
    breaking_within: timedelta = timedelta(minutes=60)

    def __post_init__(self) -> None:
        if self.window <= timedelta(0) or self.breaking_within <= timedelta(0):
            raise ValueError("incidents: window and breaking_within must be positive durations")
        if self.breaking_outlets < 1:
            raise ValueError("incidents: breaking_outlets must be at least 1")


@dataclass(frozen=True, slots=True)
class Decision:
    incident: Incident
    """The incident as it is after the report: new, grown, or (duplicate) unchanged."""
    created: bool
    duplicate: bool = False
    """The report's key was already in an incident; nothing changed."""
    became_breaking: bool = False
    score: float = 0.0
    """The joined incident's score; for a new incident, the best score that fell short."""
    why: tuple[str, ...] = ()
    """The terms of the score, for `analyze` and for analysts: `place khanaqin +3.0`."""


def incident_id(first_key: str) -> str:
    return "inc-" + hashlib.sha256(first_key.encode()).hexdigest()[:16]


def raise_severity(severity: str) -> str:
    position = SEVERITIES.index(severity) if severity in SEVERITIES else 2
    return SEVERITIES[min(position + 1, len(SEVERITIES) - 1)]


@dataclass(slots=True, eq=False)
class _Open:
    id: str
    refs: list[ReportRef]
    places: tuple[str, ...]
    terms: set[str]
    events: set[str]
    numbers: set[int]
    english: set[str]
    first_seen: datetime
    last_seen: datetime
    family: str
    first_hour: float = 0.0
    """`first_seen` in hours since the epoch, for the time score."""
    principal: tuple[str, ...] = ()
    """Ids of its types of its own family, the ones a report's types are compared with."""
    follow_ups_only: bool = True
    """Every report so far is a follow-up (a funeral polled before the attack's reports)."""
    breaking: bool = False
    closed: bool = False
    keys: set[tuple[str | None, str, bool]] = field(default_factory=set)
    """The index entries it has: (place, family, inside)."""


def _principal(types: Iterable[EventType]) -> tuple[str, ...]:
    """The types of the first family in `_PRIORITY`, the specific ones if any: an attack
    report that mentions the governor's visit is about the attack; casualty words count only
    when nothing says what happened."""
    types = list(types)
    family = _family(types)
    chosen = [t for t in types if t.family == family]
    # "Bomb" says less than "IED": a generic word counts only when nothing specific is said.
    specific = [t for t in chosen if not t.generic]
    return tuple(t.id for t in specific or chosen)


def _family(types: Iterable[EventType]) -> str:
    families = {t.family for t in types}
    return next((f for f in _PRIORITY if f in families), _UNTYPED)


def _pair(new: EventType, old: EventType) -> float | None:
    """How a report's type bears on an incident's type: a score, or None for a conflict."""
    if new.id == old.id:
        return TYPE_SAME
    families = {new.family, old.family}
    if families == {_VIOLENCE}:
        return TYPE_RELATED if new.generic or old.generic else TYPE_UNRELATED
    if new.family == _AFTERMATH and old.family in (_VIOLENCE, _DISASTER):
        return TYPE_RELATED  # a follow-up refers back
    if _CASUALTY in families:
        return None if _CIVIC in families else TYPE_RELATED
    if families in ({_AFTERMATH}, {_CIVIC}, {_VIOLENCE, _AFTERMATH}, {_DISASTER, _AFTERMATH}):
        # Two follow-ups, two civic events, an event after an arrest: unrelated types.
        return TYPE_UNRELATED
    return None  # violence ~ disaster ~ civic, two disasters, a follow-up ~ a civic event


@dataclass(frozen=True, slots=True)
class _Probe:
    """A report's evidence, prepared once for comparing with every candidate."""

    evidence: Evidence
    types: tuple[EventType, ...]
    principal: tuple[str, ...]
    follow_up: bool
    family: str
    terms: frozenset[str]
    numbers: frozenset[int]
    hour: float
    """Its time, in hours since the epoch."""
    places: dict[tuple[str, ...], float | None] = field(default_factory=dict)
    kinds: dict[tuple[str, ...], float | None] = field(default_factory=dict)


_UNSCORED = -1e9  # not a score any pairing gives


class Incidents:
    """The open incidents and their index. `add()` decides for one report; the caller
    persists the decision. Pure: no I/O, no clock (time comes from the reports)."""

    def __init__(self, settings: Settings | None = None, reader: Reader | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        from monitor.incidents._evidence import default_reader

        self.reader = reader if reader is not None else default_reader()
        self._open: dict[str, _Open] = {}
        self._of_report: dict[str, str] = {}
        # (place, family) → incidents there; (container, family) → incidents inside it.
        self._at: dict[tuple[str | None, str], list[_Open]] = {}
        self._inside: dict[tuple[str | None, str], list[_Open]] = {}
        types = self.reader.lexicon.types
        self._pairs = {(a.id, b.id): _pair(a, b) for a in types for b in types}

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[Incident]:
        return (self._snapshot(o) for o in self._open.values())

    def get(self, incident: str) -> Incident:
        return self._snapshot(self._open[incident])

    def read(self, report: Report) -> Evidence:
        return self.reader.read(report)

    # --- deciding ---

    def add(self, report: Report, evidence: Evidence | None = None) -> Decision:
        """Join `report` to the best-scoring open incident, or open a new one."""
        known = self._of_report.get(report.key)
        if known is not None and known in self._open:
            return Decision(self._snapshot(self._open[known]), created=False, duplicate=True)
        evidence = evidence if evidence is not None else self.reader.read(report)
        types = tuple(self.reader.types[e] for e in evidence.events)
        probe = _Probe(
            evidence,
            types,
            _principal(types),
            any(t.family == _AFTERMATH for t in types),
            _family(types),
            frozenset(evidence.terms),
            frozenset(evidence.numbers),
            evidence.at.timestamp() / 3600,
        )
        best: _Open | None = None
        best_score = float("-inf")
        for candidate in self._candidates(evidence, types):
            score = self._score(probe, candidate)
            if score is not None and score > best_score:
                best, best_score = candidate, score
        ref = self._ref(report, evidence)
        if best is None or best_score < THRESHOLD:
            incident = self._create(ref, evidence, types)
            shown = 0.0 if best is None else best_score
            return Decision(self._snapshot(incident), created=True, score=shown)
        why = self._explain(probe, best)
        was_breaking = best.breaking
        self._join(best, ref, evidence, types)
        return Decision(
            self._snapshot(best),
            created=False,
            became_breaking=best.breaking and not was_breaking,
            score=best_score,
            why=why,
        )

    def _candidates(self, evidence: Evidence, types: tuple[EventType, ...]) -> Iterator[_Open]:
        family = _family(types)
        wanted = _JOINS[family] if family else _ALL_FAMILIES
        keys: list[tuple[dict[tuple[str | None, str], list[_Open]], str | None]] = []
        if evidence.places:
            for place in evidence.places:
                keys.append((self._at, place))
                keys.append((self._inside, place))
                keys.extend((self._at, outer) for outer in self.reader.containers[place])
            keys.append((self._at, None))
        else:
            keys.append((self._at, _ANYWHERE))
        horizon = evidence.at - self.settings.window
        ahead = evidence.at + self.settings.window
        seen: set[_Open] = set()
        for index, where in keys:
            for joins in wanted:
                bucket = index.get((where, joins))
                if not bucket:
                    continue
                for candidate in bucket[: -CANDIDATES - 1 : -1]:
                    if candidate in seen or candidate.closed:
                        continue
                    seen.add(candidate)
                    if candidate.last_seen >= horizon and candidate.first_seen <= ahead:
                        yield candidate

    def _hours(self, evidence: Evidence, incident: _Open) -> float:
        return abs(evidence.at.timestamp() / 3600 - incident.first_hour)

    def _score(self, probe: _Probe, incident: _Open) -> float | None:
        # Many incidents share their places and types: each pairing is computed once per
        # report.
        place = probe.places.get(incident.places, _UNSCORED)
        if place is _UNSCORED:
            place = probe.places[incident.places] = self._place_score(
                probe.evidence.places, incident.places
            )
        if place is None:
            return None
        kind = probe.kinds.get(incident.principal, _UNSCORED)
        if kind is _UNSCORED:
            kind = probe.kinds[incident.principal] = self._type_score(
                probe.principal, incident.principal
            )
        if kind is None:
            return None
        score = place + kind + self._time_score(probe, incident)
        if probe.terms and not probe.terms.isdisjoint(incident.terms):
            score += min(TERMS_MAX, TERM * len(probe.terms.intersection(incident.terms)))
        if probe.numbers and not probe.numbers.isdisjoint(incident.numbers):
            score += NUMBER
        if probe.evidence.english and incident.english:
            score += self._title_score(probe.evidence.english, incident.english)
        return score

    def _place_score(self, new: tuple[str, ...], old: tuple[str, ...]) -> float | None:
        if not new or not old:
            return 0.0
        best: float | None = None
        containers = self.reader.containers
        for a in new:
            for b in old:
                if a == b:
                    return PLACE_SAME
                if b in containers[a] or a in containers[b]:
                    best = PLACE_WITHIN
        return best

    def _type_score(self, new: tuple[str, ...], old: tuple[str, ...]) -> float | None:
        if not new or not old:
            return TYPE_UNKNOWN  # place and time alone do not make one event
        pairs = self._pairs
        best: float | None = None
        for a in new:
            for b in old:
                score = pairs[a, b]
                if score is not None and (best is None or score > best):
                    best = score
        return best

    def _time_score(self, probe: _Probe, incident: _Open) -> float:
        hours = abs(probe.hour - incident.first_hour)
        # A follow-up and its event: the event's report may also arrive after its
        # follow-ups, when feeds are polled at different times.
        follows = (probe.follow_up and incident.family in (_VIOLENCE, _DISASTER)) or (
            incident.follow_ups_only
            and probe.family in (_VIOLENCE, _DISASTER)
            and probe.hour <= incident.first_hour
        )
        if follows and hours <= self.settings.window.total_seconds() / 3600:
            return FOLLOW_UP
        if hours <= NEAR_HOURS:
            return NEAR
        if hours <= FADED_HOURS:
            return NEAR * (FADED_HOURS - hours) / (FADED_HOURS - NEAR_HOURS)
        if hours <= STALE_HOURS:
            return STALE * (hours - FADED_HOURS) / (STALE_HOURS - FADED_HOURS)
        return STALE

    @staticmethod
    def _title_score(new: frozenset[str], old: set[str]) -> float:
        if not new or not old:
            return 0.0
        return TITLE * len(new & old) / len(new | old)

    def _explain(self, probe: _Probe, incident: _Open) -> tuple[str, ...]:
        evidence = probe.evidence
        place = self._place_score(evidence.places, incident.places) or 0.0
        kind = self._type_score(probe.principal, incident.principal) or 0.0
        terms = sorted(probe.terms.intersection(incident.terms))
        numbers = sorted(probe.numbers.intersection(incident.numbers))
        parts = [
            f"place {','.join(evidence.places) or '-'}~{','.join(incident.places) or '-'} "
            f"{place:+.1f}",
            f"event {','.join(probe.principal) or '-'}~{','.join(incident.principal) or '-'} "
            f"{kind:+.1f}",
            f"time {self._hours(evidence, incident):.1f}h {self._time_score(probe, incident):+.1f}",
        ]
        if terms:
            parts.append(f"terms {','.join(terms)} {min(TERMS_MAX, TERM * len(terms)):+.1f}")
        if numbers:
            parts.append(f"numbers {','.join(map(str, numbers))} {NUMBER:+.1f}")
        title = self._title_score(evidence.english, incident.english)
        if title:
            parts.append(f"title {title:+.1f}")
        return tuple(parts)

    # --- state ---

    def _ref(self, report: Report, evidence: Evidence) -> ReportRef:
        return ReportRef(
            key=report.key,
            at=evidence.at,
            outlet=report.outlet,
            language=report.language,
            title=report.title,
            url=report.url,
            title_en=report.title_en,
            watchlists=report.watchlists,
            severity=report.severity,
            places=evidence.places,
            terms=evidence.terms,
            events=evidence.events,
            numbers=evidence.numbers,
        )

    def _create(self, ref: ReportRef, evidence: Evidence, types: tuple[EventType, ...]) -> _Open:
        incident = _Open(
            id=incident_id(ref.key),
            refs=[],
            places=(),
            terms=set(),
            events=set(),
            numbers=set(),
            english=set(),
            first_seen=ref.at,
            last_seen=ref.at,
            family=_family(types),
        )
        self._open[incident.id] = incident
        self._join(incident, ref, evidence, types)
        return incident

    def _join(
        self, incident: _Open, ref: ReportRef, evidence: Evidence, types: tuple[EventType, ...]
    ) -> None:
        incident.refs.append(ref)
        incident.follow_ups_only = incident.follow_ups_only and any(
            t.family == _AFTERMATH for t in types
        )
        self._of_report[ref.key] = incident.id
        incident.first_seen = min(incident.first_seen, ref.at)
        incident.first_hour = incident.first_seen.timestamp() / 3600
        incident.last_seen = max(incident.last_seen, ref.at)
        incident.places = self.reader.specific((*incident.places, *evidence.places))
        incident.terms.update(evidence.terms)
        incident.numbers.update(evidence.numbers)
        incident.english.update(evidence.english)
        keeps = _KEEPS.get(incident.family)
        incident.events.update(t.id for t in types if keeps is None or t.family in keeps)
        kept = [self.reader.types[e] for e in sorted(incident.events)]
        incident.family = _family(kept)
        incident.principal = _principal(kept)
        if not incident.breaking:
            incident.breaking = self._is_breaking(incident.refs)
        self._index(incident)

    def _is_breaking(self, refs: list[ReportRef]) -> bool:
        needed, within = self.settings.breaking_outlets, self.settings.breaking_within
        ordered = sorted(refs, key=lambda r: r.at)
        for end, last in enumerate(ordered):
            outlets = {r.outlet for r in ordered[: end + 1] if last.at - r.at <= within}
            if len(outlets) >= needed:
                return True
        return False

    def _index(self, incident: _Open) -> None:
        family = incident.family
        keys: list[tuple[str | None, bool]] = [(place, False) for place in incident.places]
        keys += [
            (outer, True) for place in incident.places for outer in self.reader.containers[place]
        ]
        if not incident.places:
            keys.append((None, False))
        keys.append((_ANYWHERE, False))
        for place, inside in keys:
            marker = (place, family, inside)
            if marker in incident.keys:
                continue
            incident.keys.add(marker)
            index = self._inside if inside else self._at
            index.setdefault((place, family), []).append(incident)

    def expire(self, now: datetime) -> tuple[Incident, ...]:
        """Close the incidents with no report within `window` of `now`; returns them."""
        horizon = now - self.settings.window
        closed = [o for o in self._open.values() if o.last_seen < horizon]
        for incident in closed:
            incident.closed = True
            del self._open[incident.id]
            for ref in incident.refs:
                self._of_report.pop(ref.key, None)
        if closed:
            self._rebuild_index()
        return tuple(self._snapshot(o) for o in closed)

    def _rebuild_index(self) -> None:
        self._at.clear()
        self._inside.clear()
        for incident in sorted(self._open.values(), key=lambda o: o.last_seen):
            incident.keys.clear()
            self._index(incident)

    def restore(self, incidents: Iterable[Incident]) -> None:
        """Load open incidents (from the store), as they were decided."""
        for stored in sorted(incidents, key=lambda i: i.last_seen):
            if stored.reports:
                self._rebuild(stored.id, stored.reports, breaking=stored.breaking)

    def merge(self, keep: str, other: str) -> Incident:
        """An analyst's correction: `other`'s reports join `keep`; `other` is no more."""
        kept, gone = self._open[keep], self._open.pop(other)
        gone.closed = True
        refs = (*kept.refs, *gone.refs)
        return self._snapshot(
            self._rebuild(keep, refs, breaking=kept.breaking or gone.breaking, replace=kept)
        )

    def split(self, incident: str, report: str) -> tuple[Incident, Incident]:
        """An analyst's correction: `report` leaves `incident` and starts its own; returns
        both as they now are. Later reports join whichever they match."""
        source = self._open[incident]
        moved = [r for r in source.refs if r.key == report]
        rest = [r for r in source.refs if r.key != report]
        if not moved or not rest:
            raise ValueError(f"{report!r} is not one of several reports of {incident!r}")
        remaining = self._rebuild(incident, rest, breaking=False, replace=source)
        # The first report may be the one that leaves: the rest keep the incident's id.
        ident = incident_id(report)
        alone = self._rebuild(
            ident if ident != incident else incident_id(f"{report}\n{incident}"),
            moved,
            breaking=False,
        )
        return self._snapshot(remaining), self._snapshot(alone)

    def _rebuild(
        self,
        ident: str,
        refs: Iterable[ReportRef],
        *,
        breaking: bool,
        replace: _Open | None = None,
    ) -> _Open:
        """An incident made of `refs` in time order, as `add()` would have grown it."""
        from monitor.incidents._evidence import Evidence, english_words

        if replace is not None:
            replace.closed = True  # its index entries are skipped from now on
        ordered = sorted(refs, key=lambda r: r.at)
        first = ordered[0]
        known = self.reader.types
        incident = _Open(
            id=ident,
            refs=[],
            places=(),
            terms=set(),
            events=set(),
            numbers=set(),
            english=set(),
            first_seen=first.at,
            last_seen=first.at,
            family=_family(known[e] for e in first.events if e in known),
            breaking=breaking,
        )
        self._open[ident] = incident
        for ref in ordered:
            evidence = Evidence(
                places=tuple(p for p in ref.places if self.reader.is_place(p)),
                terms=ref.terms,
                events=tuple(e for e in ref.events if e in known),
                numbers=ref.numbers,
                at=ref.at,
                english=english_words(ref.title if ref.language == "en" else ref.title_en),
            )
            self._join(incident, ref, evidence, tuple(known[e] for e in evidence.events))
        return incident

    def _snapshot(self, incident: _Open) -> Incident:
        refs = tuple(sorted(incident.refs, key=lambda r: r.at))
        reader = self.reader
        base = max(
            (r.severity for r in refs),
            key=lambda s: SEVERITIES.index(s) if s in SEVERITIES else 2,
        )
        english = next((r.title for r in refs if r.language == "en"), None)
        translated = next((r.title_en for r in refs if r.title_en), None)
        terms = tuple(sorted({t for r in refs for t in r.terms}))
        return Incident(
            id=incident.id,
            title=english or translated or refs[0].title,
            first_seen=incident.first_seen,
            last_seen=incident.last_seen,
            watchlists=tuple(dict.fromkeys(w for r in refs for w in r.watchlists)),
            severity=raise_severity(base) if incident.breaking else base,
            breaking=incident.breaking,
            places=tuple(reader.english_name(p) for p in incident.places),
            terms=tuple(reader.english_name(t) for t in terms),
            events=tuple(sorted(incident.events)),
            languages=tuple(dict.fromkeys(r.language for r in refs)),
            outlets=tuple(dict.fromkeys(r.outlet for r in refs)),
            reports=refs,
            place_ids=incident.places,
            term_ids=terms,
        )
