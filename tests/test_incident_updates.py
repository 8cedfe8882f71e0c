"""Incident updates against loopback stand-ins of the services (tests/receivers.py): the first
message's id comes from the service's answer, and the update the service then gets is the reply,
the thread reply or the edit of that very message."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import httpx
from receivers import Receiver, incident_report, receiver_fixture, send  # noqa: F401

from monitor.config import SinkConfig
from monitor.deliver.message import Message
from monitor.deliver.sinks import RemoteRef, sink_type

Make = Callable[..., Receiver]


def _later(count: int, *, every: bool) -> Message:
    """Report `count` of the incident; `every`: it lists every report (an edit)."""
    listed = tuple(
        incident_report(
            n,
            kind="updated",
            title=f"@everyone Report {n} from Khanaqin",
            url=f"https://news.example.org/khanaqin/{n}",
            reports=count,
        )
        for n in range(1, count + 1)
    )
    return dataclasses.replace(listed[-1], new_reports=listed if every else ())


def test_telegram_update_replies_to_the_message_the_bot_api_created(receiver: Make) -> None:
    api = receiver("telegram")
    sink = SinkConfig(name="tg", type="telegram", url=api.base, token="123:abc", chat_id="-100")
    kind = sink_type(sink)
    outcome, root = send(kind, sink, incident_report())
    assert outcome.kind == "sent" and root is not None
    assert root.message_id in api.messages  # the id Telegram gave it

    outcome, again = send(kind, sink, _later(2, every=False), root)
    assert outcome.kind == "sent", outcome.error
    created, reply = api.delivered
    assert "reply_parameters" not in created.json
    assert reply.json["reply_parameters"]["message_id"] == int(root.message_id)
    assert again is not None and again != root  # the reply is a message of its own
    assert api.problems == []


def test_telegram_receiver_refuses_a_reply_to_a_message_it_never_sent(receiver: Make) -> None:
    """The control: the receiver does check the reply's target."""
    api = receiver("telegram")
    payload = {"chat_id": "-100", "text": "x", "parse_mode": "HTML", "reply_to_message_id": 9}
    answer = httpx.post(api.url("/bot123:abc/sendMessage"), json=payload, timeout=10)
    assert answer.status_code == 400
    assert api.problems == ["Bad Request: message to be replied not found"]


def test_discord_update_edits_the_first_message_to_list_every_report(receiver: Make) -> None:
    hook = receiver("discord")
    sink = SinkConfig(name="dc", type="discord", url=hook.url("/api/webhooks/1/tok"))
    kind = sink_type(sink)
    outcome, root = send(kind, sink, incident_report())
    assert outcome.kind == "sent" and root is not None
    [created] = hook.delivered
    assert created.path == "/api/webhooks/1/tok?wait=true"

    for count in (2, 3):
        outcome, _ = send(kind, sink, _later(count, every=True), root)
        assert outcome.kind == "sent", outcome.error
    edits = [a for a in hook.delivered if a.method == "PATCH"]
    assert [a.path for a in edits] == [f"/api/webhooks/1/tok/messages/{root.message_id}"] * 2
    assert len(hook.messages) == 1  # one message in the channel, edited twice
    shown = hook.messages[root.message_id]
    assert [e["title"] for e in shown["embeds"]] == [
        f"@\u2060everyone Report {n} from Khanaqin" for n in (1, 2, 3)
    ]
    assert shown["allowed_mentions"] == {"parse": []}
    assert hook.problems == []


def test_discord_receiver_refuses_an_edit_of_an_unknown_message(receiver: Make) -> None:
    hook = receiver("discord")
    sink = SinkConfig(name="dc", type="discord", url=hook.url("/api/webhooks/1/tok"))
    outcome, _ = send(sink_type(sink), sink, _later(2, every=True), RemoteRef("123456"))
    assert outcome.kind == "dead"
    assert hook.problems == ["404: Unknown Message (10008)"]


def test_slack_bot_update_is_a_reply_in_the_first_messages_thread(receiver: Make) -> None:
    api = receiver("slack")
    sink = SinkConfig(
        name="bot", type="slack", url=api.url("/api"), token="xoxb-1-2-abc", channel="C0123"
    )
    kind = sink_type(sink)
    outcome, root = send(kind, sink, incident_report())
    assert outcome.kind == "sent" and root is not None
    assert root.thread_id == "C0123"

    outcome, _ = send(kind, sink, _later(2, every=False), root)
    assert outcome.kind == "sent", outcome.error
    created, reply = api.delivered
    assert created.path == reply.path == "/api/chat.postMessage"
    assert reply.headers["authorization"] == "Bearer xoxb-1-2-abc"
    assert "thread_ts" not in created.json and reply.json["thread_ts"] == root.message_id
    assert api.problems == []


def test_slack_webhook_gets_one_coalesced_update(receiver: Make) -> None:
    hook = receiver("slack")
    sink = SinkConfig(name="hook", type="slack", url=hook.url("/services/T/B/x"))
    kind = sink_type(sink)
    outcome, root = send(kind, sink, incident_report())
    assert outcome.kind == "sent" and root is None  # a webhook says only `ok`
    later = dataclasses.replace(
        _later(3, every=True), new_reports=_later(3, every=True).new_reports[1:]
    )
    outcome, _ = send(kind, sink, later, root)
    assert outcome.kind == "sent", outcome.error
    update = hook.delivered[1].json
    assert "update: 2 new reports" in update["text"]
    assert hook.problems == []
