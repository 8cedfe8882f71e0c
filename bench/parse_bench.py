"""CPU of `parse_feed` per N feeds: the fast RSS/Atom reader against feedparser alone.

    .venv/bin/python bench/parse_bench.py --feeds 1000 --rounds 3

Generates N feeds × M items (bench/feedgen.py), then parses every body with
`parse_feed(..., fast_path=False)` (feedparser, the reference) and with the default fast path,
in alternating rounds in one process, and reports the median CPU time (process_time) and wall
time of each, plus how many documents the fast path read itself. Also splits the fast path's
time into the XML read (`_fastfeed.read`) and the rest (`html_to_text`, story keys, dates).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from feedgen import generate_feed  # noqa: E402

from monitor import _fastfeed  # noqa: E402
from monitor.parse import parse_feed  # noqa: E402

Doc = tuple[bytes, str, str]


def _timed(work: Callable[[], object]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    docs: list[Doc] = []
    for index in range(args.feeds):
        feed = generate_feed(index, items=args.items)
        docs.append((feed.body, feed.content_type, f"https://news.example.org{feed.path}"))
    size = sum(len(body) for body, _, _ in docs)
    fast_read = sum(_fastfeed.read(body, ctype) is not None for body, ctype, _ in docs)

    def run(fast: bool) -> Callable[[], object]:
        return lambda: [parse_feed(b, c, u, fast_path=fast) for b, c, u in docs]

    cases: dict[str, Callable[[], object]] = {
        "feedparser": run(False),
        "fast path": run(True),
        "fast path, XML read only": lambda: [_fastfeed.read(b, c) for b, c, _ in docs],
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, work in cases.items():
            results[name].append(_timed(work))
    print(
        f"{args.feeds} feeds × {args.items} items, {size / 1e6:.1f} MB; "
        f"fast path read {fast_read}/{len(docs)}; medians of {args.rounds} rounds"
    )
    print("| parser | CPU s | wall s | CPU ms per feed |")
    print("|---|---|---|---|")
    for name, runs in results.items():
        cpu = statistics.median(c for c, _ in runs)
        wall = statistics.median(w for _, w in runs)
        print(f"| {name} | {cpu:.2f} | {wall:.2f} | {1000 * cpu / len(docs):.2f} |")
    reference = statistics.median(c for c, _ in results["feedparser"])
    fast = statistics.median(c for c, _ in results["fast path"])
    print(f"CPU ratio feedparser / fast path: {reference / fast:.1f}×")


if __name__ == "__main__":
    main()
