"""Standard Webhooks signatures, checked by the spec's reference library (an independent
implementation): rotation, tampering, stable ids, and the webhook payload of DESIGN §7."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from receivers import Arrival, Receiver, add_alerts, receiver_fixture  # noqa: F401
from standardwebhooks import Webhook, WebhookVerificationError

from monitor.config import SinkConfig
from monitor.deliver import Dispatcher
from monitor.deliver.message import Message, delivery_key, message_from
from monitor.deliver.webhook import render_webhook, sign
from monitor.store import Store, shown
from monitor.store.thread import StoreThread

OLD = "whsec_" + base64.b64encode(b"old secret, 24 bytes....").decode()
NEW = "whsec_" + base64.b64encode(b"the new secret, rotated in").decode()
OTHER = "whsec_" + base64.b64encode(b"somebody else's secret..").decode()


def _now() -> datetime:
    return datetime.now(UTC)


def _message(store: Store, sink: str = "hook") -> Message:
    add_alerts(store, [sink], title_en="Checkpoint attacked near Khanaqin (EN)")
    records = store.claim_deliveries([1], _now(), _now())
    return message_from(records[0])


def _sink(*secrets: str, **extra: Any) -> SinkConfig:
    return SinkConfig(
        name="hook", type="webhook", url="http://127.0.0.1:9/hook", secret=list(secrets), **extra
    )


def _headers(sink: SinkConfig, message: Message, now: datetime) -> tuple[bytes, dict[str, str]]:
    outgoing = render_webhook(sink, message, now)
    return outgoing.body, dict(outgoing.headers)


def test_reference_library_verifies_our_signature(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "x.db")
    message = _message(store)
    body, headers = _headers(_sink(NEW), message, datetime.now(UTC))
    payload = Webhook(NEW).verify(body, headers)
    assert payload["type"] == "alert.created"
    assert headers["webhook-signature"].startswith("v1,")
    store.close()


def test_rotation_signs_with_every_secret_and_each_verifies(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "x.db")
    body, headers = _headers(_sink(OLD, NEW), _message(store), datetime.now(UTC))
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(OLD).verify(body, headers)
    Webhook(NEW).verify(body, headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(OTHER).verify(body, headers)
    store.close()


def test_tampered_body_id_or_stale_timestamp_fail_verification(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "x.db")
    message = _message(store)
    body, headers = _headers(_sink(NEW), message, datetime.now(UTC))
    tampered = body.replace(b'"severity":"high"', b'"severity":"info"')
    assert tampered != body
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(NEW).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(NEW).verify(body, {**headers, "webhook-id": "msg_someone_else"})
    old_body, old_headers = _headers(_sink(NEW), message, datetime.now(UTC) - timedelta(minutes=6))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(NEW).verify(old_body, old_headers)
    store.close()


def test_secret_forms_match_the_reference_decoding() -> None:
    raw = b"0123456789abcdef0123456789abcdef"
    unpadded = base64.b64encode(raw).decode().rstrip("=")
    for secret in (f"whsec_{unpadded}", unpadded, "whsec_" + base64.b64encode(raw).decode()):
        signature = sign("msg_1", 1_700_000_000, b"{}", [secret])
        expected = Webhook(raw).sign("msg_1", datetime.fromtimestamp(1_700_000_000, UTC), "{}")
        assert signature == expected


def test_webhook_id_is_stable_across_retries_and_restarts_and_distinct_per_delivery(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.db"
    store = Store.open(path)
    add_alerts(store, ["hook", "siem"])
    first = [message_from(r) for r in store.claim_deliveries([1, 2], _now(), _now())]
    (created_at,) = store.db.execute("SELECT created_at FROM alerts").fetchone()
    store.close()
    again = Store.open(path)  # a restart: a new connection, the same rows
    second = [message_from(r) for r in again.claim_deliveries([1, 2], _now(), _now())]
    assert [m.key for m in first] == [m.key for m in second]
    assert first[0].key != first[1].key
    # The key hashes the stored time, so a row written before stored times had milliseconds
    # keeps its key; the message shows the time to the second.
    assert first[0].key == delivery_key(1, first[0].alert_id, "hook", created_at)
    assert first[0].created_at == shown(created_at) != created_at
    sink = _sink(NEW)
    body_1, headers_1 = _headers(sink, first[0], datetime.now(UTC))
    body_2, headers_2 = _headers(sink, second[0], datetime.now(UTC) + timedelta(seconds=30))
    assert body_1 == body_2  # a retry sends the same bytes...
    assert headers_1["webhook-id"] == headers_2["webhook-id"]  # ...under the same id
    assert headers_1["webhook-timestamp"] != headers_2["webhook-timestamp"]
    again.close()


def test_payload_follows_design_7(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "x.db")
    body, _ = _headers(_sink(NEW), _message(store), datetime.now(UTC))
    payload = json.loads(body)
    assert set(payload) == {"type", "timestamp", "data"}
    assert set(payload["data"]) == {"alert", "item", "translation", "matches", "feed"}
    assert payload["data"]["alert"]["watchlist"] == "khanaqin"
    assert payload["data"]["alert"]["severity"] == "high"
    assert payload["data"]["item"]["title"] == "Checkpoint attacked near Khanaqin"
    assert payload["data"]["item"]["url"] == "https://news.example.org/khanaqin"
    assert payload["data"]["translation"] == {
        "language": "en",
        "title": "Checkpoint attacked near Khanaqin (EN)",
        "summary": None,
    }
    assert payload["data"]["matches"][0]["form"] == "Khanaqin"
    assert payload["data"]["feed"]["name"] == "Desk"
    datetime.fromisoformat(payload["timestamp"])
    store.close()


def test_configured_headers_are_sent_but_cannot_replace_the_signature(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "x.db")
    sink = _sink(NEW, headers={"X-Tenant": "desk", "webhook-signature": "v1,forged"})
    body, headers = _headers(sink, _message(store), datetime.now(UTC))
    assert headers["X-Tenant"] == "desk"
    Webhook(NEW).verify(body, headers)
    store.close()


def _verifier(secret: str) -> Callable[[Arrival], str | None]:
    def check(arrival: Arrival) -> str | None:
        try:
            Webhook(secret).verify(arrival.body, arrival.headers)
        except WebhookVerificationError as exc:
            return f"signature: {exc}"
        return None

    return check


def test_signed_deliveries_verify_at_a_real_receiver(
    tmp_path: Path, make_config: Any, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver("webhook", check=_verifier(OLD))
    config = make_config(
        sinks=[{"name": "hook", "type": "webhook", "url": hook.url(), "secret": [NEW, OLD]}]
    )
    store = Store.open(config.database)
    add_alerts(store, ["hook"], count=3)
    store.close()

    async def main() -> None:
        thread = StoreThread(Store.open(config.database))
        dispatcher = Dispatcher(config, thread)
        report = await dispatcher.drain(10)
        await dispatcher.aclose()
        thread.close()
        assert report.sent == 3

    asyncio.run(main())
    assert hook.problems == []
    assert len(set(hook.webhook_ids)) == 3


def test_an_invalid_secret_makes_the_delivery_dead_with_a_clear_error(
    tmp_path: Path, make_config: Any, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver("webhook")
    config = make_config(
        sinks=[{"name": "hook", "type": "webhook", "url": hook.url(), "secret": ["whsec_"]}]
    )
    store = Store.open(config.database)
    add_alerts(store, ["hook"])

    async def main() -> None:
        thread = StoreThread(Store.open(config.database))
        dispatcher = Dispatcher(config, thread)
        await dispatcher.drain(10)
        thread.close()

    asyncio.run(main())
    rows = store.list_deliveries(("dead",))
    assert [r["last_error"] for r in rows] == ["a webhook secret is empty"]
    assert hook.arrivals == []
    store.close()
