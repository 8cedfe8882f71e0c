"""The watchlist matcher: every term, alias and exclusion compiled into one regular expression.

Matching is on whole words of the normalized text; each hit is looked up to the watchlists
that own the form. A watchlist whose `none` term occurs in the item does not match it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from monitor.config import WatchlistConfig
from monitor.models import Match
from monitor.text.normalize import normalize, normalize_term

__all__ = ["Matcher"]


@dataclass(frozen=True, slots=True)
class _Owner:
    watchlist: str
    term: str
    exclusion: bool


def _trie_pattern(forms: Iterable[str]) -> str:
    """One regex alternation shaped as a trie, so cost grows with text length, not term count."""
    trie: dict[str, dict] = {}  # type: ignore[type-arg]
    for form in forms:
        node = trie
        for char in form:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict) -> str:  # type: ignore[type-arg]
        ends = "" in node
        branches = []
        for char in sorted(k for k in node if k):
            head = r"\s+" if char == " " else re.escape(char)
            branches.append(head + emit(node[char]))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        # A shorter form ending here is tried only after the longer ones (greedy `?`).
        return f"(?:{body})?" if ends else body

    return emit(trie)


def _word_prefixes(form: str, forms: Mapping[str, object]) -> list[str]:
    words = form.split(" ")
    prefixes = (" ".join(words[:n]) for n in range(len(words) - 1, 0, -1))
    return [prefix for prefix in prefixes if prefix in forms]


class Matcher:
    """Compiled once per config; `match()` is a pure function of the item's fields."""

    def __init__(self, watchlists: Sequence[WatchlistConfig]) -> None:
        owners: dict[str, list[_Owner]] = defaultdict(list)
        for watchlist in watchlists:
            for term in watchlist.terms:
                for form in (term.term, *term.aliases):
                    key = normalize_term(form)
                    if key:
                        owners[key].append(_Owner(watchlist.name, term.term, exclusion=False))
            for excluded in watchlist.none:
                key = normalize_term(excluded)
                if key:
                    owners[key].append(_Owner(watchlist.name, excluded, exclusion=True))
        self._owners = dict(owners)
        # Forms that are word-prefixes of a longer form: "suicide" inside "suicide bomber".
        self._inner = {form: _word_prefixes(form, owners) for form in owners}
        if owners:
            pattern = r"(?<!\w)(?=(" + _trie_pattern(owners) + r")(?!\w))"
            self._regex: re.Pattern[str] | None = re.compile(pattern)
        else:
            self._regex = None

    @property
    def empty(self) -> bool:
        return self._regex is None

    def match(self, fields: Mapping[str, str]) -> tuple[Match, ...]:
        """Matches in `fields` (name → text), after each watchlist's exclusions."""
        if self._regex is None:
            return ()
        found: list[Match] = []
        excluded: set[str] = set()
        seen: set[tuple[str, str, int]] = set()
        for field, text in fields.items():
            if not text:
                continue
            normalized = normalize(text)
            for hit in self._regex.finditer(normalized.text):
                matched = hit.group(1)
                key = " ".join(matched.split())
                for form in (key, *self._inner.get(key, ())):
                    for owner in self._owners.get(form, ()):
                        if owner.exclusion:
                            excluded.add(owner.watchlist)
                            continue
                        marker = (owner.watchlist, field, hit.start(1))
                        if marker in seen:
                            continue
                        seen.add(marker)
                        end = hit.start(1) + (len(matched) if form == key else len(form))
                        start, stop = normalized.original_span(hit.start(1), end)
                        found.append(
                            Match(owner.watchlist, owner.term, text[start:stop], field, start, stop)
                        )
        return tuple(m for m in found if m.watchlist not in excluded)
