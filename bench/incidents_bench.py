"""Incidents: pairwise precision and recall of "same incident" on the labelled set, and the
cost of deciding one report with many incidents open.

    .venv/bin/python bench/incidents_bench.py              # both parts
    .venv/bin/python bench/incidents_bench.py --quality    # the labelled set only
    .venv/bin/python bench/incidents_bench.py --open 10000 --reports 2000

Quality: tests/data/incidents.tsv (written for this project: en, ar, ckb, kmr), fed in order
of publication with no translation model (English titles compare only with English titles).
Every pair of reports is "same" or not, by label and by decision; precision and recall are
over the pairs decided "same". The pairs that went wrong are listed. Then the same reports
arrive late by up to --lag hours each (feeds are polled at different times), and in any
order at all (a stress test: funerals before the attack), and the spread is printed.

Speed: N open incidents spread over every gazetteer place and event type within the
window, then M new reports of random places and types; prints the time per report to read
the evidence and to decide (the index keeps the decision from scanning every incident).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from statistics import mean

from monitor.incidents import Incident, Incidents, Reader, Report, ReportRef

SET = Path(__file__).resolve().parent.parent / "tests" / "data" / "incidents.tsv"


def load_set(path: Path = SET) -> list[tuple[str, Report]]:
    lines = [line for line in path.read_text("utf-8").splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    labelled = []
    for number, row in enumerate(rows):
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
    labelled.sort(key=lambda pair: pair[1].at)
    return labelled


def cluster(labelled: list[tuple[str, Report]]) -> dict[str, str]:
    """Report key → incident id, deciding in order."""
    incidents = Incidents()
    return {report.key: incidents.add(report).incident.id for _, report in labelled}


def pairwise(
    labelled: list[tuple[str, Report]], decided: dict[str, str]
) -> tuple[float, float, list[tuple[str, str, str]]]:
    """Precision, recall and the wrong pairs (kind, first title, second title)."""
    tp = fp = fn = 0
    wrong = []
    for (label_a, a), (label_b, b) in combinations(labelled, 2):
        same_label = label_a == label_b
        same_decided = decided[a.key] == decided[b.key]
        if same_label and same_decided:
            tp += 1
        elif same_decided:
            fp += 1
            wrong.append(("merged", f"{label_a}: {a.title}", f"{label_b}: {b.title}"))
        elif same_label:
            fn += 1
            wrong.append(("split", f"{label_a}: {a.title}", f"{label_b}: {b.title}"))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, wrong


def quality(shuffles: int, lag: float, seed: int) -> None:
    labelled = load_set()
    decided = cluster(labelled)
    precision, recall, wrong = pairwise(labelled, decided)
    events = len({label for label, _ in labelled})
    languages = Counter(report.language for _, report in labelled)
    print(f"labelled set: {len(labelled)} reports of {events} events, {dict(languages)}")
    print(f"incidents made: {len(set(decided.values()))}")
    print(f"pairwise precision {precision:.3f}  recall {recall:.3f}  (no translation model)")
    for kind, first, second in wrong:
        print(f"  {kind}: {first}  |  {second}")
    # Feeds are polled at different times: each report arrives up to `lag` after it was
    # published; and, as a stress test, in any order at all.
    rng = random.Random(seed)
    for name, key in (
        (f"arrival up to {lag:g} h late", lambda r: r.at + timedelta(hours=rng.uniform(0, lag))),
        ("arrival in random order", lambda r: rng.random()),
    ):
        scores = [
            pairwise(labelled, cluster(sorted(labelled, key=lambda pair: key(pair[1]))))[:2]
            for _ in range(shuffles)
        ]
        precisions, recalls = [p for p, _ in scores], [r for _, r in scores]
        print(
            f"{name}, {shuffles} draws: precision mean {mean(precisions):.3f} min "
            f"{min(precisions):.3f}, recall mean {mean(recalls):.3f} min {min(recalls):.3f}"
        )


def speed(open_incidents: int, reports: int, seed: int) -> None:
    rng = random.Random(seed)
    began = time.perf_counter()
    reader = Reader()
    build = time.perf_counter() - began
    places = [e for e in reader.gazetteer.entries if reader.is_place(e.id)]
    types = list(reader.lexicon.types)
    incidents = Incidents(reader=reader)
    window = incidents.settings.window
    start = datetime(2026, 3, 1, tzinfo=UTC)

    def seeded(number: int) -> Incident:
        at = start + window * (number / open_incidents)
        ref = ReportRef(
            key=f"seed-{number}",
            at=at,
            outlet=f"outlet-{rng.randint(1, 50)}",
            language="en",
            title=f"seed {number}",
            url=None,
            title_en=None,
            watchlists=("w",),
            severity="medium",
            places=(rng.choice(places).id,),
            terms=(),
            events=(rng.choice(types).id,),
            numbers=(rng.randint(2, 40),),
        )
        return Incident(
            id=f"seed-{number}", title=ref.title, first_seen=at, last_seen=at, watchlists=(),
            severity="medium", breaking=False, places=(), terms=(), events=(), languages=(),
            outlets=(), reports=(ref,), place_ids=(), term_ids=(),
        )  # fmt: skip

    began = time.perf_counter()
    incidents.restore(seeded(n) for n in range(open_incidents))
    restore = time.perf_counter() - began
    now = start + window

    def report(number: int) -> Report:
        place, kind = rng.choice(places), rng.choice(types)
        title = f"{rng.choice(kind.forms)} {rng.choice(place.spellings)} {rng.randint(2, 40)}"
        return Report(
            key=f"new-{number}",
            title=title,
            fetched_at=now + timedelta(seconds=number),
            outlet=f"outlet-{rng.randint(1, 50)}",
        )

    batch = [report(n) for n in range(reports)]
    began = time.perf_counter()
    evidence = [incidents.read(r) for r in batch]
    read = time.perf_counter() - began
    opened = len(incidents)
    began = time.perf_counter()
    created = sum(incidents.add(r, e).created for r, e in zip(batch, evidence, strict=True))
    decide = time.perf_counter() - began
    print(f"reader built in {build * 1000:.0f} ms (one matcher over gazetteer and lexicon)")
    print(f"{opened} open incidents restored in {restore:.2f} s")
    print(
        f"{reports} reports: read {read / reports * 1e6:.0f} µs + decide "
        f"{decide / reports * 1e6:.0f} µs = {(read + decide) / reports * 1000:.3f} ms per "
        f"report; {created} opened new incidents"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quality", action="store_true", help="the labelled set only")
    parser.add_argument("--speed", action="store_true", help="the cost benchmark only")
    parser.add_argument("--open", type=int, default=10_000, help="open incidents to seed")
    parser.add_argument("--reports", type=int, default=2_000, help="reports to time")
    parser.add_argument("--shuffles", type=int, default=20, help="random arrival orders")
    parser.add_argument("--lag", type=float, default=3.0, help="polling lag, hours")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    both = not (args.quality or args.speed)
    if args.quality or both:
        quality(args.shuffles, args.lag, args.seed)
    if args.speed or both:
        speed(args.open, args.reports, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
