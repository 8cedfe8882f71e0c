"""Local receivers for every sink format: real HTTP/1.1 servers on 127.0.0.1.

Each `Receiver` checks what arrives against the shape the service documents (Slack Block
Kit, Discord's embed limits, Teams' Adaptive Card attachment, Mattermost's incoming webhook,
Telegram's HTML parse mode, ntfy's JSON publish) and refuses a bad payload the way the service
would (400 with the reason); what it refused is in `problems`. It records every request in
`arrivals`, and the accepted ones in `delivered`. `script()` makes it fail (500, 429 with
`Retry-After`, 404, a hang) before it answers as the service does.

The validators are plain functions too (`validate("slack", payload)`), so rendering tests run
them without a server. Webhook receivers keep every `webhook-id`, so a test (or the lead's
end-to-end SIGKILL test) sees at once if an alert arrived twice or under two ids.

    receiver = Receiver("slack"); url = receiver.url("/hook"); ...; receiver.close()
"""

from __future__ import annotations

import html.parser
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from conftest import LoopbackServer, TrackedHandler

from monitor.config import FeedConfig, SinkConfig
from monitor.deliver.message import IncidentSummary, MatchedForm, Message
from monitor.deliver.retry import Outcome
from monitor.deliver.sinks import RemoteRef, SinkType
from monitor.models import Analysis, Item, Match
from monitor.store import AlertPlan, NewItem, PollWrite, Store

__all__ = [
    "Answer",
    "Arrival",
    "Receiver",
    "add_alerts",
    "incident_report",
    "markdown_links",
    "receiver_fixture",
    "send",
    "telegram_reply_to",
    "telegram_visible",
    "unescaped",
    "validate",
]

_ORDINARY_HEADERS = {
    "host",
    "accept",
    "accept-encoding",
    "connection",
    "user-agent",
    "content-type",
    "content-length",
}
_HANG_LIMIT = 30.0
"""A hanging answer gives up after this long even if the test never releases it."""


@dataclass(frozen=True)
class Answer:
    """One scripted answer. `hang` waits (up to `close()`) before answering at all; `trickle`
    sends the status and headers at once, then the body one byte per `trickle` seconds (until
    `close()`); `echo` puts the request's path, headers and body into the answer's body, as
    careless services do in their error pages."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: float = 0.0
    trickle: float = 0.0
    echo: bool = False


@dataclass(frozen=True)
class Arrival:
    method: str
    path: str
    headers: dict[str, str]
    """Names in lower case."""
    body: bytes
    at: float
    """time.monotonic() when the body had arrived."""
    status: int
    """What the receiver answered; 0 for a scripted hang."""

    @property
    def json(self) -> Any:
        return json.loads(self.body)


# Validators ---------------------------------------------------------------------------------

_MENTION = re.compile(r"@(?=[\w])")
"""An `@` directly before a word character: a mention in Slack (with link_names), Discord,
Mattermost, Telegram or Matrix. Ours always have a word joiner in between."""
_SLACK_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")
_DISCORD_ANY_MENTION = re.compile(r"@(everyone|here)\b|<@[!&]?\d+>")


def unescaped(text: str, chars: str) -> list[str]:
    """The characters of `chars` in `text` that no backslash escapes (markdown)."""
    found: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char in chars:
            found.append(char)
        index += 1
    return found


def markdown_links(text: str) -> list[str]:
    """The targets of markdown links `[label](target)` whose brackets are not escaped."""
    targets: list[str] = []
    index = 0
    depth_start: list[int] = []
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "[":
            depth_start.append(index)
        elif char == "]" and depth_start:
            depth_start.pop()
            if text.startswith("(", index + 1):
                end = text.find(")", index + 2)
                if end != -1:
                    targets.append(text[index + 2 : end])
        index += 1
    return targets


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _no_mentions(payload: Any, problems: list[str]) -> None:
    for text in _strings(payload):
        if _MENTION.search(text):
            problems.append(f"a mention could ping: {text[:80]!r}")
            return


def _length(problems: list[str], what: str, text: Any, limit: int, minimum: int = 0) -> None:
    if not isinstance(text, str):
        problems.append(f"{what} is not a string")
    elif not minimum <= len(text) <= limit:
        problems.append(f"{what} has {len(text)} characters (allowed {minimum}..{limit})")


def _http_url(problems: list[str], what: str, url: Any, limit: int = 3000) -> None:
    if not isinstance(url, str) or not re.match(r"^https?://[^\s]+$", url) or len(url) > limit:
        problems.append(f"{what} is not an http(s) URL: {str(url)[:80]!r}")


def _slack_text(problems: list[str], what: str, obj: Any, limit: int, plain: bool) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        problems.append(f"{what} is not a text object")
        return
    if plain and obj["type"] != "plain_text":
        problems.append(f"{what} must be plain_text")
    if obj["type"] == "mrkdwn":
        problems.append(f"{what}: feed text must not be in mrkdwn")
    _length(problems, f"{what}.text", obj.get("text"), limit, 1)
    text = str(obj.get("text"))
    if "<" in text or ">" in text or _SLACK_ENTITY.search(text):
        problems.append(f"{what}.text has an unescaped control character: {text[:80]!r}")


def validate_slack(payload: Any) -> list[str]:
    """Slack incoming webhook, Block Kit (docs.slack.dev: reference/block-kit)."""
    problems: list[str] = []
    if not isinstance(payload, dict):
        return ["the payload is not a JSON object"]
    _length(problems, "text", payload.get("text"), 40000, 1)
    text = str(payload.get("text"))
    if "<" in text or ">" in text or _SLACK_ENTITY.search(text):
        problems.append(f"text has an unescaped control character: {text[:80]!r}")
    blocks = payload.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > 50:
        problems.append("blocks must be a list of at most 50")
        return problems
    for n, block in enumerate(blocks):
        kind = block.get("type")
        where = f"blocks[{n}]"
        if kind == "header":
            _slack_text(problems, f"{where}.text", block.get("text"), 150, plain=True)
        elif kind == "section":
            if "text" in block:
                _slack_text(problems, f"{where}.text", block["text"], 3000, plain=False)
            for f_n, item in enumerate(block.get("fields", [])):
                _slack_text(problems, f"{where}.fields[{f_n}]", item, 2000, plain=False)
            if "accessory" in block:
                _slack_button(problems, f"{where}.accessory", block["accessory"])
        elif kind == "context":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= 10:
                problems.append(f"{where}.elements must hold 1..10")
            for e_n, element in enumerate(elements):
                _slack_text(problems, f"{where}.elements[{e_n}]", element, 3000, plain=False)
        elif kind == "actions":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= 25:
                problems.append(f"{where}.elements must hold 1..25")
            for e_n, element in enumerate(elements):
                _slack_button(problems, f"{where}.elements[{e_n}]", element)
        elif kind != "divider":
            problems.append(f"{where} has an unknown type {kind!r}")
    _no_mentions(payload, problems)
    return problems


_SLACK_TS = re.compile(r"\d{1,12}\.\d{1,9}")


def validate_slack_api(
    payload: Any, headers: Mapping[str, str] | None = None, path: str = "/chat.postMessage"
) -> list[str]:
    """Slack Web API `chat.postMessage` (docs.slack.dev/reference/methods/chat.postMessage):
    a bot token as `Authorization: Bearer`, a `channel`, and `thread_ts` for a thread reply;
    the blocks as for a webhook."""
    problems: list[str] = []
    if not path.endswith("/chat.postMessage"):
        problems.append(f"not a chat.postMessage path: {path!r}")
    if headers is not None and not re.fullmatch(r"Bearer \S+", headers.get("authorization", "")):
        problems.append("not_authed: no bearer token")
    if not isinstance(payload, dict):
        return [*problems, "the payload is not a JSON object"]
    if not isinstance(payload.get("channel"), str) or not payload["channel"]:
        problems.append("channel_not_found: channel is required")
    if "thread_ts" in payload and not (
        isinstance(payload["thread_ts"], str) and _SLACK_TS.fullmatch(payload["thread_ts"])
    ):
        problems.append(f"invalid_thread_ts: {payload['thread_ts']!r}")
    return problems + validate_slack({k: v for k, v in payload.items() if k not in _SLACK_API})


_SLACK_API = {"channel", "thread_ts"}


def _slack_button(problems: list[str], what: str, button: Any) -> None:
    if not isinstance(button, dict) or button.get("type") != "button":
        problems.append(f"{what} is not a button")
        return
    _slack_text(problems, f"{what}.text", button.get("text"), 75, plain=True)
    _http_url(problems, f"{what}.url", button.get("url"), 3000)


_DISCORD_EDIT = re.compile(r"/.*/messages/(\d{1,20})(\?.*)?")


def validate_discord(payload: Any, method: str = "POST", path: str = "/") -> list[str]:
    """Discord webhook (discord.com/developers/docs/resources/message: embed limits). A POST
    executes the webhook; a PATCH to `{webhook}/messages/{id}` edits a message it posted
    (docs: "Edit Webhook Message"), with the same limits."""
    problems: list[str] = []
    if method == "PATCH" and not _DISCORD_EDIT.fullmatch(path):
        problems.append(f"405: a PATCH goes to {{webhook}}/messages/{{id}}, not {path!r}")
    elif method not in ("POST", "PATCH"):
        problems.append(f"405: method {method} not allowed")
    if not isinstance(payload, dict):
        return ["the payload is not a JSON object"]
    content = payload.get("content", "")
    embeds = payload.get("embeds", [])
    if not content and not embeds:
        problems.append("content or embeds is required")
    _length(problems, "content", content, 2000)
    if payload.get("allowed_mentions") != {"parse": []}:
        problems.append("allowed_mentions must be {'parse': []}")
    if not isinstance(embeds, list) or len(embeds) > 10:
        return [*problems, "embeds must be a list of at most 10"]
    total = 0
    markdown: list[str] = [content]
    for n, embed in enumerate(embeds):
        where = f"embeds[{n}]"
        for key, limit in (("title", 256), ("description", 4096)):
            if key in embed:
                _length(problems, f"{where}.{key}", embed[key], limit)
                total += len(embed[key])
                markdown.append(embed[key])
        if "url" in embed:
            _http_url(problems, f"{where}.url", embed["url"], 2048)
        if not isinstance(embed.get("color", 0), int) or not 0 <= embed.get("color", 0) <= 0xFFFFFF:
            problems.append(f"{where}.color is not a colour")
        fields = embed.get("fields", [])
        if len(fields) > 25:
            problems.append(f"{where}.fields: at most 25")
        for f_n, item in enumerate(fields):
            _length(problems, f"{where}.fields[{f_n}].name", item.get("name"), 256, 1)
            _length(problems, f"{where}.fields[{f_n}].value", item.get("value"), 1024, 1)
            total += len(str(item.get("name"))) + len(str(item.get("value")))
            markdown += [str(item.get("name")), str(item.get("value"))]
        if "footer" in embed:
            _length(problems, f"{where}.footer.text", embed["footer"].get("text"), 2048, 1)
            total += len(str(embed["footer"].get("text")))
    if total > 6000:
        problems.append(f"the embeds hold {total} characters (at most 6,000)")
    for text in markdown:
        if unescaped(text, "[]()<>"):
            problems.append(f"unescaped link or mention markup: {text[:80]!r}")
        if _DISCORD_ANY_MENTION.search(text):
            problems.append(f"a mention: {text[:80]!r}")
    _no_mentions(payload, problems)
    return problems


_TEAMS_ELEMENTS = {"TextBlock", "RichTextBlock", "Container", "ColumnSet", "FactSet", "Image"}


def _teams_element(problems: list[str], where: str, element: Any) -> None:
    kind = element.get("type") if isinstance(element, dict) else None
    if kind not in _TEAMS_ELEMENTS:
        problems.append(f"{where} has an unknown type {kind!r}")
        return
    if kind == "TextBlock":
        # TextBlock parses markdown: only our own fixed labels may use it.
        problems.append(f"{where}: feed text must not be in a TextBlock (markdown)")
    if kind == "RichTextBlock":
        for i_n, inline in enumerate(element.get("inlines", [])):
            if not isinstance(inline, dict) or inline.get("type") != "TextRun":
                problems.append(f"{where}.inlines[{i_n}] is not a TextRun")
            elif not isinstance(inline.get("text"), str):
                problems.append(f"{where}.inlines[{i_n}].text is not a string")
    if kind == "Container":
        for c_n, item in enumerate(element.get("items", [])):
            _teams_element(problems, f"{where}.items[{c_n}]", item)
        if "selectAction" in element:
            _teams_action(problems, f"{where}.selectAction", element["selectAction"])


def _teams_action(problems: list[str], where: str, action: Any) -> None:
    if not isinstance(action, dict) or action.get("type") != "Action.OpenUrl":
        problems.append(f"{where} is not an Action.OpenUrl")
        return
    _http_url(problems, f"{where}.url", action.get("url"))


def validate_teams(payload: Any, size: int = 0) -> list[str]:
    """Teams Workflows webhook: a message with an Adaptive Card attachment (≤ 28 KB)."""
    problems: list[str] = []
    if size > 28 * 1024:
        problems.append(f"the message is {size} bytes (Teams takes about 28 KB)")
    if not isinstance(payload, dict) or payload.get("type") != "message":
        return [*problems, "type must be 'message'"]
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return [*problems, "attachments must be a non-empty list"]
    for a_n, attachment in enumerate(attachments):
        if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
            problems.append(f"attachments[{a_n}].contentType is not an Adaptive Card")
        card = attachment.get("content", {})
        if card.get("type") != "AdaptiveCard" or not isinstance(card.get("version"), str):
            problems.append(f"attachments[{a_n}].content is not an AdaptiveCard with a version")
        for b_n, element in enumerate(card.get("body", [])):
            _teams_element(problems, f"body[{b_n}]", element)
        for c_n, action in enumerate(card.get("actions", [])):
            _teams_action(problems, f"actions[{c_n}]", action)
        if "entities" in card.get("msteams", {}):
            problems.append("msteams.entities would mention someone")
    for text in _strings(payload):
        if "<at>" in text:
            problems.append(f"an <at> mention: {text[:80]!r}")
    _no_mentions(payload, problems)
    return problems


def validate_mattermost(payload: Any) -> list[str]:
    """Mattermost incoming webhook: `text` (markdown) up to 16,383 characters."""
    problems: list[str] = []
    if not isinstance(payload, dict):
        return ["the payload is not a JSON object"]
    if "text" not in payload and "attachments" not in payload:
        return ["text or attachments is required"]
    _length(problems, "text", payload.get("text", ""), 16383)
    text = str(payload.get("text", ""))
    for target in markdown_links(text):
        _http_url(problems, "a link target", target)
    if unescaped(text, "<>"):
        problems.append("unescaped < or > (an autolink or HTML)")
    _no_mentions(payload, problems)
    return problems


_TELEGRAM_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "blockquote",
}
_TELEGRAM_ENTITY = re.compile(r"&(?!lt;|gt;|amp;|quot;|#\d+;|#x[0-9a-fA-F]+;)")


class _TelegramHTML(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.visible: list[str] = []
        self.problems: list[str] = []
        self.open: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TELEGRAM_TAGS:
            self.problems.append(f"Unsupported start tag {tag!r}")
            return
        if tag == "a":
            href = dict(attrs).get("href")
            if not href:
                self.problems.append("a link without href")
            else:
                self.links.append(href)
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"Unmatched end tag {tag!r}")
        else:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        self.visible.append(data)


def telegram_visible(text: str) -> tuple[str, list[str], list[str]]:
    """Telegram's view of HTML text: (visible text, link targets, problems)."""
    parser = _TelegramHTML()
    problems = []
    if _TELEGRAM_ENTITY.search(text):
        problems.append("can't parse entities: an unsupported entity or a bare &")
    parser.feed(text)
    parser.close()
    if parser.open:
        problems.append(f"unclosed tags {parser.open}")
    return "".join(parser.visible), parser.links, problems + parser.problems


def validate_telegram(payload: Any, path: str = "/botX/sendMessage") -> list[str]:
    """Telegram Bot API sendMessage with parse_mode HTML (core.telegram.org/bots/api)."""
    problems: list[str] = []
    if not re.fullmatch(r"/bot[^/]+/sendMessage", path):
        problems.append(f"not a sendMessage path: {path!r}")
    if not isinstance(payload, dict):
        return [*problems, "the payload is not a JSON object"]
    if not isinstance(payload.get("chat_id"), int | str):
        problems.append("chat_id is required")
    text = payload.get("text")
    if not isinstance(text, str) or not text:
        return [*problems, "text is required"]
    if payload.get("parse_mode") != "HTML":
        problems.append("parse_mode must be HTML")
    visible, links, html_problems = telegram_visible(text)
    problems += [f"Bad Request: can't parse entities: {p}" for p in html_problems]
    units = len(visible.encode("utf-16-le")) // 2
    if not 1 <= units <= 4096:
        problems.append(f"Bad Request: message is too long ({units} UTF-16 units)")
    for link in links:
        _http_url(problems, "a link", link)
    problems += _telegram_reply(payload)
    _no_mentions(payload, problems)
    return problems


def _telegram_reply(payload: dict[str, Any]) -> list[str]:
    """`reply_parameters` (Bot API 7.0) or the older `reply_to_message_id`."""
    if "reply_parameters" in payload:
        reply = payload["reply_parameters"]
        if not isinstance(reply, dict) or set(reply) - {
            "message_id",
            "chat_id",
            "allow_sending_without_reply",
            "quote",
        }:
            return ["Bad Request: reply_parameters is not a ReplyParameters object"]
        target = reply.get("message_id")
        if not isinstance(target, int) or isinstance(target, bool) or target <= 0:
            return ["Bad Request: reply_parameters.message_id must be a positive integer"]
        if not isinstance(reply.get("allow_sending_without_reply", False), bool):
            return ["Bad Request: allow_sending_without_reply must be a boolean"]
    elif "reply_to_message_id" in payload:
        target = payload["reply_to_message_id"]
        if not isinstance(target, int) or isinstance(target, bool) or target <= 0:
            return ["Bad Request: reply_to_message_id must be a positive integer"]
    return []


def telegram_reply_to(payload: Any) -> int | None:
    """The message a sendMessage replies to, if any."""
    if not isinstance(payload, dict):
        return None
    reply = payload.get("reply_parameters")
    target = reply.get("message_id") if isinstance(reply, dict) else None
    target = payload.get("reply_to_message_id") if target is None else target
    return target if isinstance(target, int) else None


def validate_ntfy(payload: Any, path: str = "/") -> list[str]:
    """ntfy JSON publish (docs.ntfy.sh/publish/#publish-as-json): POST to the root."""
    problems: list[str] = []
    if path.rstrip("/") != "":
        problems.append(f"JSON publishing goes to the root, not {path!r}")
    if not isinstance(payload, dict):
        return [*problems, "the payload is not a JSON object"]
    if not re.fullmatch(r"[-_A-Za-z0-9]{1,64}", str(payload.get("topic"))):
        problems.append("topic is required ([-_A-Za-z0-9]{1,64})")
    message = payload.get("message", "")
    if not isinstance(message, str) or len(message.encode()) > 4096:
        problems.append("message must be text of at most 4,096 bytes")
    if "title" in payload and not isinstance(payload["title"], str):
        problems.append("title must be text")
    if payload.get("priority", 3) not in (1, 2, 3, 4, 5):
        problems.append("priority must be 1..5")
    tags = payload.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        problems.append("tags must be a list of strings")
    if "click" in payload:
        _http_url(problems, "click", payload["click"])
    if payload.get("markdown", False) is not False:
        problems.append("feed text must not be rendered as markdown")
    _no_mentions(payload, problems)
    return problems


def validate(
    kind: str,
    payload: Any,
    *,
    path: str = "",
    size: int = 0,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
) -> list[str]:
    """The problems the service `kind` would find in `payload` (none: it would accept it).

    A Slack request to `…/chat.postMessage` is checked as the Web API, with `headers`."""
    if kind == "slack":
        if path.split("?")[0].endswith("/chat.postMessage"):
            return validate_slack_api(payload, headers, path.split("?")[0])
        return validate_slack(payload)
    if kind == "discord":
        return validate_discord(payload, method, path or "/")
    if kind == "teams":
        return validate_teams(payload, size)
    if kind == "mattermost":
        return validate_mattermost(payload)
    if kind == "telegram":
        return validate_telegram(payload, path or "/botX/sendMessage")
    if kind == "ntfy":
        return validate_ntfy(payload, path or "/")
    if kind == "webhook":
        return [] if isinstance(payload, dict) else ["the payload is not a JSON object"]
    raise ValueError(f"no validator for {kind!r}")


def _accepted(kind: str, payload: Any, method: str, path: str, new_id: str) -> Answer:
    """What the service answers to a payload it accepts; `new_id` is the id it gives the
    message when it reports one (Discord with `?wait=true`, Telegram, Slack's Web API)."""
    if kind == "discord":
        if method == "PATCH" or "wait=true" in path.partition("?")[2]:
            message = {"id": new_id, "channel_id": "100200300", "type": 0, **payload}
            return Answer(200, json.dumps(message).encode(), _JSON)
        return Answer(204)
    if kind == "teams":
        return Answer(202)
    if kind == "slack" and path.partition("?")[0].endswith("/chat.postMessage"):
        answer = {"ok": True, "channel": payload["channel"], "ts": new_id, "message": payload}
        return Answer(200, json.dumps(answer).encode(), _JSON)
    if kind in ("slack", "mattermost"):
        return Answer(200, b"ok", {"Content-Type": "text/plain"})
    if kind == "telegram":
        result = {
            "message_id": int(new_id),
            "chat": {"id": payload.get("chat_id")},
            "date": int(time.time()),
        }
        return Answer(200, json.dumps({"ok": True, "result": result}).encode(), _JSON)
    if kind == "ntfy":
        answer = {"id": "x1", "time": int(time.time()), "event": "message", "topic": "t"}
        return Answer(200, json.dumps(answer).encode(), _JSON)
    return Answer(200, b"", {})


def _refused(kind: str, problems: list[str]) -> Answer:
    if kind == "telegram":
        body = {"ok": False, "error_code": 400, "description": problems[0]}
        return Answer(400, json.dumps(body).encode(), _JSON)
    return Answer(400, "\n".join(problems).encode(), {"Content-Type": "text/plain"})


_JSON = {"Content-Type": "application/json"}


# The server -------------------------------------------------------------------------------


class _Handler(TrackedHandler):
    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        owner = self.server.owner
        answer = owner._answer(self.command, self.path, headers, body)
        if answer.hang:
            owner.released.wait(min(answer.hang, _HANG_LIMIT))
        if answer.echo:
            own = {k: v for k, v in headers.items() if k not in _ORDINARY_HEADERS}
            echoed = f"you asked for {self.path} with {own}: ".encode() + body
            answer = Answer(answer.status, answer.body + echoed, answer.headers)
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if answer.trickle:
                self.wfile.flush()
                for index in range(len(answer.body)):
                    if owner.released.wait(answer.trickle):
                        break
                    self.wfile.write(answer.body[index : index + 1])
                    self.wfile.flush()
            else:
                self.wfile.write(answer.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True


class Receiver:
    """A service stand-in for one sink format; see the module docstring."""

    def __init__(
        self,
        kind: str = "webhook",
        port: int = 0,
        check: Callable[[Arrival], str | None] | None = None,
    ) -> None:
        """`check` may refuse an arrival with a reason (a signature check, for instance)."""
        self.kind = kind
        self.released = threading.Event()
        self.arrivals: list[Arrival] = []
        self.problems: list[str] = []
        self._script: list[Answer] = []
        self._check = check
        self.messages: dict[str, Any] = {}
        """The messages it holds by the id it gave them, as last posted or edited."""
        self._count = 0
        self._changed = threading.Condition()
        self._server = LoopbackServer(self, port, _Handler)
        self.port = self._server.port
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/hook") -> str:
        return self.base + path

    def script(self, *answers: Answer) -> None:
        """Answer the next requests with `answers` in turn, then as the service would."""
        with self._changed:
            self._script = list(answers)

    @property
    def delivered(self) -> list[Arrival]:
        with self._changed:
            return [a for a in self.arrivals if 200 <= a.status < 300]

    @property
    def webhook_ids(self) -> list[str]:
        """`webhook-id` of each accepted delivery, in arrival order."""
        return [a.headers.get("webhook-id", "") for a in self.delivered]

    def duplicates(self) -> dict[str, int]:
        """`webhook-id`s accepted more than once."""
        return {key: n for key, n in Counter(self.webhook_ids).items() if n > 1}

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Arrival]:
        """Block until `count` deliveries were accepted; fails the test after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                delivered = [a for a in self.arrivals if 200 <= a.status < 300]
                if len(delivered) >= count:
                    return delivered
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(
                        f"{self.kind} receiver: {len(delivered)} of {count} deliveries arrived "
                        f"in {timeout:g}s; problems: {self.problems}"
                    )
                self._changed.wait(remaining)

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        payload: Any = None
        problems: list[str] = []
        try:
            payload = json.loads(body) if body else None
        except ValueError as exc:
            problems = [f"the body is not JSON: {exc}"]
        if not problems:
            problems = validate(
                self.kind, payload, path=path, size=len(body), method=method, headers=headers
            )
        arrival = Arrival(method, path, headers, body, time.monotonic(), 0)
        if not problems and self._check is not None:
            reason = self._check(arrival)
            problems = [reason] if reason else []
        with self._changed:
            if not problems:
                problems = self._unknown_target(method, path, payload)
            if problems:
                self.problems += problems
                answer = _refused(self.kind, problems)
            elif self._script:
                answer = self._script.pop(0)
            else:
                answer = _accepted(
                    self.kind, payload, method, path, self._keep(method, path, payload)
                )
            # A hanging answer counts as no answer: the client gives up before it comes.
            status = 0 if answer.hang else answer.status
            self.arrivals.append(Arrival(method, path, headers, body, arrival.at, status))
            self._changed.notify_all()
        return answer

    def _keep(self, method: str, path: str, payload: Any) -> str:
        """Hold an accepted message under a new id (or, for an edit, its own)."""
        edit = _DISCORD_EDIT.fullmatch(path) if method == "PATCH" else None
        if edit:
            key = edit.group(1)
        else:
            self._count += 1
            key = {
                "discord": str(1_100_000_000_000_000_000 + self._count),
                "slack": f"{1_700_000_000 + self._count}.{self._count:06d}",
            }.get(self.kind, str(self._count))
        self.messages[key] = payload
        return key

    def _unknown_target(self, method: str, path: str, payload: Any) -> list[str]:
        """A reply, thread reply or edit must name a message this receiver gave out."""
        if self.kind == "telegram":
            target = telegram_reply_to(payload)
            reply = payload.get("reply_parameters") or {}
            if (
                target is not None
                and str(target) not in self.messages
                and not reply.get("allow_sending_without_reply")
            ):
                return ["Bad Request: message to be replied not found"]
        if self.kind == "discord" and method == "PATCH":
            edit = _DISCORD_EDIT.fullmatch(path)
            if edit and edit.group(1) not in self.messages:
                return ["404: Unknown Message (10008)"]
        thread = payload.get("thread_ts") if isinstance(payload, dict) else None
        if self.kind == "slack" and thread is not None and thread not in self.messages:
            return ["thread_not_found: thread_ts names no message"]
        return []

    def close(self) -> None:
        """Release hanging answers, stop serving, end every connection (the port is free)."""
        self.released.set()
        self._server.stop()


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[Callable[..., Receiver]]:
    """`receiver(kind, ...)`: a `Receiver`, closed after the test.

    Import `receiver_fixture` into a test module to use it (`# noqa: F401`).
    """
    made: list[Receiver] = []

    def make(kind: str = "webhook", port: int = 0, **kwargs: Any) -> Receiver:
        server = Receiver(kind, port, **kwargs)
        made.append(server)
        return server

    try:
        yield make
    finally:
        for server in made:
            server.close()


# Outbox data ------------------------------------------------------------------------------


def add_alerts(
    store: Store,
    sinks: Sequence[str],
    count: int = 1,
    *,
    watchlist: str = "khanaqin",
    severity: str = "high",
    title: str = "Checkpoint attacked near Khanaqin",
    summary: str = "Security forces said the attack took place at dawn.",
    url: str | None = "https://news.example.org/khanaqin",
    language: str = "en",
    title_en: str | None = None,
    feed: str = "Desk",
    now: datetime | None = None,
) -> list[int]:
    """`count` alerts, each with a pending delivery per sink, written as a poll writes them
    (`record_poll`, one transaction); returns the alert ids. Titles get ` #n` when count > 1.
    """
    state = store.sync_feeds([FeedConfig(name=feed, url="https://feeds.example.org/desk.xml")])
    now = now or datetime.now(UTC)
    items = []
    for n in range(count):
        guid = uuid.uuid4().hex
        text = f"{title} #{n + 1}" if count > 1 else title
        form = "Khanaqin" if "Khanaqin" in text else text[:20]
        match = Match(watchlist, "Khanaqin", form, "title", 0, len(form))
        link = f"{url}/{guid}" if url and count > 1 else url
        items.append(
            NewItem(
                Item(guid, link, text, summary, now - timedelta(minutes=5), f"story:{guid}"),
                Analysis(language, 0.99, (match,)),
                (AlertPlan(watchlist, severity, (match,), tuple(sinks)),),
            )
        )
    write = PollWrite(
        state[feed].id, 200, None, None, None, "Desk", now + timedelta(minutes=10), tuple(items)
    )
    store.record_poll(write, now)
    rows = store.db.execute(
        "SELECT a.id, i.id FROM alerts a JOIN items i ON i.id = a.item_id ORDER BY a.id DESC "
        "LIMIT ?",
        [count],
    ).fetchall()
    if title_en is not None:
        for _, item_id in rows:
            store.db.execute("UPDATE items SET title_en = ? WHERE id = ?", [title_en, item_id])
        store.db.conn.commit()
    return sorted(row[0] for row in rows)


# Incidents --------------------------------------------------------------------------------


def incident_report(
    n: int = 1,
    *,
    kind: str = "created",
    title: str = "هێرشی خۆکوژ لە خانەقین",
    title_en: str | None = None,
    language: str = "ckb",
    feed: str = "Rudaw (Sorani)",
    url: str | None = "https://news.example.org/khanaqin/1",
    breaking: bool = False,
    reports: int = 1,
    new_reports: tuple[Message, ...] = (),
    translation_note: str | None = "no model for ckb",
    places: tuple[str, ...] = ("Khanaqin (Diyala)",),
    terms: tuple[str, ...] = ("suicide bomber",),
    incident_title: str = "Suicide bomber killed at a Khanaqin checkpoint",
) -> Message:
    """Report `n` of the incident `inc-khanaqin`, as the dispatcher builds it for one sink."""
    incident = IncidentSummary(
        id="inc-khanaqin",
        title=incident_title,
        severity="critical" if breaking else "high",
        breaking=breaking,
        watchlists=("suicide-bomber", "khanaqin"),
        places=places,
        terms=terms,
        languages=("en", "ar", "ckb", "kmr"),
        outlets=("Rudaw (Sorani)", "Shafaq News", "Kurdistan 24", "ANF (Kurmanji)"),
        reports=reports,
        first_seen="2026-11-24T11:30:00+00:00",
        last_seen="2026-11-24T12:00:00+00:00",
    )
    return Message(
        key=f"msg_report_{n}_{kind}",
        delivery_id=n,
        alert_id=n,
        watchlist="suicide-bomber",
        severity=incident.severity,
        created_at="2026-11-24T12:00:00+00:00",
        story_key=f"url:{url}",
        item_id=n,
        guid=f"guid-{n}",
        title=title,
        summary="",
        url=url,
        published_at="2026-11-24T11:30:00+00:00",
        language=language,
        language_confidence=0.97,
        title_en=title_en,
        summary_en=None,
        feed=feed,
        feed_url="https://feeds.example.org/rss",
        matches=(MatchedForm("Khanaqin", "خانەقین", "title", 16, 23),),
        incident=incident,
        kind="updated" if kind == "updated" else "created",
        new_reports=new_reports,
        translation_note=translation_note,
    )


def send(
    sink_type: SinkType,
    sink: SinkConfig,
    message: Message,
    root: RemoteRef | None = None,
    now: datetime | None = None,
) -> tuple[Outcome, RemoteRef | None]:
    """Render, send over HTTP and judge, as the dispatcher does; and the message's id."""
    outgoing = sink_type.render(sink, message, root, now or datetime.now(UTC))
    response = httpx.request(
        outgoing.method,
        outgoing.url,
        content=outgoing.body,
        headers=dict(outgoing.headers),
        timeout=10,
    )
    outcome = sink_type.classify(response.status_code, response.headers, response.text)
    return outcome, sink_type.remote_ref(response.text) if outcome.kind == "sent" else None
