"""Discord webhook: one embed per alert, `allowed_mentions` empty; updates edit the message.

`allowed_mentions: {"parse": []}` means no mention in the message can ping, whatever the text;
feed text is also markdown-escaped (masked links, `@everyone`, `<@id>`, emphasis, headings all
show as typed). Limits (Discord's embed reference): content 2,000; embed title 256, description
4,096, field name 256, field value 1,024, footer 2,048; 10 embeds and 6,000 characters of embed
text per message. Lengths are counted in UTF-16 units, which is never less than Discord's count.

Every post asks for `?wait=true`, so the answer is the message object and its `id` (a
snowflake) is kept; an incident's later report edits that message ("Edit Webhook Message",
`PATCH {webhook}/messages/{id}`, `thread_id` kept) to list every report, newest ten as embeds.

Success ("Execute Webhook"): `204 No Content`, or `200` with the message object (`?wait=true`).
A JSON error object (`code`, `message`) under a 2xx is permanent unless it asks to wait.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from monitor.config import SinkConfig
from monitor.deliver.message import Digest, Message
from monitor.deliver.render import (
    SEVERITY_COLOR,
    Capability,
    HttpSink,
    Listing,
    Outgoing,
    RemoteRef,
    json_body,
    layout,
    parts,
    published_at,
    sink_url,
)
from monitor.deliver.retry import (
    Outcome,
    SuccessRule,
    accepted,
    json_object,
    json_retry_after,
    refused,
)
from monitor.deliver.safety import fit, utf16_len
from monitor.errors import DeliveryError

__all__ = ["DiscordSink", "classify_discord"]


_EMBEDS = 10
"""Embeds in one message, Discord's limit: a listing shows the newest ten reports."""
_SNOWFLAKE = re.compile(r"\d{1,20}")


def _md(text: str, limit: int) -> str:
    return fit(text, limit, escape="markdown", measure=utf16_len)


def _color(message: Message) -> int:
    return SEVERITY_COLOR.get(message.severity, SEVERITY_COLOR["medium"])


def _message(message: Message) -> dict[str, Any]:
    p = parts(message)
    description = [f"**{_md(p.about, 400)}**"] if p.about else []
    if p.title_en:
        description.append(f"**EN:** {_md(p.title_en, 600)}")
    elif p.note:
        description.append(f"*{_md(p.note, 200)}*")
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


def _listing(listing: Listing) -> dict[str, Any]:
    # At most 10 embeds and 6,000 characters of embed text: 10 × (180 + 400) + content.
    embeds: list[dict[str, Any]] = []
    for message in listing.messages:
        p = parts(message)
        # What matched and where first, so a cut takes from the translation, not from them.
        lines = [p.about] if p.about else []
        lines += [f"Matched: {fit(p.forms, 100)}", p.source]
        lines += [f"EN: {p.title_en}"] if p.title_en else [p.note] if p.note else []
        embed: dict[str, Any] = {
            "title": _md(p.title, 180),
            "description": _md("\n".join(lines), 400),
            "color": SEVERITY_COLOR.get(listing.severity, SEVERITY_COLOR["medium"]),
        }
        if p.link:
            embed["url"] = p.link
        embeds.append(embed)
    content = [f"**{_md(listing.headline, 300)}**"]
    if listing.context:
        content.append(_md(listing.context, 900))
    if listing.more:
        content.append(_md(listing.more_line, 100))
    return {"content": "\n".join(content), "embeds": embeds, "allowed_mentions": {"parse": []}}


def _body(message: Message | Listing) -> dict[str, Any]:
    return _listing(message) if isinstance(message, Listing) else _message(message)


def _with_path(url: str, path: str) -> str:
    """`path` appended to a webhook URL's path, before its query (`?thread_id=…`)."""
    parsed = urlsplit(url)
    return urlunsplit(parsed._replace(path=parsed.path.rstrip("/") + path))


def _with_wait(url: str) -> str:
    parsed = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parsed.query, keep_blank_values=True) if k != "wait"]
    return urlunsplit(parsed._replace(query=urlencode([*query, ("wait", "true")])))


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


class DiscordSink(HttpSink):
    """A webhook can edit what it posted: each message is posted with `?wait=true`, so the
    answer is the message with its `id`, and a later report edits the incident's first
    message (`PATCH …/messages/{id}`) to list every report. Editing pings no one either."""

    name = "discord"

    def capability(self, sink: SinkConfig) -> Capability:
        return "edit"

    def render(
        self, sink: SinkConfig, message: Message | Digest, root: RemoteRef | None, now: datetime
    ) -> Outgoing:
        payload = json_body(_body(layout(message, "edit", _EMBEDS)))
        headers = {"Content-Type": "application/json"}
        url = sink_url(sink)
        if root is not None and isinstance(message, Message) and message.kind == "updated":
            if not _SNOWFLAKE.fullmatch(root.message_id):
                raise DeliveryError(
                    f"{root.message_id[:40]!r} is not a Discord message id", permanent=True
                )
            return Outgoing(
                "PATCH", _with_path(url, f"/messages/{root.message_id}"), payload, headers
            )
        return Outgoing("POST", _with_wait(url), payload, headers)

    @property
    def success(self) -> SuccessRule:
        return classify_discord

    def remote_ref(self, body: str) -> RemoteRef | None:
        data = json_object(body)
        value = data.get("id") if data is not None else None
        if not isinstance(value, str) or not _SNOWFLAKE.fullmatch(value):
            return None
        channel = data.get("channel_id") if data is not None else None
        return RemoteRef(value, channel if isinstance(channel, str) else None)
