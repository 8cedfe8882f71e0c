"""The analysis stage: language, then watchlist matches, for one item at a time.

This is the seam later stages extend (Kurdish-aware identification, translation and a second
match on the English text); callers only see `Analysis`.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.config import WatchlistConfig
from monitor.match import Matcher
from monitor.models import Analysis
from monitor.text.langid import LanguageIdentifier

__all__ = ["Analyzer"]

_LANGID_CHARS = 600
"""Enough text to identify a language; more only costs time."""


class Analyzer:
    def __init__(
        self,
        watchlists: Sequence[WatchlistConfig],
        identifier: LanguageIdentifier | None = None,
    ) -> None:
        self._matcher = Matcher(watchlists)
        self._identifier = identifier or LanguageIdentifier()

    @property
    def identifier(self) -> LanguageIdentifier:
        return self._identifier

    def analyze(self, title: str, summary: str, language_hint: str | None = None) -> Analysis:
        text = f"{title}\n{summary}"[:_LANGID_CHARS]
        guess = self._identifier.identify(text, language_hint)
        matches = self._matcher.match({"title": title, "summary": summary})
        return Analysis(guess.language, guess.confidence, matches)
