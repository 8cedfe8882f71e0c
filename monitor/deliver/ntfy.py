"""ntfy: the JSON publish form, `POST` to the server's root with the topic in the body.

Chosen over the header form (`POST /topic` with `Title:`/`Tags:` headers) because headers must
be Latin-1, and titles here are often Sorani, Kurmanji or Arabic; JSON carries them as they
are. `url` is the topic's URL (`https://ntfy.sh/alerts`): its last path segment is the topic.
The message is plain text (`markdown` off), at most 4,096 bytes so ntfy does not turn it into
an attachment. Priority follows severity; the first tag is an emoji ntfy shows.

Success (ntfy's publish docs): `200` with the message as JSON, which has an `id`. An error
answer (`{"code": 42901, "http": 429, "error": ...}`) is judged by its `http` status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor.config import SinkConfig
from monitor.deliver.message import Digest, Message
from monitor.deliver.render import (
    HttpSink,
    Listing,
    Outgoing,
    RemoteRef,
    json_body,
    layout,
    parts,
    sink_url,
)
from monitor.deliver.retry import Outcome, SuccessRule, accepted, json_object, refused, retryable
from monitor.deliver.safety import clean, fit, utf8_len
from monitor.errors import DeliveryError
from monitor.redact import shown_url

__all__ = ["DIGEST_MAX", "NtfySink", "classify_ntfy", "split_topic"]

LIMIT = 4096
DIGEST_MAX = 5
"""A listing entry takes at most 740 bytes (link included), so five fit in 4,096."""
PRIORITY = {"info": 2, "low": 2, "medium": 3, "high": 4, "critical": 5}
TAG = {
    "info": "information_source",
    "low": "small_blue_diamond",
    "medium": "warning",
    "high": "rotating_light",
    "critical": "rotating_light",
}
_MAX_LINK_BYTES = 250


def split_topic(url: str) -> tuple[str, str]:
    """`https://ntfy.example/sub/alerts` → (`https://ntfy.example/sub`, `alerts`)."""
    base, _, topic = url.rstrip("/").rpartition("/")
    if not topic or "://" not in base or base.endswith(":/"):
        raise DeliveryError(f"{shown_url(url)!r} is not an ntfy topic URL", permanent=True)
    return base, topic


def _b(text: str, limit: int) -> str:
    return fit(text, limit, measure=utf8_len)


def _message(message: Message) -> tuple[str, str, str | None]:
    p = parts(message)
    lines = [_b(p.title, 1000)]
    if p.about:
        lines.append(_b(p.about, 300))
    if p.title_en:
        lines.append(f"EN: {_b(p.title_en, 1000)}")
    elif p.note:
        lines.append(_b(p.note, 100))
    if p.summary:
        lines.append(_b(p.summary, 1000))
    lines.append(f"Matched: {_b(p.forms, 300)}")
    lines.append(_b(p.source, 300))
    return _b(p.headline, 250), "\n".join(lines), p.link


def _listing(listing: Listing) -> tuple[str, str, str | None]:
    # Bytes: 201 + 5 × (4 + 180 + 83 + 63 + 72 + 83 + 253 + 1) + 61 < 4,096.
    lines = [_b(listing.context, 200)] if listing.context else []
    for message in listing.messages:
        p = parts(message)
        entry = f"• {_b(p.title, 180)}"
        if p.about:
            entry += f"\n  {_b(p.about, 60)}"
        english = f"EN: {p.title_en}" if p.title_en else p.note
        if english:
            entry += f"\n  {_b(english, 80)}"
        entry += f"\n  Matched: {_b(p.forms, 60)}\n  {_b(p.source, 80)}"
        if p.link and utf8_len(p.link) <= _MAX_LINK_BYTES:
            entry += f"\n  {p.link}"
        lines.append(entry)
    if listing.more:
        lines.append(_b(listing.more_line, 60))
    return _b(listing.headline, 250), "\n".join(lines), None


def classify_ntfy(status: int, body: str) -> Outcome:
    """A 2xx from ntfy: the published message, with its `id`, is success."""
    data = json_object(body)
    if data is not None and isinstance(data.get("id"), str):
        return accepted(status, body)
    code = data.get("http") if data is not None else None
    if isinstance(code, int) and not isinstance(code, bool):
        reason = f"ntfy answered {code}: {data.get('error', '') if data else ''}"
        return refused(status, body, reason, retry=retryable(code))
    return refused(status, body, "ntfy answered without a message id: is the url an ntfy topic?")


class NtfySink(HttpSink):
    """A notification cannot be threaded or edited: later reports are coalesced, at most
    `DIGEST_MAX` to a message (the newest), so the message stays under 4,096 bytes."""

    name = "ntfy"
    digest_size = DIGEST_MAX

    def render(
        self, sink: SinkConfig, message: Message | Digest, root: RemoteRef | None, now: datetime
    ) -> Outgoing:
        base, topic = split_topic(sink_url(sink))
        shaped = layout(message, "coalesce", DIGEST_MAX)
        title, text, click = _listing(shaped) if isinstance(shaped, Listing) else _message(shaped)
        payload: dict[str, Any] = {
            "topic": topic,
            "title": title,
            "message": fit(text, LIMIT, escape="none", measure=utf8_len),
            "priority": PRIORITY.get(message.severity, 3),
            "tags": [TAG.get(message.severity, "warning"), fit(clean(message.watchlist), 64)],
            "markdown": False,
        }
        if click:
            payload["click"] = click
        headers = {"Content-Type": "application/json"}
        if sink.token:
            headers["Authorization"] = f"Bearer {sink.token}"
        return Outgoing("POST", base, json_body(payload), headers)

    @property
    def success(self) -> SuccessRule:
        return classify_ntfy
