"""Incidents delivered per sink: the demo story, polled by the real `Monitor`, reaches each chat
sink as one message that grows as each service allows, and the webhook as one signed event per
report. Receivers on 127.0.0.1 check each request's shape; the dispatcher's clock is a test
clock, so the coalesced update is timed without sleeping."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from engines import make_config_on_both_engines  # noqa: F401
from receivers import Answer, Receiver, receiver_fixture, telegram_reply_to  # noqa: F401
from test_incidents_wiring import demo_config, poll_once

from monitor.config import Config
from monitor.deliver import Dispatcher, DispatchReport, RetryPolicy
from monitor.demo import FEEDS_DIR, serve_directory
from monitor.service import Monitor
from monitor.store import Store
from monitor.store.thread import StoreThread

MakeReceiver = Callable[..., Receiver]
FAST = RetryPolicy(base=0.05, cap=0.2)


class Clock:
    """The dispatcher's time, set by the test; it starts just after the poll stored rows."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC) + timedelta(seconds=1)
        self.now = self.start

    def __call__(self) -> datetime:
        return self.now


def drain(config: Config, clock: Clock, *, flush: bool = False) -> DispatchReport:
    """One pass over the outbox; `flush=False` as the daemon does, True as `poll-once`."""

    async def run() -> DispatchReport:
        thread = StoreThread(Store.open(config.database))
        dispatcher = Dispatcher(config, thread, rng=random.Random(7), retry=FAST, clock=clock)
        try:
            return await dispatcher.drain(20.0, flush_digests=flush)
        finally:
            await dispatcher.aclose()
            thread.close()

    return asyncio.run(run())


def chat_sinks(receiver: MakeReceiver) -> tuple[dict[str, Receiver], list[dict[str, Any]]]:
    servers = {kind: receiver(kind) for kind in ("slack", "discord", "telegram", "webhook")}
    sinks: list[dict[str, Any]] = [
        {"name": "slack", "type": "slack", "url": servers["slack"].url(), "rate": 100},
        {"name": "discord", "type": "discord", "url": servers["discord"].url(), "rate": 100},
        {
            "name": "telegram",
            "type": "telegram",
            "url": servers["telegram"].base,
            "token": "123:abc",
            "chat_id": "-100200",
            "rate": 100,
        },
        {"name": "webhook", "type": "webhook", "url": servers["webhook"].url()},
    ]
    return servers, sinks


def pending(config: Config) -> list[tuple[str, str]]:
    store = Store.open_readonly(config.database)
    try:
        return [
            (row[0], row[1])
            for row in store.db.execute(
                "SELECT sink, kind FROM deliveries WHERE status = 'pending' ORDER BY sink, id"
            )
        ]
    finally:
        store.close()


def test_the_demo_story_reaches_each_chat_sink_as_one_message_and_the_webhook_per_report(
    make_config: Any, receiver: MakeReceiver
) -> None:
    servers, sinks = chat_sinks(receiver)
    with serve_directory(FEEDS_DIR) as base:
        config = demo_config(make_config, base, sinks=sinks)
        poll_once(config)
    clock = Clock()
    drain(config, clock)

    # Slack through an incoming webhook cannot thread: the first message now, the rest wait.
    assert len(servers["slack"].delivered) == 1
    assert pending(config) == [("slack", "updated")] * 3
    # Discord: the first message (its id from ?wait=true), then that message edited.
    discord = servers["discord"].delivered
    assert [a.method for a in discord] == ["POST", "PATCH"]
    assert "wait=true" in discord[0].path
    assert len(servers["discord"].messages) == 1
    # Telegram: the first message, then a reply to it per later report.
    telegram = [json.loads(a.body) for a in servers["telegram"].delivered]
    assert len(telegram) == 4
    assert telegram_reply_to(telegram[0]) is None
    first_id = next(iter(servers["telegram"].messages))
    assert [telegram_reply_to(t) for t in telegram[1:]] == [int(first_id)] * 3
    # The webhook: one signed event per report, each with its incident.
    events = [json.loads(a.body) for a in servers["webhook"].delivered]
    assert [e["type"] for e in events] == ["incident.created"] + ["incident.updated"] * 3
    assert len(set(servers["webhook"].webhook_ids)) == 4
    incident = events[-1]["data"]["incident"]
    assert len({e["data"]["incident"]["id"] for e in events}) == 1
    assert incident["places"] == ["Khanaqin (Diyala)"]
    assert set(incident["languages"]) == {"en", "ar", "ckb", "kmr"}
    assert incident["reports"] == 4
    assert {e["data"]["item"]["language"] for e in events} == {"en", "ar", "ckb", "kmr"}
    for server in servers.values():
        assert server.problems == []

    # Nothing more until `update_every` (30m) has passed since Slack's first message...
    clock.now = clock.start + timedelta(minutes=29)
    drain(config, clock)
    assert len(servers["slack"].delivered) == 1
    # ...then one update listing the three reports added since.
    clock.now = clock.start + timedelta(minutes=30)
    drain(config, clock)
    assert len(servers["slack"].delivered) == 2
    assert pending(config) == []
    update = servers["slack"].delivered[1].body.decode()
    assert "3 new reports" in update
    assert servers["slack"].problems == []


def test_poll_once_sends_the_coalesced_update_before_it_exits(
    make_config: Any, receiver: MakeReceiver
) -> None:
    slack = receiver("slack")
    sinks = [{"name": "slack", "type": "slack", "url": slack.url(), "rate": 100}]
    with serve_directory(FEEDS_DIR) as base:
        config = demo_config(make_config, base, sinks=sinks)
        poll_once(config)
    drain(config, Clock(), flush=True)
    assert len(slack.delivered) == 2  # the first message, and one update listing the rest
    assert pending(config) == []


def test_an_update_waits_for_its_first_message_and_replies_to_it(
    make_config: Any, receiver: MakeReceiver
) -> None:
    telegram = receiver("telegram")
    sinks = [
        {
            "name": "telegram",
            "type": "telegram",
            "url": telegram.base,
            "token": "123:abc",
            "chat_id": "-100200",
            "rate": 100,
        }
    ]
    with serve_directory(FEEDS_DIR) as base:
        config = demo_config(make_config, base, sinks=sinks)
        poll_once(config)
    telegram.script(Answer(500, b'{"ok": false, "error_code": 500, "description": "down"}'))
    clock = Clock()
    drain(config, clock)
    # The first message failed: the replies wait for it rather than go out on their own.
    assert telegram.delivered == []
    assert pending(config) == [("telegram", "created")] + [("telegram", "updated")] * 3
    clock.now = clock.start + timedelta(minutes=5)
    drain(config, clock)
    sent = [json.loads(a.body) for a in telegram.delivered]
    first_id = int(next(iter(telegram.messages)))
    assert [telegram_reply_to(s) for s in sent] == [None, first_id, first_id, first_id]
    assert pending(config) == []


def test_poll_once_messages_say_why_a_report_is_not_translated(
    make_config: Any, receiver: MakeReceiver
) -> None:
    telegram = receiver("telegram")
    sinks = [
        {
            "name": "telegram",
            "type": "telegram",
            "url": telegram.base,
            "token": "123:abc",
            "chat_id": "-100200",
            "rate": 100,
        }
    ]
    with serve_directory(FEEDS_DIR) as base:
        config = demo_config(make_config, base, sinks=sinks)

        async def run() -> None:
            async with Monitor(config, parse_workers=1) as monitor:
                await monitor.poll_once()
                await monitor.deliver_due(20.0)

        asyncio.run(run())
    texts = {json.loads(a.body)["text"] for a in telegram.delivered}
    assert len(texts) == 4
    sorani = next(t for t in texts if "خانەقین" in t)
    assert "not translated: no model for ckb" in sorani
    assert "Sorani Kurdish" in sorani
    english = next(t for t in texts if "Hashd fighters" in t or "Iraq militia" in t)
    assert "not translated" not in english
