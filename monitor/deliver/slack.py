"""Slack incoming webhook: Block Kit with a `text` fallback for notifications.

Feed text only ever lands in `plain_text` objects, which Slack does not format, and has
`& < >` escaped as Slack asks, so `<!channel>`, `<@U123>` and `<https://x|disguised>` are
shown as typed. The link is a button, so no mrkdwn is needed at all. Limits (Block Kit
reference): header text 150, section text 3,000, button text 75 and URL 3,000, 50 blocks.

Success (Slack's incoming-webhook error table): `200 ok`. Errors are short codes
(`invalid_payload`, `no_service`, `channel_is_archived`, ...), sometimes under a 200; a code is
permanent except Slack's own transient ones (`rollup_error`, ...). Any other 2xx text means the
URL does not reach a Slack webhook: permanent, the sink's url needs fixing.
"""

from __future__ import annotations

import re
from typing import Any

from monitor.config import SinkConfig
from monitor.deliver.message import Digest, Message
from monitor.deliver.render import Outgoing, digest_headline, json_body, parts, sink_url
from monitor.deliver.retry import Outcome, accepted, json_object, refused
from monitor.deliver.safety import fit

__all__ = ["classify_slack", "render_slack"]

_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{1,63}")
_TRANSIENT = frozenset(
    {"rollup_error", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": fit(text, limit, escape="slack"), "emoji": False}


def _button(url: str, label: str) -> dict[str, Any]:
    return {"type": "button", "text": _plain(label, 75), "url": url}


def _message(message: Message) -> dict[str, Any]:
    p = parts(message)
    body = p.title if p.title_en is None else f"{p.title}\nEN: {p.title_en}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(p.headline, 150)},
        {"type": "section", "text": _plain(body, 1500)},
    ]
    if p.summary:
        blocks.append({"type": "section", "text": _plain(p.summary, 1200)})
    blocks.append(
        {
            "type": "context",
            "elements": [_plain(f"Matched: {p.forms}", 500), _plain(p.source, 500)],
        }
    )
    if p.link:
        blocks.append({"type": "actions", "elements": [_button(p.link, "Open article")]})
    return {
        "text": fit(f"{p.headline}: {p.title}", 3000, escape="slack"),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


def _digest(digest: Digest) -> dict[str, Any]:
    headline = digest_headline(digest)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(headline, 150)}]
    for message in digest.messages:
        p = parts(message)
        lines = [p.title] + ([f"EN: {p.title_en}"] if p.title_en else [])
        lines += [f"Matched: {fit(p.forms, 200)}", p.source]
        section: dict[str, Any] = {"type": "section", "text": _plain("\n".join(lines), 1000)}
        if p.link:
            section["accessory"] = _button(p.link, "Open")
        blocks.append(section)
    return {
        "text": fit(headline, 3000, escape="slack"),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


def render_slack(sink: SinkConfig, message: Message | Digest) -> Outgoing:
    payload = _digest(message) if isinstance(message, Digest) else _message(message)
    return Outgoing(
        "POST", sink_url(sink), json_body(payload), {"Content-Type": "application/json"}
    )


def classify_slack(status: int, body: str) -> Outcome:
    """A 2xx from Slack: `ok` (or the Web API's `{"ok": true}`) is success."""
    text = body.strip()
    data = json_object(text)
    if text == "ok" or (data is not None and data.get("ok") is True):
        return accepted(status, body)
    code = str(data.get("error", "")) if data is not None else text
    if _ERROR_CODE.fullmatch(code):
        return refused(status, body, f"Slack answered {code!r}", retry=code in _TRANSIENT)
    return refused(status, body, "Slack did not answer 'ok': is the url a Slack webhook?")
