"""Held-back matches are counted, and `rescan` alerts on stored items a new term matches.

A real feed server on 127.0.0.1, the real `Monitor` and CLI, on both engines: a SQLite file
and a PostgreSQL database (`make_config` below takes `store_target`, tests/pg.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner, Result
from conftest import FeedServer, ago, rss
from engines import make_config_on_both_engines  # noqa: F401
from receivers import Receiver, receiver_fixture  # noqa: F401

from monitor.analyze import Analyzer
from monitor.cli import cli
from monitor.config import Config
from monitor.rescan import rescan
from monitor.service import Monitor, PollReport
from monitor.store import Store, utcnow

MakeReceiver = Callable[..., Receiver]

KIRKUK_ITEMS = [
    {"guid": "old", "title": "Flooding closes roads around Kirkuk", "pubDate": ago(days=3)},
    {"guid": "new", "title": "Kirkuk governor visits the citadel", "pubDate": ago(hours=1)},
    {"guid": "other", "title": "Weather in Basra", "pubDate": ago(hours=1)},
]


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def _poll(config: Config) -> list[PollReport]:
    async def main() -> list[PollReport]:
        async with Monitor(config) as monitor:
            return await monitor.poll_once()

    return asyncio.run(main())


def _alerts(config: Config) -> list[tuple[str, str]]:
    store = Store.open(config.database)
    try:
        return sorted(
            (row[0], row[1])
            for row in store.db.execute(
                "SELECT i.guid, a.watchlist FROM alerts a JOIN items i ON i.id = a.item_id"
            )
        )
    finally:
        store.close()


def _rescan(config: Config, **kwargs: Any) -> Any:
    store = Store.open(config.database)
    try:
        return rescan(store, Analyzer(config.watchlists), config, ago(days=7), utcnow(), **kwargs)
    finally:
        store.close()


def test_first_poll_counts_matches_held_back_by_backfill(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route("/kirkuk.xml", rss(KIRKUK_ITEMS))
    config = make_config(feeds={"Kirkuk desk": url}, watchlists={"kirkuk": ["Kirkuk"]})

    (report,) = _poll(config)

    assert (report.alerts, report.held_back) == (1, 1)
    store = Store.open(config.database)
    try:
        (health,) = store.feed_health()
    finally:
        store.close()
    assert health["held_back"] == 1


def test_rescan_alerts_on_items_a_new_watchlist_matches(
    feed_server: FeedServer, make_config: Any, tmp_path: Path
) -> None:
    url = feed_server.route("/kirkuk.xml", rss(KIRKUK_ITEMS))
    before = make_config(feeds={"Kirkuk desk": url}, watchlists={"basra": ["Basra"]})
    _poll(before)
    assert _alerts(before) == [("other", "basra")]

    after = make_config(
        feeds={"Kirkuk desk": url}, watchlists={"basra": ["Basra"], "kirkuk": ["Kirkuk"]}
    )
    report = _rescan(after)

    # The three-day-old item is past the 24h backfill: counted, not alerted.
    assert (report.items, report.matched, report.alerts, report.too_old) == (3, 2, 1, 1)
    assert _alerts(after) == [("new", "kirkuk"), ("other", "basra")]

    again = _rescan(after)
    assert (again.matched, again.alerts) == (1, 0)  # only the old one is still unalerted
    old = _rescan(after, alert_old=True)
    assert old.alerts == 1
    assert _alerts(after) == [("new", "kirkuk"), ("old", "kirkuk"), ("other", "basra")]
    assert _rescan(after, alert_old=True).matched == 0


def test_rescan_limited_to_a_watchlist(feed_server: FeedServer, make_config: Any) -> None:
    url = feed_server.route("/kirkuk.xml", rss(KIRKUK_ITEMS))
    _poll(make_config(feeds={"Kirkuk desk": url}, watchlists={"none": ["Mosul"]}))
    config = make_config(
        feeds={"Kirkuk desk": url}, watchlists={"basra": ["Basra"], "kirkuk": ["Kirkuk"]}
    )

    report = _rescan(config, watchlists={"basra"})

    assert report.alerts == 1
    assert _alerts(config) == [("other", "basra")]


def _invoke(config: Config, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config.source), *args], catch_exceptions=False)


def test_rescan_command_sends_new_alerts_through_the_outbox(
    feed_server: FeedServer, make_config: Any, receiver: MakeReceiver
) -> None:
    hook = receiver("webhook")
    url = feed_server.route("/kirkuk.xml", rss(KIRKUK_ITEMS))
    _poll(make_config(feeds={"Kirkuk desk": url}, watchlists={"basra": ["Basra"]}))
    config = make_config(
        feeds={"Kirkuk desk": url},
        watchlists=[{"name": "kirkuk", "terms": ["Kirkuk"], "notify": ["hook"]}],
        sinks=[
            {"name": "hook", "type": "webhook", "url": hook.url(), "secret": "whsec_" + "A" * 32}
        ],
    )

    result = _invoke(config, "rescan", "--watchlist", "KIRKUK")

    assert result.exit_code == 0, result.output
    assert "1 new alerts" in result.output
    assert "1 matched but older than backfill (1d)" in result.output
    assert "deliveries: 1 sent" in result.output
    (arrival,) = hook.delivered
    assert arrival.json["data"]["item"]["title"] == "Kirkuk governor visits the citadel"

    again = _invoke(config, "rescan", "--json")
    assert json.loads(again.stdout)["alerts"] == 0
    assert len(hook.delivered) == 1


def test_rescan_refuses_an_unknown_watchlist(make_config: Any) -> None:
    config = make_config(watchlists={"kirkuk": ["Kirkuk"]})

    result = _invoke(config, "rescan", "--watchlist", "nosuch")

    assert result.exit_code == 2
    assert "no watchlist named 'nosuch'" in result.output
    assert "kirkuk" in result.output
