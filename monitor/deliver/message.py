"""The value every format renders: one alert with its item, feed, matches and translation.

Built from the store's row at send time, so a translation that landed after the alert was
written but before it was sent is in the message.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from monitor.store.outbox import DeliveryRecord
from monitor.store.schema import shown

__all__ = [
    "Digest",
    "IncidentSummary",
    "MatchedForm",
    "Message",
    "delivery_key",
    "digest_key",
    "message_from",
    "sink_test_message",
]


@dataclass(frozen=True, slots=True)
class MatchedForm:
    term: str
    form: str
    """The text as it appears in the item."""
    field: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class IncidentSummary:
    """What every message says about the incident its report belongs to."""

    id: str
    """`inc-…`, stable."""
    title: str
    """An English report's title, else a translation, else the first report's title."""
    severity: str
    """The highest of its watchlists', raised one step when breaking."""
    breaking: bool
    watchlists: tuple[str, ...]
    """The incident's watchlists that route to the sink this message goes to."""
    places: tuple[str, ...]
    """Canonical English names: `("Khanaqin (Diyala)",)`."""
    terms: tuple[str, ...]
    """Canonical English terms: `("suicide bomber",)`."""
    languages: tuple[str, ...]
    """Language codes of its reports: `("en", "ar", "ckb")`."""
    outlets: tuple[str, ...]
    """Feed names."""
    reports: int
    first_seen: str
    """ISO 8601 UTC, the store's format."""
    last_seen: str


@dataclass(frozen=True, slots=True)
class Message:
    key: str
    """Stable idempotency key: the `webhook-id`, Matrix's txnId. Same on every retry and
    after a restart, because it is derived from the delivery row."""
    delivery_id: int | None
    alert_id: int
    watchlist: str
    severity: str
    created_at: str
    story_key: str
    item_id: int
    guid: str
    title: str
    summary: str
    url: str | None
    published_at: str | None
    language: str | None
    language_confidence: float | None
    title_en: str | None
    summary_en: str | None
    feed: str
    feed_url: str
    matches: tuple[MatchedForm, ...]
    test: bool = False
    """A `test-sink` message, clearly marked as such in every format."""
    incident: IncidentSummary | None = None
    """The incident this report belongs to; None for a `test-sink` message or an old alert."""
    kind: Literal["created", "updated"] = "created"
    """`created`: the incident's first message to this sink; `updated`: a later report."""
    new_reports: tuple[Message, ...] = ()
    """An update that lists reports: for a coalesced update the reports added since the last
    one, for an edit every report so far (each a Message of one item, oldest first)."""
    translation_note: str | None = None
    """Why a non-English item has no English title (`no model for ckb`); shown as
    `not translated: <note>`. None with no English title: just `not translated`."""

    @property
    def forms(self) -> tuple[str, ...]:
        """The matched forms, each once, in the order they were found."""
        return tuple(dict.fromkeys(match.form for match in self.matches))

    @property
    def translated_title(self) -> str | None:
        """The English title when there is one that differs from the original."""
        if self.title_en and self.title_en.strip() != self.title.strip():
            return self.title_en
        return None


@dataclass(frozen=True, slots=True)
class Digest:
    """Flood control: several alerts of one watchlist in one message."""

    key: str
    watchlist: str
    severity: str
    messages: tuple[Message, ...]
    part: int = 1
    parts: int = 1
    """A large digest goes out in several messages, each listing every alert it carries."""


def _short_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii")[:26].lower()


def delivery_key(delivery_id: int, alert_id: int, sink: str, alert_created_at: str) -> str:
    """`msg_…`: the delivery's id, alert, sink and the alert's creation time hashed.

    The creation time keeps keys distinct when a database is recreated and ids start over.
    """
    return "msg_" + _short_hash(f"{delivery_id}|{alert_id}|{sink}|{alert_created_at}")


def digest_key(keys: Sequence[str]) -> str:
    """A digest's key: the same set of deliveries gives the same key on a retry."""
    return "dig_" + _short_hash("|".join(sorted(keys)))


def _matches(raw: Sequence[Mapping[str, Any]]) -> tuple[MatchedForm, ...]:
    return tuple(
        MatchedForm(
            str(m.get("term", "")),
            str(m.get("form", "")),
            str(m.get("field", "")),
            int(m.get("start", 0)),
            int(m.get("end", 0)),
        )
        for m in raw
    )


def message_from(record: DeliveryRecord) -> Message:
    return Message(
        key=delivery_key(record.id, record.alert_id, record.sink, record.alert_created_at),
        delivery_id=record.id,
        alert_id=record.alert_id,
        watchlist=record.watchlist,
        severity=record.severity,
        created_at=shown(record.alert_created_at),
        story_key=record.story_key,
        item_id=record.item_id,
        guid=record.guid,
        title=record.title,
        summary=record.summary,
        url=record.url,
        published_at=shown(record.published_at),
        language=record.language,
        language_confidence=record.language_confidence,
        title_en=record.title_en,
        summary_en=record.summary_en,
        feed=record.feed_name,
        feed_url=record.feed_url,
        matches=_matches(record.matches),
    )


def sink_test_message(sink: str, now: datetime, key: str) -> Message:
    """What `test-sink` sends: marked as a test in its title, its severity line and its link."""
    moment = now.isoformat(timespec="seconds")
    return Message(
        key=key,
        delivery_id=None,
        alert_id=0,
        watchlist="test",
        severity="info",
        created_at=moment,
        story_key="test",
        item_id=0,
        guid=key,
        title=f"news-monitor test alert for sink {sink}: please ignore",
        summary="If you can read this, news-monitor can deliver alerts here.",
        url="https://github.com/news-monitor/news-monitor#test-sink",
        published_at=moment,
        language="en",
        language_confidence=1.0,
        title_en=None,
        summary_en=None,
        feed="news-monitor",
        feed_url="https://github.com/news-monitor/news-monitor",
        matches=(MatchedForm("test", "test", "title", 0, 4),),
        test=True,
    )
