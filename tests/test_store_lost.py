"""The database file deleted or replaced under a running news-monitor, and read-only commands.

The daemon holds the file open; `rm monitor.db` (or `mv backup.db monitor.db`) leaves it
writing into a file no one will ever open again. It must notice before the next write, say so,
answer /healthz with 503 and exit non-zero for systemd to restart it. Commands that only read
must never create a database, nor disturb the daemon's WAL.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner
from conftest import FeedServer, free_port, rss
from test_faults_db import Daemon, polled

from monitor.cli import cli
from monitor.errors import StoreFileLost
from monitor.ops import Operations
from monitor.service import Monitor
from monitor.store import Store

WATCH = {"khanaqin": ["Khanaqin"]}
FIRST = [
    {"title": "Khanaqin market reopens", "guid": "l-1", "link": "https://lost.example.org/1"},
    {"title": "Farmers begin the sowing", "guid": "l-2", "link": "https://lost.example.org/2"},
]
SECOND = [
    {"title": "Khanaqin bridge repaired", "guid": "l-3", "link": "https://lost.example.org/3"},
    *FIRST,
]


def _count(path: Path, table: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


# The store -------------------------------------------------------------------------------


def test_a_write_after_the_file_was_deleted_raises_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    store = Store.open(path)
    store.db.execute("CREATE TABLE notes (x)")
    path.unlink()
    deleted = r"monitor\.db: the database file was deleted"
    with pytest.raises(StoreFileLost, match=deleted), store.write():
        store.db.execute("INSERT INTO notes VALUES (1)")
    # From then on every write says so, and the health probe says the database takes none.
    with pytest.raises(StoreFileLost), store.write():
        pass
    assert store.writable() is False
    store.close()
    assert not path.exists()


def test_a_replaced_file_is_left_as_it_is_and_opens_without_the_old_wal(tmp_path: Path) -> None:
    path, backup = tmp_path / "monitor.db", tmp_path / "backup.db"
    store = Store.open(path)
    with store.write():
        store.db.execute("CREATE TABLE notes (x)")
        store.db.execute("INSERT INTO notes VALUES ('in the backup')")
    copy = sqlite3.connect(backup)
    store.db.conn.backup(copy)
    copy.close()
    with store.write():
        store.db.execute("INSERT INTO notes VALUES ('after the backup')")
    backup.replace(path)  # a restore, while the daemon runs

    with pytest.raises(StoreFileLost, match="was replaced"), store.write():
        store.db.execute("INSERT INTO notes VALUES ('into the old file')")
    store.close()

    # The restored file opens as it was restored: the old file's WAL, still at the path, was
    # emptied instead of being laid over it.
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("SELECT x FROM notes").fetchall() == [("in the backup",)]
    finally:
        db.close()


# The monitor, in process -----------------------------------------------------------------


def test_a_poll_after_the_file_was_deleted_fails_loudly_and_stops_the_monitor(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route("/a.xml", rss(FIRST))
    config = make_config(feeds={"a": url}, watchlists=WATCH)

    async def main() -> Monitor:
        async with Monitor(config, parse_workers=1) as monitor:
            [report] = await monitor.poll_once()
            assert (report.outcome, report.new_items) == ("new", 2)
            config.database.unlink()
            feed_server.route("/a.xml", rss(SECOND))
            with structlog.testing.capture_logs() as events:
                with pytest.raises(StoreFileLost, match="deleted"):
                    await monitor.poll_once()
                # The daemon would not start on it either: it exits rather than go on.
                with pytest.raises(StoreFileLost):
                    await asyncio.wait_for(monitor.run(), 10)
        assert [e for e in events if e["event"] in ("feed.polled", "feed.crashed")] == []
        [lost] = [e for e in events if e["event"] == "store.deleted"]
        assert lost["log_level"] == "critical"
        assert lost["database"] == str(config.database)
        return monitor

    monitor = asyncio.run(main())
    assert monitor.stopping.is_set()
    assert monitor.store_lost is not None and monitor.store_lost.how == "deleted"
    assert not config.database.exists()


def test_healthz_is_503_and_names_the_deleted_file(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route("/a.xml", rss(FIRST))
    port = free_port()
    config = make_config(feeds={"a": url}, watchlists=WATCH, http={"listen": f"127.0.0.1:{port}"})

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
            config.database.unlink()
            after = await asyncio.to_thread(get)
        return [before, after]

    (status_before, before), (status_after, after) = asyncio.run(main())
    assert status_before == 200 and before["database_writable"] is True
    assert status_after == 503
    assert after["status"] == "unhealthy" and after["database_writable"] is False
    assert after["problems"][0].startswith(
        f"database not writable: {config.database}: the database file was deleted"
    )


# The daemon, as a process ----------------------------------------------------------------


def test_the_daemon_exits_1_when_its_database_is_deleted_and_restarts_clean(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route("/a.xml", rss(FIRST), etag='"v1"')
    config = make_config(feeds={"a": url}, watchlists=WATCH, polling={"interval": "1s"})
    daemon = Daemon(config.source)
    try:
        daemon.wait_for(polled(new=2, status=200))
        mark = len(daemon.events)
        config.database.unlink()
        feed_server.route("/a.xml", rss(SECOND), etag='"v2"')
        lost = daemon.wait_for(lambda e: e.get("event") == "store.deleted", since=mark)
        assert lost["level"] == "critical"
        # It exits by itself, non-zero, for systemd's Restart=on-failure.
        assert daemon.process.wait(timeout=15) == 1
    finally:
        code = daemon.stop()
    assert code == 1
    after = daemon.events[mark:]
    assert [e for e in after if e.get("event") in ("feed.polled", "feed.crashed")] == []
    assert "the database file was deleted" in str(after)
    assert not config.database.exists()

    # systemd starts it again: a new database, the stale WAL at the path does not get in.
    again = Daemon(config.source)
    try:
        again.wait_for(polled(new=3, status=200))
    finally:
        assert again.stop() == 0
    assert _count(config.database, "items") == 3


# Read-only commands ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["status", "--json"],
        ["alerts"],
        ["feeds"],
        ["feeds", "list", "--json"],
        ["deliveries"],
        ["deliveries", "retry", "--all-dead"],
    ],
)
def test_commands_that_read_never_create_a_database(make_config: Any, command: list[str]) -> None:
    config = make_config(feeds={"a": "https://a.example.org/rss"}, watchlists=WATCH)
    result = CliRunner().invoke(cli, ["--config", str(config.source), *command], obj={})
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (
        f"Error: no database at {config.database} (start the daemon or run poll-once first)"
    )
    assert sorted(p.name for p in config.source.parent.iterdir()) == ["config.yaml"]


def test_status_beside_a_daemon_whose_file_was_deleted_leaves_its_wal_alone(
    make_config: Any,
) -> None:
    config = make_config(feeds={"a": "https://a.example.org/rss"}, watchlists=WATCH)
    daemon = Store.open(config.database)  # as the running daemon holds it
    try:
        with daemon.write():
            daemon.db.execute("CREATE TABLE notes (x)")
        wal = config.database.with_name("monitor.db-wal")
        assert wal.exists()
        config.database.unlink()
        result = CliRunner().invoke(cli, ["--config", str(config.source), "status"], obj={})
        assert result.exit_code == 1
        assert not config.database.exists()
        assert wal.exists()
    finally:
        daemon.close()


def test_a_read_only_command_reads_a_live_database_without_taking_its_wal(
    make_config: Any,
) -> None:
    config = make_config(feeds={"a": "https://a.example.org/rss"}, watchlists=WATCH)
    daemon = Store.open(config.database)
    try:
        daemon.sync_feeds(config.feeds)
        result = CliRunner().invoke(
            cli, ["--config", str(config.source), "status", "--json"], obj={}
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["feeds_total"] == 1
        with daemon.write():  # the daemon writes on, unaware
            daemon.db.execute("UPDATE feeds SET error_count = 0")
    finally:
        daemon.close()


def test_a_read_only_command_without_a_daemon_leaves_no_wal_files_behind(
    make_config: Any,
) -> None:
    # Left behind, owned by whoever ran the command (root), they would keep the daemon's own
    # user from opening the database.
    config = make_config(feeds={"a": "https://a.example.org/rss"}, watchlists=WATCH)
    Store.open(config.database).close()
    for command in (["status"], ["alerts"], ["feeds"], ["deliveries"]):
        result = CliRunner().invoke(cli, ["--config", str(config.source), *command], obj={})
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in config.source.parent.iterdir()) == [
            "config.yaml",
            "monitor.db",
        ]
