"""monitor.text.gazetteer: the packaged multilingual names, their rules and the loader."""

from __future__ import annotations

import re
from typing import Any

import pytest

from monitor.text.gazetteer import KINDS, LANGUAGES, Gazetteer, load_gazetteer, parse_gazetteer
from monitor.text.normalize import normalize_term

GOVERNORATES = {
    "baghdad", "basra", "nineveh", "erbil", "sulaymaniyah", "duhok", "kirkuk", "diyala",
    "anbar", "babil", "karbala", "najaf", "wasit", "salahaddin", "dhi-qar", "maysan",
    "muthanna", "qadisiyyah",
}  # fmt: skip
DISTRICTS = {
    "diyala": {"baqubah", "muqdadiyah", "khalis", "khanaqin", "baladrooz", "kifri"},
    "kirkuk": {"hawija", "daquq", "dibis"},
    "nineveh": {
        "mosul", "tal-afar", "sinjar", "hamdaniya", "tel-keppe", "sheikhan", "makhmur", "baaj",
    },
    "salahaddin": {
        "tikrit", "samarra", "baiji", "balad", "dujail", "shirqat", "tuz-khurmatu",
    },
    "erbil": {"koya", "shaqlawa", "soran", "choman", "mergasor"},
    "sulaymaniyah": {
        "chamchamal", "kalar", "ranya", "dukan", "penjwen", "qaladze", "darbandikhan",
        "sharazur", "said-sadiq",
    },
    "duhok": {"zakho", "amedi", "akre", "semel"},
}  # fmt: skip
DISPUTED = {"kirkuk", "khanaqin", "sinjar", "makhmur", "tuz-khurmatu", "jalawla", "mandali"}
SECURITY_TERMS = {
    "suicide-bomber", "suicide-attack", "car-bomb", "ied", "explosive-belt", "isis", "hashd",
    "peshmerga",
}  # fmt: skip
ARABIC_SCRIPT = re.compile(r"^[\u0600-\u06ff\u200c ]+$")
LATIN_SCRIPT = re.compile(r"^[A-Za-z\u00c0-\u024f' .-]+$")


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return load_gazetteer()


def test_loader_reads_the_package_once() -> None:
    assert load_gazetteer() is load_gazetteer()


def test_every_governorate_and_halabja(gazetteer: Gazetteer) -> None:
    governorates = {e.id for e in gazetteer.entries if e.kind == "governorate"}
    assert governorates == GOVERNORATES | {"halabja"}


@pytest.mark.parametrize("parent", sorted(DISTRICTS))
def test_districts_of_the_watched_governorates(gazetteer: Gazetteer, parent: str) -> None:
    children = {e.id for e in gazetteer.entries if e.parent == parent}
    assert DISTRICTS[parent] <= children


def test_disputed_areas_are_marked(gazetteer: Gazetteer) -> None:
    disputed = {e.id for e in gazetteer.entries if e.disputed}
    assert disputed >= DISPUTED
    assert "disputed-territories" in {e.id for e in gazetteer.entries}


def test_security_vocabulary_of_the_seed_story(gazetteer: Gazetteer) -> None:
    terms = {e.id for e in gazetteer.entries if e.kind == "term"}
    assert terms >= SECURITY_TERMS
    assert gazetteer.expand("suicide bomber") == (
        "suicide bomber",
        "انتحاري",
        "خۆتەقێنەر",
        "xwekuj",
    )


def test_every_entry_has_an_english_name_and_a_source(gazetteer: Gazetteer) -> None:
    for entry in gazetteer.entries:
        assert entry.names_in("en"), entry.id
        assert entry.source.strip(), entry.id
        assert entry.kind in KINDS


def test_spellings_are_in_their_language_script(gazetteer: Gazetteer) -> None:
    for entry in gazetteer.entries:
        for language in ("ar", "ckb"):
            for spelling in entry.names_in(language):
                assert ARABIC_SCRIPT.match(spelling), (entry.id, spelling)
        for language in ("en", "kmr"):
            for spelling in entry.names_in(language):
                assert LATIN_SCRIPT.match(spelling), (entry.id, spelling)


def test_arabic_spellings_are_not_kurdish(gazetteer: Gazetteer) -> None:
    # The third-party list this was checked against has Kurdish text in its Arabic column.
    for entry in gazetteer.entries:
        for spelling in entry.names_in("ar"):
            assert not set(spelling) & set("ەێۆڕڵڤگچپژ"), (entry.id, spelling)


def test_sorani_spellings_use_kurdish_letters(gazetteer: Gazetteer) -> None:
    for entry in gazetteer.entries:
        for spelling in entry.names_in("ckb"):
            assert not set(spelling) & set("ةيىكأإ"), (entry.id, spelling)


def test_issue_example_spellings_name_one_entry(gazetteer: Gazetteer) -> None:
    spellings = ["Khanaqin", "Khaneqin", "Khanaqeen", "خانقين", "خانەقین", "Xaneqîn"]
    assert {gazetteer.lookup(s).id for s in spellings if gazetteer.lookup(s)} == {"khanaqin"}
    assert all(gazetteer.lookup(s) is not None for s in spellings)


@pytest.mark.parametrize("written", ["KHANAQIN", "khanaqin", "خانقین", "خانهقین", "Xaneqin"])
def test_lookup_compares_normalized_spellings(gazetteer: Gazetteer, written: str) -> None:
    entry = gazetteer.lookup(written)
    assert entry is not None and entry.id == "khanaqin"


@pytest.mark.parametrize("word", ["الخالص", "الحضر", "الدبس", "بلد", "دوكان", "رانية", "Tuz", "IS"])
def test_common_words_are_not_spellings(gazetteer: Gazetteer, word: str) -> None:
    assert gazetteer.lookup(word) is None


def test_unknown_terms_expand_to_nothing(gazetteer: Gazetteer) -> None:
    assert gazetteer.expand("Khan al-Khalili") == ()
    assert gazetteer["khanaqin"].spellings == gazetteer.expand("Khanaqin")


def entry(**fields: Any) -> dict[str, Any]:
    return {"id": "x", "kind": "town", "en": ["X town"], "source": "test"} | fields


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([entry(source="")], "source"),
        ([entry(colour="red")], "unknown keys"),
        ([entry(kind="village")], "kind"),
        ([entry(parent="nowhere")], "unknown parent"),
        ([entry(en=[])], "no spellings"),
        ([entry(en="X town")], "list"),
        ([entry(), entry(id="y", ar=["ـ"])], "empty once normalized"),
        ([entry(), entry(id="y", en=["x TOWN"])], "both 'x' and 'y'"),
        ([entry(), entry()], "unique"),
    ],
)
def test_bad_data_is_rejected_with_the_entry_named(
    entries: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse_gazetteer({"entries": entries})


def test_parse_builds_the_index_from_normalized_spellings() -> None:
    g = parse_gazetteer({"entries": [entry(ar=["بلدة"], kmr=["Xbajar"])]})
    assert g.expand("بلده") == ("X town", "بلدة", "Xbajar")
    assert [lang for lang, _ in g["x"].names] == [lang for lang in LANGUAGES if lang != "ckb"]
    assert normalize_term("X  town") in {normalize_term(s) for s in g["x"].spellings}
