"""What a report says, as evidence that needs no translation model: places, terms, event
types, numbers and time. See `monitor.incidents` for how the evidence is weighed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from monitor.config import Term, WatchlistConfig
from monitor.match import Matcher
from monitor.models import Match
from monitor.text.events import EventType, Lexicon, load_events
from monitor.text.gazetteer import Entry, Gazetteer, load_gazetteer
from monitor.text.normalize import normalize

# Kinds that contain places news names: a report that says only "Diyala" may tell of an event
# in Khanaqin. Every other kind is a point: a district is named for its seat town and news
# means the town, so Khanaqin (district) and Jalawla (a town in it) are two places.
CONTAINER_KINDS = frozenset({"country", "region", "governorate", "province"})
# A region or area with no parent is too wide to say where (the disputed territories).
_VAGUE_KINDS = frozenset({"region", "area"})

_PLACE, _EVENT, _NUMBER, _DIRECTION = "p\t", "e\t", "n\t", "d\t"
# What may stand between a direction and its place: "north of Baqubah", "15 km north of".
_GAP = re.compile(r"[\s,]{0,3}")
_DIGITS = re.compile(r"(?<![\d.,:/])\d{1,3}(?![\d.,:/%])")
_ENGLISH_WORD = re.compile(r"[a-z][a-z']{2,}")
_STOPWORDS = frozenset({
    "the", "and", "for", "with", "from", "after", "near", "over", "into", "says", "said", "amid",
    "its", "his", "her", "their", "was", "were", "has", "have", "had", "are", "not", "but", "who",
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "more", "than",
    "off", "out", "new",
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Report:
    """One item that alerted, as the incident stage sees it."""

    key: str
    """Stable and unique per report (the store's item key); the first report's key names
    its incident."""
    title: str
    fetched_at: datetime
    summary: str = ""
    language: str = "und"
    outlet: str = ""
    """Who published it (the feed's name): distinct outlets make an incident breaking."""
    published_at: datetime | None = None
    url: str | None = None
    watchlists: tuple[str, ...] = ()
    severity: str = "medium"
    title_en: str | None = None
    """An English translation of the title, when one exists."""

    @property
    def at(self) -> datetime:
        """When the report says it happened: published time, else fetch time."""
        return self.published_at if self.published_at is not None else self.fetched_at

    @property
    def english_title(self) -> str | None:
        return self.title if self.language == "en" else self.title_en


@dataclass(frozen=True, slots=True)
class Evidence:
    places: tuple[str, ...]
    """Gazetteer ids of the places named, most specific only (Diyala is dropped when
    Khanaqin, in Diyala, is named too)."""
    terms: tuple[str, ...]
    """Gazetteer ids of the `term` entries named (suicide-bomber, isis)."""
    events: tuple[str, ...]
    """Event type ids (monitor/text/data/events.yaml)."""
    numbers: tuple[int, ...]
    at: datetime
    english: frozenset[str]
    """Content words of the English title (the original, or a translation)."""


def english_words(title: str | None) -> frozenset[str]:
    if not title:
        return frozenset()
    words = _ENGLISH_WORD.findall(normalize(title).text)
    return frozenset(w for w in words if w not in _STOPWORDS)


def _watchlist(name: str, forms: Iterable[str]) -> WatchlistConfig:
    first, *rest = forms
    term = Term(term=first, aliases=tuple(rest), expand=False)
    return WatchlistConfig(name=name, terms=(term,))


class Reader:
    """Reads evidence from reports. Build once per process (`default_reader()`): it compiles
    one matcher over every gazetteer spelling, event form and number word."""

    def __init__(self, gazetteer: Gazetteer | None = None, lexicon: Lexicon | None = None) -> None:
        self.gazetteer = gazetteer if gazetteer is not None else load_gazetteer()
        self.lexicon = lexicon if lexicon is not None else load_events()
        entries = {entry.id: entry for entry in self.gazetteer.entries}
        self._entries = entries
        self.types: dict[str, EventType] = {t.id: t for t in self.lexicon.types}
        self._ancestors = {entry_id: self._chain(entry_id) for entry_id in entries}
        self.containers = {
            entry_id: frozenset(a for a in chain if entries[a].kind in CONTAINER_KINDS)
            for entry_id, chain in self._ancestors.items()
        }
        has_children = {entry.parent for entry in entries.values() if entry.parent}
        self._vague = frozenset(
            entry.id
            for entry in entries.values()
            if entry.kind in _VAGUE_KINDS and entry.parent is None and entry.id not in has_children
        )
        # Gazetteer terms that also name an event type; ids the gazetteer lacks are unused.
        self._term_types: dict[str, list[str]] = {}
        for event in self.lexicon.types:
            for entry_id in event.gazetteer:
                self._term_types.setdefault(entry_id, []).append(event.id)
        watchlists = [_watchlist(_PLACE + e.id, e.spellings) for e in entries.values()]
        watchlists += [_watchlist(_EVENT + t.id, t.forms) for t in self.lexicon.types]
        watchlists += [_watchlist(_NUMBER + str(n.value), n.forms) for n in self.lexicon.numbers]
        if self.lexicon.directions:
            watchlists.append(_watchlist(_DIRECTION, self.lexicon.directions))
        self._matcher = Matcher(watchlists, self.gazetteer)

    def _chain(self, entry_id: str) -> tuple[str, ...]:
        chain: list[str] = []
        parent = self._entries[entry_id].parent
        while parent is not None and parent not in chain:
            chain.append(parent)
            parent = self._entries[parent].parent
        return tuple(chain)

    def entry(self, entry_id: str) -> Entry:
        return self._entries[entry_id]

    def is_place(self, entry_id: str) -> bool:
        entry = self._entries.get(entry_id)
        return entry is not None and entry.kind != "term" and entry_id not in self._vague

    def specific(self, places: Iterable[str]) -> tuple[str, ...]:
        """The places less those that contain another one of them."""
        found = tuple(dict.fromkeys(p for p in places if self.is_place(p)))
        covered = set().union(*(self.containers[p] for p in found)) if found else set()
        return tuple(p for p in found if p not in covered)

    def _where(self, title: list[str], summary: list[str]) -> tuple[str, ...]:
        """The title says where; the summary may say it more precisely (Diyala, then
        Khanaqin) but a place it names beside the title's is a landmark ("in Jalawla, north
        of Khanaqin"), not where the event was."""
        headline = self.specific(title)
        if not headline:
            return self.specific(summary)
        containers = self.containers
        inside = [
            place
            for place in summary
            if self.is_place(place)
            and any(
                place == t or t in containers[place] or place in containers[t] for t in headline
            )
        ]
        return self.specific((*headline, *inside))

    def english_name(self, entry_id: str) -> str:
        """`Khanaqin (Diyala)`: the English name, with the governorate for a point; the id
        itself for an entry this gazetteer lacks (an incident stored under another one)."""
        entry = self._entries.get(entry_id)
        if entry is None:
            return entry_id
        name = (entry.names_in("en") or entry.spellings)[0]
        if entry.kind == "term" or entry.kind in CONTAINER_KINDS:
            return name
        container = self._governorate(entry_id)
        if not container:
            return name
        outer = self._entries[container[0]]
        return f"{name} ({(outer.names_in('en') or outer.spellings)[0]})"

    def read(self, report: Report) -> Evidence:
        fields = {"title": report.title, "summary": report.summary}
        places: dict[str, list[Match]] = {"title": [], "summary": []}
        directions: dict[str, list[Match]] = {"title": [], "summary": []}
        terms: list[str] = []
        events: list[str] = []
        numbers: set[int] = set()
        for match in self._matcher.match(fields):
            kind, _, name = match.watchlist.partition("\t")
            kind += "\t"
            if kind == _PLACE:
                if self._entries[name].kind == "term":
                    terms.append(name)
                    events.extend(self._term_types.get(name, ()))
                else:
                    places[match.field].append(match)
            elif kind == _EVENT:
                events.append(name)
            elif kind == _DIRECTION:
                directions[match.field].append(match)
            else:
                numbers.add(int(name))
        for text in fields.values():
            numbers.update(
                n for n in map(int, _DIGITS.findall(normalize(text).text)) if 2 <= n <= 999
            )
        title = self._located(fields["title"], places["title"], directions["title"])
        summary = self._located(fields["summary"], places["summary"], directions["summary"])
        return Evidence(
            places=self._where(title, summary),
            terms=tuple(dict.fromkeys(terms)),
            events=tuple(dict.fromkeys(events)),
            numbers=tuple(sorted(numbers)),
            at=report.at,
            english=english_words(report.english_title),
        )

    def _located(self, text: str, places: list[Match], directions: list[Match]) -> list[str]:
        """The places a field names; with none but landmarks ("north of Baqubah"), the
        governorates around them (Diyala). A landmark that is itself a governorate says too
        little and is dropped."""
        named: list[str] = []
        around: list[str] = []
        for match in places:
            place = match.watchlist.partition("\t")[2]
            landmark = any(
                d.end <= match.start and _GAP.fullmatch(text, d.end, match.start)
                for d in directions
            )
            if not landmark:
                named.append(place)
            elif self.is_place(place) and self._entries[place].kind not in CONTAINER_KINDS:
                around.extend(self._governorate(place))
        return named or around

    def _governorate(self, place: str) -> tuple[str, ...]:
        outer = next(
            (a for a in self._ancestors[place] if self._entries[a].kind in CONTAINER_KINDS), None
        )
        return (outer,) if outer is not None else ()


@cache
def default_reader() -> Reader:
    """The reader over the packaged gazetteer and lexicon, built once per process."""
    return Reader()
