"""Incidents measured on a labelled set: pairwise precision and recall of "same incident".

tests/data/incidents.tsv holds reports written for this project in English, Arabic, Sorani
and Kurmanji, labelled with the event each tells of. They are decided in order of
publication with no translation model; bench/incidents_bench.py prints the same numbers and
lists the pairs that went wrong.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import datetime, timedelta
from itertools import combinations
from pathlib import Path

import pytest

from monitor.incidents import Incidents, Report

LABELLED = Path(__file__).parent / "data" / "incidents.tsv"


def load_set() -> list[tuple[str, Report]]:
    lines = [line for line in LABELLED.read_text("utf-8").splitlines() if line[:1] != "#"]
    labelled = []
    for number, row in enumerate(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)):
        published = datetime.fromisoformat(row["published"])
        report = Report(
            key=f"report-{number}",
            title=row["title"],
            summary=row["summary"],
            language=row["language"],
            outlet=row["outlet"],
            published_at=published,
            fetched_at=published + timedelta(minutes=5),
        )
        labelled.append((row["event"], report))
    return sorted(labelled, key=lambda pair: pair[1].at)


LABELLED_SET = load_set()


@pytest.fixture(scope="module")
def decided() -> dict[str, str]:
    incidents = Incidents()
    return {report.key: incidents.add(report).incident.id for _, report in LABELLED_SET}


def test_the_set_covers_four_languages_fifteen_events_sixty_reports() -> None:
    languages = Counter(report.language for _, report in LABELLED_SET)
    assert set(languages) == {"en", "ar", "ckb", "kmr"}
    assert min(languages.values()) >= 10
    assert len({label for label, _ in LABELLED_SET}) >= 15
    assert len(LABELLED_SET) >= 60


def test_pairwise_precision_and_recall_meet_the_targets(decided: dict[str, str]) -> None:
    tp = fp = fn = 0
    for (label_a, a), (label_b, b) in combinations(LABELLED_SET, 2):
        same = decided[a.key] == decided[b.key]
        tp += same and label_a == label_b
        fp += same and label_a != label_b
        fn += not same and label_a == label_b
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert precision >= 0.95, precision
    assert recall >= 0.90, recall


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("baqubah-ied", "muqdadiya-ied"),
        ("kifri-visit", "kifri-mortar"),
        ("jalawla-arrest", "khanaqin-shooting"),
        ("tuz-ied-sat", "tuz-ied-mon"),
        ("duhok-flood", "duhok-fire"),
        ("hawija-assassination", "kirkuk-visit"),
        ("khanaqin-suicide", "khanaqin-shooting"),
    ],
)
def test_hard_negatives_share_no_incident(decided: dict[str, str], first: str, second: str) -> None:
    def incidents_of(label: str) -> set[str]:
        return {decided[report.key] for event, report in LABELLED_SET if event == label}

    assert incidents_of(first).isdisjoint(incidents_of(second))


@pytest.mark.parametrize(
    "label", ["khanaqin-suicide", "mosul-car-bomb", "sinjar-drone", "tuz-ied-sat"]
)
def test_granularity_rising_tolls_and_follow_ups_stay_one_incident(
    decided: dict[str, str], label: str
) -> None:
    assert len({decided[report.key] for event, report in LABELLED_SET if event == label}) == 1
