"""The dispatcher against real receivers on 127.0.0.1 and real SQLite files: delivery, retries,
dead letters, restarts, isolation between sinks, rate limits and flood control."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from engines import make_config_on_both_engines  # noqa: F401
from receivers import (  # noqa: F401
    Answer,
    Receiver,
    add_alerts,
    markdown_links,
    receiver_fixture,
    telegram_visible,
)

from monitor.config import Config
from monitor.deliver import Dispatcher, DispatchReport, RetryPolicy
from monitor.deliver.limits import Hold, Send, SendDigest, plan
from monitor.deliver.retry import classify
from monitor.store import Store
from monitor.store.outbox import DueDelivery, OutboxBatch
from monitor.store.thread import StoreThread

FAST = RetryPolicy(base=0.05, cap=0.2)
"""Backoff for tests: the real one starts at 2 s."""
APPRISE_IMGHDR = pytest.mark.filterwarnings(
    # Apprise's e-mail plugin imports `imghdr` when Apprise loads its plugins, and Python 3.11
    # warns that it goes away in 3.13. Not ours to fix; nothing else is silenced.
    "ignore:'imghdr' is deprecated and slated for removal:DeprecationWarning"
)

MakeReceiver = Callable[..., Receiver]


def _statuses(config: Config) -> list[tuple[int, str, int]]:
    store = Store.open(config.database)
    try:
        return [
            (int(r[0]), str(r[1]), int(r[2]))
            for r in store.db.execute(
                "SELECT id, status, attempts FROM deliveries ORDER BY id"
            ).fetchall()
        ]
    finally:
        store.close()


def _seed(config: Config, sinks: list[str], count: int = 1, **kwargs: Any) -> list[int]:
    store = Store.open(config.database)
    try:
        return add_alerts(store, sinks, count, **kwargs)
    finally:
        store.close()


@contextlib.asynccontextmanager
async def dispatching(config: Config, retry: RetryPolicy = FAST) -> AsyncIterator[Dispatcher]:
    """A dispatcher running as in the daemon, on its own store thread; stopped on exit."""
    thread = StoreThread(Store.open(config.database))
    dispatcher = Dispatcher(config, thread, rng=random.Random(7), retry=retry)
    stopping = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stopping))
    try:
        yield dispatcher
    finally:
        stopping.set()
        await task
        await dispatcher.aclose()
        thread.close()


async def _drain(config: Config, timeout: float = 20.0, flush: bool = True) -> DispatchReport:
    thread = StoreThread(Store.open(config.database))
    dispatcher = Dispatcher(config, thread, rng=random.Random(7), retry=FAST)
    try:
        return await dispatcher.drain(timeout, flush_digests=flush)
    finally:
        await dispatcher.aclose()
        thread.close()


def drain(config: Config, timeout: float = 20.0, *, flush: bool = True) -> DispatchReport:
    """As `poll-once` drains; `flush=False` holds flood-controlled alerts as the daemon does."""
    return asyncio.run(_drain(config, timeout, flush))


def _hook(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "webhook", "url": url, **extra}


# Delivery ----------------------------------------------------------------------------------


def test_pending_delivery_is_sent_and_marked_sent(make_config: Any, receiver: MakeReceiver) -> None:
    hook = receiver("webhook")
    config = make_config(sinks=[_hook("hook", hook.url())])
    _seed(config, ["hook"])
    report = drain(config)
    assert (report.sent, report.retrying, report.dead) == (1, 0, 0)
    assert _statuses(config) == [(1, "sent", 1)]
    assert json.loads(hook.delivered[0].body)["type"] == "incident.created"
    store = Store.open(config.database)
    row = store.db.execute("SELECT sent_at, last_status, last_error FROM deliveries").fetchone()
    assert row[0] is not None and row[1] == 200 and row[2] is None
    store.close()


def test_every_format_is_accepted_by_its_receiver_even_with_a_hostile_item(
    make_config: Any, receiver: MakeReceiver
) -> None:
    kinds = ["slack", "discord", "teams", "mattermost", "telegram", "ntfy", "webhook"]
    servers = {kind: receiver(kind) for kind in kinds}
    sinks = []
    for kind, server in servers.items():
        sink: dict[str, Any] = {"name": kind, "type": kind, "url": server.url(), "rate": 100}
        if kind == "telegram":
            sink.update(url=server.base, token="123:abc", chat_id="-100200")
        elif kind == "ntfy":
            sink.update(url=server.url("/alerts"))
        sinks.append(sink)
    config = make_config(sinks=sinks)
    hostile = "@everyone <!channel> [click](https://evil.example) \u202eevil <b>x</b> & " * 200
    _seed(config, kinds, title=hostile, title_en=hostile)
    report = drain(config)
    assert report.sent == len(kinds)
    for kind, server in servers.items():
        assert server.problems == [], kind
        assert len(server.delivered) == 1, kind
        payload = server.delivered[0].json
        if kind == "mattermost":
            assert markdown_links(payload["text"]) == ["https://news.example.org/khanaqin"]
        if kind == "telegram":
            assert telegram_visible(payload["text"])[1] == ["https://news.example.org/khanaqin"]


def test_translation_that_lands_before_sending_is_in_the_message(
    make_config: Any, receiver: MakeReceiver
) -> None:
    hook = receiver("webhook")
    config = make_config(sinks=[_hook("hook", hook.url())])
    _seed(config, ["hook"], title="هێرش لە خانەقین", language="ckb")
    store = Store.open(config.database)
    store.db.execute("UPDATE items SET title_en = 'Attack in Khanaqin'")
    store.db.conn.commit()
    store.close()
    drain(config)
    payload = json.loads(hook.delivered[0].body)
    assert payload["data"]["translation"]["title"] == "Attack in Khanaqin"
    assert payload["data"]["item"]["title"] == "هێرش لە خانەقین"


# Failures ----------------------------------------------------------------------------------


def test_500_for_a_while_then_200_delivers_exactly_once(
    make_config: Any, receiver: MakeReceiver
) -> None:
    hook = receiver("webhook")
    hook.script(Answer(500), Answer(500), Answer(503))
    config = make_config(sinks=[_hook("hook", hook.url())])
    _seed(config, ["hook"])

    async def main() -> None:
        async with dispatching(config):
            await asyncio.to_thread(hook.wait_for, 1, 10.0)

    asyncio.run(main())
    assert [a.status for a in hook.arrivals] == [500, 500, 503, 200]
    assert len(set(a.headers["webhook-id"] for a in hook.arrivals)) == 1  # one id, every try
    assert _statuses(config) == [(1, "sent", 4)]


def test_429_with_retry_after_waits_as_asked(make_config: Any, receiver: MakeReceiver) -> None:
    hook = receiver("webhook")
    hook.script(Answer(429, b"slow down", {"Retry-After": "1"}))
    config = make_config(sinks=[_hook("hook", hook.url())])
    _seed(config, ["hook"])

    async def main() -> None:
        async with dispatching(config):
            await asyncio.to_thread(hook.wait_for, 1, 10.0)

    asyncio.run(main())
    first, second = hook.arrivals
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95  # the backoff alone would have been ~0.05 s


def test_404_is_dead_and_a_retry_by_hand_sends_it_after_the_fix(
    make_config: Any, receiver: MakeReceiver
) -> None:
    hook = receiver("webhook")
    hook.script(Answer(404, b"no_service"))
    config = make_config(sinks=[_hook("hook", hook.url())])
    _seed(config, ["hook"])
    report = drain(config)
    assert (report.sent, report.dead) == (0, 1)
    store = Store.open(config.database)
    [dead] = store.list_deliveries(("dead",))
    assert dead["last_error"] == "HTTP 404: no_service"
    assert dead["last_status"] == 404
    assert drain(config).sent == 0  # dead stays dead
    assert store.retry_deliveries(datetime.now(UTC), [dead["id"]]) == 1
    store.close()
    assert drain(config).sent == 1
    assert _statuses(config) == [(1, "sent", 1)]
    assert len(hook.arrivals) == 2


def test_give_up_after_retry_for(make_config: Any, receiver: MakeReceiver) -> None:
    hook = receiver("webhook")
    hook.script(Answer(500))
    config = make_config(sinks=[_hook("hook", hook.url())], delivery={"retry_for": "1m"})
    _seed(config, ["hook"], now=datetime.now(UTC) - timedelta(minutes=2))
    report = drain(config)
    assert (report.retrying, report.dead) == (0, 1)
    store = Store.open(config.database)
    assert store.list_deliveries(("dead",))[0]["last_error"] == "gave up after 1m: HTTP 500"
    store.close()


def test_receiver_down_across_a_restart_is_delivered_once_both_are_back(
    make_config: Any, receiver: MakeReceiver
) -> None:
    down = receiver("webhook")
    port, url = down.port, down.url()
    down.close()
    config = make_config(sinks=[_hook("hook", url)])
    _seed(config, ["hook"], count=3)

    async def while_down() -> None:
        async with dispatching(config):
            await asyncio.sleep(0.6)

    asyncio.run(while_down())
    store = Store.open(config.database)
    pending = store.list_deliveries(("pending",))
    assert len(pending) == 3
    assert any("cannot connect" in (row["last_error"] or "") for row in pending)
    store.close()

    back = receiver("webhook", port=port)

    async def after_restart() -> None:
        async with dispatching(config):  # a new dispatcher and store thread: a restart
            await asyncio.to_thread(back.wait_for, 3, 10.0)

    asyncio.run(after_restart())
    assert back.duplicates() == {}
    assert len(set(back.webhook_ids)) == 3
    assert [s for _, s, _ in _statuses(config)] == ["sent"] * 3


def test_a_hung_sink_does_not_delay_another(make_config: Any, receiver: MakeReceiver) -> None:
    slow = receiver("webhook")
    slow.script(Answer(hang=30))
    fast = receiver("webhook")
    config = make_config(sinks=[_hook("slow", slow.url(), timeout="2s"), _hook("fast", fast.url())])
    _seed(config, ["slow", "fast"])

    async def main() -> float:
        started = time.monotonic()
        async with dispatching(config):
            await asyncio.to_thread(fast.wait_for, 1, 10.0)
            elapsed = time.monotonic() - started
            await asyncio.to_thread(slow.wait_for, 1, 10.0)  # the retry after the timeout
        return elapsed

    assert asyncio.run(main()) < 1.5  # well before the slow sink's 2 s timeout
    assert [a.status for a in slow.arrivals] == [0, 200]
    store = Store.open(config.database)
    row = store.db.execute("SELECT attempts FROM deliveries WHERE sink = 'slow'").fetchone()
    assert row[0] == 2
    store.close()


def test_stopping_mid_send_returns_within_the_sink_timeout_and_keeps_the_row(
    make_config: Any, receiver: MakeReceiver
) -> None:
    slow = receiver("webhook")
    slow.script(Answer(hang=30))
    config = make_config(sinks=[_hook("slow", slow.url(), timeout="1s")])
    _seed(config, ["slow"])

    async def main() -> float:
        async with dispatching(config):
            await asyncio.to_thread(lambda: slow.arrivals or time.sleep(0.3))
            await asyncio.sleep(0.1)
            stopped = time.monotonic()
        return time.monotonic() - stopped

    assert asyncio.run(main()) < 1.8
    assert [s for _, s, _ in _statuses(config)] == ["pending"]


def test_a_second_process_draining_at_once_sends_nothing_twice(
    make_config: Any, receiver: MakeReceiver
) -> None:
    hook = receiver("webhook")
    config = make_config(sinks=[_hook("hook", hook.url())])
    _seed(config, ["hook"], count=20)

    async def main() -> None:
        await asyncio.gather(_drain(config), _drain(config))

    asyncio.run(main())
    assert len(hook.delivered) == 20
    assert hook.duplicates() == {}


# The daemon loop ---------------------------------------------------------------------------


def test_wake_sends_new_deliveries_at_once(make_config: Any, receiver: MakeReceiver) -> None:
    hook = receiver("webhook")
    config = make_config(sinks=[_hook("hook", hook.url())])
    _seed(config, [])  # the feed row, no deliveries yet

    async def main() -> float:
        async with dispatching(config) as dispatcher:
            await asyncio.sleep(0.3)  # idle: the next look would be in 5 s
            await asyncio.to_thread(_seed, config, ["hook"])
            started = time.monotonic()
            dispatcher.wake()
            await asyncio.to_thread(hook.wait_for, 1, 10.0)
            return time.monotonic() - started

    assert asyncio.run(main()) < 1.0


def test_reconfigure_starts_new_sinks_and_stops_removed_ones(
    make_config: Any, receiver: MakeReceiver
) -> None:
    first = receiver("webhook")
    second = receiver("webhook")
    before = make_config(sinks=[_hook("first", first.url())])
    after = make_config(sinks=[_hook("second", second.url())])

    async def main() -> None:
        async with dispatching(before) as dispatcher:
            await asyncio.to_thread(_seed, before, ["first"])
            dispatcher.wake()
            await asyncio.to_thread(first.wait_for, 1, 10.0)
            dispatcher.reconfigure(after)
            await asyncio.to_thread(_seed, after, ["first", "second"])
            dispatcher.wake()
            await asyncio.to_thread(second.wait_for, 1, 10.0)
            await asyncio.sleep(0.2)

    asyncio.run(main())
    assert len(first.delivered) == 1  # the removed sink's new delivery waits, pending
    statuses = [s for _, s, _ in _statuses(after)]
    assert sorted(statuses) == ["pending", "sent", "sent"]


def test_per_sink_rate_limit_spaces_messages(make_config: Any, receiver: MakeReceiver) -> None:
    hook = receiver("webhook")
    config = make_config(sinks=[_hook("hook", hook.url(), rate=20)])
    _seed(config, ["hook"], count=30)
    drain(config)
    times = [a.at for a in hook.delivered]
    assert len(times) == 30
    # A burst of 20, then 10 more at 20 per second.
    assert times[-1] - times[0] >= 0.4


# Flood control -----------------------------------------------------------------------------


def test_flood_goes_out_as_one_digest_and_nothing_is_dropped(
    make_config: Any, receiver: MakeReceiver
) -> None:
    chat = receiver("slack")
    hook = receiver("webhook")
    config = make_config(
        sinks=[
            {"name": "chat", "type": "slack", "url": chat.url(), "rate": 100},
            _hook("hook", hook.url()),
        ],
        delivery={"digest_after": 3, "digest_window": "1s"},
    )
    _seed(config, ["chat", "hook"], count=8)
    first = drain(config, flush=False)
    assert {r.sink: (r.sent, r.held) for r in first.sinks} == {"chat": (3, 5), "hook": (8, 0)}
    time.sleep(1.1)
    second = drain(config, flush=False)
    assert {r.sink: (r.sent, r.digests) for r in second.sinks} == {
        "chat": (5, 1),
        "hook": (0, 0),
    }
    assert chat.problems == []
    assert len(chat.delivered) == 4
    digest = json.loads(chat.delivered[-1].body)
    assert "5 more alerts" in digest["text"]
    titles = json.dumps(digest["blocks"], ensure_ascii=False)
    for n in range(4, 9):
        assert f"#{n}" in titles
    assert len(hook.delivered) == 8  # machines get every alert on its own
    store = Store.open(config.database)
    rows = store.db.execute(
        "SELECT status, digest FROM deliveries WHERE sink = 'chat' ORDER BY id"
    ).fetchall()
    store.close()
    assert [r[0] for r in rows] == ["sent"] * 8
    assert len({r[1] for r in rows[3:]}) == 1 and rows[0][1] is None


def test_a_large_digest_goes_out_in_parts_each_listing_its_alerts(
    make_config: Any, receiver: MakeReceiver
) -> None:
    push = receiver("ntfy")
    config = make_config(
        sinks=[{"name": "push", "type": "ntfy", "url": push.url("/alerts"), "rate": 100}],
        delivery={"digest_after": 1, "digest_window": "1s"},
    )
    _seed(config, ["push"], count=12)
    assert drain(config, flush=False).held == 11
    time.sleep(1.1)
    report = drain(config, flush=False)
    assert (report.sent, report.digests) == (11, 3)  # 5 + 5 + 1
    assert push.problems == []
    bodies = [json.loads(a.body) for a in push.delivered[1:]]
    assert ["part 1 of 3" in b["title"] for b in bodies] == [True, False, False]
    listed = "".join(b["message"] for b in bodies)
    assert all(f"#{n}" in listed for n in range(2, 13))


# Apprise -----------------------------------------------------------------------------------


@APPRISE_IMGHDR
def test_apprise_sink_delivers_defused_text(make_config: Any, receiver: MakeReceiver) -> None:
    target = receiver("webhook")
    url = f"json://127.0.0.1:{target.port}/apprise"
    config = make_config(sinks=[{"name": "other", "type": "apprise", "url": url}])
    _seed(config, ["other"], title="@everyone look \u202eevil")
    assert drain(config).sent == 1
    body = json.loads(target.delivered[0].body)
    assert body["title"] == "[HIGH] khanaqin"
    assert "@\u2060everyone look evil" in body["message"]


@APPRISE_IMGHDR
def test_apprise_failure_is_retried_not_dead(make_config: Any, receiver: MakeReceiver) -> None:
    target = receiver("webhook")
    target.script(Answer(500))
    url = f"json://127.0.0.1:{target.port}/apprise"
    config = make_config(sinks=[{"name": "other", "type": "apprise", "url": url}])
    _seed(config, ["other"])
    report = drain(config)
    assert (report.sent, report.retrying, report.dead) == (0, 1, 0)


# Pure policy: classification, backoff, the flood plan ---------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "body", "kind", "wait"),
    [
        (200, {}, "ok", "sent", None),
        (202, {}, "", "sent", None),
        (204, {}, "", "sent", None),
        (301, {"location": "https://hooks.example.org/new"}, "", "dead", None),
        (400, {}, "invalid_payload", "dead", None),
        (401, {}, "", "dead", None),
        (403, {}, "action_prohibited", "dead", None),
        (404, {}, "no_service", "dead", None),
        (410, {}, "channel_is_archived", "dead", None),
        (413, {}, "", "dead", None),
        (408, {}, "", "retry", None),
        (429, {"retry-after": "7"}, "", "retry", 7.0),
        (429, {}, '{"retry_after": 1.5, "global": false}', "retry", 1.5),  # Discord
        (429, {}, '{"ok": false, "parameters": {"retry_after": 12}}', "retry", 12.0),  # Telegram
        (429, {}, '{"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 2500}', "retry", 2.5),
        (500, {}, "", "retry", None),
        (502, {}, "<html>bad gateway</html>", "retry", None),
        (503, {"retry-after": "120"}, "", "retry", 120.0),
    ],
)
def test_answers_are_classified(
    status: int, headers: dict[str, str], body: str, kind: str, wait: float | None
) -> None:
    outcome = classify(status, headers, body)
    assert (outcome.kind, outcome.retry_after) == (kind, wait)
    assert outcome.status == status
    if kind != "sent":
        assert outcome.error is not None and outcome.error.startswith(f"HTTP {status}")


def test_backoff_grows_with_jitter_is_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(base=2.0, cap=600.0, max_retry_after=3600.0)
    rng = random.Random(1)
    delays = [policy.delay(n, None, rng) for n in range(1, 12)]
    for n, delay in enumerate(delays, 1):
        ceiling = min(600.0, 2.0 * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 600.0
    assert policy.delay(1, 30.0, rng) == 30.0
    assert policy.delay(1, 86400.0, rng) == 3600.0
    assert policy.delay(12, 1.0, rng) >= 300.0  # a short Retry-After never shortens backoff


def _batch(
    due: list[tuple[int, str, bool]],
    recent: dict[str, tuple[int, str]] | None = None,
    collecting: dict[str, str] | None = None,
) -> OutboxBatch:
    return OutboxBatch(tuple(DueDelivery(*row) for row in due), recent or {}, collecting or {})


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def _plan(batch: OutboxBatch, digests: bool = True) -> list[Any]:
    return plan(batch, NOW, digest_after=3, window=WINDOW, digests=digests)


def test_plan_sends_up_to_the_limit_then_holds_until_the_window_ends() -> None:
    rows = [(n, "k", False) for n in range(1, 7)]
    assert _plan(_batch(rows)) == [
        Hold((4, 5, 6), NOW + WINDOW),
        Send(1),
        Send(2),
        Send(3),
    ]
    # Two already sent four minutes ago: one more alone, the rest when those leave the window.
    sent = (NOW - timedelta(minutes=4)).isoformat()
    assert _plan(_batch(rows, {"k": (2, sent)})) == [
        Hold((2, 3, 4, 5, 6), NOW + timedelta(minutes=6)),
        Send(1),
    ]


def test_plan_joins_a_digest_being_collected_and_flushes_it_when_due() -> None:
    later = (NOW + timedelta(minutes=3)).isoformat()
    assert _plan(_batch([(9, "k", False)], collecting={"k": later})) == [
        Hold((9,), NOW + timedelta(minutes=3))
    ]
    now = NOW.isoformat()
    assert _plan(_batch([(7, "k", True), (9, "k", False)], collecting={"k": now})) == [
        SendDigest("k", (7, 9))
    ]


def test_plan_keeps_watchlists_apart_and_order_by_id() -> None:
    rows = [(1, "a", False), (2, "b", False), (3, "a", False)]
    assert _plan(_batch(rows)) == [Send(1), Send(2), Send(3)]


def test_plan_without_digests_sends_everything() -> None:
    rows = [(n, "k", n > 3) for n in range(1, 7)]
    assert _plan(_batch(rows), digests=False) == [Send(n) for n in range(1, 7)]


def test_public_api_is_exactly_what_the_service_uses() -> None:
    import monitor.deliver

    assert monitor.deliver.__all__ == sorted(monitor.deliver.__all__)
    assert set(monitor.deliver.__all__) == {
        "Digest",
        "DispatchReport",
        "Dispatcher",
        "MatchedForm",
        "Message",
        "RetryPolicy",
        "SinkAnswer",
        "SinkReport",
        "send_test",
    }
