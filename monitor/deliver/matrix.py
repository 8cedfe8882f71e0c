"""Matrix client-server API: `PUT /rooms/{room}/send/m.room.message/{txnId}`.

The txnId is the delivery's stable key, so a retry of a send that did arrive returns the same
event instead of posting twice. `"m.mentions": {}` declares that the message mentions nobody:
servers then skip the legacy body-matching push rules, so `@room` or a user's name in a title
highlights no one (older clients also see `@` defused). `formatted_body` is escaped HTML;
`body` is the plain-text twin. Events are capped at 65,536 bytes; these stay under 20,000.

Success (client-server API, `PUT .../send`): `200` with the new event's `event_id`. An
`errcode` answer is permanent except `M_LIMIT_EXCEEDED`, which waits `retry_after_ms`.
"""

from __future__ import annotations

from urllib.parse import quote

from monitor.config import SinkConfig
from monitor.deliver.message import Digest, Message
from monitor.deliver.render import Outgoing, digest_headline, json_body, parts, sink_url
from monitor.deliver.retry import Outcome, accepted, json_object, json_retry_after, refused
from monitor.deliver.safety import fit
from monitor.errors import DeliveryError

__all__ = ["classify_matrix", "render_matrix", "room_path"]


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
    if p.title_en:
        add(p.title_en, 1000, label="EN: ")
    if p.summary:
        add(p.summary, 2000)
    add(p.forms, 500, label="Matched: ")
    add(p.source, 500, "<em>", "</em>")
    if p.link:
        plain.append(p.link)
        rich.append(f'<a href="{fit(p.link, 4000, escape="html")}">Open article</a>')
    return "\n".join(plain), "<br>".join(rich)


def _digest(digest: Digest) -> tuple[str, str]:
    head_plain, head_html = _both(digest_headline(digest), 300)
    plain = [head_plain]
    rich = [f"<strong>{head_html}</strong><ul>"]
    for message in digest.messages:
        p = parts(message)
        title_plain, title_html = _both(p.title, 300)
        source_plain, source_html = _both(p.source, 200)
        forms_plain, forms_html = _both(p.forms, 300)
        line = f"• {title_plain} · {source_plain} · matched {forms_plain}"
        item = f"{title_html} · <em>{source_html}</em> · matched {forms_html}"
        if p.title_en:
            en_plain, en_html = _both(p.title_en, 300)
            line += f"\n  EN: {en_plain}"
            item += f"<br>EN: {en_html}"
        if p.link:
            line += f"\n  {p.link}"
            item = (
                f'<a href="{fit(p.link, 4000, escape="html")}">{title_html}</a>'
                + item[len(title_html) :]
            )
        plain.append(line)
        rich.append(f"<li>{item}</li>")
    rich.append("</ul>")
    return "\n".join(plain), "".join(rich)


def render_matrix(sink: SinkConfig, message: Message | Digest) -> Outgoing:
    if not sink.token or not sink.room:
        raise DeliveryError(f"sink {sink.name!r} needs room and token", permanent=True)
    body, formatted = _digest(message) if isinstance(message, Digest) else _message(message)
    content = {
        "msgtype": "m.text",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": formatted,
        "m.mentions": {},
    }
    url = (
        f"{sink_url(sink)}/_matrix/client/v3/rooms/{room_path(sink.room)}"
        f"/send/m.room.message/{quote(message.key, safe='')}"
    )
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {sink.token}"}
    return Outgoing("PUT", url, json_body(content), headers)


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
