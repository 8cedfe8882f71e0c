"""Build langdetect profiles for Kurdish (ckb, kmr, kmr-Arab) from the shared text corpus.

    .venv/bin/python scripts/build_profiles.py [--corpus ../shared/corpus/text]

Writes `monitor/text/data/<name>.json` in langdetect's own profile format
(`{"freq": {ngram: count}, "n_words": [n1, n2, n3], "name": ...}`): character 1- to 3-gram
counts, no text. Only the MIT-licensed parts of the corpus are read (see `SOURCES`), so the
derived profiles can ship under the project's licence; `monitor/text/data/README.md` records
the sources.

One line in `HOLDOUT` is left out of training, so `bench/langid_corpus.py` can report accuracy
on lines the profiles never saw (it imports `SOURCES` and `is_held_out` from here).

Arabic-script lines are first folded as the identifier folds Kurdish text
(`fold_kurdish_arabic`: one spelling for ى ي ك ھ and heh + ZWNJ). Each training line is then
counted once as written and once in the spelling a hurried writer uses: Sorani typed on an
Arabic keyboard (ي ك ه for ی ک ە) and Kurmanji without circumflexes. Without those copies,
such text reads as Arabic or Turkish.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from langdetect.utils.lang_profile import LangProfile

from monitor.text.langid import fold_kurdish_arabic

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "text"
DEFAULT_OUT = ROOT / "monitor" / "text" / "data"
LESS_FREQ_RATIO = 10_000
"""n-grams seen n_words[0] / 10,000 times or fewer are dropped, as in langdetect's shipped
profiles (LangProfile's own default keeps ten times rarer ones). A profile that keeps rare
n-grams the others lack wins every text that happens to contain one: with the default, English
headlines naming Iraqi towns came out Kurmanji."""
HOLDOUT = 5
"""Every HOLDOUT-th line (1-based line number divisible by it) is kept out of training."""

_ARABIC_KEYBOARD = str.maketrans({"ک": "ك", "ە": "ه", "ی": "ي"})
_NO_CIRCUMFLEX = str.maketrans("êîûÊÎÛ", "eiuEIU")


def arabic_keyboard(text: str) -> str:
    return text.translate(_ARABIC_KEYBOARD)


def without_circumflexes(text: str) -> str:
    return text.translate(_NO_CIRCUMFLEX)


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    """The profile's (and the detected language's) name."""
    file: str
    first: int
    last: int | None
    """1-based, inclusive line range of the file that is MIT-licensed; None: to the end."""
    prepare: Callable[[str], str]
    """Applied to every line, as the identifier applies it before detection."""
    variant: Callable[[str], str]
    """A second spelling of the prepared line, counted too."""
    origin: str


SOURCES = (
    Source(
        "ckb",
        "ckb-noisy.txt",
        1,
        None,
        fold_kurdish_arabic,
        arabic_keyboard,
        "sinaahmadi/KurdishLID @ 5056496b : datasets/CentralKurdish-arab_train.txt (MIT)",
    ),
    Source(
        "kmr",
        "kmr.txt",
        1101,
        None,
        str,
        without_circumflexes,
        "sinaahmadi/KurdishLID @ 5056496b : datasets/NorthernKurdish-latn_train.txt (MIT)",
    ),
    Source(
        "kmr-Arab",
        "kmr-Arab.txt",
        1,
        None,
        fold_kurdish_arabic,
        arabic_keyboard,
        "sinaahmadi/KurdishLID @ 5056496b : datasets/NorthernKurdish-arab_train.txt (MIT)",
    ),
)


def is_held_out(line_number: int) -> bool:
    return line_number % HOLDOUT == 0


def training_lines(source: Source, corpus: Path) -> Iterator[str]:
    lines = (corpus / source.file).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        in_range = number >= source.first and (source.last is None or number <= source.last)
        if in_range and not is_held_out(number):
            yield source.prepare(line)


class Profile(TypedDict):
    freq: dict[str, int]
    n_words: list[int]
    name: str


def build(name: str, lines: Iterable[str], variant: Callable[[str], str]) -> Profile:
    profile = LangProfile(name=name)
    profile.LESS_FREQ_RATIO = LESS_FREQ_RATIO
    for line in lines:
        profile.update(line)
        changed = variant(line)
        if changed != line:
            profile.update(changed)
    profile.omit_less_freq()
    return {"freq": dict(sorted(profile.freq.items())), "n_words": profile.n_words, "name": name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for source in SOURCES:
        profile = build(source.name, training_lines(source, args.corpus), source.variant)
        path = args.out / f"{source.name}.json"
        # Compact and key-sorted: the same corpus always gives the same bytes.
        path.write_text(json.dumps(profile, ensure_ascii=False, separators=(",", ":")) + "\n")
        grams, counts = len(profile["freq"]), profile["n_words"]
        print(f"{path.relative_to(ROOT)}: {grams} n-grams, n_words={counts}")


if __name__ == "__main__":
    main()
