"""Normalization for matching: pure functions applied to feed text and watchlist terms alike.

`normalize()` returns the normalized text with, for each of its characters, the index of the
character in the original it came from, so match offsets point into what the user sees.

What is folded (every rule applies to text and terms alike):

* Unicode NFKC, then case folding.
* Latin diacritics: `Xaneqîn` = `Xaneqin`, `ş` = `s`, `Diyâla` = `Diyala` (combining marks of the
  Combining Diacritical Marks block are dropped; Arabic-script letters such as ێ ۆ ڕ ڵ have no
  decomposition and stay distinct from ی و ر ل).
* Arabic script: harakat, superscript alef, Quranic marks and tatweel removed; أ إ آ ٱ → ا;
  ى ي → ی and ك → ک (the Persian/Kurdish forms are canonical); ة ە ھ → ه, so Sorani typed on an
  Arabic keyboard matches; Arabic-Indic and Persian digits → ASCII.
* Invisible characters (ZWNJ, ZWJ, LRM/RLM, ALM, bidi embeddings and isolates, zero-width space,
  word joiner, BOM, soft hyphen, variation selectors) removed.
* Typographic apostrophes and hyphens → ASCII `'` and `-`.

Design for speed: the common case (text already in NFKC whose case folding keeps its length) is
`casefold()` + one `str.translate()` with a table built at import. Offsets are computed only when
the length changes: with deletions only, from the positions of the deleted runs (a regex scan,
no per-character Python work); otherwise (ligatures, ß, decomposed input) one cluster at a time.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["FOLD_GROUPS", "Normalized", "folds_in", "normalize", "normalize_term"]


def _ranges(*spans: tuple[int, int]) -> list[str]:
    return [chr(c) for first, last in spans for c in range(first, last + 1)]


# Marks that belong to the letter before them: dropped, but a match ending on that letter still
# shows them (the span in the original is extended over them).
_ATTACHED_MARKS = _ranges(
    (0x0300, 0x036F),  # Combining Diacritical Marks (Latin, after NFKC composition)
    (0x064B, 0x065F),  # Arabic harakat, tanween, shadda, sukun, hamza above/below
    (0x0670, 0x0670),  # superscript alef
    (0x06D6, 0x06ED),  # Quranic annotation marks
    (0x0640, 0x0640),  # tatweel (kashida)
    (0xFE00, 0xFE0F),  # variation selectors
)
# Invisible format characters: dropped wherever they are.
_INVISIBLE = [
    "\u00ad",  # soft hyphen
    "\u061c",  # Arabic letter mark
    "\u180e",  # Mongolian vowel separator
    *_ranges((0x200B, 0x200F)),  # ZWSP, ZWNJ, ZWJ, LRM, RLM
    *_ranges((0x202A, 0x202E)),  # bidi embeddings and overrides
    *_ranges((0x2060, 0x2064)),  # word joiner, invisible operators
    *_ranges((0x2066, 0x2069)),  # bidi isolates
    "\ufeff",  # BOM / zero-width no-break space
]
_DELETED = frozenset(_ATTACHED_MARKS) | frozenset(_INVISIBLE)
ATTACHED_MARKS = frozenset(_ATTACHED_MARKS)

_ONE_TO_ONE: dict[str, str] = {
    # Typographic apostrophes and hyphens, so `Khanaqin’s` = `Khanaqin's`.
    "\u2019": "'",
    "\u2018": "'",
    "\u201b": "'",
    "\u02bc": "'",
    "\u2032": "'",
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    # Arabic alef and hamza forms.
    "\u0623": "\u0627",  # أ
    "\u0625": "\u0627",  # إ
    "\u0622": "\u0627",  # آ
    "\u0671": "\u0627",  # ٱ
    # Yeh: alef maqsura and Arabic yeh → Persian/Kurdish yeh ی.
    "\u0649": "\u06cc",  # ى
    "\u064a": "\u06cc",  # ي
    # Kaf: Arabic kaf and swash kaf → Persian/Kurdish keheh ک.
    "\u0643": "\u06a9",  # ك
    "\u06aa": "\u06a9",  # ڪ
    # Heh forms: teh marbuta, Kurdish ae, heh doachashmee, heh with yeh above → ه.
    "\u0629": "\u0647",  # ة
    "\u06d5": "\u0647",  # ە
    "\u06be": "\u0647",  # ھ
    "\u06c0": "\u0647",  # ۀ
    # Dotless i folds like i.
    "\u0131": "i",
}
# Arabic-Indic and Persian (Extended Arabic-Indic) digits.
for _digit in range(10):
    _ONE_TO_ONE[chr(0x0660 + _digit)] = str(_digit)
    _ONE_TO_ONE[chr(0x06F0 + _digit)] = str(_digit)


def _latin_folds() -> dict[str, str]:
    """Precomposed Latin letters with diacritics → their case-folded ASCII base letter."""
    folds: dict[str, str] = {}
    spans = ((0x00C0, 0x024F), (0x1E00, 0x1EFF))
    for char in _ranges(*spans):
        decomposed = unicodedata.normalize("NFD", char)
        base, marks = decomposed[0], decomposed[1:]
        if base.isascii() and base.isalpha() and marks and all(m in ATTACHED_MARKS for m in marks):
            folds[char] = base.casefold()
    return folds


_ONE_TO_ONE.update(_latin_folds())
# The letter folds by name, for `news-monitor terms` and bench/folds.py (which measures each).
FOLD_GROUPS: dict[str, tuple[str, str]] = {
    # name: (letters folded, what the fold does)
    "alef-hamza": ("\u0623\u0625\u0622\u0671", "أ إ آ ٱ → ا"),
    "arabic-yeh": ("\u0649\u064a", "ى ي → ی"),
    "arabic-kaf": ("\u0643\u06aa", "ك ڪ → ک"),
    "heh-ae": ("\u0629\u06d5\u06be\u06c0", "ة ە ھ ۀ → ه (Sorani ە typed as ه or ة)"),
    "latin-diacritics": (
        "".join(_latin_folds()),
        "Latin letters without diacritics (Kurmanji î ê û ç ş → i e u c s)",
    ),
    "marks": ("".join(sorted(_DELETED)), "harakat, tatweel and invisible characters dropped"),
}


def folds_in(text: str) -> tuple[str, ...]:
    """The names of the `FOLD_GROUPS` that change something in `text`."""
    composed = unicodedata.normalize("NFC", text)
    return tuple(name for name, (letters, _) in FOLD_GROUPS.items() if set(letters) & set(composed))


_TABLE: dict[int, str | None] = {ord(k): v for k, v in _ONE_TO_ONE.items()}
_TABLE.update({ord(char): None for char in _DELETED})
_DELETED_RUNS = re.compile("[" + "".join(re.escape(c) for c in sorted(_DELETED)) + "]+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Normalized:
    text: str
    offsets: tuple[int, ...] | None
    """Original index of each character of `text`; None when they are the same positions."""
    source: str = ""
    """The original text, so a span can take in the marks dropped after its last letter."""

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        if self.offsets is None:
            return start, end
        if not self.offsets:
            return 0, 0
        if start >= len(self.offsets):
            return self.offsets[-1] + 1, self.offsets[-1] + 1
        if end <= start:
            return self.offsets[start], self.offsets[start]
        first, last = self.offsets[start], self.offsets[end - 1] + 1
        source = self.source
        limit = self.offsets[end] if end < len(self.offsets) else len(source)
        while last < limit and source[last] in ATTACHED_MARKS:
            last += 1
        return first, last


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().translate(_TABLE)


def normalize(text: str) -> Normalized:
    """The folded text, keeping offsets into `text` (see the module docstring)."""
    if text.isascii():
        return Normalized(text.casefold(), None, text)
    if unicodedata.is_normalized("NFKC", text):
        cased = text.casefold()
        if len(cased) == len(text):
            folded = cased.translate(_TABLE)
            if len(folded) == len(text):
                return Normalized(folded, None, text)
            # Deletions only: kept characters are the ones between the deleted runs.
            offsets: list[int] = []
            position = 0
            for run in _DELETED_RUNS.finditer(text):
                offsets.extend(range(position, run.start()))
                position = run.end()
            offsets.extend(range(position, len(text)))
            return Normalized(folded, tuple(offsets), text)
    # Rare path (ligatures, ß, NBSP, decomposed input): fold one cluster at a time. A base
    # character folds together with the combining marks after it, so NFC composes decomposed
    # input (i + U+0302 → î → i) as it does for the terms.
    pieces: list[str] = []
    offsets = []
    start = 0
    length = len(text)
    combining = unicodedata.combining
    for index in range(1, length + 1):
        if index < length and combining(text[index]):
            continue
        piece = _fold(text[start:index])
        if piece:
            pieces.append(piece)
            offsets.extend([start] * len(piece))
        start = index
    return Normalized("".join(pieces), tuple(offsets), text)


def normalize_term(term: str) -> str:
    """A watchlist term as it is looked up: folded, words separated by single spaces.

    Hyphens between words are separators (`suicide-bomber` = `suicide bomber`), since the
    matcher accepts any run of whitespace and hyphens between the words of a term.
    """
    folded = _fold(term)
    return _SPACES.sub(" ", re.sub(r"(?<=\w)-+(?=\w)", " ", folded)).strip()
