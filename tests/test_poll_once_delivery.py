"""`poll-once` delivery: it leaves nothing held for a digest that only a later run would send,
and it says how much is left when its drain runs out of time.

Real receivers on 127.0.0.1 and real SQLite files; the flood window is ten minutes and no test
waits for it: what a later run sees is decided by the rows' own times.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

from engines import make_config_on_both_engines  # noqa: F401
from receivers import Answer, Receiver, add_alerts, receiver_fixture  # noqa: F401

from monitor.cli.core import _deliveries_line
from monitor.config import Config
from monitor.deliver import Dispatcher, DispatchReport, RetryPolicy
from monitor.store import Store
from monitor.store.thread import StoreThread

MakeReceiver = Callable[..., Receiver]


def _drain(config: Config, timeout: float = 20.0) -> DispatchReport:
    async def main() -> DispatchReport:
        thread = StoreThread(Store.open(config.database))
        retry = RetryPolicy(base=0.05, cap=0.2)
        dispatcher = Dispatcher(config, thread, rng=random.Random(7), retry=retry)
        try:
            return await dispatcher.drain(timeout)
        finally:
            await dispatcher.aclose()
            thread.close()

    return asyncio.run(main())


def _seed(config: Config, sinks: list[str], count: int, **kwargs: Any) -> None:
    store = Store.open(config.database)
    try:
        add_alerts(store, sinks, count, **kwargs)
    finally:
        store.close()


def test_poll_once_sends_what_flood_control_holds_as_a_digest_before_it_exits(
    make_config: Any, receiver: MakeReceiver
) -> None:
    chat = receiver("slack")
    config = make_config(
        sinks=[{"name": "chat", "type": "slack", "url": chat.url(), "rate": 100}],
        delivery={"digest_after": 3, "digest_window": "10m"},
    )
    _seed(config, ["chat"], 8)
    first = _drain(config)
    assert (first.sent, first.digests, first.held, first.pending) == (8, 1, 0, 0)
    assert chat.problems == [] and len(chat.delivered) == 4
    digest = json.loads(chat.delivered[-1].body)
    assert "5 more alerts" in digest["text"]
    listed = json.dumps(digest["blocks"], ensure_ascii=False)
    assert all(f"#{n}" in listed for n in range(4, 9))
    assert listed.count("Matched: Khanaqin") == 5  # why each alert matched, as alone

    # The next run, still inside the window: the flood goes on, so one digest again at once.
    _seed(config, ["chat"], 2, title="Second wave near Khanaqin")
    second = _drain(config)
    assert (second.sent, second.digests, second.held, second.pending) == (2, 1, 0, 0)
    assert "2 more alerts" in json.loads(chat.delivered[-1].body)["text"]
    store = Store.open(config.database)
    statuses = [r[0] for r in store.db.execute("SELECT status FROM deliveries").fetchall()]
    store.close()
    assert statuses == ["sent"] * 10


def test_a_drain_cut_by_its_timeout_says_how_many_are_still_pending(
    make_config: Any, receiver: MakeReceiver
) -> None:
    stuck = receiver("webhook")
    stuck.script(Answer(hang=30))
    config = make_config(sinks=[{"name": "hook", "type": "webhook", "url": stuck.url()}])
    _seed(config, ["hook"], 3)
    report = _drain(config, timeout=0.5)
    assert report.timed_out
    assert (report.sent, report.retrying, report.dead, report.pending) == (0, 0, 0, 3)
    assert _deliveries_line(report) == (
        "deliveries: 0 sent, 0 to retry, 0 dead; timed out with 3 still pending: "
        "the daemon, or the next poll-once, sends them"
    )


def test_the_deliveries_line_counts_digests_and_what_waits_for_a_retry() -> None:
    report = DispatchReport(
        sent=19365, digests=2, retrying=1, dead=0, held=0, timed_out=False, sinks=(), pending=1
    )
    assert _deliveries_line(report) == (
        "deliveries: 19365 sent, 1 to retry, 0 dead; 2 flood-control digests; "
        "1 still pending: the daemon, or the next poll-once, sends them"
    )
