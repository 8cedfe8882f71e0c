"""Benchmark of the text stages: language identification, watchlist matching, the analyzer.

    .venv/bin/python bench/text_bench.py [--items 3000] [--repeat 3]

Items are built from the project's own labelled sentences (tests/data/langid.tsv and
tests/data/matching.tsv; en, ar, ckb, kmr, fa, tr): each item is one sentence as the title and
four others as the summary (about 250 characters), the same items for every run; for the last
row each item also has an article body (`content`): 10 paragraphs of 4 sentences. Everything
runs in this process on one core; each figure is the best of `--repeat` runs. Targets, from
issue 3: ≥ 2,000 detections/s on headlines; ≥ 5,000 items/s matched with the seed
watchlists; 10,000 terms cost ≤ 2× what 100 terms cost. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import platform
import random
import string
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.analyze import Analyzer  # noqa: E402
from monitor.config import WatchlistConfig  # noqa: E402
from monitor.match import Matcher  # noqa: E402
from monitor.text.langid import LanguageIdentifier  # noqa: E402

SEED_WATCHLISTS: list[dict[str, Any]] = [
    {
        "name": "khanaqin",
        "terms": [{"term": "Khanaqin", "aliases": ["Khaneqin", "Xaneqîn", "خانقين", "خانەقین"]}],
        "none": ["exercise", "drill"],
    },
    {"name": "diyala", "terms": [{"term": "Diyala", "aliases": ["Diyale", "ديالى", "دیالە"]}]},
    {
        "name": "suicide-bomber",
        "terms": [
            {
                "term": "suicide bomber",
                "aliases": ["انتحاري", "مفجر انتحاري", "خۆتەقێنەر", "xwekuj"],
            },
            {"term": "suicide attack", "aliases": ["هجوم انتحاري", "êrîşa xwekujî"]},
        ],
    },
]
"""The seed story's watchlists, as in config.yaml."""
TARGETS = {"detections_per_s": 2000.0, "items_per_s": 5000.0, "cost_ratio": 2.0}
ARABIC_LETTERS = "ابتثجحخدذرزسشصضطظعغفقلمنهوی"


def sentences() -> list[str]:
    found = []
    for name in ("langid.tsv", "matching.tsv"):
        for line in (ROOT / "tests" / "data" / name).read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                found.append(line.rsplit("\t", 1)[-1])
    return found


def make_items(count: int, rng: random.Random) -> list[tuple[str, str]]:
    pool = sentences()
    return [(rng.choice(pool), " ".join(rng.sample(pool, 4))) for _ in range(count)]


def make_bodies(count: int, rng: random.Random) -> list[str]:
    """Article bodies (an item's `content`): 10 paragraphs (lines) of 4 sentences each."""
    pool = sentences()
    return ["\n".join(" ".join(rng.sample(pool, 4)) for _ in range(10)) for _ in range(count)]


def synthetic_terms(count: int, rng: random.Random) -> list[str]:
    """Made-up names: Latin and Arabic-script, one to three words, none a real word."""

    def word() -> str:
        letters = ARABIC_LETTERS if rng.random() < 0.4 else string.ascii_lowercase
        return "".join(rng.choice(letters) for _ in range(rng.randint(5, 10)))

    terms: set[str] = set()
    while len(terms) < count:
        terms.add(" ".join(word() for _ in range(rng.choice((1, 1, 1, 2, 3)))))
    return sorted(terms)


def watchlists_with(term_count: int, rng: random.Random) -> list[WatchlistConfig]:
    seed = [WatchlistConfig.model_validate(w) for w in SEED_WATCHLISTS]
    seed_terms = sum(len(w.terms) for w in seed)
    extra = synthetic_terms(max(0, term_count - seed_terms), rng)
    lists = [
        WatchlistConfig.model_validate({"name": f"synthetic-{n:03d}", "terms": extra[n::100]})
        for n in range(min(100, len(extra)))
    ]
    return seed + lists


def best_rate(run: Callable[[], int], repeat: int) -> float:
    """Operations per second of the fastest of `repeat` runs."""
    best = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        done = run()
        best = max(best, done / (time.perf_counter() - started))
    return best


def best_time(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(3)
    items = make_items(args.items, rng)
    titles = [title for title, _ in items]
    rows: list[tuple[str, str, str]] = []

    started = time.perf_counter()
    identifier = LanguageIdentifier()
    rows.append(("langid: load 58 profiles", f"{time.perf_counter() - started:.3f} s", ""))

    def detect_titles() -> int:
        for title in titles:
            identifier.identify(title)
        return len(titles)

    def detect_items() -> int:
        for title, summary in items:
            identifier.identify(f"{title}\n{summary}"[:600], "ckb")
        return len(items)

    rate = best_rate(detect_titles, args.repeat)
    target = TARGETS["detections_per_s"]
    rows.append(("langid: headlines", f"{rate:,.0f} detections/s", f"≥ {target:,.0f}/s"))
    rate = best_rate(detect_items, args.repeat)
    rows.append(("langid: title + summary, with a hint", f"{rate:,.0f} detections/s", ""))

    def match_rate(matcher: Matcher) -> float:
        def run() -> int:
            for title, summary in items:
                matcher.match({"title": title, "summary": summary})
            return len(items)

        return best_rate(run, args.repeat)

    seed_lists = [WatchlistConfig.model_validate(w) for w in SEED_WATCHLISTS]
    compile_s = best_time(partial(Matcher, seed_lists), args.repeat)
    seed_rate = match_rate(Matcher(seed_lists))
    rows.append(("match: compile seed watchlists", f"{compile_s * 1000:.1f} ms", ""))
    target = TARGETS["items_per_s"]
    rows.append(("match: seed watchlists", f"{seed_rate:,.0f} items/s", f"≥ {target:,.0f}/s"))

    rates = {}
    for count in (100, 10_000):
        lists = watchlists_with(count, random.Random(count))
        compile_s = best_time(partial(Matcher, lists), args.repeat)
        rates[count] = match_rate(Matcher(lists))
        rows.append((f"match: compile {count:,} terms", f"{compile_s:.3f} s", ""))
        rows.append((f"match: {count:,} terms", f"{rates[count]:,.0f} items/s", ""))
    ratio = rates[100] / rates[10_000]
    rows.append(("match: cost of 10,000 terms / 100 terms", f"{ratio:.2f}×", "≤ 2×"))

    analyzer = Analyzer(seed_lists, identifier)

    def analyze() -> int:
        for title, summary in items:
            analyzer.analyze(title, summary, "ckb")
        return len(items)

    rate = best_rate(analyze, args.repeat)
    rows.append(("Analyzer.analyze (langid + match), seed watchlists", f"{rate:,.0f} items/s", ""))

    bodies = make_bodies(args.items, random.Random(5))

    def analyze_with_bodies() -> int:
        for (title, summary), body in zip(items, bodies, strict=True):
            analyzer.analyze(title, summary, "ckb", content=body)
        return len(items)

    rate = best_rate(analyze_with_bodies, args.repeat)
    chars = sum(map(len, bodies)) // len(bodies)
    measure = f"Analyzer.analyze, with a {chars:,}-character article body"
    rows.append((measure, f"{rate:,.0f} items/s", ""))

    print(f"{args.items:,} items; Python {platform.python_version()} on {platform.machine()}\n")
    print("| measure | result | target |")
    print("|---|---|---|")
    for measure, result, wanted in rows:
        print(f"| {measure} | {result} | {wanted} |")


if __name__ == "__main__":
    main()
