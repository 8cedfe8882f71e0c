"""What every format shares: the request a rendering produces, and the message's parts.

A renderer is a pure function `(sink, Message | Digest) -> Outgoing` (the webhook's also takes
the time it signs); sending is the dispatcher's business. Each format module states its
service's limits next to the code that keeps them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor import __version__
from monitor.config import SinkConfig
from monitor.deliver.message import Digest, Message
from monitor.deliver.safety import clean, safe_url
from monitor.errors import DeliveryError

__all__ = [
    "DIGEST_MAX",
    "SEVERITY_COLOR",
    "USER_AGENT",
    "Outgoing",
    "Parts",
    "digest_headline",
    "json_body",
    "parts",
    "published_at",
    "severity_label",
    "sink_url",
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


@dataclass(frozen=True, slots=True)
class Parts:
    """A message's texts, cleaned (single lines, no controls or bidi overrides) and unescaped.

    Each format escapes and cuts them for itself.
    """

    headline: str
    """`[HIGH] khanaqin`, or `TEST · [INFO] test` for `test-sink`."""
    title: str
    title_en: str | None
    summary: str
    """The English summary when there is one, else the original."""
    forms: str
    source: str
    """`Feed · ckb · 2026-11-24 12:00 UTC`."""
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


def parts(message: Message) -> Parts:
    prefix = "TEST · " if message.test else ""
    headline = f"{prefix}[{severity_label(message)}] {clean(message.watchlist)}"
    translated = message.translated_title
    source = [clean(message.feed), clean(message.language) or "language unknown"]
    published = published_at(message)
    if published:
        source.append(published.strftime("%Y-%m-%d %H:%M UTC"))
    return Parts(
        headline=headline,
        title=clean(message.title) or "(no title)",
        title_en=clean(translated) if translated else None,
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


def sink_url(sink: SinkConfig) -> str:
    if not sink.url:
        raise DeliveryError(f"sink {sink.name!r} has no url", permanent=True)
    return sink.url.rstrip("/") if sink.type in ("matrix", "telegram") else sink.url
