"""What the packaged gazetteer covers, and how often its spellings occur in real text.

    .venv/bin/python bench/gazetteer_coverage.py [--shared ../shared] [--all]

Prints markdown tables:

1. Entries and spellings per kind and language (the packaged data only).
2. The 491 rows of ../shared/corpus/gazetteer/iraq_places_en_ckb_ar.tsv (MIT,
   m7amad-t/iraq_geo_data) by level: how many name a place that has an entry (by any of the
   row's names, its prefixes and bracketed parts dropped), how many were left out on purpose
   (a `left_out` word), and how many neither; those are listed.
3. Occurrences in ../shared/corpus/text: each entry is one watchlist (its English name, expanded
   as a user's term is), matched as the service matches items over every line of each sample.
   Hits in ar.txt (everyday sentences, not news), fa.txt and tr.txt are mostly false matches,
   so those columns are a probe for common words. `--all` lists every entry, not the top 40.

Parts 2 and 3 need ../shared, which CI does not have: they are skipped with a message then.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.config import WatchlistConfig  # noqa: E402
from monitor.match import Matcher  # noqa: E402
from monitor.text.gazetteer import KINDS, LANGUAGES, Gazetteer, load_gazetteer  # noqa: E402
from monitor.text.normalize import normalize_term  # noqa: E402

TSV = Path("corpus/gazetteer/iraq_places_en_ckb_ar.tsv")
TEXT = Path("corpus/text")
SAMPLES = {
    "en": ["en.txt"],
    "ar*": ["ar.txt"],
    "ckb": ["ckb.txt", "ckb-noisy.txt"],
    "kmr": ["kmr.txt"],
    "kmr-Arab": ["kmr-Arab.txt"],
    "fa*": ["fa.txt"],
    "tr*": ["tr.txt"],
}
"""Columns of table 3; * marks samples that are not news of the region (a false-match probe)."""
PREFIX = re.compile(r"^(?:محافظة|قضاء|ناحية|پارێزگای|قەزای|ناحیەی)\s+|\s+District$")
LEVELS = ("province", "district", "subdistrict")


def table(header: list[str], rows: list[list[object]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    print()


def spellings_table(gazetteer: Gazetteer) -> None:
    print("## Entries and spellings, by kind and language\n")
    rows = []
    for kind in [*sorted(KINDS), "all"]:
        entries = [e for e in gazetteer.entries if kind in ("all", e.kind)]
        if not entries:
            continue
        cells: list[object] = [kind, len(entries)]
        for language in LANGUAGES:
            having = [e for e in entries if e.names_in(language)]
            count = sum(len(e.names_in(language)) for e in having)
            cells.append(f"{len(having)} / {count}")
        rows.append(cells)
    header = ["kind", "entries", *(f"{lang}: entries / spellings" for lang in LANGUAGES)]
    table(header, rows)


def row_names(row: dict[str, str]) -> list[str]:
    names = []
    for column in ("name_en", "name_ckb", "name_ar"):
        value = row[column].strip()
        if not value:
            continue
        names.append(value)
        bare = PREFIX.sub("", value)
        names.append(bare)
        # "Tooz (Tuz Khurmatu)", "صلاح الدین(پیرمام)": both the outer and the bracketed name.
        names.extend(part.strip() for part in re.split(r"[()]", bare) if part.strip())
    return names


def coverage_table(gazetteer: Gazetteer, tsv: Path) -> None:
    print(f"## Coverage of {tsv.name} (rows by level)\n")
    with tsv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    missing = []
    for row in rows:
        names = row_names(row)
        level = row["level"]
        if any(gazetteer.lookup(name) for name in names):
            counts[level]["entry"] += 1
        elif any(gazetteer.why_left_out(name) for name in names):
            counts[level]["left out"] += 1
        else:
            counts[level]["neither"] += 1
            missing.append(f"{level} {row['province_en']} / {row['name_en']} ({row['name_ar']})")
    result = []
    for level in LEVELS:
        total = sum(counts[level].values())
        c = counts[level]
        result.append([level, total, c["entry"], c["left out"], c["neither"]])
    total = len(rows)
    result.append(["all", total, *(sum(counts[lv][k] for lv in LEVELS) for k in
                                   ("entry", "left out", "neither"))])  # fmt: skip
    table(["level", "rows", "have an entry", "left out on purpose", "neither"], result)
    if missing:
        print("Rows with neither:", "; ".join(missing), "\n")


def occurrence_table(gazetteer: Gazetteer, text_dir: Path, show_all: bool) -> None:
    print(f"## Occurrences in {text_dir} (lines with a match, per sample)\n")
    lists = [
        WatchlistConfig.model_validate({"name": e.id, "terms": [e.spellings[0]]})
        for e in gazetteer.entries
    ]
    matcher = Matcher(lists)
    hits: dict[str, Counter[str]] = defaultdict(Counter)
    lines_read = 0
    for column, files in SAMPLES.items():
        for name in files:
            for line in (text_dir / name).read_text(encoding="utf-8").splitlines():
                lines_read += 1
                for watchlist in {m.watchlist for m in matcher.match({"title": line})}:
                    hits[watchlist][column] += 1
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in gazetteer.entries:
        found = sum(n for col, n in hits[entry.id].items() if not col.endswith("*"))
        by_kind[entry.kind]["entries"] += 1
        by_kind[entry.kind]["seen"] += found > 0
        by_kind[entry.kind]["lines"] += found
    rows: list[list[object]] = [
        [kind, c["entries"], c["seen"], c["lines"]] for kind, c in sorted(by_kind.items())
    ]
    print(f"{lines_read:,} lines read; columns marked * are not news of the region.\n")
    table(["kind", "entries", "seen in the news samples", "lines with a match"], rows)
    ranked = sorted(gazetteer.entries, key=lambda e: -sum(hits[e.id].values()))
    shown = ranked if show_all else ranked[:40]
    title = "every entry" if show_all else "the 40 entries seen most often"
    print(f"Per entry ({title}):\n")
    table(
        ["entry", "kind", *SAMPLES],
        [[e.id, e.kind, *(hits[e.id][col] for col in SAMPLES)] for e in shown],
    )
    probes = [e for e in gazetteer.entries if any(hits[e.id][c] for c in ("ar*", "fa*", "tr*"))]
    if probes:
        print(
            "Entries matched in the non-news samples (check these for common words):",
            ", ".join(
                f"{e.id} ({', '.join(f'{c} {hits[e.id][c]}' for c in ('ar*', 'fa*', 'tr*') if hits[e.id][c])})"  # noqa: E501
                for e in probes
            ),
            "\n",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--all", action="store_true", help="list every entry in table 3")
    args = parser.parse_args()
    gazetteer = load_gazetteer()
    spellings = {normalize_term(s) for e in gazetteer.entries for s in e.spellings}
    print(
        f"{len(gazetteer.entries)} entries, {len(spellings)} distinct spellings,"
        f" {len(gazetteer.left_out)} words left out on purpose\n"
    )
    spellings_table(gazetteer)
    tsv = args.shared / TSV
    if tsv.is_file():
        coverage_table(gazetteer, tsv)
    else:
        print(f"{tsv} is missing: coverage of the MIT gazetteer skipped.\n")
    text_dir = args.shared / TEXT
    if all((text_dir / name).is_file() for files in SAMPLES.values() for name in files):
        occurrence_table(gazetteer, text_dir, args.all)
    else:
        print(f"{text_dir} is missing: occurrences in real text skipped.\n")


if __name__ == "__main__":
    main()
