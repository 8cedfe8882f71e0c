"""Telegram Bot API `sendMessage` with `parse_mode: HTML`.

Feed text is HTML-escaped with the only named entities Telegram knows (`&lt; &gt; &amp;
&quot;`) and `@` defused, so `@username` pings nobody and no tag or link can be injected.
Telegram allows 4,096 characters *after entity parsing*: what counts is the visible text, in
UTF-16 units. Each piece is cut before it is escaped, so a cut never falls inside `&amp;`.

Success (Bot API, "Making requests"): a JSON object with `"ok": true`. `"ok": false` carries
`error_code` (an HTTP status) and, for flood control, `parameters.retry_after`; it is judged
by that code even under a 200.

An incident's later report replies to its first message (`reply_parameters.message_id`, from
`result.message_id` in the answer to the first).
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

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
)
from monitor.deliver.retry import (
    Outcome,
    SuccessRule,
    accepted,
    json_object,
    json_retry_after,
    refused,
    retryable,
)
from monitor.deliver.safety import escape_html, fit, utf16_len
from monitor.errors import DeliveryError

__all__ = ["API", "TelegramSink", "classify_telegram", "visible_length"]

API = "https://api.telegram.org"
LIMIT = 4096


def visible_length(text: str) -> int:
    """What Telegram counts in escaped text: entities are one character, astral ones two."""
    return utf16_len(html.unescape(text))


def _h(text: str, limit: int) -> str:
    return fit(text, limit, escape="html", measure=visible_length)


def _message(message: Message) -> str:
    # Visible budget: 150 + 800 + 800 + 300 + 1,400 + 300 + 200 + labels < 4,096.
    p = parts(message)
    lines = [f"<b>{_h(p.headline, 150)}</b>", f"<b>{_h(p.title, 800)}</b>"]
    if p.about:
        lines.append(f"<b>{_h(p.about, 300)}</b>")
    if p.title_en:
        lines.append(f"<i>EN:</i> {_h(p.title_en, 800)}")
    elif p.note:
        lines.append(f"<i>{_h(p.note, 100)}</i>")
    if p.summary:
        lines.append(_h(p.summary, 1400))
    lines.append(f"<i>Matched:</i> {_h(p.forms, 300)}")
    lines.append(_h(p.source, 200))
    if p.link:
        lines.append(f'<a href="{escape_html(p.link)}">Open article</a>')
    return "\n".join(lines)


def _listing(listing: Listing) -> str:
    # Visible budget: 150 + 150 + 10 × (2 + 90 + 85 + 61 + 60 + 61 + 1) + 60 + 2 < 4,096.
    lines = [f"<b>{_h(listing.headline, 150)}</b>"]
    if listing.context:
        lines.append(f"<i>{_h(listing.context, 150)}</i>")
    for message in listing.messages:
        p = parts(message)
        title = _h(p.title, 90)
        entry = f'• <a href="{escape_html(p.link)}">{title}</a>' if p.link else f"• {title}"
        if p.about:
            entry += f"\n{_h(p.about, 60)}"
        if p.title_en:
            entry += f"\nEN: {_h(p.title_en, 80)}"
        elif p.note:
            entry += f"\n{_h(p.note, 80)}"
        entry += f"\nMatched: {_h(p.forms, 50)}"
        lines.append(f"{entry}\n<i>{_h(p.source, 60)}</i>")
    if listing.more:
        lines.append(_h(listing.more_line, 60))
    return "\n".join(lines)


def classify_telegram(status: int, body: str) -> Outcome:
    """A 2xx from the Bot API: `{"ok": true, ...}` is success."""
    data = json_object(body)
    if data is None:
        return refused(status, body, "Telegram's answer is not JSON: is the url the Bot API?")
    if data.get("ok") is True:
        return accepted(status, body)
    code = data.get("error_code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else 400
    description = str(data.get("description") or "no description")
    return refused(
        status,
        body,
        f"Telegram answered ok: false ({code}: {description})",
        retry=retryable(code),
        retry_after=json_retry_after(body),
    )


class TelegramSink(HttpSink):
    """A later report is a reply to the incident's first message (`reply_parameters`), whose
    id is `result.message_id` in `sendMessage`'s answer. Should that message be gone, the
    reply goes out anyway (`allow_sending_without_reply`): a report is never lost to it."""

    name = "telegram"

    def capability(self, sink: SinkConfig) -> Capability:
        return "thread"

    def render(
        self, sink: SinkConfig, message: Message | Digest, root: RemoteRef | None, now: datetime
    ) -> Outgoing:
        if not sink.token or not sink.chat_id:
            raise DeliveryError(f"sink {sink.name!r} needs token and chat_id", permanent=True)
        shaped = layout(message, "thread", DIGEST_MAX)
        text = _listing(shaped) if isinstance(shaped, Listing) else _message(shaped)
        payload: dict[str, Any] = {
            "chat_id": sink.chat_id,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        if root is not None and isinstance(message, Message) and message.kind == "updated":
            if not root.message_id.isdigit():
                reason = f"{root.message_id[:40]!r} is not a Telegram message id"
                raise DeliveryError(reason, permanent=True)
            payload["reply_parameters"] = {
                "message_id": int(root.message_id),
                "allow_sending_without_reply": True,
            }
        base = (sink.url or API).rstrip("/")
        return Outgoing(
            "POST",
            f"{base}/bot{sink.token}/sendMessage",
            json_body(payload),
            {"Content-Type": "application/json"},
        )

    @property
    def success(self) -> SuccessRule:
        return classify_telegram

    def remote_ref(self, body: str) -> RemoteRef | None:
        """`{"ok": true, "result": {"message_id": 42, "chat": {"id": -100…}, …}}`."""
        data = json_object(body)
        result = data.get("result") if data is not None else None
        value = result.get("message_id") if isinstance(result, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return None
        return RemoteRef(str(value))
