"""The generic webhook: DESIGN §7's JSON payload, signed per the Standard Webhooks spec.

`webhook-id` is the delivery's stable key (the same on every retry and after a restart), so a
receiver that deduplicates on it sees each alert once. `webhook-timestamp` is the attempt's
time; `webhook-signature` holds one `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` per
configured secret, so a receiver keeps verifying while secrets rotate.

Machines consume this sink, so it never gets flood-control digests: every alert is its own
event with its own id. An incident's first report is `incident.created`, each later one
`incident.updated`, each with `data.incident` as it is then and `data.item` as before. The text
is as stored (JSON-escaped, never cut): consumers must treat it as untrusted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from monitor.config import SinkConfig
from monitor.deliver.message import Digest, IncidentSummary, Message
from monitor.deliver.render import Capability, HttpSink, Outgoing, RemoteRef, json_body, sink_url
from monitor.errors import DeliveryError

__all__ = ["WebhookSink", "payload", "render_webhook", "secret_key", "sign"]

_SECRET_PREFIX = "whsec_"
# Headers the signature depends on; a configured header of the same name is ignored.
_OWN = {"content-type", "webhook-id", "webhook-timestamp", "webhook-signature"}


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (the prefix is optional), as the spec's
    reference libraries decode it.

    Raises:
        DeliveryError: permanent; the secret is empty or not base64.
    """
    encoded = secret.removeprefix(_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "==")
    except (binascii.Error, ValueError) as exc:
        raise DeliveryError(
            "a webhook secret is not base64: use whsec_ followed by base64 bytes", permanent=True
        ) from exc
    if not key:
        raise DeliveryError("a webhook secret is empty", permanent=True)
    return key


def sign(msg_id: str, timestamp: int, body: bytes, secrets: Iterable[str]) -> str:
    """The `webhook-signature` header: space-separated `v1,<signature>`, one per secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(secret_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets
    )


def _text(value: str | None) -> str | None:
    # A lone surrogate cannot be encoded as UTF-8; everything else JSON escapes.
    return value.encode("utf-8", "replace").decode("utf-8") if value is not None else None


def _incident(incident: IncidentSummary) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": _text(incident.title),
        "severity": incident.severity,
        "breaking": incident.breaking,
        "watchlists": [_text(name) for name in incident.watchlists],
        "places": [_text(name) for name in incident.places],
        "terms": [_text(name) for name in incident.terms],
        "languages": list(incident.languages),
        "outlets": [_text(name) for name in incident.outlets],
        "reports": incident.reports,
        "first_seen": incident.first_seen,
        "last_seen": incident.last_seen,
    }


def _type(message: Message) -> str:
    if message.test:
        return "alert.test"
    return f"incident.{message.kind}" if message.incident else "alert.created"


def payload(message: Message) -> dict[str, Any]:
    """The event: `incident.created` for an incident's first report, `incident.updated` for
    each later one (`data.incident` as it is with this report), `alert.created` for an alert
    with no incident, `alert.test` for `test-sink`."""
    translation = None
    if message.title_en or message.summary_en:
        translation = {
            "language": "en",
            "title": _text(message.title_en),
            "summary": _text(message.summary_en),
        }
    return {
        "type": _type(message),
        "timestamp": message.created_at,
        "data": {
            **({"incident": _incident(message.incident)} if message.incident else {}),
            "alert": {
                "id": message.alert_id,
                "watchlist": _text(message.watchlist),
                "severity": message.severity,
                "created_at": message.created_at,
                "story_key": _text(message.story_key),
            },
            "item": {
                "id": message.item_id,
                "guid": _text(message.guid),
                "title": _text(message.title),
                "summary": _text(message.summary),
                "url": _text(message.url),
                "published_at": message.published_at,
                "language": message.language,
                "language_confidence": message.language_confidence,
            },
            "translation": translation,
            "matches": [
                {
                    "term": _text(m.term),
                    "form": _text(m.form),
                    "field": m.field,
                    "start": m.start,
                    "end": m.end,
                }
                for m in message.matches
            ],
            "feed": {"name": _text(message.feed), "url": _text(message.feed_url)},
        },
    }


def render_webhook(sink: SinkConfig, message: Message, now: datetime) -> Outgoing:
    body = json_body(payload(message))
    timestamp = int(now.timestamp())
    headers = {k: v for k, v in sink.headers.items() if k.lower() not in _OWN}
    headers.update(
        {
            "Content-Type": "application/json",
            "webhook-id": message.key,
            "webhook-timestamp": str(timestamp),
        }
    )
    if sink.secret:
        headers["webhook-signature"] = sign(message.key, timestamp, body, sink.secret)
    return Outgoing("POST", sink_url(sink), body, headers)


class WebhookSink(HttpSink):
    """Machines read it: one signed event per report (`incident.created`, then
    `incident.updated`), never a digest or a listing; any 2xx is success."""

    name = "webhook"
    digest_size = None

    def capability(self, sink: SinkConfig) -> Capability:
        return "each"

    def render(
        self, sink: SinkConfig, message: Message | Digest, root: RemoteRef | None, now: datetime
    ) -> Outgoing:
        if isinstance(message, Digest):
            raise DeliveryError("webhook sinks take no digests", permanent=True)
        return render_webhook(sink, message, now)
