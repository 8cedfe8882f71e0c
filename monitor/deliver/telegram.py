"""Telegram Bot API `sendMessage` with `parse_mode: HTML`.

Feed text is HTML-escaped with the only named entities Telegram knows (`&lt; &gt; &amp;
&quot;`) and `@` defused, so `@username` pings nobody and no tag or link can be injected.
Telegram allows 4,096 characters *after entity parsing*: what counts is the visible text, in
UTF-16 units. Each piece is cut before it is escaped, so a cut never falls inside `&amp;`.

Success (Bot API, "Making requests"): a JSON object with `"ok": true`. `"ok": false` carries
`error_code` (an HTTP status) and, for flood control, `parameters.retry_after`; it is judged
by that code even under a 200.
"""

from __future__ import annotations

import html

from monitor.config import SinkConfig
from monitor.deliver.message import Digest, Message
from monitor.deliver.render import Outgoing, digest_headline, json_body, parts
from monitor.deliver.retry import (
    Outcome,
    accepted,
    json_object,
    json_retry_after,
    refused,
    retryable,
)
from monitor.deliver.safety import escape_html, fit, utf16_len
from monitor.errors import DeliveryError

__all__ = ["API", "classify_telegram", "render_telegram", "visible_length"]

API = "https://api.telegram.org"
LIMIT = 4096


def visible_length(text: str) -> int:
    """What Telegram counts in escaped text: entities are one character, astral ones two."""
    return utf16_len(html.unescape(text))


def _h(text: str, limit: int) -> str:
    return fit(text, limit, escape="html", measure=visible_length)


def _message(message: Message) -> str:
    # Visible budget: 150 + 800 + 800 + 1,700 + 300 + 200 + labels < 4,096.
    p = parts(message)
    lines = [f"<b>{_h(p.headline, 150)}</b>", f"<b>{_h(p.title, 800)}</b>"]
    if p.title_en:
        lines.append(f"<i>EN:</i> {_h(p.title_en, 800)}")
    if p.summary:
        lines.append(_h(p.summary, 1700))
    lines.append(f"<i>Matched:</i> {_h(p.forms, 300)}")
    lines.append(_h(p.source, 200))
    if p.link:
        lines.append(f'<a href="{escape_html(p.link)}">Open article</a>')
    return "\n".join(lines)


def _digest(digest: Digest) -> str:
    # Visible budget: 200 + 10 × (120 + 2 + 104 + 69 + 71 + 4 newlines) < 4,096.
    lines = [f"<b>{_h(digest_headline(digest), 200)}</b>"]
    for message in digest.messages:
        p = parts(message)
        title = _h(p.title, 120)
        entry = f'• <a href="{escape_html(p.link)}">{title}</a>' if p.link else f"• {title}"
        if p.title_en:
            entry += f"\nEN: {_h(p.title_en, 100)}"
        entry += f"\nMatched: {_h(p.forms, 60)}"
        lines.append(f"{entry}\n<i>{_h(p.source, 70)}</i>")
    return "\n".join(lines)


def render_telegram(sink: SinkConfig, message: Message | Digest) -> Outgoing:
    if not sink.token or not sink.chat_id:
        raise DeliveryError(f"sink {sink.name!r} needs token and chat_id", permanent=True)
    text = _digest(message) if isinstance(message, Digest) else _message(message)
    payload = {
        "chat_id": sink.chat_id,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }
    base = (sink.url or API).rstrip("/")
    return Outgoing(
        "POST",
        f"{base}/bot{sink.token}/sendMessage",
        json_body(payload),
        {"Content-Type": "application/json"},
    )


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
