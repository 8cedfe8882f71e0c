"""What every format shares: the request a rendering produces, and the message's parts.

Each sink module holds one `HttpSink` subclass (the protocol is `monitor.deliver.sinks`); its
`render` is pure: `(sink, Message | Digest, root, now) -> Outgoing`. Sending is the
dispatcher's business. Each format module states its service's limits next to the code that
keeps them. An incident's messages say what it is about in English (`about`), the language by
name (`LANGUAGES`), and why there is no translation (`translation_note`), whatever the format.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from monitor import __version__
from monitor.config import SinkConfig
from monitor.deliver.message import Digest, Message
from monitor.deliver.retry import Outcome, SuccessRule, classify
from monitor.deliver.safety import clean, safe_url
from monitor.errors import DeliveryError

__all__ = [
    "DIGEST_MAX",
    "LANGUAGES",
    "SEVERITY_COLOR",
    "USER_AGENT",
    "Capability",
    "HttpSink",
    "Listing",
    "Outgoing",
    "Parts",
    "RemoteRef",
    "about",
    "digest_headline",
    "json_body",
    "language_name",
    "layout",
    "parts",
    "published_at",
    "severity_label",
    "sink_url",
    "translation_note",
]

USER_AGENT = f"news-monitor/{__version__} (+https://github.com/news-monitor/news-monitor)"
SEVERITY_COLOR = {
    "info": 0x95A5A6,
    "low": 0x3498DB,
    "medium": 0xF1C40F,
    "high": 0xE67E22,
    "critical": 0xE74C3C,
}
"""Discord embed colours; Teams uses the nearest of its named colours."""
DIGEST_MAX = 10
"""Alerts listed in one digest message; a larger digest goes out as several messages, so every
alert is listed in full somewhere and none is only counted."""


Capability = Literal["thread", "edit", "coalesce", "each"]
"""How a sink shows an incident's later reports: a reply in the first message's thread, an
edit of the first message, one update message now and then listing the reports added since, or
one event per report (the generic webhook)."""


@dataclass(frozen=True, slots=True)
class RemoteRef:
    """The service's id of an incident's first message, read from the answer to it."""

    message_id: str
    """Slack `ts`, Telegram `message_id`, Discord message id, Matrix event id."""
    thread_id: str | None = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One HTTP request to send."""

    method: str
    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


def json_body(payload: Any) -> bytes:
    """Compact UTF-8 JSON; `clean` already removed what would not encode."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


LANGUAGES = {
    "en": "English",
    "ar": "Arabic",
    "ckb": "Sorani Kurdish",
    "kmr": "Kurmanji Kurdish",
    "kmr-Arab": "Kurdish (Badini)",
    "ku": "Kurdish",
    "fa": "Persian",
    "tr": "Turkish",
    "und": "mixed or unknown language",
}
"""Language names as a reader knows them; an unlisted code is shown as it is."""


def language_name(code: str | None) -> str:
    if not code:
        return "language unknown"
    return LANGUAGES.get(code) or clean(code)


@dataclass(frozen=True, slots=True)
class Parts:
    """A message's texts, cleaned (single lines, no controls or bidi overrides) and unescaped.

    Each format escapes and cuts them for itself.
    """

    headline: str
    """`[HIGH] khanaqin`; an incident's: `BREAKING · [CRITICAL] suicide-bomber, khanaqin`, and
    `… · report 3` for a later report; `TEST · [INFO] test` for `test-sink`."""
    title: str
    title_en: str | None
    about: str
    """What matched, in English: `Khanaqin (Diyala) · suicide bomber`; may be empty."""
    note: str | None
    """`not translated: no model for ckb` for a non-English item with no English title."""
    summary: str
    """The English summary when there is one, else the original."""
    forms: str
    source: str
    """`Feed · Sorani Kurdish · 2026-11-24 12:00 UTC`."""
    link: str | None
    """The item's link, fit to embed (http(s), encoded), or None."""


def published_at(message: Message) -> datetime | None:
    if not message.published_at:
        return None
    try:
        moment = datetime.fromisoformat(message.published_at)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def severity_label(message: Message | Digest) -> str:
    return clean(message.severity).upper()


def _incident_head(message: Message) -> str:
    incident = message.incident
    if incident is None:
        return f"[{severity_label(message)}] {clean(message.watchlist)}"
    watchlists = ", ".join(clean(w) for w in incident.watchlists) or clean(message.watchlist)
    head = f"[{clean(incident.severity).upper()}] {watchlists}"
    return f"BREAKING · {head}" if incident.breaking else head


def about(message: Message) -> str:
    """The English names of what matched: the incident's places and terms, else the
    watchlist terms of the matches."""
    incident = message.incident
    names = (
        (*incident.places, *incident.terms)
        if incident and (incident.places or incident.terms)
        else tuple(dict.fromkeys(match.term for match in message.matches))
    )
    return " · ".join(part for part in (clean(name) for name in names) if part)


def translation_note(message: Message) -> str | None:
    if message.translated_title or message.title_en:
        return None
    if not message.language or message.language == "en" or message.test:
        return None
    reason = clean(message.translation_note)
    return f"not translated: {reason}" if reason else "not translated"


def parts(message: Message) -> Parts:
    prefix = "TEST · " if message.test else ""
    headline = prefix + _incident_head(message)
    if message.kind == "updated" and message.incident is not None:
        headline += f" · report {message.incident.reports}"
    translated = message.translated_title
    source = [clean(message.feed), language_name(message.language)]
    published = published_at(message)
    if published:
        source.append(published.strftime("%Y-%m-%d %H:%M UTC"))
    return Parts(
        headline=headline,
        title=clean(message.title) or "(no title)",
        title_en=clean(translated) if translated else None,
        about=about(message),
        note=translation_note(message),
        summary=clean(message.summary_en or message.summary),
        forms=", ".join(clean(form) for form in message.forms),
        source=" · ".join(part for part in source if part),
        link=safe_url(message.url),
    )


def digest_headline(digest: Digest) -> str:
    count = len(digest.messages)
    noun = "alert" if count == 1 else "alerts"
    part = f", part {digest.part} of {digest.parts}" if digest.parts > 1 else ""
    return (
        f"[{severity_label(digest)}] {clean(digest.watchlist)}: "
        f"{count} more {noun} (flood control digest{part})"
    )


@dataclass(frozen=True, slots=True)
class Listing:
    """Several reports in one message: a flood-control digest, a coalesced update, an edit."""

    headline: str
    severity: str
    messages: tuple[Message, ...]
    """The reports listed, oldest first."""
    context: str = ""
    """The incident in one line: title, what it is about, languages, outlets; may be empty."""
    more: int = 0
    """Earlier reports not listed for lack of room (said in the message)."""

    @property
    def more_line(self) -> str:
        noun = "report" if self.more == 1 else "reports"
        return f"and {self.more} earlier {noun}, not listed here" if self.more else ""


def _context(message: Message) -> str:
    incident = message.incident
    if incident is None:
        return ""
    languages = ", ".join(dict.fromkeys(language_name(code) for code in incident.languages))
    outlets = len(incident.outlets)
    pieces = [
        clean(incident.title),
        about(message),
        languages,
        f"{outlets} outlet{'' if outlets == 1 else 's'}",
        f"first seen {clean(incident.first_seen)[:16].replace('T', ' ')} UTC",
    ]
    return " · ".join(piece for piece in pieces if piece)


def layout(message: Message | Digest, capability: Capability, size: int) -> Message | Listing:
    """One report alone, or a listing: a digest; a coalesced update (the reports added since
    the last one); an edit of the incident's first message (every report). A listing holds at
    most `size` reports, the newest."""
    if isinstance(message, Digest):
        return Listing(digest_headline(message), message.severity, message.messages)
    if message.kind != "updated" or capability not in ("coalesce", "edit"):
        return message
    reports = message.new_reports or (message,)
    shown = reports[-size:]
    head = _incident_head(message)
    count = len(reports)
    if capability == "edit":
        total = max(message.incident.reports if message.incident else 0, count)
        headline = f"{head} · {total} reports" if total > 1 else head
    else:
        noun = "report" if count == 1 else "reports"
        headline = f"{head} · update: {count} new {noun}"
    return Listing(
        headline,
        message.incident.severity if message.incident else message.severity,
        shown,
        _context(message),
        count - len(shown),
    )


def sink_url(sink: SinkConfig) -> str:
    if not sink.url:
        raise DeliveryError(f"sink {sink.name!r} has no url", permanent=True)
    return sink.url.rstrip("/") if sink.type in ("matrix", "telegram") else sink.url


class HttpSink(ABC):
    """What most sink types share: one HTTP request per message, judged by the service's
    success rule; no remote id, so later reports are coalesced. Each sink module subclasses
    it and overrides what its service does differently."""

    name = ""
    """The `type` of the sinks it serves."""
    digest_size: int | None = DIGEST_MAX
    """Alerts listed in one flood-control digest; None: the type takes no digests."""
    direct = False
    """True: the type sends by itself (`send`), not through `render` and `classify`."""

    def capability(self, sink: SinkConfig) -> Capability:
        return "coalesce"

    @abstractmethod
    def render(
        self, sink: SinkConfig, message: Message | Digest, root: RemoteRef | None, now: datetime
    ) -> Outgoing: ...

    @property
    def success(self) -> SuccessRule | None:
        """The service's reading of a 2xx body; None: any 2xx is success."""
        return None

    def classify(
        self, status: int, headers: Mapping[str, str], body: str, *, complete: bool = True
    ) -> Outcome:
        """An answer as sent, retry or dead. `complete`: whether the whole body (or as much of
        it as was read) came in; a 2xx whose body was cut is sent, whatever the rule."""
        return classify(status, headers, body, success=self.success if complete else None)

    def remote_ref(self, body: str) -> RemoteRef | None:
        """The id of the message a successful created answer reports, if the service gives
        one this type uses."""
        return None

    async def send(
        self, sink: SinkConfig, message: Message | Digest, root: RemoteRef | None
    ) -> None:
        raise DeliveryError(f"{self.name} sinks send over HTTP", permanent=True)
