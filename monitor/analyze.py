"""The analysis stage: language, then watchlist matches, for one item at a time.

`analyze()` identifies the language and matches the original text (title, summary and the
article body, `content`); `match_english()` is the second pass, over the English translation
of the title and summary, for the translation stage to call.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitor.config import WatchlistConfig
from monitor.models import Analysis, Match, ParsedFeed
from monitor.parse import parse_feed

# The matcher (gazetteer, variants) and the language identifier load when an analyzer is built:
# a `poll-once` that finds nothing new, or whose parse workers analyze, never builds one.
if TYPE_CHECKING:
    from monitor.match import Matcher
    from monitor.text.langid import LanguageIdentifier

__all__ = [
    "Analyzer",
    "WorkerAnalyzer",
    "analyze_in_worker",
    "parse_and_analyze",
    "worker_analyzer",
]

_LANGID_CHARS = 600
"""Enough text to identify a language; more only costs time."""


class Analyzer:
    def __init__(
        self,
        watchlists: Sequence[WatchlistConfig],
        identifier: LanguageIdentifier | None = None,
    ) -> None:
        from monitor.match import Matcher

        self._matcher: Matcher = Matcher(watchlists)
        # Built with the first `analyze()` (16 MB of language profiles): the daemon's own
        # analyzer only matches (translations, articles) while its parse workers analyze.
        self._identifier = identifier

    @property
    def identifier(self) -> LanguageIdentifier | None:
        """The language identifier once built, for the next analyzer to reuse."""
        return self._identifier

    def analyze(
        self, title: str, summary: str, language_hint: str | None = None, *, content: str = ""
    ) -> Analysis:
        identifier = self._identifier
        if identifier is None:
            from monitor.text.langid import LanguageIdentifier

            identifier = self._identifier = LanguageIdentifier()
        # The language of an item shows in its first lines; the body only costs time there.
        text = f"{title}\n{summary}"[:_LANGID_CHARS]
        guess = identifier.identify(text, language_hint)
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


# In a parse worker process ------------------------------------------------------------------
# The daemon's parse workers analyze too, so both cores share parsing, language identification
# and matching (issue 14). A worker builds its analyzer from the watchlists the first time it
# sees their key, and again when a reload changes them; the daemon sends the watchlists only
# when a worker answers that it lacks them, so a task carries a key, not 10,000 terms.


@dataclass(frozen=True, slots=True)
class WorkerAnalyzer:
    """What a parse worker needs to build the daemon's analyzer: a key and the watchlists."""

    key: str
    """A digest of `payload`: equal watchlists (a reload that changed none) keep the key."""
    payload: bytes
    """The watchlists, pickled once per config rather than once per task."""


_spec: tuple[Sequence[WatchlistConfig], WorkerAnalyzer] | None = None
"""The daemon side: the spec of the watchlists it saw last (a config keeps its tuple)."""
_built: Analyzer | None = None
_built_key: str | None = None
"""The worker side: its analyzer and the key it was built for."""


def worker_analyzer(watchlists: Sequence[WatchlistConfig]) -> WorkerAnalyzer:
    """The spec for `watchlists`, made once per config (the tuple is the config's own)."""
    global _spec
    spec = _spec
    if spec is None or spec[0] is not watchlists:
        payload = pickle.dumps(tuple(watchlists), protocol=pickle.HIGHEST_PROTOCOL)
        spec = _spec = (watchlists, WorkerAnalyzer(hashlib.sha256(payload).hexdigest(), payload))
    return spec[1]


def _analyzer(key: str, payload: bytes | None) -> Analyzer | None:
    global _built, _built_key
    if _built_key == key and _built is not None:
        return _built
    if payload is None:
        return None
    identifier = _built.identifier if _built is not None else None
    _built = Analyzer(pickle.loads(payload), identifier)  # the daemon's own bytes
    _built_key = key
    return _built


def analyze_in_worker(
    key: str,
    payload: bytes | None,
    language_hint: str | None,
    texts: Sequence[tuple[str, str, str]],
) -> tuple[Analysis, ...] | None:
    """`Analyzer.analyze` of each (title, summary, content), in a parse worker.

    None when this worker has no analyzer for `key` and `payload` was not sent: the caller
    sends the task again with it.
    """
    analyzer = _analyzer(key, payload)
    if analyzer is None:
        return None
    return tuple(
        analyzer.analyze(title, summary, language_hint, content=content)
        for title, summary, content in texts
    )


def parse_and_analyze(
    key: str,
    payload: bytes | None,
    language_hint: str | None,
    content: bytes,
    content_type: str | None,
    url: str | None,
) -> tuple[ParsedFeed, tuple[Analysis, ...] | None]:
    """`parse_feed`, then every item analyzed, in one parse worker's task: for a feed's first
    poll, when every item is new. The analyses are None as in `analyze_in_worker`."""
    parsed = parse_feed(content, content_type, url)
    texts = [(item.title, item.summary, item.content) for item in parsed.items]
    return parsed, analyze_in_worker(key, payload, language_hint, texts)
