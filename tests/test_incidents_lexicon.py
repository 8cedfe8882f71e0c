"""monitor.text.events: the packaged event-type lexicon, its rules and the loader."""

from __future__ import annotations

import re
from typing import Any

import pytest

from monitor.text.events import FAMILIES, load_events, parse_events
from monitor.text.gazetteer import load_gazetteer


def test_every_type_has_a_known_family_a_source_and_forms_in_three_languages() -> None:
    lexicon = load_events()
    for event in lexicon.types:
        assert event.family in FAMILIES
        assert event.source.strip()
        assert len(event.forms) >= 3, event.id


def test_the_gazetteer_terms_a_type_names_exist() -> None:
    ids = {entry.id for entry in load_gazetteer().entries if entry.kind == "term"}
    for event in load_events().types:
        assert set(event.gazetteer) <= ids, event.id


def test_the_issue_types_are_there() -> None:
    ids = {event.id for event in load_events().types}
    assert {
        "attack", "checkpoint", "ied", "car-bomb", "suicide-attack", "rocket", "drone-strike",
        "airstrike", "clashes", "assassination", "kidnapping", "arrest", "funeral", "flood",
        "fire", "visit", "protest",
    } <= ids  # fmt: skip


def test_small_numbers_are_words_in_every_language() -> None:
    two = next(n for n in load_events().numbers if n.value == 2)
    assert {"two", "اثنين", "دوو", "du"} <= set(two.forms)


def valid(**overrides: Any) -> dict[str, Any]:
    entry = {"id": "flood", "family": "disaster", "en": ["flood"], "source": "editor"}
    return {"types": [{**entry, **overrides}]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (valid(colour="red"), "type 'flood': unknown keys ['colour']"),
        (valid(source=""), "type 'flood': every entry names its source"),
        (valid(family="weather"), "type 'flood': family must be one of"),
        (valid(en="flood"), "type 'flood': en must be a list of non-empty strings"),
        (valid(en=["\u200c"]), "type 'flood': '\\u200c' is empty once normalized"),
        (valid(generic="yes"), "type 'flood': generic must be true or false"),
        ({"types": [valid()["types"][0]] * 2}, "type ids must be unique"),
        (
            {"types": [valid()["types"][0], {**valid()["types"][0], "id": "rain"}]},
            "'flood' is a form of both 'flood' and 'rain'",
        ),
        ({"events": []}, "expected a mapping with a 'types' list"),
    ],
)
def test_bad_data_is_refused_naming_the_entry(data: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        parse_events(data)
