"""Places and terms beyond the seed: recall and precision per language on tests/data/places.tsv.

    .venv/bin/python bench/places_bench.py

Matches the labelled set of tests/test_places_set.py with English-only watchlists (one per
place or term, the gazetteer supplying the other spellings) and prints a markdown table per
language (items, positives and how many of them are not dictionary forms, hard negatives,
true and false positives, misses, recall, precision), then every item that went wrong.

Then the real lines of issue 16 (../shared/corpus/text; the words that must match are in
tests/fixtures/sorani_badini_kirkuk_car_bomb.tsv): each whole line is matched and the form
found is printed. Without ../shared (as in CI) that part says so and is skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "text"
REAL_WORDS = ROOT / "tests" / "fixtures" / "sorani_badini_kirkuk_car_bomb.tsv"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_places_set import ITEMS, LANGUAGES, english_matcher, score  # noqa: E402

from monitor.match import Matcher  # noqa: E402


def real_lines(matcher: Matcher) -> bool:
    """Prints each real line's matches; whether every expected form matched."""
    if not CORPUS.is_dir():
        print(f"\n{CORPUS} not found: the real lines of issue 16 are not checked.")
        return True
    print("\nReal lines of issue 16:\n")
    print("| line | watchlist | form expected | matched |")
    print("|---|---|---|---|")
    ok = True
    for row in REAL_WORDS.read_text(encoding="utf-8").splitlines():
        if not row or row.startswith("#"):
            continue
        where, watchlist, _, form = row.split("\t")
        name, number = where.split(":")
        line = (CORPUS / name).read_text(encoding="utf-8").splitlines()[int(number) - 1]
        found = [m.form for m in matcher.match({"text": line}) if m.watchlist == watchlist]
        ok = ok and form in found
        print(f"| {where} | {watchlist} | {form} | {', '.join(found) or 'no'} |")
    return ok


def main() -> None:
    matcher = english_matcher()
    print(
        "| language | items | positives | not dictionary forms | negatives | tp | fp | fn |", end=""
    )
    print(" recall | precision |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    wrong = []
    for language in LANGUAGES:
        items = [i for i in ITEMS if i.language == language]
        positives = [i for i in items if i.expected]
        inflected = sum(i.kind != "base" for i in positives)
        result = score(matcher, language)
        wrong += [f"{language}: {w}" for w in result.wrong]
        print(
            f"| {language} | {result.items} | {len(positives)} | {inflected} |"
            f" {len(items) - len(positives)} | {result.tp} | {result.fp} | {result.fn} |"
            f" {result.recall:.3f} | {result.precision:.3f} |"
        )
    print("\nWrong:" if wrong else "\nNothing wrong.")
    for line in wrong:
        print(f"- {line}")
    if not real_lines(matcher):
        sys.exit(1)


if __name__ == "__main__":
    main()
