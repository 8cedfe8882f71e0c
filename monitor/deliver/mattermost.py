"""Mattermost incoming webhook: one markdown `text`.

Feed text is markdown-escaped and every `@` carries a word joiner, so `@channel`, `@all`,
`@here` and `@someone` are shown but notify nobody. Mattermost accepts posts up to 16,383
characters; these messages stay under 6,000.

Success (Mattermost's incoming-webhook docs): `200` with the text `ok`. Errors come as a JSON
object with `status_code`, which decides; any other 2xx text is permanent (not a webhook).
"""

from __future__ import annotations

from datetime import datetime

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
from monitor.deliver.retry import Outcome, SuccessRule, accepted, json_object, refused, retryable
from monitor.deliver.safety import fit

__all__ = ["MattermostSink", "classify_mattermost"]


def _md(text: str, limit: int) -> str:
    return fit(text, limit, escape="markdown")


def _message(message: Message) -> str:
    p = parts(message)
    lines = [f"#### {_md(p.headline, 200)}", f"**{_md(p.title, 1000)}**"]
    if p.about:
        lines.append(f"**{_md(p.about, 500)}**")
    if p.title_en:
        lines.append(f"**EN:** {_md(p.title_en, 1000)}")
    elif p.note:
        lines.append(f"*{_md(p.note, 200)}*")
    if p.summary:
        lines.append(_md(p.summary, 2000))
    lines.append(f"**Matched:** {_md(p.forms, 500)}")
    source = _md(p.source, 500)
    lines.append(f"{source} · [Open article]({p.link})" if p.link else source)
    return "\n".join(lines)


def _listing(listing: Listing) -> str:
    lines = [f"#### {_md(listing.headline, 300)}"]
    if listing.context:
        lines.append(f"*{_md(listing.context, 600)}*")
    for message in listing.messages:
        p = parts(message)
        title = _md(p.title, 300)
        entry = f"- [{title}]({p.link})" if p.link else f"- {title}"
        if p.about:
            entry += f" · {_md(p.about, 200)}"
        if p.title_en:
            entry += f" (EN: {_md(p.title_en, 300)})"
        elif p.note:
            entry += f" ({_md(p.note, 100)})"
        lines.append(f"{entry} · matched {_md(p.forms, 200)} · {_md(p.source, 200)}")
    if listing.more:
        lines.append(f"*{_md(listing.more_line, 100)}*")
    return "\n".join(lines)


def classify_mattermost(status: int, body: str) -> Outcome:
    """A 2xx from a Mattermost webhook: `ok` is success."""
    if body.strip() == "ok":
        return accepted(status, body)
    data = json_object(body)
    code = data.get("status_code") if data is not None else None
    if isinstance(code, int) and not isinstance(code, bool):
        reason = f"Mattermost answered {code}: {data.get('message', '') if data else ''}"
        return refused(status, body, reason, retry=retryable(code))
    return refused(status, body, "Mattermost did not answer 'ok': is the url a webhook?")


class MattermostSink(HttpSink):
    """An incoming webhook answers `ok`, never the post's id: later reports are coalesced."""

    name = "mattermost"

    def render(
        self, sink: SinkConfig, message: Message | Digest, root: RemoteRef | None, now: datetime
    ) -> Outgoing:
        shaped = layout(message, "coalesce", DIGEST_MAX)
        text = _listing(shaped) if isinstance(shaped, Listing) else _message(shaped)
        body = json_body({"text": text})
        return Outgoing("POST", sink_url(sink), body, {"Content-Type": "application/json"})

    @property
    def success(self) -> SuccessRule:
        return classify_mattermost
