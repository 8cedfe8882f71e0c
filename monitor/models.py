"""Values that cross stage boundaries. Frozen, slotted, free of library types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Item:
    """One feed entry as plain text: no feedparser dict leaves parse.py."""

    guid: str
    url: str | None
    title: str
    summary: str
    published_at: datetime | None
    story_key: str
    content: str = ""
    """The article body as text, when the feed carries more than the summary (RSS
    `content:encoded`, Atom `content`, JSON Feed `content_html`): matched, not stored, not
    shown. Empty when it would only repeat the summary; cut at `parse.CONTENT_CHARS`."""


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    items: tuple[Item, ...]
    title: str | None
    format: str
    """feedparser's version ('rss20', 'atom10', …) or 'json1' for JSON Feed."""
    warning: str | None = None
    """Why the document was not well-formed, when items were still recovered from it."""


@dataclass(frozen=True, slots=True)
class Match:
    watchlist: str
    term: str
    form: str
    """The text as it appears in the item."""
    field: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Analysis:
    language: str
    language_confidence: float
    matches: tuple[Match, ...]

    @property
    def watchlists(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.watchlist for m in self.matches))


@dataclass(frozen=True, slots=True)
class ReportRef:
    """One line of an incident's timeline, with the evidence it brought (`monitor.incidents`
    decides it, the store keeps it)."""

    key: str
    at: datetime
    outlet: str
    language: str
    title: str
    url: str | None
    title_en: str | None
    watchlists: tuple[str, ...]
    severity: str
    places: tuple[str, ...]
    terms: tuple[str, ...]
    events: tuple[str, ...]
    numbers: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Incident:
    """Reports of one real-world event (`monitor.incidents` decides it, the store keeps it)."""

    id: str
    title: str
    first_seen: datetime
    last_seen: datetime
    watchlists: tuple[str, ...]
    severity: str
    """The highest of its reports', one step higher once breaking."""
    breaking: bool
    places: tuple[str, ...]
    """Canonical English names: `Khanaqin (Diyala)`."""
    terms: tuple[str, ...]
    events: tuple[str, ...]
    languages: tuple[str, ...]
    outlets: tuple[str, ...]
    reports: tuple[ReportRef, ...]
    place_ids: tuple[str, ...]
    """The gazetteer ids behind `places`, as `monitor.incidents` decided them. The store keeps
    only the English names: an incident read back from it has none here
    (`Incidents.restore()` rebuilds them from its reports)."""
    term_ids: tuple[str, ...]
    """The gazetteer ids behind `terms`; none in an incident read back from the store."""
