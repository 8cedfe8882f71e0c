"""The analysis stage: language, then watchlist matches, for one item at a time.

`analyze()` identifies the language and matches the original text (title, summary and the
article body, `content`); `match_english()` is the second pass, over the English translation
of the title and summary, for the translation stage to call.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.config import WatchlistConfig
from monitor.match import Matcher
from monitor.models import Analysis, Match
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

    def analyze(
        self, title: str, summary: str, language_hint: str | None = None, *, content: str = ""
    ) -> Analysis:
        # The language of an item shows in its first lines; the body only costs time there.
        text = f"{title}\n{summary}"[:_LANGID_CHARS]
        guess = self._identifier.identify(text, language_hint)
        return Analysis(guess.language, guess.confidence, self.match(title, summary, content))

    def match(self, title: str, summary: str, content: str = "") -> tuple[Match, ...]:
        """Watchlist matches in an item's own title, summary and content (no language
        identification). A watchlist's `none` term in any of them excludes the item."""
        return self._matcher.match({"title": title, "summary": summary, "content": content})

    def match_english(self, title_en: str, summary_en: str) -> tuple[Match, ...]:
        """Watchlist matches in an item's English translation (the pass after translation).

        Fields are named `title_en` and `summary_en`. A watchlist's `none` terms are looked
        for in these two fields only; the caller merges these matches with `analyze()`'s.
        """
        return self._matcher.match({"title_en": title_en, "summary_en": summary_en})
