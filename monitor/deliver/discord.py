"""Discord webhook: one embed per alert, `allowed_mentions` empty.

`allowed_mentions: {"parse": []}` means no mention in the message can ping, whatever the text;
feed text is also markdown-escaped (masked links, `@everyone`, `<@id>`, emphasis, headings all
show as typed). Limits (Discord's embed reference): content 2,000; embed title 256, description
4,096, field name 256, field value 1,024, footer 2,048; 10 embeds and 6,000 characters of embed
text per message. Lengths are counted in UTF-16 units, which is never less than Discord's count.

Success ("Execute Webhook"): `204 No Content`, or `200` with the message object (`?wait=true`).
A JSON error object (`code`, `message`) under a 2xx is permanent unless it asks to wait.
"""

from __future__ import annotations

from typing import Any

from monitor.config import SinkConfig
from monitor.deliver.message import Digest, Message
from monitor.deliver.render import (
    SEVERITY_COLOR,
    Outgoing,
    digest_headline,
    json_body,
    parts,
    published_at,
    sink_url,
)
from monitor.deliver.retry import Outcome, accepted, json_object, json_retry_after, refused
from monitor.deliver.safety import fit, utf16_len

__all__ = ["classify_discord", "render_discord"]


def _md(text: str, limit: int) -> str:
    return fit(text, limit, escape="markdown", measure=utf16_len)


def _color(message: Message | Digest) -> int:
    return SEVERITY_COLOR.get(message.severity, SEVERITY_COLOR["medium"])


def _message(message: Message) -> dict[str, Any]:
    p = parts(message)
    description = [f"**EN:** {_md(p.title_en, 600)}"] if p.title_en else []
    if p.summary:
        description.append(_md(p.summary, 1400))
    embed: dict[str, Any] = {
        "title": _md(p.title, 256),
        "color": _color(message),
        "fields": [
            {"name": "Matched", "value": _md(p.forms, 1024) or "\u2014"},
            {"name": "Source", "value": _md(p.source, 1024)},
        ],
        "footer": {"text": "news-monitor"},
    }
    if description:
        embed["description"] = "\n".join(description)
    if p.link:
        embed["url"] = p.link
    published = published_at(message)
    if published:
        embed["timestamp"] = published.isoformat()
    return {
        "content": f"**{_md(p.headline, 200)}**",
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }


def _digest(digest: Digest) -> dict[str, Any]:
    embeds: list[dict[str, Any]] = []
    for message in digest.messages:
        p = parts(message)
        # What matched and where first, so a cut takes from the translation, not from them.
        lines = [f"Matched: {fit(p.forms, 100)}", p.source]
        lines += [f"EN: {p.title_en}"] if p.title_en else []
        embed: dict[str, Any] = {
            "title": _md(p.title, 180),
            "description": _md("\n".join(lines), 400),
            "color": _color(digest),
        }
        if p.link:
            embed["url"] = p.link
        embeds.append(embed)
    return {
        "content": f"**{_md(digest_headline(digest), 300)}**",
        "embeds": embeds,
        "allowed_mentions": {"parse": []},
    }


def render_discord(sink: SinkConfig, message: Message | Digest) -> Outgoing:
    payload = _digest(message) if isinstance(message, Digest) else _message(message)
    return Outgoing(
        "POST", sink_url(sink), json_body(payload), {"Content-Type": "application/json"}
    )


def classify_discord(status: int, body: str) -> Outcome:
    """A 2xx from a Discord webhook: 204, or a message object with an `id`."""
    if status == 204:
        return accepted(status, body)
    data = json_object(body)
    if data is not None and isinstance(data.get("id"), str):
        return accepted(status, body)
    if data is not None and "message" in data:
        wait = json_retry_after(body)
        reason = f"Discord answered {data.get('code', '?')}: {data['message']}"
        return refused(status, body, reason, retry=wait is not None, retry_after=wait)
    return refused(
        status, body, "Discord answered neither 204 nor a message: is the url a webhook?"
    )
