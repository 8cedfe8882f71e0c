"""Slack: an incoming webhook, or the Web API with a bot token; Block Kit with a `text` fallback.

Feed text only ever lands in `plain_text` objects, which Slack does not format, and has
`& < >` escaped as Slack asks, so `<!channel>`, `<@U123>` and `<https://x|disguised>` are
shown as typed. The link is a button, so no mrkdwn is needed at all. Limits (Block Kit
reference): header text 150, section text 3,000, button text 75 and URL 3,000, 50 blocks.

Success (Slack's incoming-webhook error table): `200 ok`. Errors are short codes
(`invalid_payload`, `no_service`, `channel_is_archived`, ...), sometimes under a 200; a code is
permanent except Slack's own transient ones (`rollup_error`, ...). Any other 2xx text means the
URL does not reach a Slack webhook: permanent, the sink's url needs fixing.

With `token` and `channel`, messages go to the Web API's `chat.postMessage` (`Authorization:
Bearer`), which answers `{"ok": true, "ts": …}`; an incident's later report is a reply in that
message's thread (`thread_ts`). A webhook can do neither, so its updates are coalesced.
"""

from __future__ import annotations

import re
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
    sink_url,
)
from monitor.deliver.retry import Outcome, SuccessRule, accepted, json_object, refused
from monitor.deliver.safety import fit

__all__ = ["API", "SlackSink", "classify_slack"]

_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{1,63}")
_TRANSIENT = frozenset(
    {
        "rollup_error",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "ratelimited",
    }
)
_TS = re.compile(r"\d{1,12}\.\d{1,9}")
API = "https://slack.com/api"
"""The Web API's base; a sink's `url` replaces it (a test server, a proxy)."""


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": fit(text, limit, escape="slack"), "emoji": False}


def _lines(*pieces: tuple[str | None, int]) -> dict[str, Any]:
    """A plain_text object of several lines, each cut to its own budget, so a long title
    never pushes out what follows it."""
    lines = [fit(text, limit, escape="slack") for text, limit in pieces if text]
    return {"type": "plain_text", "text": "\n".join(lines), "emoji": False}


def _button(url: str, label: str) -> dict[str, Any]:
    return {"type": "button", "text": _plain(label, 75), "url": url}


def _payload(text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "text": fit(text, 3000, escape="slack"),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


def _message(message: Message) -> dict[str, Any]:
    p = parts(message)
    english = f"EN: {p.title_en}" if p.title_en else p.note
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(p.headline, 150)},
        {"type": "section", "text": _lines((p.title, 1000), (p.about, 500), (english, 800))},
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
    return _payload(f"{p.headline}: {p.title}", blocks)


def _listing(listing: Listing) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(listing.headline, 150)}]
    if listing.context:
        blocks.append({"type": "context", "elements": [_plain(listing.context, 1000)]})
    for message in listing.messages:
        p = parts(message)
        english = f"EN: {p.title_en}" if p.title_en else p.note
        text = _lines(
            (p.title, 300),
            (p.about, 150),
            (english, 250),
            (f"Matched: {p.forms}", 200),
            (p.source, 200),
        )
        section: dict[str, Any] = {"type": "section", "text": text}
        if p.link:
            section["accessory"] = _button(p.link, "Open")
        blocks.append(section)
    if listing.more:
        blocks.append({"type": "context", "elements": [_plain(listing.more_line, 200)]})
    return _payload(listing.headline, blocks)


def _body(message: Message | Listing) -> dict[str, Any]:
    return _listing(message) if isinstance(message, Listing) else _message(message)


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


class SlackSink(HttpSink):
    """An incoming webhook cannot thread or edit: updates are coalesced. With a bot token and
    a channel, messages go through the Web API's `chat.postMessage`, whose answer carries the
    message's `ts`, and each later report is a reply in its thread (`thread_ts`)."""

    name = "slack"

    def capability(self, sink: SinkConfig) -> Capability:
        return "thread" if sink.token and sink.channel else "coalesce"

    def render(
        self, sink: SinkConfig, message: Message | Digest, root: RemoteRef | None, now: datetime
    ) -> Outgoing:
        capability = self.capability(sink)
        payload = _body(layout(message, capability, DIGEST_MAX))
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if capability == "coalesce":
            return Outgoing("POST", sink_url(sink), json_body(payload), headers)
        payload["channel"] = sink.channel
        if root is not None and isinstance(message, Message) and message.kind == "updated":
            payload["thread_ts"] = root.message_id
        headers["Authorization"] = f"Bearer {sink.token}"
        base = (sink.url or API).rstrip("/")
        return Outgoing("POST", f"{base}/chat.postMessage", json_body(payload), headers)

    @property
    def success(self) -> SuccessRule:
        return classify_slack

    def remote_ref(self, body: str) -> RemoteRef | None:
        """`chat.postMessage` answers `{"ok": true, "channel": "C…", "ts": "1700000000.000100"}`."""
        data = json_object(body)
        ts = data.get("ts") if data is not None else None
        if not isinstance(ts, str) or not _TS.fullmatch(ts):
            return None
        channel = data.get("channel") if data is not None else None
        return RemoteRef(ts, channel if isinstance(channel, str) else None)
