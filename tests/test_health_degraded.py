"""/healthz `degraded`: alive (200) but something needs a person; the clock is injected.

The rule: a feed failing for longer than max(3 of its intervals, 1 h), deliveries dead in the
last 24 h, and a config file on disk that the daemon rejected are listed in `problems` with
`"status": "degraded"`; a database that takes no writes is 503.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import FeedServer, free_port, rss
from receivers import add_alerts

from monitor.config import Config
from monitor.health import HealthReport, degradations, failing_too_long
from monitor.ops import Operations
from monitor.service import Monitor
from monitor.store import PollWrite, Store

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _config(make_config: Any) -> Config:
    config: Config = make_config(
        feeds=[
            {"name": "fast", "url": "https://fast.example.org/rss"},  # polling.interval: 10m
            {"name": "hourly", "url": "https://hourly.example.org/rss", "interval": "1h"},
        ],
        polling={"interval": "10m"},
        watchlists={"khanaqin": ["Khanaqin"]},
    )
    return config


def _problems(
    store: Store, config: Config, now: datetime, errors: tuple[str, ...] = ()
) -> list[str]:
    summary = store.summary([feed.name for feed in config.feeds], now)
    return list(degradations(config, summary, errors, now))


def test_the_threshold_is_three_intervals_but_at_least_an_hour() -> None:
    assert failing_too_long(timedelta(minutes=10)) == timedelta(hours=1)
    assert failing_too_long(timedelta(minutes=20)) == timedelta(hours=1)
    assert failing_too_long(timedelta(hours=1)) == timedelta(hours=3)


def test_a_feed_is_reported_once_it_has_failed_for_longer_than_its_threshold(
    make_config: Any,
) -> None:
    config = _config(make_config)
    store = Store.open(config.database)
    try:
        ids = {name: state.id for name, state in store.sync_feeds(config.feeds).items()}
        for name in ("fast", "hourly"):
            for minutes in (0, 10, 20):  # failing since T0, whatever happens after
                store.record_failure(
                    ids[name],
                    "HTTP 503",
                    503,
                    T0 + timedelta(hours=1),
                    T0 + timedelta(minutes=minutes),
                )

        assert _problems(store, config, T0 + timedelta(minutes=59)) == []
        assert _problems(store, config, T0 + timedelta(minutes=60)) == [
            "feed 'fast' failing since 2026-11-24T12:00:00+00:00 (3 failed polls): HTTP 503"
        ]
        later = _problems(store, config, T0 + timedelta(hours=3))
        assert [p.split(" failing since")[0] for p in later] == ["feed 'fast'", "feed 'hourly'"]

        # One good poll and the feed is fine again; a new failure counts from scratch.
        store.record_poll(_ok(ids["fast"]), T0 + timedelta(hours=3, minutes=1))
        store.record_failure(ids["fast"], "timeout", None, T0, T0 + timedelta(hours=3, minutes=2))
        assert _problems(store, config, T0 + timedelta(hours=3, minutes=30)) == [later[1]]
    finally:
        store.close()


def _ok(feed_id: int) -> PollWrite:
    return PollWrite(feed_id, 200, None, None, None, "Feed", T0 + timedelta(days=1))


def test_deliveries_dead_in_the_last_24h_are_reported_by_sink(make_config: Any) -> None:
    config = _config(make_config)
    store = Store.open(config.database)
    try:
        store.sync_feeds(config.feeds)
        alerts = add_alerts(store, ["desk-chat", "siem"], 2, now=T0)
        deliveries = [
            row[0]
            for row in store.db.execute(
                "SELECT id FROM deliveries WHERE alert_id IN (?, ?) ORDER BY id", alerts
            )
        ]
        store.mark_dead(deliveries[:1], "HTTP 404", 404, T0)
        store.mark_dead(deliveries[1:3], "HTTP 410", 410, T0 + timedelta(hours=2))

        assert _problems(store, config, T0 + timedelta(hours=3)) == [
            "3 deliveries dead in the last 24h (desk-chat: 2, siem: 1):"
            " see `news-monitor deliveries --dead`"
        ]
        assert _problems(store, config, T0 + timedelta(hours=25)) == [
            "2 deliveries dead in the last 24h (desk-chat: 1, siem: 1):"
            " see `news-monitor deliveries --dead`"
        ]
        assert _problems(store, config, T0 + timedelta(hours=27)) == []
        # `deliveries retry` makes them pending: no longer dead, no longer reported.
        store.retry_deliveries(T0 + timedelta(hours=3), all_dead=True)
        assert _problems(store, config, T0 + timedelta(hours=3)) == []
    finally:
        store.close()


def test_an_invalid_config_on_disk_is_reported_with_file_and_line(make_config: Any) -> None:
    config = _config(make_config)
    errors = tuple(f"config.yaml:{n}: polling: unknown key 'intervall'" for n in range(1, 8))
    problems = list(degradations(config, None, errors, T0))
    assert problems[0] == (
        "config invalid on disk (the previous one runs): config.yaml:1: polling: unknown key"
        " 'intervall'"
    )
    assert len(problems) == 6 and problems[-1] == "config invalid on disk: 2 more problems"


def test_degraded_is_200_with_the_problems_and_unwritable_is_503() -> None:
    degraded = HealthReport(True, degraded=("feed 'x' failing since …",)).to_json()
    assert degraded["status"] == "degraded"
    assert degraded["problems"] == ["feed 'x' failing since …"]
    assert HealthReport(True).to_json()["status"] == "ok"
    both = HealthReport(False, degraded=("x",), database_error="gone")
    assert not both.healthy
    assert both.to_json()["status"] == "unhealthy"
    assert both.to_json()["problems"] == ["database not writable: gone", "x"]


def test_the_daemon_reports_an_invalid_config_file_as_degraded(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route("/a.xml", rss([{"title": "Rain on Sunday", "guid": "1"}]))
    port = free_port()
    config = make_config(feeds={"a": url}, http={"listen": f"127.0.0.1:{port}"})

    def get() -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    async def main() -> list[tuple[int, dict[str, Any]]]:
        ops = Operations()
        async with Monitor(config, parse_workers=1, ops=ops) as monitor, ops.serve(monitor):
            await monitor.poll_once()
            before = await asyncio.to_thread(get)
            source: Path = config.source
            source.write_text(source.read_text() + "bogus: 1\n", encoding="utf-8")
            assert await ops.reload() is False
            after = await asyncio.to_thread(get)
        return [before, after]

    (status_before, before), (status_after, after) = asyncio.run(main())
    assert (status_before, before["status"], before["problems"]) == (200, "ok", [])
    assert (status_after, after["status"]) == (200, "degraded")
    [problem] = after["problems"]
    assert problem.startswith("config invalid on disk (the previous one runs): ")
    assert "config.yaml:" in problem and "bogus" in problem
