"""monitor.text.normalize: each folding rule, offsets after deletions, and the fast path."""

from __future__ import annotations

import unicodedata

import pytest

from monitor.text.normalize import FOLD_GROUPS, folds_in, normalize, normalize_term


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("ﬁrst", "first"),  # NFKC
        ("ＫＨＡＮＡＱＩＮ", "khanaqin"),  # NFKC full-width, then case folding
        ("Xaneqîn", "xaneqin"),
        ("Diyâla", "diyala"),
        ("şêr çûn", "ser cun"),
        ("İstanbul", "istanbul"),
        ("ı", "i"),
        ("أإآٱا", "ااااا"),  # alef and hamza forms
        ("ى", "ی"),  # alef maqsura
        ("ي", "ی"),  # Arabic yeh → Persian/Kurdish yeh
        ("ك", "ک"),  # Arabic kaf → keheh
        ("ة", "ه"),  # teh marbuta
        ("ە", "ه"),  # Kurdish ae
        ("ھ", "ه"),  # heh doachashmee
        ("٠١٢٣٤٥٦٧٨٩", "0123456789"),
        ("۰۱۲۳۴۵۶۷۸۹", "0123456789"),
        ("Khanaqin\u2019s", "khanaqin's"),
        ("a\u2013b\u2014c\u2011d", "a-b-c-d"),
    ],
)
def test_folding_rules(text: str, folded: str) -> None:
    assert normalize(text).text == folded


@pytest.mark.parametrize("letter", ["ێ", "ۆ", "ڕ", "ڵ", "ئ", "ؤ", "ڤ", "گ", "چ", "پ", "ژ"])
def test_kurdish_letters_stay_distinct(letter: str) -> None:
    assert normalize(letter).text == letter


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("خانِقِينَ", "خانقین"),  # harakat
        ("خانقيـــن", "خانقین"),  # tatweel
        ("هٰذا", "هذا"),  # superscript alef
        ("قين\u06d6", "قین"),  # Quranic mark
        ("خانە\u200cقین", "خانهقین"),  # ZWNJ
        ("a\u200db", "ab"),  # ZWJ
        ("\u200fخانقين\u200e", "خانقین"),  # RLM / LRM
        ("\u202bخانقين\u202c", "خانقین"),  # bidi embedding
        ("\u2067خانقين\u2069", "خانقین"),  # bidi isolate
        ("\u061cخانقين", "خانقین"),  # Arabic letter mark
        ("Khana\u00adqin", "khanaqin"),  # soft hyphen
        ("\ufeffKhanaqin\u200b", "khanaqin"),
    ],
)
def test_removed_characters(text: str, folded: str) -> None:
    assert normalize(text).text == folded


def test_offsets_after_deletions_point_into_the_original() -> None:
    text = "في خانِقِينَ اليوم"
    n = normalize(text)
    assert n.text == "فی خانقین الیوم"
    start = n.text.index("خانقین")
    first, last = n.original_span(start, start + len("خانقین"))
    assert text[first:last] == "خانِقِينَ"  # the trailing fatha comes with its letter
    assert n.offsets is not None
    assert len(n.offsets) == len(n.text)
    assert all(normalize(text[i]).text == c for i, c in zip(n.offsets, n.text, strict=True))


def test_offsets_after_invisible_characters() -> None:
    text = "\u200fلە خانە\u200cقیندا\u200e"
    n = normalize(text)
    start = n.text.index("خانهقین")
    first, last = n.original_span(start, start + len("خانهقیندا"))
    assert text[first:last] == "خانە\u200cقیندا"


def test_offsets_when_lengths_grow() -> None:
    n = normalize("Straße nach ﬁ")
    assert n.text == "strasse nach fi"
    assert n.original_span(4, 7) == (4, 6)
    assert n.original_span(13, 15) == (12, 13)


def test_decomposed_input_folds_like_composed() -> None:
    text = unicodedata.normalize("NFD", "Xaneqîn û Diyâla")
    n = normalize(text)
    assert n.text == "xaneqin u diyala"
    assert n.original_span(0, 7) == (0, 8)


@pytest.mark.parametrize(
    "text",
    ["plain ascii headline", "Khanaqin's mayor", "مقتل انتحاري في خانقين", "لە خانەقین"],
)
def test_fast_path_keeps_positions(text: str) -> None:
    n = normalize(text)
    assert n.offsets is None
    assert len(n.text) == len(text)
    assert n.original_span(2, 5) == (2, 5)


def test_ascii_fast_path_is_case_folding_only() -> None:
    assert normalize("Suicide Bomber").text == "suicide bomber"


def test_terms_and_text_fold_alike() -> None:
    for term in ["Xaneqîn", "خانەقین", "ديالى", "انتحاري", "خۆتەقێنەر"]:
        assert normalize_term(term) == normalize(term).text


def test_normalize_term_collapses_spaces_and_hyphens() -> None:
    assert normalize_term("  Suicide   Bomber ") == "suicide bomber"
    assert normalize_term("suicide-bomber") == "suicide bomber"
    assert normalize_term("al-Khalili") == "al khalili"
    assert normalize_term("\u200b") == ""


def test_folds_in_names_the_folds_that_change_a_spelling() -> None:
    assert folds_in("Kerkûk") == ("latin-diacritics",)
    assert folds_in("کەرکووک") == ("heh-ae",)
    assert folds_in("كركوك") == ("arabic-kaf",)
    assert folds_in("أربيل") == ("alef-hamza", "arabic-yeh")
    assert folds_in("خانِقين") == ("arabic-yeh", "marks")
    assert folds_in("Kirkuk") == ()


def test_every_fold_group_folds_its_letters() -> None:
    for name, (letters, _) in FOLD_GROUPS.items():
        for letter in letters:
            assert normalize(letter).text != letter, (name, letter)
