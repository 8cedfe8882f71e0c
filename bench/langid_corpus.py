"""Language-identification accuracy on the shared third-party corpus (not a test: CI has no corpus).

    .venv/bin/python bench/langid_corpus.py [--corpus ../shared/corpus/text] [--hint]

For every `<lang>.txt` in the corpus, one line = one item, labelled by its file name
(`ckb-noisy.txt` is Sorani). Prints a markdown table: accuracy on all lines and on the lines
the shipped profiles never saw (held out by `scripts/build_profiles.py`, or outside the
MIT-licensed range it reads), the most frequent wrong answers, and, for the Kurdish files, how
often the answer was Kurdish at all (Sorani/Badini mix-ups aside) and how often Arabic.
`--hint` passes each file's language as the feed hint.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from build_profiles import DEFAULT_CORPUS, SOURCES, is_held_out  # noqa: E402

from monitor.text.langid import LanguageIdentifier  # noqa: E402

KURDISH = frozenset({"ckb", "kmr", "kmr-Arab"})


def expected_language(path: Path) -> str:
    return path.stem.removesuffix("-noisy")


def trained_on(file: str, line_number: int) -> bool:
    return any(
        source.file == file
        and line_number >= source.first
        and (source.last is None or line_number <= source.last)
        and not is_held_out(line_number)
        for source in SOURCES
    )


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--hint", action="store_true", help="pass the file's language as hint")
    args = parser.parse_args()
    identifier = LanguageIdentifier()
    print(
        "| file | lines | correct | unseen lines | correct (unseen) | Kurdish | Arabic "
        "| most frequent wrong answers |"
    )
    print("|---|---|---|---|---|---|---|---|")
    total = total_correct = 0
    elapsed = 0.0
    for path in sorted(args.corpus.glob("*.txt")):
        want = expected_language(path)
        lines = path.read_text(encoding="utf-8").splitlines()
        hint = want if args.hint else None
        started = time.perf_counter()
        answers = [identifier.identify(line, hint).language for line in lines]
        elapsed += time.perf_counter() - started
        correct = [answer == want for answer in answers]
        unseen = [not trained_on(path.name, n) for n in range(1, len(lines) + 1)]
        wrong = Counter(answer for answer, ok in zip(answers, correct, strict=True) if not ok)
        kurdish = sum(answer in KURDISH for answer in answers)
        arabic = sum(answer == "ar" for answer in answers)
        is_kurdish = want in KURDISH
        print(
            f"| {path.name} | {len(lines)} | {percent(sum(correct), len(lines))} "
            f"| {sum(unseen)} "
            f"| {percent(sum(c for c, u in zip(correct, unseen, strict=True) if u), sum(unseen))} "
            f"| {percent(kurdish, len(lines)) if is_kurdish else '–'} "
            f"| {percent(arabic, len(lines)) if is_kurdish else '–'} "
            f"| {', '.join(f'{lang} {n}' for lang, n in wrong.most_common(4))} |"
        )
        total += len(lines)
        total_correct += sum(correct)
    print(
        f"\nAll files: {percent(total_correct, total)} of {total} lines; "
        f"{total / elapsed:,.0f} detections/s (corpus lines, one core)."
    )


if __name__ == "__main__":
    main()
