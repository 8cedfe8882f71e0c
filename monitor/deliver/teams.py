"""Microsoft Teams through a Workflows webhook: a message with one Adaptive Card attachment.

Feed text goes into `TextRun`s of `RichTextBlock`s, which Adaptive Cards never parse as
markdown (a `TextBlock` would), so no formatting or link can be injected; the link is an
`Action.OpenUrl`. A Teams mention needs an `msteams.entities` entry, and the card has none.
Teams refuses messages over about 28 KB; the cuts below keep a card far under that.

Success: a Workflows webhook answers `202 Accepted`; an old Office 365 connector answers `200`
with the number of messages posted (`1`). Connectors also answer `200` when they failed, with
`Webhook message delivery failed with error: ... returned HTTP error 429 ...` as the text
(Microsoft: "successful only if it returns a number"); that inner status decides, and without
one the failure is taken as passing, as Microsoft intends it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from monitor.config import SinkConfig
from monitor.deliver.message import Digest, Message
from monitor.deliver.render import (
    DIGEST_MAX,
    HttpSink,
    Listing,
    Outgoing,
    RemoteRef,
    json_body,
    layout,
    parts,
    sink_url,
)
from monitor.deliver.retry import Outcome, SuccessRule, accepted, refused, retryable
from monitor.deliver.safety import fit

__all__ = ["TeamsSink", "classify_teams"]

_INNER_STATUS = re.compile(r"HTTP error (\d{3})")

_COLOR = {"info": "Default", "low": "Accent", "medium": "Warning", "high": "Attention"}


def _run(text: str, limit: int, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": fit(text, limit), **style}


def _block(*inlines: dict[str, Any], **style: Any) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(inlines), **style}


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def _open(url: str, title: str) -> dict[str, Any]:
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def _message(message: Message) -> dict[str, Any]:
    p = parts(message)
    color = _COLOR.get(message.severity, "Attention")
    body = [
        _block(_run(p.headline, 200, weight="Bolder", color=color)),
        _block(_run(p.title, 1000, size="Medium", weight="Bolder")),
    ]
    if p.about:
        body.append(_block(_run(p.about, 500, weight="Bolder")))
    if p.title_en:
        body.append(_block(_run("EN: ", 4, weight="Bolder"), _run(p.title_en, 1000)))
    elif p.note:
        body.append(_block(_run(p.note, 200, italic=True)))
    if p.summary:
        body.append(_block(_run(p.summary, 2000)))
    body.append(_block(_run("Matched: ", 9, weight="Bolder"), _run(p.forms, 500)))
    body.append(_block(_run(p.source, 500, isSubtle=True)))
    return _card(body, [_open(p.link, "Open article")] if p.link else [])


def _listing(listing: Listing) -> dict[str, Any]:
    color = _COLOR.get(listing.severity, "Attention")
    body: list[dict[str, Any]] = [_block(_run(listing.headline, 300, weight="Bolder", color=color))]
    if listing.context:
        body.append(_block(_run(listing.context, 600, isSubtle=True)))
    for message in listing.messages:
        p = parts(message)
        items = [_block(_run(p.title, 400, weight="Bolder"))]
        if p.about:
            items.append(_block(_run(p.about, 300)))
        if p.title_en:
            items.append(_block(_run(f"EN: {p.title_en}", 400)))
        elif p.note:
            items.append(_block(_run(p.note, 200, italic=True)))
        items.append(_block(_run("Matched: ", 9, weight="Bolder"), _run(p.forms, 300)))
        items.append(_block(_run(p.source, 300, isSubtle=True)))
        container: dict[str, Any] = {"type": "Container", "separator": True, "items": items}
        if p.link:
            container["selectAction"] = _open(p.link, "Open article")
        body.append(container)
    if listing.more:
        body.append(_block(_run(listing.more_line, 100, isSubtle=True)))
    return _card(body, [])


def classify_teams(status: int, body: str) -> Outcome:
    """A 2xx from Teams: 202, an empty answer, or a positive count of messages posted."""
    text = body.strip()
    if status == 202 or not text or (text.isdigit() and int(text) > 0):
        return accepted(status, body)
    inner = _INNER_STATUS.search(text)
    code = int(inner.group(1)) if inner else None
    reason = f"Teams answered {text[:200]!r}"
    return refused(status, body, reason, retry=code is None or retryable(code))


class TeamsSink(HttpSink):
    """A Workflows webhook can neither thread nor edit: later reports are coalesced."""

    name = "teams"

    def render(
        self, sink: SinkConfig, message: Message | Digest, root: RemoteRef | None, now: datetime
    ) -> Outgoing:
        shaped = layout(message, "coalesce", DIGEST_MAX)
        payload = _listing(shaped) if isinstance(shaped, Listing) else _message(shaped)
        return Outgoing(
            "POST", sink_url(sink), json_body(payload), {"Content-Type": "application/json"}
        )

    @property
    def success(self) -> SuccessRule:
        return classify_teams
