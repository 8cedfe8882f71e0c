"""The watchlist matcher: every term, alias and exclusion compiled into one regular expression.

Matching is on whole words of the normalized text; each hit is looked up to the watchlists
that own the form. A watchlist whose `none` term occurs in the item does not match it.

Morphology is part of the one expression, as closed sets of affixes around each form (a term
never matches inside a longer word unless what is left over is one of the listed affixes):

* Arabic-script terms: proclitics before the first word (و ف, then ب ل ک or Sorani لە بە, then
  the article ال, or the contraction لل), and up to two Arabic or Sorani endings after the last
  word (ون ین ات ة ية, tanween alef; Sorani ی دا ەوە ەکە ەکان ان یش ێک ...). A term that starts
  with the article also matches after the لل contraction (الانبار → للانبار). Place names
  from the gazetteer take the Sorani endings and the nisba (الموصلیین) but no Arabic plural
  or case ending of their own, so أشباه الموصلات (semiconductors) is not Mosul.
* Latin-script terms: one Kurmanji ending (ê a an ên î, ek eke ekî, ya yê ye yên yî yan) or
  English plural (s es) after the last word. The possessive `'s` needs nothing: the
  apostrophe is a word boundary.
* Words of a multi-word term may be separated by any run of whitespace and hyphens.

A term that is a spelling of a gazetteer entry (monitor/text/gazetteer.py) also matches the
entry's other spellings, unless it says `expand: false`: `Khanaqin` finds خانقين, خانەقین and
Xaneqîn. Matches still name the term as the watchlist wrote it.

The reported `form` is the original text of the whole word(s), clitics and endings included.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from monitor.config import Term, WatchlistConfig
from monitor.models import Match
from monitor.text.gazetteer import Gazetteer, load_gazetteer
from monitor.text.normalize import normalize, normalize_term

__all__ = ["Matcher"]

# Affixes, written in normalized form (ة ە → ه, ي ى → ی, ك → ک).
_ARABIC_ENDINGS = ("ون", "ین", "ه", "ات", "یه", "ا")
_SORANI_ENDINGS = (
    "ی", "دا", "هوه", "وه", "هکه", "که", "هکان", "کان", "ان", "یان", "یش", "ش",
    "ێک", "ێکی", "یهک", "یهکی",
)  # fmt: skip
# Kurmanji case, ezafe and indefinite endings, written without circumflexes (the text is
# folded): -ê -a -an -ên -î, -ek -eke -ekî, and after a vowel -ya -yê -yên -yî -yan; English
# plural -s -es. The possessive 's needs nothing: the apostrophe is a word boundary.
_LATIN_ENDINGS = (
    "s",
    "es",
    "e",
    "ek",
    "eke",
    "eki",
    "a",
    "an",
    "en",
    "i",
    "ya",
    "ye",
    "yen",
    "yi",
    "yan",
)


def _alternation(affixes: Iterable[str]) -> str:
    return "(?:" + "|".join(re.escape(a) for a in sorted(set(affixes), key=len, reverse=True)) + ")"


_ARABIC_SCRIPT_SUFFIX = _alternation((*_ARABIC_ENDINGS, *_SORANI_ENDINGS)) + "{1,2}"
_LATIN_SUFFIX = _alternation(_LATIN_ENDINGS)
# و/ف, then ب ل ک (Arabic) or به له (Sorani بە لە), then the article; or the لل contraction.
_ARABIC_PREFIX = "(?:[وف]?(?:لل|(?:[بلک]|[بل]ه)?ال|[بلک]|[بل]ه)|[وف])"
_ARABIC_ARTICLE = "(?:[وف]?(?:(?:[بک]|[بل]ه)?ال|لل))"
_ARTICLE = "ال"
_SEPARATOR = r"[\s\-]+"
_SEPARATOR_RE = re.compile(_SEPARATOR)
_WORD_RE = re.compile(r"[^\s\-]+")
_ARABIC_LETTER = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff]")
# A place name takes Sorani endings and the nisba adjective (الموصلی, الموصلیه, الموصلیین), but
# no Arabic plural, case or feminine ending of its own: أشباه الموصلات (semiconductors) is not
# الموصل. Bare ه stays allowed, as the Sorani copula (ئەمە کەرکووکە).
_PLACE_ENDINGS = re.compile(
    "(?:ی(?:ون|ین|ه|ات)?)?" + _alternation((*_SORANI_ENDINGS, "ه")) + "{0,2}"
)
_SUFFIX_CHECK = {
    "ar": re.compile(_ARABIC_SCRIPT_SUFFIX),
    "lat": re.compile(_LATIN_SUFFIX),
}

# Classes of forms, each with its own trie and affixes: (name, prefix, suffix).
_AR, _AR_DEFINITE, _LAT, _OTHER = "ar", "ar-definite", "lat", "other"
_CLASSES: tuple[tuple[str, str | None, str | None, bool], ...] = (
    # name, prefix pattern, suffix pattern, prefix required
    (_AR, _ARABIC_PREFIX, _ARABIC_SCRIPT_SUFFIX, False),
    (_AR_DEFINITE, _ARABIC_ARTICLE, _ARABIC_SCRIPT_SUFFIX, True),
    (_LAT, None, _LATIN_SUFFIX, False),
    (_OTHER, None, None, False),
)

_Trie: TypeAlias = "dict[str, _Trie]"


@dataclass(frozen=True, slots=True)
class _Owner:
    watchlist: str
    term: str
    exclusion: bool


def _script(word: str) -> str:
    if _ARABIC_LETTER.search(word):
        return "ar"
    last = word[-1]
    if last.isalpha() and ord(last) < 0x0250:
        return "lat"
    return "other"


def _class_of(form: str) -> str:
    words = form.split(" ")
    first, last = _script(words[0]), _script(words[-1])
    if first == last == "ar":
        return _AR
    if last == "lat" and first != "ar":
        return _LAT
    return _OTHER


def _trie_pattern(forms: Iterable[str]) -> str:
    """One regex alternation shaped as a trie, so cost grows with text length, not term count."""
    trie: _Trie = {}
    for form in forms:
        node = trie
        for char in form:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: _Trie) -> str:
        ends = "" in node
        branches = []
        for char in sorted(k for k in node if k):
            head = _SEPARATOR if char == " " else re.escape(char)
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


def _shorter_stems(form: str, forms: Mapping[str, object]) -> list[str]:
    """Other forms that this one is, plus listed endings: `bomber` for `bombers`."""
    kind = _script(form.split(" ")[-1])
    check = _SUFFIX_CHECK.get(kind)
    if check is None:
        return []
    stems = []
    for cut in range(1, min(len(form), 9)):
        stem = form[:-cut]
        if stem in forms and not stem.endswith(" ") and check.fullmatch(form[-cut:]):
            stems.append(stem)
    return stems


def _term_forms(term: Term, gazetteer: Gazetteer) -> Iterator[str]:
    """The term, its aliases, and (unless `expand: false`) every spelling of the gazetteer
    entries that any of them names."""
    written = (term.term, *term.aliases)
    yield from written
    if term.expand:
        for form in written:
            yield from gazetteer.expand(form)


class Matcher:
    """Compiled once per config; `match()` is a pure function of the item's fields."""

    def __init__(
        self, watchlists: Sequence[WatchlistConfig], gazetteer: Gazetteer | None = None
    ) -> None:
        gazetteer = gazetteer if gazetteer is not None else load_gazetteer()
        # An ordered set of owners per form: a spelling reached twice (as an alias and by
        # expansion) is owned once.
        owners: dict[str, dict[_Owner, None]] = defaultdict(dict)
        for watchlist in watchlists:
            for term in watchlist.terms:
                owner = _Owner(watchlist.name, term.term, exclusion=False)
                for form in _term_forms(term, gazetteer):
                    key = normalize_term(form)
                    if key:
                        owners[key][owner] = None
            for excluded in watchlist.none:
                key = normalize_term(excluded)
                if key:
                    owners[key][_Owner(watchlist.name, excluded, exclusion=True)] = None
        self._owners = {form: tuple(found) for form, found in owners.items()}
        self._places = frozenset(
            form
            for form in owners
            if (entry := gazetteer.lookup(form)) is not None and entry.kind != "term"
        )
        # Forms that are word-prefixes of a longer form: "suicide" inside "suicide bomber".
        self._inner = {form: _word_prefixes(form, owners) for form in owners}
        # Forms that are another form plus endings: "bomber" inside "bombers".
        self._stems = {form: _shorter_stems(form, owners) for form in owners}
        by_class: dict[str, list[str]] = defaultdict(list)
        for form in owners:
            kind = _class_of(form)
            by_class[kind].append(form)
            if kind == _AR and form.startswith(_ARTICLE) and len(form.split(" ")[0]) > 3:
                by_class[_AR_DEFINITE].append(form[len(_ARTICLE) :])
        self._groups: list[tuple[str, int, int, int]] = []  # class, prefix, stem, suffix groups
        alternatives = []
        group = 0
        for name, prefix, suffix, required in _CLASSES:
            if not by_class.get(name):
                continue
            parts = []
            prefix_group = suffix_group = -1
            if prefix is not None:
                group += 1
                prefix_group = group
                parts.append(f"({prefix})" if required else f"({prefix})?")
            group += 1
            stem_group = group
            parts.append("(" + _trie_pattern(by_class[name]) + ")")
            if suffix is not None:
                group += 1
                suffix_group = group
                parts.append(f"({suffix})?")
            alternatives.append("".join(parts))
            self._groups.append((name, prefix_group, stem_group, suffix_group))
        if alternatives:
            pattern = r"(?<!\w)(?=(?:" + "|".join(alternatives) + r")(?!\w))"
            self._regex: re.Pattern[str] | None = re.compile(pattern)
        else:
            self._regex = None

    @property
    def empty(self) -> bool:
        return self._regex is None

    def _ending_allowed(self, form: str, key: str, suffix: str) -> bool:
        """Whether `form` may carry what follows it in the word (see `_PLACE_ENDINGS`)."""
        if form not in self._places:
            return True
        rest = key[len(form) :] if key.startswith(form) else ""
        return _PLACE_ENDINGS.fullmatch(rest + suffix) is not None

    def _candidates(self, hit: re.Match[str]) -> list[tuple[str, int, int]]:
        """(form, start, end) in the normalized text for each form this hit stands for."""
        name, prefix_group, stem_group, suffix_group = next(
            groups for groups in self._groups if hit.start(groups[2]) >= 0
        )
        stem_start = hit.start(stem_group)
        stem = hit.group(stem_group)
        key = _SEPARATOR_RE.sub(" ", stem)
        if name == _AR_DEFINITE:
            key = _ARTICLE + key
        start = (
            hit.start(prefix_group)
            if prefix_group > 0 and hit.start(prefix_group) >= 0
            else (stem_start)
        )
        end = (
            hit.end(suffix_group)
            if suffix_group > 0 and hit.start(suffix_group) >= 0
            else (hit.end(stem_group))
        )
        found = [(key, start, end)]
        found.extend((stem_form, start, end) for stem_form in self._stems.get(key, ()))
        if name == _AR and prefix_group > 0:
            prefix = hit.group(prefix_group) or ""
            if prefix.endswith((_ARTICLE, "لل")) and _ARTICLE + key in self._owners:
                found.append((_ARTICLE + key, start, end))
        suffix = hit.group(suffix_group) if suffix_group > 0 else None
        if suffix and name in (_AR, _AR_DEFINITE):
            found = [c for c in found if self._ending_allowed(c[0], key, suffix)]
        inner = self._inner.get(key)
        if inner:
            word_ends = [w.end() for w in _WORD_RE.finditer(stem)]
            for form in inner:
                words = form.count(" ") + 1
                found.append((form, start, stem_start + word_ends[words - 1]))
        return found

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
                for form, begin, finish in self._candidates(hit):
                    for owner in self._owners.get(form, ()):
                        if owner.exclusion:
                            excluded.add(owner.watchlist)
                            continue
                        marker = (owner.watchlist, field, begin)
                        if marker in seen:
                            continue
                        seen.add(marker)
                        start, stop = normalized.original_span(begin, finish)
                        found.append(
                            Match(owner.watchlist, owner.term, text[start:stop], field, start, stop)
                        )
        return tuple(m for m in found if m.watchlist not in excluded)
