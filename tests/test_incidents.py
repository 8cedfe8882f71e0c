"""monitor.incidents: the evidence a report gives, and whether it joins an open incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import monitor.incidents
from monitor.incidents import Incidents, Report, Settings, default_reader, incident_id
from monitor.parse import parse_feed

MONDAY = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def report(key: str, title: str, hours: float = 0.0, **fields: Any) -> Report:
    fields.setdefault("language", "en")
    fields.setdefault("outlet", f"outlet-{key}")
    at = MONDAY + timedelta(hours=hours)
    return Report(key=key, title=title, fetched_at=at, published_at=at, **fields)


def same(*reports: Report, settings: Settings | None = None) -> bool:
    """Whether the reports, decided in order, end in one incident."""
    incidents = Incidents(settings)
    return len({incidents.add(r).incident.id for r in reports}) == 1


def test_public_names_are_exactly_these() -> None:
    assert set(monitor.incidents.__all__) == {
        "SEVERITIES", "THRESHOLD", "Decision", "Evidence", "Incident", "Incidents", "Reader",
        "Report", "ReportRef", "Settings", "default_reader", "incident_id", "raise_severity",
    }  # fmt: skip


# --- evidence ---


@pytest.mark.parametrize(
    ("title", "language"),
    [
        ("Suicide bomber kills two in Khanaqin", "en"),
        ("انتحاري يقتل اثنين بخانقين", "ar"),
        ("خۆتەقێنەرێک لە خانەقیندا دوو کەسی کوشت", "ckb"),
        ("Xwekujek li Xaneqînê du kes kuştin", "kmr"),
    ],
)
def test_evidence_is_the_same_in_every_script(title: str, language: str) -> None:
    evidence = default_reader().read(report("a", title, language=language))
    assert evidence.places == ("khanaqin",)
    assert "suicide-bomber" in evidence.terms
    assert "suicide-attack" in evidence.events
    assert evidence.numbers == (2,)


def test_a_governorate_named_with_its_town_leaves_the_town() -> None:
    evidence = default_reader().read(report("a", "Blast in Khanaqin, Diyala province"))
    assert evidence.places == ("khanaqin",)


def test_a_place_in_the_summary_refines_the_title_but_a_landmark_does_not_count() -> None:
    reader = default_reader()
    refined = reader.read(report("a", "Attack in Diyala", summary="The attack hit Khanaqin."))
    landmark = reader.read(
        report("b", "Arrest in Jalawla", summary="Police raided a house north of Khanaqin.")
    )
    assert refined.places == ("khanaqin",)
    assert landmark.places == ("jalawla",)


@pytest.mark.parametrize(
    ("title", "language", "places"),
    [
        ("Suicide bomber kills two 80 km north-east of Baqubah", "en", ("diyala",)),
        ("انفجار عبوة ناسفة شمال شرقي بعقوبة", "ar", ("diyala",)),
        ("تەقینەوەیەک لە باکووری خانەقین", "ckb", ("diyala",)),
        ("Teqînek li bakurê Xaneqînê", "kmr", ("diyala",)),
        ("Car bomb in Kirkuk, south of Erbil", "en", ("kirkuk",)),
    ],
)
def test_a_place_after_a_direction_is_a_landmark_in_its_governorate(
    title: str, language: str, places: tuple[str, ...]
) -> None:
    assert default_reader().read(report("a", title, language=language)).places == places


def test_numbers_are_read_in_any_digits_and_as_small_number_words() -> None:
    reader = default_reader()
    assert reader.read(report("a", "مقتل ٤ وإصابة ثلاثة", language="ar")).numbers == (3, 4)
    assert reader.read(report("b", "Mortar attack kills 12 at 07:30 in 2026")).numbers == (12,)
    assert reader.read(report("c", "Car bomb in Mosul")).numbers == ()


def test_the_time_is_the_published_time_else_the_fetch_time() -> None:
    fetched = MONDAY + timedelta(hours=3)
    published = Report(key="a", title="x", fetched_at=fetched, published_at=MONDAY)
    unpublished = Report(key="b", title="x", fetched_at=fetched)
    reader = default_reader()
    assert reader.read(published).at == MONDAY
    assert reader.read(unpublished).at == fetched


def test_english_names_give_the_governorate_of_a_town() -> None:
    reader = default_reader()
    assert reader.english_name("khanaqin") == "Khanaqin (Diyala)"
    assert reader.english_name("jalawla") == "Jalawla (Diyala)"
    assert reader.english_name("diyala") == "Diyala"
    assert reader.english_name("suicide-bomber") == "suicide bomber"


# --- the cases of issue 11 §2 ---


def test_one_event_named_at_different_granularity_is_one_incident() -> None:
    assert same(
        report("a", "Suicide bomber kills two at checkpoint in Khanaqin"),
        report("b", "انتحاري يهاجم سيطرة أمنية في ديالى", 0.5, language="ar"),
    )


def test_a_rising_toll_is_one_incident() -> None:
    assert same(
        report("a", "Car bomb kills 2 in Mosul market"),
        report("b", "Li Mûsilê wesayîteke bombebarkirî teqiya: 4 kes hatin kuştin", 2,
               language="kmr"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("title", "language"),
    [
        ("Khanaqin suicide attacker identified as ISIS member", "en"),
        ("اعتقال ثلاثة متهمين بالهجوم الانتحاري في خانقين", "ar"),
        ("بەخاکسپاردنی قوربانییانی هێرشی خۆکوژی خانەقین", "ckb"),
    ],
)
def test_a_next_day_follow_up_that_refers_back_joins(title: str, language: str) -> None:
    assert same(
        report("a", "Suicide bomber kills two at checkpoint in Khanaqin"),
        report("b", title, 28, language=language),
    )


def test_two_events_of_one_type_in_one_town_two_days_apart_are_two() -> None:
    assert not same(
        report("a", "Roadside bomb wounds two policemen in Tuz Khurmatu"),
        report("b", "Investigation opened into the Tuz Khurmatu roadside bomb", 26),
        report("c", "Roadside bomb kills driver in Tuz Khurmatu", 47),
    )


def test_the_same_event_type_on_the_same_day_in_two_towns_is_two() -> None:
    assert not same(
        report("a", "IED wounds three soldiers in Baquba"),
        report("b", "IED wounds three soldiers in Muqdadiya", 1),
    )


def test_a_morning_visit_and_an_evening_attack_in_one_town_are_two() -> None:
    assert not same(
        report("a", "Diyala governor visits Kifri"),
        report("b", "Mortar shells hit Kifri hours after the governor's visit", 10),
    )


def test_an_arrest_in_jalawla_and_a_killing_in_khanaqin_the_same_evening_are_two() -> None:
    assert not same(
        report("a", "Gunmen kill shop owner in Khanaqin"),
        report("b", "Police arrest suspect in Jalawla", 0.5),
    )
    assert not same(
        report("a", "Police arrest suspect in Jalawla"),
        report("b", "Gunmen kill shop owner in Khanaqin", 0.5),
    )


def test_the_same_town_and_time_with_nothing_saying_what_happened_is_not_enough() -> None:
    # An arrest, then a killing: the killing is not the arrest's follow-up.
    assert not same(
        report("a", "Police arrest suspect in Khanaqin"),
        report("b", "Gunmen kill shop owner in Khanaqin", 1),
    )


def test_sharing_a_group_does_not_make_an_arrest_and_a_later_killing_one() -> None:
    assert not same(
        report("a", "Police arrest ISIS suspect in Khanaqin"),
        report("b", "ISIS gunmen kill 2 in Khanaqin", 1),
    )


def test_two_specific_attack_types_in_one_town_at_one_time_are_two() -> None:
    assert not same(
        report("a", "Roadside bomb hits army patrol in Sinjar"),
        report("b", "Turkish airstrike hits village in Sinjar", 1),
    )


def test_an_unknown_gazetteer_id_is_shown_as_it_is() -> None:
    assert default_reader().english_name("no-such-place") == "no-such-place"


def test_a_report_naming_no_place_joins_only_on_strong_evidence() -> None:
    first = report("a", "Suicide bomber kills 2 at checkpoint in Khanaqin")
    assert same(first, report("b", "Suicide bomber kills 2 at checkpoint, police say", 1))
    assert not same(first, report("c", "Gunmen attack a checkpoint", 1))


def test_a_flood_and_a_fire_in_one_city_on_one_day_are_two() -> None:
    assert not same(
        report("a", "Flash floods sweep through Duhok"),
        report("b", "Fire breaks out in Duhok market", 2),
    )


def test_a_follow_up_after_the_window_opens_a_new_incident() -> None:
    first = report("a", "Suicide bomber kills two at checkpoint in Khanaqin")
    follow_up = report("b", "Funeral for the victims of the Khanaqin suicide attack", 20)
    assert same(first, follow_up)
    assert not same(first, follow_up, settings=Settings(window=timedelta(hours=12)))


def test_the_demo_story_is_one_incident_in_four_languages() -> None:
    feeds = Path(monitor.__file__).parent / "demo" / "feeds"
    languages = {"english": "en", "english-wire": "en", "arabic": "ar", "sorani": "ckb",
                 "kurmanji": "kmr"}  # fmt: skip
    now = datetime(2026, 11, 18, tzinfo=UTC)
    reports = [
        Report(key=f"{path.stem}/{item.guid}", title=item.title, summary=item.summary,
               fetched_at=now, published_at=item.published_at, outlet=path.stem,
               language=languages[path.stem])
        for path in sorted(feeds.glob("*.xml"))
        for item in parse_feed(path.read_bytes(), now=now).items
    ]  # fmt: skip
    incidents = Incidents()
    for demo_report in sorted(reports, key=lambda r: r.at):
        incidents.add(demo_report)
    sizes = sorted(len(incident.reports) for incident in incidents)
    story = max(incidents, key=lambda incident: len(incident.reports))
    assert sizes[-2:] == [1, 5]
    assert set(story.languages) == {"en", "ar", "ckb", "kmr"}
    assert story.places == ("Khanaqin (Diyala)",)


# --- the incident value ---


def test_the_incident_gathers_its_reports() -> None:
    incidents = Incidents()
    first = incidents.add(
        report("story-1", "انتحاري يقتل اثنين بخانقين", language="ar", outlet="najm",
               watchlists=("khanaqin",), severity="high", url="https://a.example/1")
    )  # fmt: skip
    second = incidents.add(
        report("story-2", "Suicide bomber kills two in Khanaqin, Diyala", 1, outlet="wire",
               watchlists=("suicide-bomber", "khanaqin"), severity="critical")
    )  # fmt: skip
    incident = second.incident
    assert first.created and not second.created
    assert incident.id == first.incident.id == incident_id("story-1")
    assert incident.title == "Suicide bomber kills two in Khanaqin, Diyala"
    assert incident.watchlists == ("khanaqin", "suicide-bomber")
    assert incident.severity == "critical"
    assert incident.places == ("Khanaqin (Diyala)",)
    assert incident.terms == ("suicide bomber",)
    assert incident.languages == ("ar", "en")
    assert incident.outlets == ("najm", "wire")
    assert [r.key for r in incident.reports] == ["story-1", "story-2"]
    assert (incident.first_seen, incident.last_seen) == (MONDAY, MONDAY + timedelta(hours=1))
    assert second.why[0].startswith("place khanaqin~khanaqin +3.0")


def test_the_title_is_a_translation_when_no_report_is_in_english() -> None:
    incidents = Incidents()
    incidents.add(report("a", "انتحاري يقتل اثنين بخانقين", language="ar"))
    decision = incidents.add(
        report("b", "Xwekujek li Xaneqînê du kes kuştin", 1, language="kmr",
               title_en="A suicide bomber killed two people in Khanaqin")
    )  # fmt: skip
    assert decision.incident.title == "A suicide bomber killed two people in Khanaqin"


def test_the_title_is_the_first_reports_when_nothing_is_in_english() -> None:
    incidents = Incidents()
    incidents.add(report("a", "انتحاري يقتل اثنين بخانقين", language="ar"))
    decision = incidents.add(report("b", "Xwekujek li Xaneqînê du kes kuştin", 1, language="kmr"))
    assert decision.incident.title == "انتحاري يقتل اثنين بخانقين"


def test_an_english_translation_adds_evidence() -> None:
    def score(title_en: str | None) -> float:
        incidents = Incidents()
        incidents.add(report("a", "Suicide bomber kills two at checkpoint in Khanaqin"))
        joined = incidents.add(
            report("b", "انتحاري يقتل اثنين عند سيطرة في خانقين", 1, language="ar",
                   title_en=title_en)
        )  # fmt: skip
        assert not joined.created
        return joined.score

    assert score("Suicide bomber kills two at checkpoint in Khanaqin") > score(None)


def test_a_report_seen_again_changes_nothing() -> None:
    incidents = Incidents()
    incidents.add(report("a", "Car bomb kills 2 in Mosul"))
    again = incidents.add(report("a", "Car bomb kills 2 in Mosul", 1))
    assert again.duplicate and not again.created
    assert len(again.incident.reports) == 1


# --- breaking ---


def breaking_after(*minutes_and_outlets: tuple[float, str]) -> list[bool]:
    incidents = Incidents()
    decisions = [
        incidents.add(report(f"r{n}", "Car bomb kills 2 in Mosul", minutes / 60, outlet=outlet,
                             severity="high"))
        for n, (minutes, outlet) in enumerate(minutes_and_outlets)
    ]  # fmt: skip
    return [d.became_breaking for d in decisions]


def test_three_outlets_within_an_hour_make_it_breaking_once() -> None:
    assert breaking_after((0, "a"), (20, "b"), (50, "c"), (55, "d")) == [
        False, False, True, False,
    ]  # fmt: skip


def test_breaking_raises_the_severity_one_step() -> None:
    incidents = Incidents()
    for n, outlet in enumerate("abc"):
        decision = incidents.add(
            report(f"r{n}", "Car bomb kills 2 in Mosul", n / 6, outlet=outlet, severity="high")
        )
    assert decision.incident.breaking
    assert decision.incident.severity == "critical"


def test_outlets_spread_over_two_hours_or_one_outlet_thrice_are_not_breaking() -> None:
    assert not any(breaking_after((0, "a"), (61, "b"), (122, "c")))
    assert not any(breaking_after((0, "a"), (5, "a"), (10, "a")))


def test_the_breaking_rule_is_tunable() -> None:
    incidents = Incidents(Settings(breaking_outlets=2, breaking_within=timedelta(minutes=10)))
    incidents.add(report("a", "Car bomb kills 2 in Mosul", outlet="x"))
    assert incidents.add(report("b", "Car bomb kills 2 in Mosul", 0.1, outlet="y")).became_breaking


def test_settings_out_of_range_are_refused_with_one_line() -> None:
    with pytest.raises(ValueError, match=r"^incidents: window and breaking_within must be"):
        Settings(window=timedelta(0))
    with pytest.raises(ValueError, match=r"^incidents: breaking_outlets must be at least 1$"):
        Settings(breaking_outlets=0)


# --- open incidents ---


def test_incidents_close_after_the_window_and_a_later_report_opens_a_new_one() -> None:
    incidents = Incidents()
    first = incidents.add(report("a", "Car bomb kills 2 in Mosul")).incident
    closed = incidents.expire(MONDAY + timedelta(hours=49))
    assert [i.id for i in closed] == [first.id]
    assert len(incidents) == 0
    assert incidents.add(report("b", "Car bomb kills 2 in Mosul", 50)).created


def test_restored_incidents_decide_as_before() -> None:
    original = Incidents()
    original.add(report("a", "Suicide bomber kills two at checkpoint in Khanaqin"))
    original.add(report("b", "Drone strike hits car in Sinjar", 1))
    restored = Incidents()
    restored.restore(original)
    follow_up = report("c", "Funeral for the victims of the Khanaqin suicide attack", 20)
    assert restored.add(follow_up).incident.id == original.add(follow_up).incident.id
    assert restored.get(incident_id("a")) == original.get(incident_id("a"))


def test_an_analyst_merges_two_incidents_and_later_reports_follow() -> None:
    incidents = Incidents()
    a = incidents.add(report("a", "IED wounds three soldiers in Baquba")).incident
    b = incidents.add(report("b", "IED wounds three soldiers in Muqdadiya", 1)).incident
    merged = incidents.merge(a.id, b.id)
    assert [r.key for r in merged.reports] == ["a", "b"]
    assert len(incidents) == 1
    later = incidents.add(report("c", "Roadside bomb in Muqdadiya wounds three", 2))
    assert later.incident.id == a.id


def test_an_analyst_splits_a_report_out_and_later_reports_follow() -> None:
    incidents = Incidents()
    incidents.add(report("a", "Suicide bomber kills two at checkpoint in Khanaqin"))
    incidents.add(report("b", "Funeral for the victims of the Khanaqin suicide attack", 20))
    first, alone = incidents.split(incident_id("a"), "a")
    assert [r.key for r in first.reports] == ["b"]
    assert first.id == incident_id("a")
    assert [r.key for r in alone.reports] == ["a"]
    assert alone.id != first.id
    with pytest.raises(ValueError, match=r"^'a' is not one of several reports of"):
        incidents.split(alone.id, "a")
    later = incidents.add(report("c", "Khanaqin suicide bomber kills two at checkpoint", 1))
    assert later.incident.id == alone.id
