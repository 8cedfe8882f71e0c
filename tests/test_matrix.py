"""The matrix sink against a real homeserver (Synapse on 127.0.0.1, tests/synapse.py): the alert
is read back through the client API, mentions nobody, highlights nobody, a resend after a
crash posts nothing twice, and an incident's later report lands in its first message's thread."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from conftest import FeedServer, rss
from receivers import add_alerts, incident_report, send
from synapse import Homeserver, MatrixUser, homeserver_fixture  # noqa: F401

from monitor.config import Config, SinkConfig
from monitor.deliver import Dispatcher, DispatchReport, RetryPolicy
from monitor.deliver.sinks import sink_type
from monitor.store import Store
from monitor.store.thread import StoreThread


def _drain(config: Config) -> DispatchReport:
    async def main() -> DispatchReport:
        thread = StoreThread(Store.open(config.database))
        dispatcher = Dispatcher(config, thread, retry=RetryPolicy(base=0.05, cap=0.2))
        try:
            return await dispatcher.drain(20)
        finally:
            await dispatcher.aclose()
            thread.close()

    return asyncio.run(main())


def _highlights(server: Homeserver, user: MatrixUser) -> dict[str, bool]:
    """event_id → whether the server highlighted it for `user` (a ping)."""
    answer = server.api("GET", "/_matrix/client/v3/notifications", user.access_token, limit=50)
    return {
        n["event"]["event_id"]: any(
            isinstance(a, dict) and a.get("set_tweak") == "highlight" and a.get("value", True)
            for a in n["actions"]
        )
        for n in answer["notifications"]
    }


def _room_setup(homeserver: Homeserver) -> tuple[MatrixUser, MatrixUser, str]:
    bot = homeserver.register()
    reader = homeserver.register()
    homeserver.api(
        "PUT",
        f"/_matrix/client/v3/profile/{quote(reader.user_id, safe='')}/displayname",
        reader.access_token,
        {"displayname": "Bob Reader"},
    )
    return bot, reader, homeserver.create_room(bot, reader)


def test_alert_arrives_in_the_room_and_pings_nobody(
    homeserver: Homeserver, make_config: Any
) -> None:
    bot, reader, room = _room_setup(homeserver)
    config = make_config(
        sinks=[
            {
                "name": "room",
                "type": "matrix",
                "url": homeserver.base,
                "room": room,
                "token": bot.access_token,
                "rate": 100,
            }
        ]
    )
    localpart = reader.user_id.split(":")[0]
    hostile = (
        f"@room {reader.user_id} {localpart} Bob Reader: checkpoint attacked near Khanaqin "
        '<a href="https://evil.example">x</a> **bold** \u202eevil'
    )
    store = Store.open(config.database)
    add_alerts(store, ["room"], title=hostile, title_en="Checkpoint attacked near Khanaqin")
    store.close()

    assert _drain(config).sent == 1

    [event] = [e for e in homeserver.messages(room, reader) if e["sender"] == bot.user_id]
    content = event["content"]
    assert content["m.mentions"] == {}
    assert content["format"] == "org.matrix.custom.html"
    assert content["msgtype"] == "m.text"
    assert "@room" not in content["body"] and "@\u2060room" in content["body"]
    assert "Checkpoint attacked near Khanaqin" in content["body"]
    assert "&lt;a href=&quot;https://evil.example&quot;&gt;" in content["formatted_body"]
    assert "\u202e" not in content["body"] + content["formatted_body"]
    assert '<a href="https://news.example.org/khanaqin">' in content["formatted_body"]

    # The control: the same words sent the way Apprise sends them (no m.mentions) highlight
    # the reader, so the check below can see a ping when there is one.
    control = homeserver.api(
        "PUT",
        f"/_matrix/client/v3/rooms/{quote(room, safe='')}/send/m.room.message/control-1",
        bot.access_token,
        {"msgtype": "m.text", "body": f"@room Bob Reader {reader.user_id}"},
    )["event_id"]
    highlights = _highlights(homeserver, reader)
    assert highlights[control] is True
    assert highlights.get(event["event_id"]) is not True


def test_a_resend_after_a_crash_posts_nothing_twice(
    homeserver: Homeserver, make_config: Any
) -> None:
    bot, reader, room = _room_setup(homeserver)
    config = make_config(
        sinks=[
            {
                "name": "room",
                "type": "matrix",
                "url": homeserver.base,
                "room": room,
                "token": bot.access_token,
            }
        ]
    )
    store = Store.open(config.database)
    add_alerts(store, ["room"])
    store.close()
    assert _drain(config).sent == 1
    # A crash between the server's answer and the commit, and its claim has run out: the
    # row is pending and due again.
    store = Store.open(config.database)
    store.db.execute(
        "UPDATE deliveries SET status = 'pending', sent_at = NULL, next_attempt_at = created_at"
    )
    store.db.conn.commit()
    store.close()
    assert _drain(config).sent == 1
    events = [e for e in homeserver.messages(room, reader) if e["sender"] == bot.user_id]
    assert len(events) == 1  # the same txnId: the server returned the first event


def test_the_daemon_posts_a_feed_alert_into_the_room(
    homeserver: Homeserver, feed_server: FeedServer, tmp_path: Path
) -> None:
    """The whole path with the real daemon: feed on 127.0.0.1 → `news-monitor run` → Synapse."""
    bot, reader, room = _room_setup(homeserver)
    feed_url = feed_server.route(
        "/feed.xml",
        rss(
            [
                {
                    "title": "@room Suicide bomber killed in Khanaqin",
                    "link": "https://news.example.org/khanaqin-bomber",
                    "guid": "k24-1",
                }
            ]
        ),
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": "matrix.db",
                "polling": {"interval": "1s", "jitter": 0, "backfill": "36500d"},
                "feeds": [{"name": "Desk", "url": feed_url}],
                "watchlists": [{"name": "khanaqin", "severity": "high", "terms": ["Khanaqin"]}],
                "sinks": [
                    {
                        "name": "room",
                        "type": "matrix",
                        "url": homeserver.base,
                        "room": room,
                        "token": "${MATRIX_TOKEN}",
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "MATRIX_TOKEN": bot.access_token}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        events: list[dict[str, Any]] = []
        while not events and time.monotonic() < deadline:
            time.sleep(0.2)
            events = [e for e in homeserver.messages(room, reader) if e["sender"] == bot.user_id]
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
    [event] = events
    body = event["content"]["body"]
    assert "Suicide bomber killed in Khanaqin" in body
    assert "khanaqin" in body and "high" in body.lower()
    assert event["content"]["m.mentions"] == {}
    assert _highlights(homeserver, reader).get(event["event_id"]) is not True


def test_a_later_report_is_a_reply_in_the_incidents_thread(homeserver: Homeserver) -> None:
    bot, reader, room = _room_setup(homeserver)
    sink = SinkConfig(
        name="room", type="matrix", url=homeserver.base, room=room, token=bot.access_token
    )
    kind = sink_type(sink)
    outcome, root = send(kind, sink, incident_report())
    assert outcome.kind == "sent" and root is not None
    later = incident_report(2, kind="updated", title="@room Second report", reports=2)
    outcome, reply = send(kind, sink, later, root)
    assert outcome.kind == "sent" and reply is not None

    # The server files the reply under the first message's thread...
    thread = homeserver.api(
        "GET",
        f"/_matrix/client/v1/rooms/{quote(room, safe='')}/relations/"
        f"{quote(root.message_id, safe='')}/m.thread",
        reader.access_token,
    )
    assert [event["event_id"] for event in thread["chunk"]] == [reply.message_id]
    # ...and shows the first message as a thread root with one reply, as clients list it.
    events = {e["event_id"]: e for e in homeserver.messages(room, reader)}
    summary = events[root.message_id]["unsigned"]["m.relations"]["m.thread"]
    assert summary["count"] == 1
    assert summary["latest_event"]["event_id"] == reply.message_id
    content = events[reply.message_id]["content"]
    assert content["m.relates_to"]["m.in_reply_to"] == {"event_id": root.message_id}
    assert "Second report" in content["body"] and "report 2" in content["body"]
    assert "Khanaqin (Diyala) · suicide bomber" in content["body"]
    assert _highlights(homeserver, reader).get(reply.message_id) is not True
