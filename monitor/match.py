"""The watchlist matcher: every term, alias and exclusion compiled into one regular expression.

Matching is on whole words of the normalized text; each hit is looked up to the watchlists
that own the form. A watchlist whose `none` term occurs in the item does not match it.

Morphology is part of the one expression, as closed sets of affixes around each form (a term
never matches inside a longer word unless what is left over is one of the listed affixes):

* Arabic-script terms: proclitics before the first word (و ف, then ب ل ک or Sorani لە بە بۆ,
  then the article ال, or the contraction لل; Badini ژ), and up to two Arabic, Sorani or Badini
  endings after the last word (ون ین ات ة ية, tanween alef; Sorani ی دا ەوە ەکە ەکان ان یش ێک
  ...; Badini ێ ێن ا). No stem begins at a ە: that is the vowel of Sorani بە لە, as in بەیت
  (a ballad), which is not ب + هیت (Hit). A term that starts
  with the article also matches after the لل contraction (الانبار → للانبار). Place names
  from the gazetteer take the Sorani endings and the nisba (الموصلیین) but no Arabic plural
  or case ending of their own, so أشباه الموصلات (semiconductors) is not Mosul.
* Latin-script terms: one Kurmanji ending (ê a an ên î, ek eke ekî, ya yê ye yên yî yan) or
  English plural (s es) after the last word. The possessive `'s` needs nothing: the
  apostrophe is a word boundary.
* Words of a multi-word term may be separated by any run of whitespace and hyphens. In a
  Sorani phrase whose first word carries the ezafe -ی, one more word of the ezafe chain may
  come between the words, and بە may be attached to the next one: ئۆتۆمبێلێکی بۆمبڕێژکراو
  finds ئۆتۆمبیلێکی بارهەڵگری بەبۆمبڕێژکراوی ("a bomb-rigged lorry"). No wider gap: a free
  one would join words of different clauses.

A term that is a spelling of a gazetteer entry (monitor/text/gazetteer.py) also matches the
entry's other spellings, unless it says `expand: false`: `Khanaqin` finds خانقين, خانەقین and
Xaneqîn. Matches still name the term as the watchlist wrote it. Each gazetteer spelling also
brings its spelling variants (monitor/text/variants.py: و/وو, ێ/ی and Arabic-keyboard Sorani,
romanization families), unless a variant is a common word; and a word that is a common word
(Soranî, the dialect) is not a place plus an ending, unless a watchlist names it. A spelling
known only as Arabic never matches a word written with the Kurdish ە.

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
from monitor.text.gazetteer import Entry, Gazetteer, load_gazetteer
from monitor.text.normalize import Normalized, folds_in, normalize, normalize_term
from monitor.text.variants import is_common_word, spelling_variants

__all__ = ["Form", "Matcher", "TermForms", "describe_term"]

# Affixes, written in normalized form (ة ە → ه, ي ى → ی, ك → ک).
_ARABIC_ENDINGS = ("ون", "ین", "ه", "ات", "یه", "ا")
_SORANI_ENDINGS = (
    "ی", "دا", "هوه", "وه", "هکه", "که", "هکان", "کان", "ان", "یان", "یش", "ش",
    "ێک", "ێکی", "یهک", "یهکی",
)  # fmt: skip
# Badini (Kurmanji in Arabic script): oblique -ێ, plural oblique -ێن, ezafe -ا -ێ -ێن -ی.
_BADINI_ENDINGS = ("ێ", "ێن", "ا")
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


_ARABIC_SCRIPT_SUFFIX = (
    _alternation((*_ARABIC_ENDINGS, *_SORANI_ENDINGS, *_BADINI_ENDINGS)) + "{1,2}"
)
_LATIN_SUFFIX = _alternation(_LATIN_ENDINGS)
# و/ف, then ب ل ک (Arabic) or به له بۆ (Sorani بە لە بۆ), then the article; or the لل
# contraction; or Badini ژ "from", written attached.
_ARABIC_PREFIX = "(?:[وف]?(?:لل|(?:[بلک]|[بل]ه)?ال|[بلک]|[بل]ه|بۆ)|[وف]|ژ)"
_ARABIC_ARTICLE = "(?:[وف]?(?:(?:[بک]|[بل]ه)?ال|لل))"
_ARTICLE = "ال"
_SEPARATOR = r"[\s\-]+"
# Between the words of a Sorani phrase whose first word ends in the ezafe -ی: one more word in
# the ezafe chain (ئۆتۆمبیلێکی بارهەڵگری بۆمبڕێژکراو, "a bomb-rigged lorry car"), and بە written
# attached to the next word (بەبۆمبڕێژکراو). In the trie the space is written as `_EZAFE`.
_EZAFE = "\x1f"
_EZAFE_GAP = _SEPARATOR + r"(?:[^\s\-]+ی" + _SEPARATOR + ")?(?:به)?"
_EZAFE_SPACE = re.compile("(?<=ی) ")
_SEPARATOR_RE = re.compile(_SEPARATOR)
_WORD_RE = re.compile(r"[^\s\-]+")
_ARABIC_LETTER = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff]")
# A place name takes Sorani endings and the nisba adjective (الموصلی, الموصلیه, الموصلیین), but
# no Arabic plural, case or feminine ending of its own: أشباه الموصلات (semiconductors) is not
# الموصل. Bare ه stays allowed, as the Sorani copula (ئەمە کەرکووکە).
_PLACE_ENDINGS = re.compile(
    "(?:ی(?:ون|ین|ه|ات)?)?" + _alternation((*_SORANI_ENDINGS, *_BADINI_ENDINGS, "ه")) + "{0,2}"
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
_KURDISH_AE = "\u06d5"  # ە


def _span(normalized: Normalized, begin: int, finish: int) -> str:
    start, stop = normalized.original_span(begin, finish)
    return normalized.source[start:stop]


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
            head = {" ": _SEPARATOR, _EZAFE: _EZAFE_GAP}.get(char) or re.escape(char)
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


def _term_forms(term: Term, gazetteer: Gazetteer) -> Iterator[tuple[str, str, Entry | None]]:
    """(form, language, entry): the term and its aliases (language "", no entry), then, unless
    `expand: false`, every spelling of the gazetteer entries that any of them names."""
    written = (term.term, *term.aliases)
    for form in written:
        yield form, "", None
    if term.expand:
        for form in written:
            entry = gazetteer.lookup(form)
            if entry is not None:
                for language, spellings in entry.names:
                    for spelling in spellings:
                        yield spelling, language, entry


_LONG_TEXT = 1000
"""Longer than this, a field (an article body) is normalized a line at a time."""


def _normalized_lines(text: str) -> Normalized:
    """`normalize(text)`, a line at a time for a long text.

    The same text as normalizing it whole (no fold reaches across a line break), but a
    character that takes normalization's slow path (an ellipsis, a ligature, a dotted İ) then
    slows its own line, not the whole of an article body.
    """
    if len(text) <= _LONG_TEXT or "\n" not in text:
        return normalize(text)
    lines = [normalize(line) for line in text.split("\n")]
    if all(line.offsets is None for line in lines):
        return Normalized("\n".join(line.text for line in lines), None, text)
    offsets: list[int] = []
    position = 0
    for line in lines:
        if position:
            offsets.append(position - 1)  # the line break before this line
        length = len(line.source)
        if line.offsets is None:
            offsets.extend(range(position, position + length))
        else:
            offsets.extend(map(position.__add__, line.offsets))
        position += length + 1
    return Normalized("\n".join(line.text for line in lines), tuple(offsets), text)


@dataclass(frozen=True, slots=True)
class Form:
    """One spelling a term expands to, as `news-monitor terms` shows it."""

    language: str
    """The gazetteer's language of the spelling (en, ar, ckb, kmr, kmr-Arab); "" as written."""
    spelling: str
    matched_as: str
    """The spelling folded (normalize_term), as the matcher compares it."""
    folds: tuple[str, ...]
    """The text folds (monitor.text.normalize.FOLD_GROUPS) that change something in it."""
    variants: tuple[tuple[str, tuple[str, ...]], ...]
    """(variant, rules) generated from it (monitor.text.variants)."""
    affixes: str
    """Which clitics and endings it takes."""


@dataclass(frozen=True, slots=True)
class TermForms:
    word: str
    entry: str | None
    """The gazetteer entry's id; None when the word is in no entry (it matches as written)."""
    kind: str | None
    source: str | None
    forms: tuple[Form, ...]


def _affixes(form: str, place: bool, ezafe: bool) -> str:
    kind = _class_of(form)
    if kind == _LAT:
        return f"endings (one): {' '.join('-' + e for e in _LATIN_ENDINGS)}; 's"
    if kind != _AR:
        return "the whole word only"
    endings = (*_SORANI_ENDINGS, *_BADINI_ENDINGS)
    text = "proclitics: و ف, ب ل ک, به له بۆ, ژ, the article ال or لل; endings (up to two): "
    if place:
        text += " ".join(endings) + ", ه, the nisba ی یون یین یه یات (no Arabic plural or case)"
    else:
        text += " ".join((*_ARABIC_ENDINGS, *endings))
    if ezafe:
        text += "; one more ezafe word (-ی) between its words, and به attached to the next"
    return text


def describe_term(word: str, gazetteer: Gazetteer | None = None) -> TermForms:
    """Every form a watchlist term `word` expands to, with the folds, variants and affixes
    that apply: what `Matcher` compiles for it (with `expand: true`, the default)."""
    gazetteer = gazetteer if gazetteer is not None else load_gazetteer()
    entry = gazetteer.lookup(word)
    if entry is None:
        key = normalize_term(word)
        form = Form("", word, key, folds_in(word), (), _affixes(key, False, False) if key else "")
        return TermForms(word, None, None, None, (form,) if key else ())
    forms = []
    for language, spellings in entry.names:
        for spelling in spellings:
            key = normalize_term(spelling)
            variants = tuple(
                (variant, rules)
                for variant, rules in spelling_variants(key, language, entry.kind == "term")
                if gazetteer.lookup(variant) in (None, entry)
            )
            ezafe = language in ("ckb", "kmr-Arab") and _EZAFE_SPACE.search(key) is not None
            affixes = _affixes(key, entry.kind != "term", ezafe)
            forms.append(Form(language, spelling, key, folds_in(spelling), variants, affixes))
    return TermForms(word, entry.id, entry.kind, entry.source, tuple(forms))


class Matcher:
    """Compiled once per config; `match()` is a pure function of the item's fields."""

    def __init__(
        self,
        watchlists: Sequence[WatchlistConfig],
        gazetteer: Gazetteer | None = None,
        variant_rules: frozenset[str] | None = None,
    ) -> None:
        """`variant_rules` limits the spelling variants (monitor.text.variants) to the rules
        named; None, the default, applies them all."""
        gazetteer = gazetteer if gazetteer is not None else load_gazetteer()
        # An ordered set of owners per form: a spelling reached twice (as an alias and by
        # expansion) is owned once.
        owners: dict[str, dict[_Owner, None]] = defaultdict(dict)
        places: set[str] = set()
        ezafe: set[str] = set()
        languages: dict[str, set[str]] = defaultdict(set)
        written: set[str] = set()
        for watchlist in watchlists:
            for term in watchlist.terms:
                owner = _Owner(watchlist.name, term.term, exclusion=False)
                for form, language, entry in _term_forms(term, gazetteer):
                    key = normalize_term(form)
                    if not key:
                        continue
                    owners[key][owner] = None
                    languages[key].add(language)
                    if entry is None:
                        written.add(key)
                        continue
                    keys = [key]
                    term_entry = entry.kind == "term"
                    for variant, _ in spelling_variants(key, language, term_entry, variant_rules):
                        # A variant that spells another entry belongs to that entry.
                        if gazetteer.lookup(variant) in (None, entry):
                            owners[variant][owner] = None
                            languages[variant].add(language)
                            keys.append(variant)
                    if entry.kind != "term":
                        places.update(keys)
                    if language in ("ckb", "kmr-Arab"):
                        ezafe.update(k for k in keys if _EZAFE_SPACE.search(k))
            for excluded in watchlist.none:
                key = normalize_term(excluded)
                if key:
                    owners[key][_Owner(watchlist.name, excluded, exclusion=True)] = None
                    written.add(key)
        self._owners = {form: tuple(found) for form, found in owners.items()}
        self._written = frozenset(written)
        # Spellings known only as Arabic: never a word written with the Kurdish ە, which Arabic
        # does not use (Sorani وانەکان "lessons" is not وانة, Wana, with -کان).
        self._arabic_only = frozenset(k for k, found in languages.items() if found == {"ar"})
        self._places = frozenset(places) | frozenset(
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
            by_class[kind].append(_EZAFE_SPACE.sub(_EZAFE, form) if form in ezafe else form)
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

    def _ezafe_key(self, key: str) -> str:
        """The form a Sorani phrase stands for, without the word or the بە that `_EZAFE_GAP`
        let in (`key` itself when there is none)."""
        words = key.split(" ")
        options = [words]
        options += [
            words[:i] + words[i + 1 :] for i in range(1, len(words) - 1) if words[i].endswith("ی")
        ]
        for option in options:
            for n in range(1, len(option)):
                if option[n].startswith("به"):
                    candidate = " ".join([*option[:n], option[n][2:], *option[n + 1 :]])
                    if candidate in self._owners:
                        return candidate
            candidate = " ".join(option)
            if candidate in self._owners:
                return candidate
        return key

    def _candidates(self, hit: re.Match[str], normalized: Normalized) -> list[tuple[str, int, int]]:
        """(form, start, end) in the normalized text for each form this hit stands for."""
        name, prefix_group, stem_group, suffix_group = next(
            groups for groups in self._groups if hit.start(groups[2]) >= 0
        )
        stem_start = hit.start(stem_group)
        if (
            stem_start > hit.start()
            and _span(normalized, stem_start, stem_start + 1)[:1] == _KURDISH_AE
        ):
            # No Kurdish word begins with ە: بەیت (a ballad) is not ب + هیت (Hit), لەکاری not
            # ل + هکاری; the ە is the vowel of the proclitic (بە لە).
            return []
        stem = hit.group(stem_group)
        key = _SEPARATOR_RE.sub(" ", stem)
        if name == _AR_DEFINITE:
            key = _ARTICLE + key
        elif name == _AR and key not in self._owners:
            key = self._ezafe_key(key)
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
            normalized = _normalized_lines(text)
            for hit in self._regex.finditer(normalized.text):
                candidates = self._candidates(hit, normalized)
                word = normalized.text[hit.start() : candidates[0][2]] if candidates else ""
                if is_common_word(word) and word not in self._written:
                    continue  # Soranî, the dialect, is not Soran plus -î (unless a term says so)
                for form, begin, finish in candidates:
                    if form in self._arabic_only and _KURDISH_AE in _span(
                        normalized, begin, finish
                    ):
                        continue
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
