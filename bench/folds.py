"""Each spelling fold's gain and false matches on real text (issue 16).

    .venv/bin/python bench/folds.py [--samples 12] [--show RULE]

Matches every gazetteer entry (one watchlist per entry, its first English name as the only
term, as a user would write it) against the sentences of ../shared/corpus/text, once with
every fold and variant rule and once without each in turn. A fold's gain is the number of
(line, watchlist) matches it alone adds; the matches it adds are its new matches, each
judged right or wrong by reading its line (`JUDGED_WRONG` lists the wrong ones, with the
reason; `--show RULE` prints a rule's new matches for judging). Two kinds of fold:

* text folds (monitor/text/normalize.py), applied to text and terms alike: switched off by
  taking their letters out of the folding table;
* term variants (monitor/text/variants.py), generated from the gazetteer's spellings only:
  switched off with Matcher(variant_rules=...).

Prints a markdown table. Without ../shared (as in CI) it says so and exits 0.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "text"
sys.path.insert(0, str(ROOT))

from monitor.config import WatchlistConfig  # noqa: E402
from monitor.match import Matcher  # noqa: E402
from monitor.text import normalize as normalize_module  # noqa: E402
from monitor.text.gazetteer import load_gazetteer  # noqa: E402
from monitor.text.normalize import FOLD_GROUPS, normalize, normalize_term  # noqa: E402
from monitor.text.variants import RULES, spelling_variants  # noqa: E402

FILES = (
    "ckb.txt",
    "ckb-noisy.txt",
    "kmr-Arab.txt",
    "kmr.txt",
    "ar.txt",
    "en.txt",
    "fa.txt",
    "tr.txt",
)
# The letter folds, each taken out of the folding table in turn (marks are not measured:
# without them nothing with a harakah or a ZWNJ would match at all).
TEXT_FOLDS = {name: fold for name, fold in FOLD_GROUPS.items() if name != "marks"}
# New matches judged wrong by reading their line: (file, line, watchlist) → why.
# Judged by reading each new match in its line (issue 16, on the corpus and gazetteer of
# 2026-12-07): wrong when the word names a person, a dialect or a thing rather than the place
# or event of the watchlist. Collisions found this way and removed from the matcher (common
# words in monitor/text/variants.py, the ە checks in monitor/match.py) are not listed.
JUDGED_WRONG: dict[tuple[str, int, str], str] = {
    ("kmr.txt", 146, "kirkuk"): "Şenge Kerkûkî, a person's surname",
    ("kmr.txt", 1483, "kirkuk"): "Kemal Kerkûkî, a person's surname",
    ("kmr.txt", 1130, "akre"): "Nejdet Akreyî, a person's surname",
    ("kmr.txt", 1319, "akre"): "Ebdullah Akreyî, a person's surname",
    ("kmr.txt", 718, "oshnavieh"): "Enter Sîno, a person's name",
    ("kmr.txt", 1298, "alus"): "Mîsal Alusî, a person's surname",
    ("kmr.txt", 1449, "siwayl"): "Hişyar Sîweylî, a person's surname",
    ("en.txt", 722, "cizre"): "Şerefhan Ciziri, a person's surname",
    ("kmr-Arab.txt", 188, "bamarni"): "Rêber Bamarni (بامەرنی), a person's surname",
    ("kmr-Arab.txt", 77, "salahaddin"): "Salahaddin University (in Erbil), not the province",
    ("en.txt", 799, "yuksekova"): "Tekoşer Gever, a guerrilla's code name",
    ("en.txt", 1460, "yuksekova"): "Tekoşer Gever, a guerrilla's code name",
    ("en.txt", 1467, "yuksekova"): "Tekoşer Gever, a guerrilla's code name",
    ("en.txt", 1479, "yuksekova"): "Tekoşer Gever, a guerrilla's code name",
    ("kmr.txt", 542, "yuksekova"): "Destîna Canfeda Gever, a guerrilla's code name",
    ("kmr.txt", 746, "yuksekova"): "Têkoşer Gever, a guerrilla's code name",
    ("kmr.txt", 754, "yuksekova"): "Destîna Canfeda Gever, a guerrilla's code name",
}

Key = tuple[str, int, str, str]  # file, line number, watchlist, form


def watchlists() -> list[WatchlistConfig]:
    lists = []
    for entry in load_gazetteer().entries:
        names = entry.names_in("en") or entry.spellings
        lists.append(WatchlistConfig.model_validate({"name": entry.id, "terms": [names[0]]}))
    return lists


def corpus() -> list[tuple[str, int, str]]:
    lines = []
    for name in FILES:
        text = (CORPUS / name).read_text(encoding="utf-8")
        lines += [(name, n, line) for n, line in enumerate(text.splitlines(), 1)]
    return lines


def matches(matcher: Matcher, lines: list[tuple[str, int, str]]) -> dict[tuple[str, int, str], str]:
    """(file, line, watchlist) → the first form matched."""
    found: dict[tuple[str, int, str], str] = {}
    for name, number, line in lines:
        for m in matcher.match({"text": line}):
            found.setdefault((name, number, m.watchlist), m.form)
    return found


@contextmanager
def without_text_fold(fold: str) -> Iterator[None]:
    table = normalize_module._TABLE
    letters = TEXT_FOLDS[fold][0]
    saved = {ord(c): table.pop(ord(c)) for c in letters if ord(c) in table}
    try:
        yield
    finally:
        table.update(saved)


def variant_words(lines: list[tuple[str, int, str]]) -> list[tuple[str, str, str, str]]:
    """(variant, rules, entry, where) for each generated variant that is a word of the corpus.

    The ones in their own language's files are the gains above; the others are collisions
    (a romanization that is an English or Turkish word, a Sorani variant that is Arabic or
    Persian)."""
    words: dict[str, dict[str, int]] = {}
    for name, _, line in lines:
        for word in normalize(line).text.split():
            counts = words.setdefault(word.strip(".,:;!?()«»\"'“”"), {})
            counts[name] = counts.get(name, 0) + 1
    found = []
    for entry in load_gazetteer().entries:
        for language, spellings in entry.names:
            for spelling in spellings:
                key, term = normalize_term(spelling), entry.kind == "term"
                for variant, via in spelling_variants(key, language, term):
                    if variant in words:
                        where = ", ".join(f"{f} {n}" for f, n in sorted(words[variant].items()))
                        found.append((variant, "+".join(via), entry.id, where))
    return sorted(set(found))


def waw_merges(lines: list[tuple[str, int, str]]) -> None:
    """What a global وو → و text fold would merge in the Sorani and Badini text."""
    words: Counter[str] = Counter()
    for name, _, line in lines:
        if name in ("ckb.txt", "ckb-noisy.txt", "kmr-Arab.txt"):
            words.update(w.strip(".,:;!?()«»\"'“”،؛") for w in normalize(line).text.split())
    doubled = [w for w in words if "وو" in w]
    merged = [(w, w.replace("وو", "و")) for w in doubled if w.replace("وو", "و") in words]
    merged.sort(key=lambda pair: -(words[pair[0]] + words[pair[1]]))
    print(f"\nA global وو → و fold: of {len(doubled)} words with وو, {len(merged)} would become")
    print("another word of the text; the most frequent (count each):\n")
    print(", ".join(f"{a} {words[a]} / {b} {words[b]}" for a, b in merged[:12]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--samples", type=int, default=12, help="new matches shown per fold")
    parser.add_argument("--show", help="print every new match of this fold, to judge them")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"{CORPUS} not found: this benchmark needs the shared text corpus; nothing measured.")
        return
    lists = watchlists()
    lines = corpus()
    text_of = {(name, number): line for name, number, line in lines}
    full = matches(Matcher(lists), lines)
    all_rules = frozenset(rule.name for rule in RULES)
    rows = []
    shown: dict[str, list[tuple[tuple[str, int, str], str]]] = {}
    runs: list[tuple[str, str, str]] = [
        (fold, "text fold", description) for fold, (_, description) in TEXT_FOLDS.items()
    ]
    runs += [
        (rule.name, f"{'/'.join(rule.languages)} variant ({rule.kinds})", rule.description)
        for rule in RULES
    ]
    for name, kind, description in runs:
        if kind == "text fold":
            with without_text_fold(name):
                without = matches(Matcher(lists), lines)
        else:
            without = matches(Matcher(lists, variant_rules=all_rules - {name}), lines)
        new = sorted((key, form) for key, form in full.items() if key not in without)
        wrong = [key for key, _ in new if key in JUDGED_WRONG]
        shown[name] = new
        rows.append((name, kind, description, len(without), len(full), len(new), len(wrong)))
    print(f"{len(lines):,} lines of {CORPUS.name}/ ({', '.join(FILES)}); {len(lists)} watchlists\n")
    print("| fold | kind | what | matches without | with | gain | judged wrong |")
    print("|---|---|---|---|---|---|---|")
    for name, kind, description, before, after, gain, wrong_count in rows:
        print(
            f"| `{name}` | {kind} | {description} | {before} | {after} | {gain} | {wrong_count} |"
        )
    print("\nGenerated variants that are words of the corpus (gains in their own language's")
    print("files; anywhere else a collision):\n")
    print("| variant | rules | entry | occurrences |")
    print("|---|---|---|---|")
    for variant, via, entry_id, where in variant_words(lines):
        print(f"| {variant} | {via} | {entry_id} | {where} |")
    waw_merges(lines)
    rng = random.Random(16)
    for name, new in shown.items():
        if not new or (args.show and args.show != name):
            continue
        sample = new if args.show else rng.sample(new, min(args.samples, len(new)))
        print(f"\n{name}: {len(new)} new matches" + ("" if args.show else ", a sample:"))
        for (file, number, watchlist), form in sample:
            verdict = JUDGED_WRONG.get((file, number, watchlist), "right")
            context = text_of[(file, number)]
            at = context.find(form)
            snippet = context[max(0, at - 30) : at + len(form) + 30]
            print(f"- {file}:{number} {watchlist} `{form}` ({verdict}): …{snippet}…")


if __name__ == "__main__":
    main()
