"""Normalization for matching: pure functions applied to feed text and watchlist terms alike.

`normalize()` returns the normalized text with, for each of its characters, the index of the
character in the original it came from, so match offsets point into what the user sees.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Normalized", "normalize", "normalize_term"]

# Typographic apostrophes and hyphens become their ASCII forms, so `Khanaqin’s` = `Khanaqin's`.
_TRANSLATE = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u02bc": "'",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u00ad": None,  # soft hyphen
        "\u200b": None,  # zero-width space
        "\u2060": None,  # word joiner
        "\ufeff": None,
    }
)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Normalized:
    text: str
    offsets: tuple[int, ...] | None
    """Original index of each character of `text`; None when they are the same positions."""

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        if self.offsets is None:
            return start, end
        if start >= len(self.offsets):
            return self.offsets[-1] + 1, self.offsets[-1] + 1
        last = self.offsets[end - 1] + 1 if end > start else self.offsets[start]
        return self.offsets[start], last


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text.translate(_TRANSLATE)).casefold()


def normalize(text: str) -> Normalized:
    """NFKC, case folding and typographic folding, keeping offsets into `text`."""
    folded = _fold(text)
    if len(folded) == len(text):
        return Normalized(folded, None)
    # Rare path (ligatures, ß, removed invisibles): fold one character at a time.
    # A base character folds together with the combining marks after it, so NFC composes
    # decomposed input (i + U+0302 -> î) as it does for the terms.
    pieces: list[str] = []
    offsets: list[int] = []
    start = 0
    for index in range(1, len(text) + 1):
        if index < len(text) and unicodedata.combining(text[index]):
            continue
        piece = _fold(text[start:index])
        pieces.append(piece)
        offsets.extend([start] * len(piece))
        start = index
    return Normalized("".join(pieces), tuple(offsets))


def normalize_term(term: str) -> str:
    """A watchlist term as it is looked up: folded, with single spaces between words."""
    return _SPACES.sub(" ", _fold(term)).strip()
