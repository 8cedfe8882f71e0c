"""Matrix client-server API: `PUT /rooms/{room}/send/m.room.message/{txnId}`.

The txnId is the delivery's stable key, so a retry of a send that did arrive returns the same
event instead of posting twice. `"m.mentions": {}` declares that the message mentions nobody:
servers then skip the legacy body-matching push rules, so `@room` or a user's name in a title
highlights no one (older clients also see `@` defused). `formatted_body` is escaped HTML;
`body` is the plain-text twin. Events are capped at 65,536 bytes; these stay under 20,000.

Success (client-server API, `PUT .../send`): `200` with the new event's `event_id`. An
`errcode` answer is permanent except `M_LIMIT_EXCEEDED`, which waits `retry_after_ms`.

An incident's later report goes into the thread of its first message (`m.relates_to` with
`rel_type: m.thread` and the `m.in_reply_to` fallback for clients without threads).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from monitor.config import SinkConfig
from monitor.deliver.message import Digest, Message
from monitor.deliver.render import (
    DIGEST_MAX,
    Capability,
    HttpSink,
    Listing,
    Outgoing,
    RemoteRef,
    json_body,
    layout,
    parts,
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
from monitor.deliver.safety import fit
from monitor.errors import DeliveryError

__all__ = ["MatrixSink", "classify_matrix", "room_path"]


_EVENT_ID = re.compile(r"\$[\x21-\x7e]{1,254}")
"""An event id as the spec bounds it: `$`, printable ASCII, at most 255 bytes."""


def room_path(room: str) -> str:
    return quote(room, safe="")


def _both(text: str, limit: int) -> tuple[str, str]:
    return fit(text, limit), fit(text, limit, escape="html")


def _message(message: Message) -> tuple[str, str]:
    p = parts(message)
    plain: list[str] = []
    rich: list[str] = []

    def add(text: str, limit: int, before: str = "", after: str = "", label: str = "") -> None:
        flat, html = _both(text, limit)
        plain.append(f"{label}{flat}")
        rich.append(f"{before}{label}{html}{after}")

    add(p.headline, 200, "<strong>", "</strong>")
    add(p.title, 1000, "<strong>", "</strong>")
    if p.about:
        add(p.about, 500, "<strong>", "</strong>")
    if p.title_en:
        add(p.title_en, 1000, label="EN: ")
    elif p.note:
        add(p.note, 200, "<em>", "</em>")
    if p.summary:
        add(p.summary, 2000)
    add(p.forms, 500, label="Matched: ")
    add(p.source, 500, "<em>", "</em>")
    if p.link:
        plain.append(p.link)
        rich.append(f'<a href="{fit(p.link, 4000, escape="html")}">Open article</a>')
    return "\n".join(plain), "<br>".join(rich)


def _listing(listing: Listing) -> tuple[str, str]:
    head_plain, head_html = _both(listing.headline, 300)
    plain = [head_plain]
    rich = [f"<strong>{head_html}</strong>"]
    if listing.context:
        context_plain, context_html = _both(listing.context, 500)
        plain.append(context_plain)
        rich.append(f"<br><em>{context_html}</em>")
    rich.append("<ul>")
    for message in listing.messages:
        p = parts(message)
        title_plain, title_html = _both(p.title, 300)
        source_plain, source_html = _both(p.source, 200)
        forms_plain, forms_html = _both(p.forms, 300)
        line = f"• {title_plain} · {source_plain} · matched {forms_plain}"
        item = f"{title_html} · <em>{source_html}</em> · matched {forms_html}"
        english = f"EN: {p.title_en}" if p.title_en else p.note
        for extra in (p.about, english):
            if extra:
                extra_plain, extra_html = _both(extra, 300)
                line += f"\n  {extra_plain}"
                item += f"<br>{extra_html}"
        if p.link:
            line += f"\n  {p.link}"
            item = (
                f'<a href="{fit(p.link, 4000, escape="html")}">{title_html}</a>'
                + item[len(title_html) :]
            )
        plain.append(line)
        rich.append(f"<li>{item}</li>")
    rich.append("</ul>")
    if listing.more:
        more_plain, more_html = _both(listing.more_line, 100)
        plain.append(more_plain)
        rich.append(f"<em>{more_html}</em>")
    return "\n".join(plain), "".join(rich)


def classify_matrix(status: int, body: str) -> Outcome:
    """A 2xx from a homeserver: an `event_id` is success."""
    data = json_object(body)
    if data is not None and isinstance(data.get("event_id"), str):
        return accepted(status, body)
    if data is not None and "errcode" in data:
        limited = data["errcode"] == "M_LIMIT_EXCEEDED"
        reason = f"Matrix answered {data['errcode']}: {data.get('error', '')}"
        return refused(status, body, reason, retry=limited, retry_after=json_retry_after(body))
    return refused(status, body, "Matrix answered without an event_id: is the url a homeserver?")


class MatrixSink(HttpSink):
    """A later report is a reply in the thread of the incident's first message (`m.thread`,
    with the reply fallback `m.in_reply_to` for clients without threads). The first
    message's id is the `event_id` in the answer to it."""

    name = "matrix"

    def capability(self, sink: SinkConfig) -> Capability:
        return "thread"

    def render(
        self, sink: SinkConfig, message: Message | Digest, root: RemoteRef | None, now: datetime
    ) -> Outgoing:
        if not sink.token or not sink.room:
            raise DeliveryError(f"sink {sink.name!r} needs room and token", permanent=True)
        shaped = layout(message, "thread", DIGEST_MAX)
        body, formatted = _listing(shaped) if isinstance(shaped, Listing) else _message(shaped)
        content: dict[str, Any] = {
            "msgtype": "m.text",
            "body": body,
            "format": "org.matrix.custom.html",
            "formatted_body": formatted,
            "m.mentions": {},
        }
        if root is not None and isinstance(message, Message) and message.kind == "updated":
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": root.message_id,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": root.message_id},
            }
        url = (
            f"{sink_url(sink)}/_matrix/client/v3/rooms/{room_path(sink.room)}"
            f"/send/m.room.message/{quote(message.key, safe='')}"
        )
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {sink.token}"}
        return Outgoing("PUT", url, json_body(content), headers)

    @property
    def success(self) -> SuccessRule:
        return classify_matrix

    def remote_ref(self, body: str) -> RemoteRef | None:
        data = json_object(body)
        value = data.get("event_id") if data is not None else None
        if not isinstance(value, str):
            return None
        return RemoteRef(value) if _EVENT_ID.fullmatch(value) else None
