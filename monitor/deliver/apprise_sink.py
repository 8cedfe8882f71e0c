"""Any other service by Apprise URL (`mailto://`, `gotify://`, `json://`, …).

Apprise's own escaping cannot be relied on: its Discord plugin turns `@everyone` in a body
into a real ping. So the text handed over is plain and already safe: controls and bidi
overrides gone, every `@` followed by a word joiner, which none of Apprise's mention patterns
match. Apprise is synchronous; a send runs in a worker thread. Apprise reports only success or
failure, never a status, so every failure is retried; what it logged during the call (its
result keeps those lines per call, so concurrent sends never mix them) becomes the error.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING

from monitor.config import SinkConfig
from monitor.deliver.message import Digest, Message
from monitor.deliver.render import (
    DIGEST_MAX,
    HttpSink,
    Listing,
    Outgoing,
    RemoteRef,
    layout,
    parts,
)
from monitor.deliver.safety import fit
from monitor.errors import DeliveryError
from monitor.redact import Redactor

# Apprise (about 0.06 s to import) loads with the first send through it, not with every sink
# module (issue 14).
if TYPE_CHECKING:
    import apprise

__all__ = ["AppriseSink", "apprise_texts", "send_apprise"]

_DETAIL = 500
"""Characters of Apprise's log kept in a delivery's error."""
_TYPE = {
    "info": "INFO",
    "low": "INFO",
    "medium": "WARNING",
    "high": "FAILURE",
    "critical": "FAILURE",
}
"""`apprise.NotifyType` member names by severity."""


def _entry(message: Message) -> str:
    p = parts(message)
    entry = f"• {fit(p.title, 300)}"
    english = f"EN: {p.title_en}" if p.title_en else p.note
    for line in (p.about, english, f"Matched: {p.forms}", p.source):
        if line:
            entry += f"\n  {fit(line, 200)}"
    return entry + (f"\n  {p.link}" if p.link else "")


def apprise_texts(message: Message | Digest) -> tuple[str, str]:
    """Title and body, plain text, mentions defused; the body under 4,000 characters."""
    shaped = layout(message, "coalesce", DIGEST_MAX)
    if isinstance(shaped, Listing):
        lines = [fit(shaped.context, 300)] if shaped.context else []
        lines += [_entry(item) for item in shaped.messages]
        if shaped.more:
            lines.append(fit(shaped.more_line, 100))
        return fit(shaped.headline, 250), "\n".join(lines)
    p = parts(shaped)
    lines = [fit(p.title, 800)]
    if p.about:
        lines.append(fit(p.about, 300))
    if p.title_en:
        lines.append(f"EN: {fit(p.title_en, 800)}")
    elif p.note:
        lines.append(fit(p.note, 100))
    if p.summary:
        lines.append(fit(p.summary, 1000))
    lines.append(f"Matched: {fit(p.forms, 300)}")
    lines.append(fit(p.source, 300))
    if p.link:
        lines.append(p.link)
    return fit(p.headline, 250), "\n".join(lines)


def _notify(url: str, title: str, body: str, kind: apprise.NotifyType) -> str | None:
    """None once sent; else what Apprise logged at WARNING or above during the call."""
    import apprise

    # Memory-only storage: the daemon's state directory is the only place it writes to.
    client = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
    if not client.add(url):
        raise DeliveryError("Apprise does not understand this URL", permanent=True)
    result = client.notify(body=body, title=title, body_format="text", notify_type=kind)
    if result:
        return None
    return " ".join(entry.message for entry in result.logs()) or "no details logged"


async def send_apprise(sink: SinkConfig, message: Message | Digest) -> None:
    """Send through Apprise, bounded by the sink's timeout.

    Raises:
        DeliveryError: permanent for a URL Apprise cannot parse, retryable otherwise.
    """
    if not sink.url:
        raise DeliveryError(f"sink {sink.name!r} has no url", permanent=True)
    title, body = apprise_texts(message)
    import apprise

    kind = apprise.NotifyType[_TYPE.get(message.severity, "WARNING")]
    timeout = sink.timeout.total_seconds()
    try:
        async with asyncio.timeout(timeout):
            failure = await asyncio.to_thread(_notify, sink.url, title, body, kind)
    except TimeoutError:
        raise DeliveryError(f"Apprise timed out after {timeout:g}s") from None
    if failure is not None:
        detail = fit(Redactor.for_sinks([sink])(failure), _DETAIL)
        raise DeliveryError(f"Apprise reported a failure: {detail}")


class AppriseSink(HttpSink):
    """Apprise does its own HTTP (`send`, not `render` and `classify`) and reports no id:
    later reports are coalesced."""

    name = "apprise"
    direct = True

    def render(
        self, sink: SinkConfig, message: Message | Digest, root: RemoteRef | None, now: datetime
    ) -> Outgoing:
        raise DeliveryError(f"sink {sink.name!r} sends through Apprise", permanent=True)

    async def send(
        self, sink: SinkConfig, message: Message | Digest, root: RemoteRef | None
    ) -> None:
        await send_apprise(sink, message)
