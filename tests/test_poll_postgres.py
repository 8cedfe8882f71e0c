"""`poll-once`, `status` and `alerts` end to end on a PostgreSQL database (issue 13).

Real parts only: the feed server and a webhook receiver on 127.0.0.1, the PostgreSQL server the
tests start (tests/pg.py), and the CLI as a person runs it, with `database:` a postgresql:// URL
whose password must never be shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result
from conftest import FeedServer, ago, rss, write_config
from receivers import Receiver, receiver_fixture  # noqa: F401

from monitor.cli import cli
from monitor.config import Config
from monitor.store import Store

MakeReceiver = Callable[..., Receiver]
PASSWORD = "pg-s3cret"

ITEMS = [
    {"guid": "k-1", "title": "Checkpoint attacked near Kirkuk", "pubDate": ago(hours=1)},
    {"guid": "b-1", "title": "Weather in Basra", "pubDate": ago(hours=1)},
]


def _invoke(config: Config, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config.source), *args], obj={})


def test_poll_once_delivers_and_status_and_alerts_read_a_postgresql_database(
    feed_server: FeedServer, receiver: MakeReceiver, tmp_path: Path, pg_url: str
) -> None:
    hook = receiver("webhook")
    # Trust authentication ignores the password; it is there to be hidden.
    url = pg_url.replace("postgres@", f"postgres:{PASSWORD}@")
    config = write_config(
        tmp_path,
        database=url,
        feeds={"Kirkuk desk": feed_server.route("/kirkuk.xml", rss(ITEMS))},
        watchlists=[{"name": "kirkuk", "terms": ["Kirkuk"], "notify": ["hook"]}],
        sinks=[
            {"name": "hook", "type": "webhook", "url": hook.url(), "secret": "whsec_" + "A" * 32}
        ],
    )

    first = _invoke(config, "poll-once")
    assert first.exit_code == 0, first.output
    (arrival,) = hook.delivered
    assert arrival.json["data"]["item"]["title"] == "Checkpoint attacked near Kirkuk"

    # Again: nothing new is stored, alerted or sent.
    second = _invoke(config, "poll-once")
    assert second.exit_code == 0, second.output
    assert len(hook.delivered) == 1

    status = _invoke(config, "status", "--json")
    assert status.exit_code == 0, status.output
    data = json.loads(status.stdout)
    assert data["database"] == pg_url  # the password left out
    assert (data["feeds_ok"], data["items"]) == (1, 2)
    assert data["alerts"] == [{"watchlist": "kirkuk", "last_24h": 1, "total": 1}]
    human = _invoke(config, "status")
    assert human.exit_code == 0, human.output
    assert "  hook: 0 pending, 1 sent, 0 dead" in human.output

    alerts = _invoke(config, "alerts")
    assert alerts.exit_code == 0, alerts.output
    assert "[" in alerts.stdout and "kirkuk: Checkpoint attacked near Kirkuk" in alerts.stdout

    for result in (first, second, status, human, alerts):
        assert PASSWORD not in result.output
    # Nothing was written beside the config: the database is the server's.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]
    store = Store.open_readonly(url)
    try:
        rows = store.db.execute("SELECT sink, status, attempts FROM deliveries").fetchall()
    finally:
        store.close()
    assert [tuple(row) for row in rows] == [("hook", "sent", 1)]


def test_the_daemon_rides_out_a_lost_database_connection(
    feed_server: FeedServer, tmp_path: Path, pg_url: str
) -> None:
    import asyncio

    import psycopg

    from monitor.errors import StoreError
    from monitor.service import Monitor, PollReport

    url = feed_server.route("/kirkuk.xml", rss(ITEMS))
    config = write_config(
        tmp_path, database=pg_url, feeds={"Kirkuk desk": url}, watchlists={"kirkuk": ["Kirkuk"]}
    )

    async def main() -> tuple[list[PollReport], str, list[PollReport]]:
        async with Monitor(config, parse_workers=1) as monitor:
            first = await monitor.poll_once()
            # The server drops every news-monitor connection (a restart, a failover).
            with psycopg.connect(pg_url, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'news-monitor'"
                )
            try:
                lost = repr(await monitor.poll_once())
            except StoreError as exc:  # the call that finds the connection gone
                lost = str(exc)
            return first, lost, await monitor.poll_once()

    first, lost, after = asyncio.run(main())
    assert [(r.outcome, r.new_items, r.alerts) for r in first] == [("new", 2, 1)]
    assert lost.startswith(f"{pg_url}: ")
    # The next call connects again: the feed is polled, and nothing is stored twice.
    assert [(r.outcome, r.new_items, r.alerts) for r in after] == [("new", 0, 0)]
