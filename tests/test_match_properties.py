"""Properties of the matcher, checked by hypothesis on generated variations.

* Marks that change nothing a reader sees as the word (Arabic harakat and tatweel, Latin
  combining diacritics, ZWNJ), inserted anywhere into a text that matches, never lose a match.
* A term never matches inside a longer word: letters glued before it that are not a
  proclitic, or after it that do not begin an ending, leave nothing to match.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st
from test_matching_set import ENGLISH_TERMS, ITEMS, watchlists

from monitor.match import Matcher
from monitor.text.gazetteer import load_gazetteer
from monitor.text.normalize import normalize_term
from monitor.text.variants import spelling_variants

# No example database: tests leave nothing behind in the working tree.
PROPERTY = settings(max_examples=150, deadline=None, database=None)

POSITIVES = [item for item in ITEMS if item.expected]
ZWNJ = "\u200c"
ARABIC_MARKS = [chr(c) for c in range(0x064B, 0x0653)] + ["\u0670", "\u0640"]  # harakat, tatweel
LATIN_MARKS = [chr(c) for c in (0x0300, 0x0301, 0x0302, 0x0303, 0x0308, 0x030C, 0x0327)]
ARABIC_LETTER = re.compile("[\u0621-\u064a\u066e-\u06d3\u06d5]")

# Letters that neither begin a proclitic (و ف ب ل ک, the article ا ل) nor fold into one.
ARABIC_BEFORE = "تثجحخدذرزسشصضطظعغقمنهی"
# Letters that begin no Arabic or Sorani ending (endings begin with و ی ه ا د ک ش ێ).
ARABIC_AFTER = "بتثجحخذرزسصضطظعغفقلمنپچژگڤڕڵۆ"
LATIN_BEFORE = "abcdefghijklmnopqrstuvwxyz"
LATIN_AFTER = "bcdfghjklmnopqrtuvwxz"  # no Kurmanji or English ending begins with these


@cache
def english_matcher() -> Matcher:
    return Matcher(watchlists(ENGLISH_TERMS))


@st.composite
def marked_positives(draw: st.DrawFn) -> tuple[frozenset[str], str]:
    item = draw(st.sampled_from(POSITIVES))
    text = item.text
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(text)))
        before = text[position - 1] if position else ""
        marks = [ZWNJ]
        if ARABIC_LETTER.match(before):
            marks += ARABIC_MARKS
        elif before.isascii() and before.isalpha():
            marks += LATIN_MARKS
        text = text[:position] + draw(st.sampled_from(marks)) + text[position:]
    return item.expected, text


@PROPERTY
@given(marked_positives())
def test_invisible_marks_never_lose_a_match(case: tuple[frozenset[str], str]) -> None:
    expected, text = case
    matches = english_matcher().match({"title": text})
    assert expected <= {m.watchlist for m in matches}
    for m in matches:
        assert text[m.start : m.end] == m.form


@PROPERTY
@given(marked_positives())
def test_decomposed_text_matches_like_composed_text(case: tuple[frozenset[str], str]) -> None:
    expected, text = case
    decomposed = unicodedata.normalize("NFD", text)
    assert expected <= {m.watchlist for m in english_matcher().match({"title": decomposed})}


SPELLINGS = sorted({s for entry in load_gazetteer().entries for s in entry.spellings})


@cache
def term_matcher(term: str) -> Matcher:
    # Expansion off: a longer word may be another spelling of the same place (Baquba + h is
    # Baqubah), which is not an unrelated word.
    return Matcher(watchlists({"w": {"term": term, "expand": False}}))


def is_arabic(term: str) -> bool:
    return ARABIC_LETTER.search(term) is not None


@st.composite
def glued(draw: st.DrawFn, before: bool) -> tuple[str, str]:
    term = draw(st.sampled_from(SPELLINGS))
    left_letters, right_letters = (
        (ARABIC_BEFORE, ARABIC_AFTER) if is_arabic(term) else (LATIN_BEFORE, LATIN_AFTER)
    )
    left = draw(st.text(left_letters, min_size=1 if before else 0, max_size=3))
    right = draw(st.text(right_letters, min_size=0 if before else 1, max_size=3))
    return term, f"{left}{term}{right}"


@PROPERTY
@given(glued(before=True))
def test_a_term_never_matches_after_other_letters(case: tuple[str, str]) -> None:
    term, word = case
    assert term_matcher(term).match({"title": f"news of {word} today"}) == ()


@PROPERTY
@given(glued(before=False))
def test_a_term_never_matches_before_letters_that_are_no_ending(case: tuple[str, str]) -> None:
    term, word = case
    assert term_matcher(term).match({"title": f"news of {word} today"}) == ()


@PROPERTY
@given(st.sampled_from(SPELLINGS))
def test_every_gazetteer_spelling_matches_itself(term: str) -> None:
    matches = term_matcher(term).match({"title": f"news of {term} today"})
    assert [m.form for m in matches] == [term]


# Spelling variants (issue 16): each one of a place's Sorani spellings, with an attached
# preposition and an ending, matches a watchlist that names the place in English.
PLACE_VARIANTS = sorted(
    {
        (entry.id, (entry.names_in("en") or entry.spellings)[0], variant)
        for entry in load_gazetteer().entries
        if entry.kind != "term"
        for language in ("ckb", "kmr-Arab")
        for spelling in entry.names_in(language)
        for variant, _ in spelling_variants(normalize_term(spelling), language)
        if load_gazetteer().lookup(variant) in (None, entry)
    }
)


@cache
def place_matcher(name: str, term: str) -> Matcher:
    return Matcher(watchlists({name: term}))


@PROPERTY
@given(
    st.sampled_from(PLACE_VARIANTS),
    st.sampled_from(["لە", "بۆ", "ژ"]),
    st.sampled_from(["دا", "ێ", ""]),
)
def test_a_sorani_variant_of_a_place_matches_with_its_affixes(
    case: tuple[str, str, str], before: str, after: str
) -> None:
    name, term, variant = case
    word = f"{before}{variant}{after}"
    matches = place_matcher(name, term).match({"title": f"هەواڵ {word} ئەمڕۆ"})
    assert [m.form for m in matches] == [word]
