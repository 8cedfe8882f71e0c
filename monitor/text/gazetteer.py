"""Built-in multilingual names: places in Iraq and the Kurdistan Region, and security terms.

The data is `monitor/text/data/gazetteer.yaml` (its header gives the sources). Each entry lists
spellings per language (`en`, `ar`, `ckb`, `kmr`, `kmr-Arab`); a watchlist term that is one of
them stands for all of them (see `monitor.match`). Spellings are compared as the matcher
compares words, after `normalize_term`, so `KHANAQIN`, `Khanaqin` and `khanaqin` name the same
entry and `خانقين` / `خانقین` are one spelling.

An entry may carry a `note` saying which reading wins where one of its spellings is also
something else (Sulaymaniyah, not the given name Suleiman). The document's `left_out` mapping
lists the words kept out of every entry because they are common words (بلد "country" for
Balad), each with why; the loader refuses a spelling that is also left out.

`load_gazetteer()` reads the packaged file once per process; `parse_gazetteer()` is the pure
part, for data that does not come from the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml

from monitor.text.normalize import normalize_term

__all__ = ["KINDS", "LANGUAGES", "Entry", "Gazetteer", "load_gazetteer", "parse_gazetteer"]

# kmr-Arab: Kurmanji in the Arabic script (Badini), listed only where the Sorani spelling differs.
LANGUAGES = ("en", "ar", "ckb", "kmr", "kmr-Arab")
KINDS = frozenset({"governorate", "region", "district", "town", "area", "term"})
_FIELDS = frozenset({"id", "kind", "parent", "disputed", "source", "note", *LANGUAGES})


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    kind: str
    names: tuple[tuple[str, tuple[str, ...]], ...]
    """(language, spellings) for each language that has a spelling, in `LANGUAGES` order."""
    source: str
    parent: str | None = None
    disputed: bool = False
    note: str | None = None
    """Which reading wins where a spelling is ambiguous, and why."""

    @property
    def spellings(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s for _, spellings in self.names for s in spellings))

    def names_in(self, language: str) -> tuple[str, ...]:
        return next((spellings for lang, spellings in self.names if lang == language), ())


@dataclass(frozen=True, slots=True)
class Gazetteer:
    entries: tuple[Entry, ...]
    _index: Mapping[str, Entry] = field(repr=False, compare=False)
    left_out: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Normalized common words kept out of every entry → why."""

    def lookup(self, spelling: str) -> Entry | None:
        """The entry that `spelling` (as a watchlist would write it) is a spelling of."""
        return self._index.get(normalize_term(spelling))

    def why_left_out(self, word: str) -> str | None:
        """Why `word` is no spelling of any entry, when it was left out on purpose."""
        return self.left_out.get(normalize_term(word))

    def expand(self, spelling: str) -> tuple[str, ...]:
        """Every spelling of the entry `spelling` names; empty when it names none."""
        entry = self.lookup(spelling)
        return entry.spellings if entry is not None else ()

    def __getitem__(self, entry_id: str) -> Entry:
        return next(entry for entry in self.entries if entry.id == entry_id)


def _spellings(raw: dict[str, Any], language: str, where: str) -> tuple[str, ...]:
    value = raw.get(language, [])
    if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
        raise ValueError(f"{where}: {language} must be a list of non-empty strings")
    return tuple(value)


def _entry(raw: object, position: int) -> Entry:
    if not isinstance(raw, dict):
        raise ValueError(f"entry {position}: expected a mapping")
    where = f"entry {raw.get('id', position)!r}"
    unknown = set(raw) - _FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    entry_id, kind, source = raw.get("id"), raw.get("kind"), raw.get("source")
    if not isinstance(entry_id, str) or not entry_id:
        raise ValueError(f"{where}: id must be a non-empty string")
    if kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {sorted(KINDS)}")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"{where}: every entry names its source")
    parent, disputed, note = raw.get("parent"), raw.get("disputed", False), raw.get("note")
    if parent is not None and not isinstance(parent, str):
        raise ValueError(f"{where}: parent must be an entry id")
    if not isinstance(disputed, bool):
        raise ValueError(f"{where}: disputed must be true or false")
    if note is not None and (not isinstance(note, str) or not note.strip()):
        raise ValueError(f"{where}: note must be a non-empty string")
    names = tuple(
        (language, spellings)
        for language in LANGUAGES
        if (spellings := _spellings(raw, language, where))
    )
    if not names:
        raise ValueError(f"{where}: no spellings")
    return Entry(entry_id, str(kind), names, source, parent, disputed, note)


def _left_out(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(
        isinstance(word, str) and isinstance(why, str) and why.strip() for word, why in raw.items()
    ):
        raise ValueError("left_out must map each word to why it is left out")
    left_out: dict[str, str] = {}
    for word, why in raw.items():
        key = normalize_term(word)
        if not key:
            raise ValueError(f"left_out: {word!r} is empty once normalized")
        left_out[key] = why
    return left_out


def parse_gazetteer(data: object) -> Gazetteer:
    """Validate the YAML document (`{"entries": [...], "left_out": {...}}`) and index it by
    normalized spelling.

    Raises:
        ValueError: naming the entry, when the data breaks a rule: unknown keys, a missing
            source, an unknown parent, one spelling in two entries (which would make a
            term's expansion ambiguous), or a spelling that is also a left-out common word.
    """
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise ValueError("expected a mapping with an 'entries' list")
    entries = tuple(_entry(raw, n) for n, raw in enumerate(data["entries"]))
    left_out = _left_out(data.get("left_out", {}))
    ids = {entry.id for entry in entries}
    if len(ids) != len(entries):
        raise ValueError("entry ids must be unique")
    index: dict[str, Entry] = {}
    for entry in entries:
        if entry.parent is not None and entry.parent not in ids:
            raise ValueError(f"entry {entry.id!r}: unknown parent {entry.parent!r}")
        keys = [(spelling, normalize_term(spelling)) for spelling in entry.spellings]
        for spelling, key in keys:
            if not key:
                raise ValueError(f"entry {entry.id!r}: {spelling!r} is empty once normalized")
        for spelling, key in keys:
            other = index.setdefault(key, entry)
            if other is not entry:
                raise ValueError(
                    f"{spelling!r} is a spelling of both {other.id!r} and {entry.id!r}"
                )
            if key in left_out:
                raise ValueError(
                    f"entry {entry.id!r}: {spelling!r} is left out as a common word"
                    f" ({left_out[key]})"
                )
    return Gazetteer(entries, MappingProxyType(index), MappingProxyType(left_out))


@cache
def load_gazetteer() -> Gazetteer:
    """The packaged gazetteer, parsed once per process."""
    text = (resources.files("monitor.text") / "data" / "gazetteer.yaml").read_text("utf-8")
    # libyaml's loader when PyYAML has it: ten times faster on a file of this size.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return parse_gazetteer(yaml.load(text, Loader=loader))
