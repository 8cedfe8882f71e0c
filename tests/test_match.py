"""match.py and the analysis stage: whole-word watchlist matching in every script, gazetteer
expansion, and the analyzer's two passes (original text, English translation).

Language identification has its own file, tests/test_langid.py."""

from __future__ import annotations

import random
import string
import unicodedata
from typing import Any

import pytest

from monitor.analyze import Analyzer
from monitor.config import WatchlistConfig
from monitor.match import Matcher
from monitor.models import Match
from monitor.service import analyze_records
from monitor.text.normalize import normalize, normalize_term


def watchlist(name: str, *terms: Any, none: tuple[str, ...] = ()) -> WatchlistConfig:
    return WatchlistConfig.model_validate({"name": name, "terms": list(terms), "none": none})


KHANAQIN = watchlist("khanaqin", {"term": "Khanaqin", "aliases": ["خانقين", "خانەقین", "Xaneqîn"]})
DIYALA = watchlist("diyala", {"term": "Diyala", "aliases": ["ديالى", "دیالە"]})
SUICIDE_BOMBER = watchlist(
    "suicide-bomber",
    {"term": "suicide bomber", "aliases": ["انتحاري", "خۆتەقێنەر", "xwekuj"]},
    none=("exercise", "drill"),
)


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher([KHANAQIN, DIYALA, SUICIDE_BOMBER])


def found(matcher: Matcher, text: str) -> list[tuple[str, str]]:
    """(watchlist, form) of each match in a title, checking the offsets on the way."""
    matches = matcher.match({"title": text})
    for m in matches:
        assert text[m.start : m.end] == m.form
    return [(m.watchlist, m.form) for m in matches]


# Words, not substrings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Cairo's Khan al-Khalili bazaar stays open later",
        "Diyarbakir's restored city walls reopen",
        "New dialysis unit opens in Erbil",
        "Khanaqinville is not a real town",
        "Suicide-prevention charity and bomber jackets",
        "suicidebomber",
    ],
)
def test_near_misses_do_not_match(matcher: Matcher, text: str) -> None:
    assert found(matcher, text) == []


def test_khan_does_not_match_khanaqin() -> None:
    khan = Matcher([watchlist("khan", "Khan")])
    assert found(khan, "Attack in Khanaqin") == []
    assert found(khan, "Khan al-Khalili") == [("khan", "Khan")]


def test_diyala_does_not_match_diyarbakir(matcher: Matcher) -> None:
    assert found(matcher, "Diyarbakir") == []
    assert found(matcher, "Diyala") == [("diyala", "Diyala")]


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("Khanaqin's mayor resigns", "Khanaqin"),
        ("KHANAQIN\u2019S MAYOR RESIGNS", "KHANAQIN"),  # typographic apostrophe
        ("khanaqin", "khanaqin"),
        ("kHaNaQiN.", "kHaNaQiN"),
        ("(Khanaqin)", "Khanaqin"),
        ("Khanaqin-based militia", "Khanaqin"),
        ("«Khanaqin»", "Khanaqin"),
    ],
)
def test_case_folding_and_punctuation(matcher: Matcher, text: str, form: str) -> None:
    assert found(matcher, text) == [("khanaqin", form)]


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("A suicide bomber was killed", "suicide bomber"),
        ("A Suicide   Bomber was killed", "Suicide   Bomber"),
        ("A suicide\nbomber was killed", "suicide\nbomber"),
        ("A suicide \t\n bomber was killed", "suicide \t\n bomber"),
        ("A suicide\u00a0bomber was killed", "suicide\u00a0bomber"),
    ],
)
def test_multi_word_terms_span_any_whitespace(matcher: Matcher, text: str, form: str) -> None:
    assert found(matcher, text) == [("suicide-bomber", form)]


def test_term_written_with_extra_spaces_still_matches() -> None:
    spaced = Matcher([watchlist("w", "  suicide    bomber ")])
    assert found(spaced, "suicide bomber") == [("w", "suicide bomber")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("مقتل انتحاري قبل وصوله إلى مقر الحشد الشعبي في خانقين", ["انتحاري", "خانقين"]),
        ("لە خانەقین هێرشبەرێکی خۆتەقێنەر کوژرا", ["خانەقین", "خۆتەقێنەر"]),
        ("Xaneqîn: Êrîşkarekî xwekuj hat kuştin", ["Xaneqîn", "xwekuj"]),
        ("XANEQÎN û XWEKUJ", ["XANEQÎN", "XWEKUJ"]),
        ("محافظة ديالى", ["ديالى"]),
        ("پارێزگای دیالە", ["دیالە"]),
    ],
)
def test_aliases_in_arabic_and_kurdish_scripts(
    matcher: Matcher, text: str, expected: list[str]
) -> None:
    assert sorted(form for _, form in found(matcher, text)) == sorted(expected)


def test_matches_report_the_watchlist_and_the_configured_term(matcher: Matcher) -> None:
    (m,) = matcher.match({"title": "في خانقين"})
    assert (m.watchlist, m.term, m.form, m.field) == ("khanaqin", "Khanaqin", "خانقين", "title")


def test_decomposed_text_matches_a_composed_term(matcher: Matcher) -> None:
    text = unicodedata.normalize("NFD", "Bajarê Xaneqînê û Xaneqîn")
    # "Xaneqînê" is Kurmanji's oblique case of the same name ("li Xaneqînê", in Khanaqin).
    assert found(matcher, text) == [
        ("khanaqin", unicodedata.normalize("NFD", "Xaneqînê")),
        ("khanaqin", unicodedata.normalize("NFD", "Xaneqîn")),
    ]


# Exclusions and overlaps -------------------------------------------------------------------


def test_none_term_suppresses_its_own_watchlist_only(matcher: Matcher) -> None:
    text = "Suicide bomber drill held in Khanaqin"
    assert found(matcher, text) == [("khanaqin", "Khanaqin")]


def test_none_term_in_the_other_field_still_excludes(matcher: Matcher) -> None:
    matches = matcher.match({"title": "Suicide bomber in Khanaqin", "summary": "It was a drill."})
    assert {m.watchlist for m in matches} == {"khanaqin"}


def test_none_term_that_is_another_watchlists_term() -> None:
    drills = watchlist("drills", "drill")
    m = Matcher([drills, SUICIDE_BOMBER])
    assert found(m, "suicide bomber drill") == [("drills", "drill")]


def test_none_term_matches_whole_words_only(matcher: Matcher) -> None:
    # "drilling" is not "drill": the suicide-bomber watchlist still matches.
    text = "Suicide bomber stopped near drilling site"
    assert found(matcher, text) == [("suicide-bomber", "Suicide bomber")]


def test_overlapping_terms_in_different_watchlists_are_all_reported() -> None:
    m = Matcher(
        [
            watchlist("attacks", "suicide bomber"),
            watchlist("aircraft", "bomber"),
            watchlist("self-harm", "suicide"),
        ]
    )
    text = "Police say a suicide bomber was stopped"
    matches = {(x.watchlist, x.form, x.start, x.end) for x in m.match({"title": text})}
    assert matches == {
        ("attacks", "suicide bomber", 13, 27),
        ("self-harm", "suicide", 13, 20),
        ("aircraft", "bomber", 21, 27),
    }


def test_overlapping_terms_across_a_line_break() -> None:
    m = Matcher([watchlist("attacks", "suicide bomber"), watchlist("self-harm", "suicide")])
    text = "a suicide\n  bomber"
    assert sorted(found(m, text)) == [("attacks", "suicide\n  bomber"), ("self-harm", "suicide")]


def test_each_occurrence_is_a_match_with_its_own_offsets(matcher: Matcher) -> None:
    text = "Khanaqin today. khanaqin tomorrow. KHANAQIN always."
    matches = matcher.match({"title": text})
    assert [(m.start, m.end) for m in matches] == [(0, 8), (16, 24), (35, 43)]


def test_both_fields_are_searched_and_named(matcher: Matcher) -> None:
    matches = matcher.match({"title": "News from Khanaqin", "summary": "In Diyala province."})
    assert [(m.watchlist, m.field) for m in matches] == [
        ("khanaqin", "title"),
        ("diyala", "summary"),
    ]


def test_empty_matcher_matches_nothing() -> None:
    m = Matcher([])
    assert m.empty
    assert m.match({"title": "Khanaqin"}) == ()


# Offsets into the original text ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Straße nach Khanaqin",  # ß folds to two letters: offsets shift
        "ﬁrst news from Khanaqin",  # a ligature
        "Khana\u00adqin market reopens",  # a soft hyphen inside the word
        "\u200bKhanaqin\u200b",  # zero-width spaces
        "İstanbul to KHANAQIN\u2019S gate",  # İ folds to i + combining dot
        "\ufeffKhanaqin",
    ],
)
def test_offsets_point_into_the_original_text(matcher: Matcher, text: str) -> None:
    (m,) = matcher.match({"summary": text})
    assert text[m.start : m.end] == m.form
    assert normalize_term(m.form.replace("\u00ad", "").replace("\u200b", "")) == "khanaqin"


def test_normalize_keeps_offsets_when_lengths_change() -> None:
    n = normalize("Straße")
    assert n.text == "strasse"
    assert n.original_span(4, 7) == (4, 6)  # "sse" came from "ße"


# Scale -------------------------------------------------------------------------------------


def test_five_thousand_terms_compile_and_match() -> None:
    rng = random.Random(5000)

    def word() -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(5, 10)))

    terms: set[str] = set()
    while len(terms) < 5000:
        terms.add(word() if rng.random() < 0.8 else f"{word()} {word()}")
    ordered = sorted(terms)
    watchlists = [watchlist(f"list{n:02d}", *ordered[n * 100 : (n + 1) * 100]) for n in range(50)]
    m = Matcher(watchlists)
    wanted = ordered[::250]
    # Each wanted term is in the text, with near-misses: a suffix glued on, a prefix glued on.
    text = " ... ".join(wanted) + " " + ordered[1] + "x x" + ordered[2]
    matches = m.match({"title": text})
    assert sorted(x.term for x in matches) == sorted(wanted)
    for x in matches:
        assert text[x.start : x.end] == x.form == x.term
        assert x.watchlist == f"list{ordered.index(x.term) // 100:02d}"


ENGLISH = "Hashd fighters kill would-be suicide bomber outside Khanaqin headquarters"
ARABIC = "مقتل انتحاري قبل وصوله إلى مقر الحشد الشعبي في خانقين"


# The analysis stage ------------------------------------------------------------------------


def test_analyzer_gives_language_and_matches() -> None:
    analyzer = Analyzer([KHANAQIN, DIYALA, SUICIDE_BOMBER])
    analysis = analyzer.analyze(ENGLISH, "A disputed town in Diyala province.")
    assert analysis.language == "en"
    assert analysis.watchlists == ("suicide-bomber", "khanaqin", "diyala")
    start = ENGLISH.index("Khanaqin")
    assert Match("khanaqin", "Khanaqin", "Khanaqin", "title", start, start + 8) in analysis.matches


def test_analyzer_on_arabic() -> None:
    analysis = Analyzer([KHANAQIN, DIYALA, SUICIDE_BOMBER]).analyze(ARABIC, "")
    assert analysis.language == "ar"
    assert set(analysis.watchlists) == {"khanaqin", "suicide-bomber"}


def test_analyzer_without_watchlists() -> None:
    analysis = Analyzer([]).analyze(ENGLISH, "")
    assert analysis.language == "en"
    assert analysis.matches == ()
    assert analysis.watchlists == ()


def test_match_english_names_the_translation_fields() -> None:
    analyzer = Analyzer([KHANAQIN, DIYALA, SUICIDE_BOMBER])
    title = "Militia says it killed a suicide bomber in Khanaqin"
    matches = analyzer.match_english(title, "The town is in Diyala province.")
    assert {(m.watchlist, m.field, m.form) for m in matches} == {
        ("suicide-bomber", "title_en", "suicide bomber"),
        ("khanaqin", "title_en", "Khanaqin"),
        ("diyala", "summary_en", "Diyala"),
    }
    for m in matches:
        text = title if m.field == "title_en" else "The town is in Diyala province."
        assert text[m.start : m.end] == m.form


def test_match_english_applies_exclusions_within_the_translation() -> None:
    analyzer = Analyzer([SUICIDE_BOMBER])
    assert analyzer.match_english("Suicide bomber drill in Erbil", "") == ()
    assert analyzer.match_english("", "") == ()


def test_a_term_only_in_the_article_body_matches_as_content() -> None:
    # The usual news feed: a teaser as the summary, the whole article as the content.
    body = "Checkpoints were reinforced.\nOfficials in Khanaqin said the road stays open."
    analysis = Analyzer([KHANAQIN, DIYALA]).analyze(
        "Security tightened on the eastern road", "Checkpoints were reinforced.", content=body
    )
    start = body.index("Khanaqin")
    assert analysis.matches == (
        Match("khanaqin", "Khanaqin", "Khanaqin", "content", start, start + 8),
    )


def test_title_summary_and_content_each_report_their_matches() -> None:
    matches = Analyzer([KHANAQIN]).match("Khanaqin", "In Khanaqin today", content="خانقين")
    assert [(m.field, m.form) for m in matches] == [
        ("title", "Khanaqin"),
        ("summary", "Khanaqin"),
        ("content", "خانقين"),
    ]


def test_an_exclusion_in_the_article_body_excludes_the_item() -> None:
    analyzer = Analyzer([SUICIDE_BOMBER])
    title = "Suicide bomber stopped in Erbil"
    assert analyzer.analyze(title, "", content="It was a drill, officials said.").matches == ()
    assert analyzer.analyze(title, "", content="Officials said.").watchlists == ("suicide-bomber",)


def test_matches_in_a_long_article_body_point_into_the_original_text() -> None:
    # Over 1,000 characters the body is normalized a paragraph at a time; the offsets must
    # still be offsets into the whole body, whatever each paragraph folds or deletes.
    paragraphs = [
        "Filler words about the weather and the markets. " * 20,
        "قال مسؤولون‌ إن الوضعَ في خانقينَ هادئ…",  # ZWNJ, harakat, an ellipsis
        "ﬁve ﬁgures… the ﬁre near Khanaqin’s gate",  # ligatures take the slow path
        "A suicide\nbomber",  # a term across a line break still matches
        "Straße, Diyala.",
    ]
    body = "\n".join(paragraphs)
    assert len(body) > 1000
    matches = Matcher([KHANAQIN, DIYALA, SUICIDE_BOMBER]).match({"content": body})
    assert [(m.watchlist, m.form) for m in matches] == [
        ("khanaqin", "خانقينَ"),
        ("khanaqin", "Khanaqin"),
        ("suicide-bomber", "suicide\nbomber"),
        ("diyala", "Diyala"),
    ]
    for m in matches:
        assert body[m.start : m.end] == m.form


def test_analyze_records_read_the_content() -> None:
    records = [
        {"id": "a", "title": "Roads", "summary": "Teaser.", "content": "Traffic in Khanaqin."},
        {"id": "b", "title": "Roads", "summary": "Teaser."},
    ]
    with_content, without = analyze_records(Analyzer([KHANAQIN]), records)
    assert with_content["matches"] == [
        {"watchlist": "khanaqin", "term": "Khanaqin", "form": "Khanaqin", "field": "content"}
    ]
    assert without["matches"] == []


# Gazetteer expansion -----------------------------------------------------------------------


def test_an_english_term_finds_every_spelling_of_its_gazetteer_entry() -> None:
    m = Matcher([watchlist("khanaqin", "Khanaqin")])
    text = "بخانقين | لە خانەقیندا | li Xaneqînê | Khanaqin's | Khaneqin"
    assert [(x.term, x.form) for x in m.match({"title": text})] == [
        ("Khanaqin", "بخانقين"),
        ("Khanaqin", "خانەقیندا"),
        ("Khanaqin", "Xaneqînê"),
        ("Khanaqin", "Khanaqin"),
        ("Khanaqin", "Khaneqin"),
    ]


def test_a_term_in_any_spelling_expands_to_the_others() -> None:
    m = Matcher([watchlist("khanaqin", "خانەقین")])
    assert [x.form for x in m.match({"title": "Attack near Khanaqin"})] == ["Khanaqin"]


def test_expand_false_matches_only_what_the_term_says() -> None:
    m = Matcher(
        [watchlist("khanaqin", {"term": "Khanaqin", "expand": False, "aliases": ["خانقين"]})]
    )
    assert [x.form for x in m.match({"title": "Khanaqin خانقين خانەقین Xaneqîn"})] == [
        "Khanaqin",
        "خانقين",
    ]


def test_terms_outside_the_gazetteer_match_as_written() -> None:
    m = Matcher([watchlist("w", "Qalat Dizah bridge")])
    assert [x.form for x in m.match({"title": "the Qalat Dizah bridge"})] == ["Qalat Dizah bridge"]


def test_place_names_take_no_arabic_plural_ending() -> None:
    m = Matcher([watchlist("mosul", "Mosul")])
    assert m.match({"title": "أسعار أشباه الموصلات ترتفع"}) == ()  # semiconductors
    found = [x.form for x in m.match({"title": "للموصل والموصليين وبالموصل"})]
    assert found == ["للموصل", "والموصليين", "وبالموصل"]


def test_a_spelling_reached_twice_is_one_match() -> None:
    m = Matcher([watchlist("khanaqin", {"term": "Khanaqin", "aliases": ["خانقين", "Khaneqin"]})])
    assert len(m.match({"title": "خانقين"})) == 1
