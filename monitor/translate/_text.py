"""Text going into a model: plain, capped, and split into sentences without any model or network."""

from __future__ import annotations

import re

from monitor.parse import html_to_text

__all__ = ["clean", "paragraphs", "split_sentences"]

_SENTENCE_END = re.compile(r"(?:(?<=[.!?؟۔…])|(?<=[.!?؟۔…][\"'»”’)\]]))\s+")
"""Sentence-final punctuation (Latin, Arabic ؟, Urdu/Sorani ۔), closing quotes, then space."""
_CUT_BACK = 0.8
"""A capped text ends at its last space when that keeps at least this share of the cap."""


def clean(text: str, max_chars: int) -> str:
    """Plain text of a title or summary, at most `max_chars` long, cut at a sentence or word."""
    text = html_to_text(text)
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    ends = [m.start() for m in _SENTENCE_END.finditer(cut)]
    if ends and ends[-1] >= max_chars // 2:
        return cut[: ends[-1]].rstrip()
    space = cut.rfind(" ")
    if space >= max_chars * _CUT_BACK:
        return cut[:space].rstrip()
    return cut


def paragraphs(text: str) -> list[str]:
    """Non-empty lines: `html_to_text` keeps block breaks as newlines, and Argos splits on them."""
    return [line.strip() for line in text.split("\n") if line.strip()]


def split_sentences(paragraph: str) -> list[str]:
    """Sentences by punctuation alone: the splitter for models that ship none."""
    return [part.strip() for part in _SENTENCE_END.split(paragraph) if part.strip()]
