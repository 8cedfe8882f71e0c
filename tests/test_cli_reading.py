"""`alerts --watchlist` and `feeds` as a person types them, against a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils
from click.testing import CliRunner, Result
from receivers import add_alerts

from monitor.cli import cli
from monitor.config import Config
from monitor.store import Store, iso
from monitor.store.schema import migrations


def _config(make_config: Any) -> Config:
    config: Config = make_config(
        feeds={"Desk": "https://feeds.example.org/desk.xml"},
        watchlists={"khanaqin": ["Khanaqin"], "diyala": ["Diyala"]},
    )
    return config


def invoke(config: Config, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config.source), *args], obj={})


def test_alerts_matches_the_watchlist_name_whatever_its_case(make_config: Any) -> None:
    config = _config(make_config)
    store = Store.open(config.database)
    try:
        add_alerts(store, [], watchlist="khanaqin")
    finally:
        store.close()
    for name in ("khanaqin", "Khanaqin", "KHANAQIN"):
        result = invoke(config, "alerts", "--watchlist", name)
        assert result.exit_code == 0, result.output
        assert "[high] khanaqin: Checkpoint attacked near Khanaqin" in result.stdout
    empty = invoke(config, "alerts", "--watchlist", "Diyala")
    assert (empty.exit_code, empty.stdout) == (0, "")
    assert empty.stderr == "no diyala alerts in the last 24h\n"


def test_alerts_and_feeds_show_to_the_second_the_times_stored_to_the_millisecond(
    make_config: Any,
) -> None:
    config = _config(make_config)
    now = datetime.now(UTC).replace(microsecond=123456)
    store = Store.open(config.database)
    try:
        add_alerts(store, [], now=now)
        stored = store.db.execute("SELECT created_at, next_poll_at FROM alerts, feeds").fetchone()
    finally:
        store.close()
    later = now + timedelta(minutes=10)
    assert tuple(stored) == (iso(now), iso(later))
    assert stored[0].endswith(".123+00:00")
    alerts = invoke(config, "alerts")
    assert alerts.exit_code == 0, alerts.output
    assert alerts.stdout.startswith(f"{now.isoformat(timespec='seconds')}  [high] khanaqin: ")
    feeds = invoke(config, "feeds")
    assert feeds.exit_code == 0, feeds.output
    assert feeds.stdout == (
        f"Desk: ok {now.isoformat(timespec='seconds')}; 1 items;"
        f" next {later.isoformat(timespec='seconds')}\n"
    )


def test_alerts_for_an_unknown_watchlist_exits_2_and_names_the_known_ones(
    make_config: Any,
) -> None:
    config = _config(make_config)
    Store.open(config.database).close()
    result = invoke(config, "alerts", "--watchlist", "nosuch")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "no watchlist named 'nosuch'" in result.stderr
    assert "khanaqin, diyala" in result.stderr


def test_feeds_says_the_first_poll_is_pending_instead_of_next_none(make_config: Any) -> None:
    config = _config(make_config)
    store = Store.open(config.database)
    try:
        store.sync_feeds(config.feeds)  # as the daemon leaves it before its first poll
    finally:
        store.close()
    result = invoke(config, "feeds")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Desk: never polled; 0 items; next: first poll pending\n"


def test_a_database_from_an_older_version_is_a_one_line_error_not_a_traceback(
    make_config: Any,
) -> None:
    config = _config(make_config)
    db = sqlite_utils.Database(config.database)
    migrations.apply(db, stop_before="0005_views")
    db.close()
    for command in (["status"], ["alerts"], ["feeds"], ["deliveries"]):
        result = invoke(config, *command)
        assert result.exit_code == 1, command
        assert result.stderr == (
            f"Error: {config.database}: the database is from an older news-monitor (migration"
            " 0005_views not applied): restart the daemon or run poll-once to upgrade it\n"
        )


def test_a_file_that_is_no_news_monitor_database_is_a_one_line_error(make_config: Any) -> None:
    config = _config(make_config)
    config.database.write_bytes(b"")  # as `sqlite3 monitor.db .quit` leaves it
    result = invoke(config, "status")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {config.database}: not a news-monitor database (it has no feeds table)\n"
    )
