"""The event-type lexicon: what kind of event a report tells of, in en / ar / ckb / kmr.

The data is `monitor/text/data/events.yaml` (its header gives the families and sources). Each
type lists base forms per language; `monitor.incidents` matches them as watchlist terms are
matched, so clitics and endings come from the matcher, not from the data. `numbers` lists
small counts written as words.

`load_events()` reads the packaged file once per process; `parse_events()` is the pure part.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from monitor.text.gazetteer import LANGUAGES
from monitor.text.normalize import normalize_term

__all__ = ["FAMILIES", "EventType", "Lexicon", "NumberWord", "load_events", "parse_events"]

FAMILIES = ("violence", "casualty", "aftermath", "disaster", "civic")
_TYPE_FIELDS = frozenset({"id", "family", "generic", "gazetteer", "source", *LANGUAGES})
_NUMBER_FIELDS = frozenset({"value", "source", *LANGUAGES})
_DIRECTION_FIELDS = frozenset({"source", *LANGUAGES})


@dataclass(frozen=True, slots=True)
class EventType:
    id: str
    family: str
    forms: tuple[str, ...]
    """Every form, all languages, in the order written."""
    source: str
    generic: bool = False
    gazetteer: tuple[str, ...] = ()
    """Ids of gazetteer `term` entries whose spellings also name this type."""


@dataclass(frozen=True, slots=True)
class NumberWord:
    value: int
    forms: tuple[str, ...]
    source: str


@dataclass(frozen=True, slots=True)
class Lexicon:
    types: tuple[EventType, ...]
    numbers: tuple[NumberWord, ...]
    directions: tuple[str, ...] = ()
    """"North of", شمال, باکووری, bakurê: a place right after one is a landmark."""

    def __getitem__(self, type_id: str) -> EventType:
        return next(t for t in self.types if t.id == type_id)


def _forms(raw: dict[str, Any], where: str) -> tuple[str, ...]:
    forms: list[str] = []
    for language in LANGUAGES:
        value = raw.get(language, [])
        if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
            raise ValueError(f"{where}: {language} must be a list of non-empty strings")
        for form in value:
            if not normalize_term(form):
                raise ValueError(f"{where}: {form!r} is empty once normalized")
        forms.extend(value)
    if not forms:
        raise ValueError(f"{where}: no forms")
    return tuple(forms)


def _checked(raw: object, allowed: frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping")
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"{where}: every entry names its source")
    return raw


def _type(raw: object, position: int) -> EventType:
    where = f"type {raw.get('id', position) if isinstance(raw, dict) else position!r}"
    entry = _checked(raw, _TYPE_FIELDS, where)
    type_id, family = entry.get("id"), entry.get("family")
    if not isinstance(type_id, str) or not type_id:
        raise ValueError(f"{where}: id must be a non-empty string")
    if family not in FAMILIES:
        raise ValueError(f"{where}: family must be one of {list(FAMILIES)}")
    generic = entry.get("generic", False)
    if not isinstance(generic, bool):
        raise ValueError(f"{where}: generic must be true or false")
    gazetteer = entry.get("gazetteer", [])
    if not isinstance(gazetteer, list) or not all(isinstance(g, str) for g in gazetteer):
        raise ValueError(f"{where}: gazetteer must be a list of entry ids")
    return EventType(
        type_id, str(family), _forms(entry, where), entry["source"], generic, tuple(gazetteer)
    )


def _number(raw: object, position: int) -> NumberWord:
    where = f"number {raw.get('value', position) if isinstance(raw, dict) else position!r}"
    entry = _checked(raw, _NUMBER_FIELDS, where)
    value = entry.get("value")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{where}: value must be a whole number")
    return NumberWord(value, _forms(entry, where), entry["source"])


def parse_events(data: object) -> Lexicon:
    """Validate the YAML document (`{"types": [...], "numbers": [...], "directions": {...}}`).

    Raises:
        ValueError: naming the entry, when the data breaks a rule: unknown keys, a missing
            source, an unknown family, a duplicate id, or one form in two types (a report
            would then be of both).
    """
    if not isinstance(data, dict) or not isinstance(data.get("types"), list):
        raise ValueError("expected a mapping with a 'types' list")
    numbers_raw = data.get("numbers", [])
    if not isinstance(numbers_raw, list):
        raise ValueError("'numbers' must be a list")
    unknown = set(data) - {"types", "numbers", "directions"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    directions: tuple[str, ...] = ()
    if "directions" in data:
        raw = _checked(data["directions"], _DIRECTION_FIELDS, "directions")
        directions = _forms(raw, "directions")
    types = tuple(_type(raw, n) for n, raw in enumerate(data["types"]))
    numbers = tuple(_number(raw, n) for n, raw in enumerate(numbers_raw))
    if len({t.id for t in types}) != len(types):
        raise ValueError("type ids must be unique")
    if len({n.value for n in numbers}) != len(numbers):
        raise ValueError("number values must be unique")
    owner: dict[str, str] = {}
    named = [(t.id, t.forms) for t in types] + [(str(n.value), n.forms) for n in numbers]
    named.append(("directions", directions))
    for name, forms in named:
        for form in forms:
            other = owner.setdefault(normalize_term(form), name)
            if other != name:
                raise ValueError(f"{form!r} is a form of both {other!r} and {name!r}")
    return Lexicon(types, numbers, directions)


@cache
def load_events() -> Lexicon:
    """The packaged lexicon, parsed once per process."""
    text = (resources.files("monitor.text") / "data" / "events.yaml").read_text("utf-8")
    return parse_events(yaml.safe_load(text))
