"""`news-monitor run` as systemd runs it: the real daemon in a subprocess, a notify socket the
test owns, real feeds on 127.0.0.1, real HTTP to /healthz and /metrics, real SQLite files.

The contract checked here:
- READY=1 with `STATUS=polling N feed(s), F failing, P pending deliveries` once the scheduler
  runs; `WATCHDOG=1` every WATCHDOG_USEC/2; `RELOADING=1` + `MONOTONIC_USEC=` then `READY=1`
  around a reload; `STOPPING=1` on SIGTERM, exit 0 within 10 s; a second signal kills at once.
- An invalid config keeps the old one running and shows as `STATUS=...; config invalid,
  running the previous one: FILE:LINE: ...` and in /healthz `config.error`.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FeedServer, Reply, free_port, rss
from test_host_fairness import HangingServer

from monitor.config import FeedConfig
from monitor.models import Analysis, Item
from monitor.store import NewItem, PollWrite, Store

Event = dict[str, Any]


class NotifySocket:
    """The service manager's end of sd_notify: every datagram, in order, as a dict."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.setblocking(False)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def read(self) -> None:
        """Take in every datagram waiting on the socket."""
        while True:
            try:
                data = self.socket.recv(65536)
            except BlockingIOError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            self.messages.append((time.monotonic(), fields))

    def collect(self, seconds: float) -> None:
        """Read for `seconds`, so each message's time is when it came, give or take 20 ms."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.read()
            time.sleep(0.02)

    def wait_for(
        self, predicate: Callable[[dict[str, str]], bool], timeout: float = 15.0, after: int = 0
    ) -> int:
        """The index of the first message from `after` on that matches."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read()
            for index in range(after, len(self.messages)):
                if predicate(self.messages[index][1]):
                    return index
            time.sleep(0.02)
        raise AssertionError(f"no such notification in {timeout}s; got {self.messages[-8:]}")

    def close(self) -> None:
        self.socket.close()


class Daemon:
    """`news-monitor --config CONFIG run` with NOTIFY_SOCKET (and WATCHDOG_USEC) set."""

    def __init__(self, config: Path, notify: NotifySocket, watchdog_usec: int | None = None):
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "NOTIFY_SOCKET": str(notify.path)}
        env.pop("WATCHDOG_PID", None)
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.notify = notify
        self.events: list[Event] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        os.set_blocking(self.process.stderr.fileno(), False)  # type: ignore[union-attr]

    def _read(self) -> None:
        assert self.process.stderr is not None
        if self.process.stderr.closed:
            return
        while line := self.process.stderr.readline():
            try:
                self.events.append(json.loads(line))
            except ValueError:
                # Not a log event (a traceback, a library's print): kept to fail on and show.
                self.events.append({"event": "stderr", "line": line.rstrip("\n")})

    def mark(self) -> int:
        """How many events so far: `wait_for(..., after=mark)` looks only at later ones."""
        self._read()
        return len(self.events)

    def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float = 15.0, after: int = 0
    ) -> Event:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read()
            for event in self.events[after:]:
                if predicate(event):
                    return event
            if self.process.poll() is not None:
                self._read()
                raise AssertionError(f"daemon exited {self.process.returncode}: {self.events}")
            time.sleep(0.05)
        raise AssertionError(f"no such event within {timeout}s; saw {self.events[-8:]}")

    def count(self, predicate: Callable[[Event], bool]) -> int:
        self._read()
        return sum(1 for event in self.events if predicate(event))

    def stop(self, timeout: float = 12.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._read()
            assert self.process.stderr is not None
            self.process.stderr.close()
        return code


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    receiver = NotifySocket(tmp_path / "notify.sock")
    yield receiver
    receiver.close()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test started; any still running at the end are stopped (and killed)."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.stop()
    # A traceback on stderr is a bug even when the behaviour checked above held.
    for daemon in started:
        assert [e for e in daemon.events if e["event"] == "stderr"] == []


def _write(path: Path, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "database": "monitor.db",
        "polling": {"interval": "1s", "timeout": "5s", "jitter": 0, "backfill": "36500d"},
        "feeds": [],
        "watchlists": [{"name": "khanaqin", "terms": ["Khanaqin"]}],
    }
    data.update(overrides)
    # Written in place, not by rename, so the watcher sees edits however the test makes them.
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_ready_status_watchdog_reload_and_stop_notifications(
    tmp_path: Path, feed_server: FeedServer, notify: NotifySocket, daemons: list[Daemon]
) -> None:
    feeds = [
        {"name": "Good", "url": feed_server.route("/good.xml", rss([{"title": "Calm day"}]))},
        {"name": "Broken", "url": feed_server.route("/broken.xml", status=500)},
    ]
    config = _write(tmp_path / "config.yaml", feeds=feeds)
    daemon = Daemon(config, notify, watchdog_usec=1_000_000)
    daemons.append(daemon)

    ready = notify.wait_for(lambda m: m.get("READY") == "1")
    assert notify.messages[ready][1]["STATUS"].startswith("polling 2 feeds, ")
    assert notify.messages[ready][1]["STATUS"].endswith(" failing, 0 pending deliveries")
    # The failing feed shows in STATUS= soon after its first poll.
    notify.wait_for(lambda m: m.get("STATUS") == "polling 2 feeds, 1 failing, 0 pending deliveries")

    # WATCHDOG_USEC=1s: a ping every 0.5 s from the event loop.
    first = notify.wait_for(lambda m: m.get("WATCHDOG") == "1", after=ready)
    notify.collect(2.2)
    pings = [at for at, m in notify.messages[first:] if m.get("WATCHDOG") == "1"]
    assert 4 <= len(pings) <= 7, pings
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) < 0.9, gaps

    mark = len(notify.messages)
    daemon.process.send_signal(signal.SIGHUP)
    reloading = notify.wait_for(lambda m: m.get("RELOADING") == "1", after=mark)
    assert int(notify.messages[reloading][1]["MONOTONIC_USEC"]) > 0
    ready_again = notify.wait_for(lambda m: m.get("READY") == "1", after=reloading)
    assert notify.messages[ready_again][1]["STATUS"].startswith("polling 2 feeds")

    mark = len(notify.messages)
    stopped_at = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    notify.wait_for(lambda m: m.get("STOPPING") == "1", after=mark)
    assert daemon.process.wait(timeout=10) == 0
    assert time.monotonic() - stopped_at < 10
    daemon.stop()


def test_editing_the_watchlist_alerts_the_next_item_under_the_new_one_without_restart(
    tmp_path: Path, feed_server: FeedServer, notify: NotifySocket, daemons: list[Daemon]
) -> None:
    first = {"guid": "1", "title": "Diyala market reopens", "link": "https://example.org/1"}
    second = {"guid": "2", "title": "Diyala bridge closed", "link": "https://example.org/2"}
    url = feed_server.route("/feed.xml", rss([first]))
    config = _write(tmp_path / "config.yaml", feeds=[{"name": "Wire", "url": url}])
    daemon = Daemon(config, notify)
    daemons.append(daemon)
    daemon.wait_for(lambda e: e["event"] == "feed.polled" and e.get("new") == 1)

    _write(
        config,
        feeds=[{"name": "Wire", "url": url}],
        watchlists=[
            {"name": "khanaqin", "terms": ["Khanaqin"]},
            {"name": "diyala", "terms": ["Diyala"]},
        ],
    )
    # No SIGHUP: the edited file is noticed.
    reloaded = daemon.wait_for(lambda e: e["event"] == "config.reloaded")
    assert reloaded["watchlists"] == 2
    feed_server.route("/feed.xml", rss([second, first]))
    daemon.wait_for(lambda e: e["event"] == "feed.polled" and e.get("alerts") == 1)
    assert daemon.stop() == 0

    db = sqlite3.connect(tmp_path / "monitor.db")
    rows = db.execute(
        "SELECT a.watchlist, i.guid FROM alerts a JOIN items i ON i.id = a.item_id"
    ).fetchall()
    db.close()
    # The item stored before the edit is not alerted after it: only the new one is.
    assert rows == [("diyala", "2")]
    assert daemon.count(lambda e: e["event"] == "monitor.started") == 1


def test_an_invalid_config_keeps_the_old_one_and_shows_in_status_and_healthz(
    tmp_path: Path, feed_server: FeedServer, notify: NotifySocket, daemons: list[Daemon]
) -> None:
    port = free_port()
    url = feed_server.route("/feed.xml", rss([{"title": "Khanaqin checkpoint reopens"}]))
    good = {"feeds": [{"name": "Wire", "url": url}], "http": {"listen": f"127.0.0.1:{port}"}}
    config = _write(tmp_path / "config.yaml", **good)
    daemon = Daemon(config, notify)
    daemons.append(daemon)
    daemon.wait_for(lambda e: e["event"] == "feed.polled" and e.get("alerts") == 1)
    base = f"http://127.0.0.1:{port}"

    status, body = _get(f"{base}/healthz")
    assert status == 200
    health = json.loads(body)
    assert health["status"] == "ok" and health["database_writable"] is True
    assert health["feeds"]["total"] == 1 and health["feeds"]["ok"] == 1
    assert health["config"]["error"] is None
    status, text = _get(f"{base}/metrics")
    assert status == 200
    # The feed answers 200 every second, so the count only has a floor.
    polls = re.search(r'^news_monitor_polls_total\{outcome="new"\} (\S+)$', text, re.MULTILINE)
    assert polls and float(polls.group(1)) >= 1
    assert 'news_monitor_feeds{state="ok"} 1.0' in text
    assert 'news_monitor_alerts_total{watchlist="khanaqin"} 1.0' in text
    assert "news_monitor_poll_duration_seconds_bucket" in text

    mark = len(notify.messages)
    config.write_text(config.read_text() + "polling:\n  intervall: 1s\n", encoding="utf-8")
    broken = notify.wait_for(lambda m: "config invalid" in m.get("STATUS", ""), after=mark)
    line = notify.messages[broken][1]["STATUS"]
    assert line.startswith("polling 1 feed, 0 failing, ")
    assert "running the previous one: " in line and "config.yaml:" in line
    invalid = daemon.wait_for(lambda e: e["event"] == "config.invalid")
    assert any("config.yaml:" in p for p in invalid["problems"])
    status, body = _get(f"{base}/healthz")
    assert status == 200  # an invalid file on disk does not make the running service unhealthy
    assert any("config.yaml:" in p for p in json.loads(body)["config"]["error"])
    # Still polling under the old config.
    daemon.wait_for(lambda e: e["event"] == "feed.polled", after=daemon.mark())

    mark = len(notify.messages)
    _write(config, **good)
    notify.wait_for(
        lambda m: m.get("READY") == "1" and "config invalid" not in m.get("STATUS", ""),
        after=mark,
    )
    status, body = _get(f"{base}/healthz")
    assert json.loads(body)["config"]["error"] is None
    assert daemon.stop() == 0


def test_a_reload_applies_polling_settings_and_names_those_that_need_a_restart(
    tmp_path: Path, feed_server: FeedServer, notify: NotifySocket, daemons: list[Daemon]
) -> None:
    port = free_port()
    document = rss([{"title": "Calm day"}])
    # The second poll is slow: the reload comes while it is in flight.
    url = feed_server.sequence(
        "/feed.xml", Reply(document), Reply(document, delay=2.0), Reply(document)
    )
    settings: dict[str, Any] = {
        "feeds": [{"name": "Wire", "url": url}],
        "http": {"listen": f"127.0.0.1:{port}"},
    }
    polling = {"interval": "1s", "timeout": "5s", "jitter": 0, "backfill": "36500d"}
    config = _write(
        tmp_path / "config.yaml", polling={**polling, "user_agent": "desk/1"}, **settings
    )
    daemon = Daemon(config, notify)
    daemons.append(daemon)
    daemon.wait_for(lambda e: e["event"] == "feed.polled")
    health = json.loads(_get(f"http://127.0.0.1:{port}/healthz")[1])
    assert health["restart_needed"] == []
    _wait_until(lambda: len(feed_server.requests_for("/feed.xml")) >= 2)

    mark = daemon.mark()
    port = free_port()  # the listener moves on reload too
    settings["http"] = {"listen": f"127.0.0.1:{port}"}
    _write(config, database="moved.db", polling={**polling, "user_agent": "desk/2"}, **settings)
    daemon.process.send_signal(signal.SIGHUP)
    warning = daemon.wait_for(lambda e: e["event"] == "config.restart_needed", after=mark)
    assert warning["keys"] == ["database"]
    daemon.wait_for(lambda e: e["event"] == "config.reloaded", after=mark)

    def agents() -> list[str]:
        return [r.headers["user-agent"] for r in feed_server.requests_for("/feed.xml")]

    _wait_until(lambda: agents().count("desk/2") >= 2)
    # Polls started before the reload used the old settings, every later one the new; the
    # slow one in flight was not cut by the old fetcher closing.
    seen = agents()
    first_new = seen.index("desk/2")
    assert set(seen[:first_new]) == {"desk/1"} and set(seen[first_new:]) == {"desk/2"}
    assert daemon.count(lambda e: e["event"] == "feed.failed") == 0
    health = json.loads(_get(f"http://127.0.0.1:{port}/healthz")[1])
    assert health["restart_needed"] == ["database"]
    assert health["status_line"].endswith("; restart to apply: database")
    ready = notify.wait_for(lambda m: "restart to apply: database" in m.get("STATUS", ""))
    assert notify.messages[ready][1].get("READY") == "1"
    # The database stays the one opened at start.
    assert not (tmp_path / "moved.db").exists()
    assert daemon.stop() == 0


def _wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_sigterm_during_a_poll_lets_it_finish_exits_0_and_the_next_start_is_clean(
    tmp_path: Path, feed_server: FeedServer, notify: NotifySocket, daemons: list[Daemon]
) -> None:
    item = {"guid": "1", "title": "Khanaqin checkpoint", "link": "https://example.org/1"}
    url = feed_server.sequence("/slow.xml", Reply(rss([item]), delay=2.0), Reply(rss([item])))
    config = _write(tmp_path / "config.yaml", feeds=[{"name": "Slow", "url": url}])
    daemon = Daemon(config, notify)
    daemons.append(daemon)
    notify.wait_for(lambda m: m.get("READY") == "1")
    deadline = time.monotonic() + 15
    while not feed_server.requests_for("/slow.xml") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feed_server.requests_for("/slow.xml"), "the poll never started"

    stopped_at = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - stopped_at < 10
    names = [e["event"] for e in daemon.events]
    # The poll in flight finished and was stored before the daemon stopped.
    assert names.index("feed.polled") < names.index("monitor.stopped")

    again = Daemon(config, notify)
    daemons.append(again)
    polled = again.wait_for(lambda e: e["event"] == "feed.polled")
    assert polled["new"] == 0  # the item was committed by the first run, not half-written
    assert again.stop() == 0
    db = sqlite3.connect(tmp_path / "monitor.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT COUNT(*) FROM alerts").fetchone() == (1,)
    db.close()


def _stuck_feed(
    tmp_path: Path, feed_server: FeedServer, notify: NotifySocket, daemons: list[Daemon]
) -> Daemon:
    """A daemon whose only feed answers after 25 s (its timeout is 30 s), mid-poll."""
    url = feed_server.route("/stuck.xml", rss([{"title": "x"}]), delay=25.0)
    config = _write(
        tmp_path / "config.yaml",
        feeds=[{"name": "Stuck", "url": url}],
        polling={"interval": "1s", "timeout": "30s", "jitter": 0},
    )
    daemon = Daemon(config, notify)
    daemons.append(daemon)
    notify.wait_for(lambda m: m.get("READY") == "1")
    deadline = time.monotonic() + 15
    while not feed_server.requests_for("/stuck.xml") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feed_server.requests_for("/stuck.xml"), "the poll never started"
    return daemon


def test_a_poll_stuck_past_the_grace_is_cut_and_the_daemon_still_exits_0_within_10s(
    tmp_path: Path, feed_server: FeedServer, notify: NotifySocket, daemons: list[Daemon]
) -> None:
    daemon = _stuck_feed(tmp_path, feed_server, notify, daemons)
    stopped_at = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - stopped_at < 10
    cancelled = daemon.wait_for(lambda e: e["event"] == "monitor.cancelled")
    assert cancelled["polls"] == 1


def test_sigterm_with_30_hung_polls_exits_0_within_8s(
    tmp_path: Path, notify: NotifySocket, daemons: list[Daemon]
) -> None:
    hanging = HangingServer()
    try:
        feeds = [{"name": f"Hung {n}", "url": hanging.url(f"/{n}.xml")} for n in range(30)]
        polling = {
            "interval": "1s",
            "timeout": "60s",
            "jitter": 0,
            "per_host": 32,
            "concurrency": 32,
        }
        config = _write(tmp_path / "config.yaml", feeds=feeds, polling=polling)
        daemon = Daemon(config, notify)
        daemons.append(daemon)
        notify.wait_for(lambda m: m.get("READY") == "1")
        deadline = time.monotonic() + 15
        while len(hanging.accepted) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(hanging.accepted) == 30, "not every poll started"

        signalled = time.monotonic()
        daemon.process.send_signal(signal.SIGTERM)
        code = daemon.process.wait(timeout=15)
        seconds = time.monotonic() - signalled
        daemon.stop()
    finally:
        hanging.close()
    assert code == 0
    cancelled = daemon.wait_for(lambda e: e["event"] == "monitor.cancelled")
    assert cancelled["polls"] == 30
    # systemd's stop timeout is 10 s; the daemon's own deadline leaves 2 s of it.
    phases = [
        (e["event"], e["timestamp"]) for e in daemon.events if e["event"].startswith("monitor.")
    ]
    assert seconds < 8.0, f"stopped in {seconds:.1f}s: {phases}"


def test_a_second_sigterm_exits_at_once(
    tmp_path: Path, feed_server: FeedServer, notify: NotifySocket, daemons: list[Daemon]
) -> None:
    daemon = _stuck_feed(tmp_path, feed_server, notify, daemons)
    daemon.process.send_signal(signal.SIGTERM)
    notify.wait_for(lambda m: m.get("STOPPING") == "1")
    second = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    code = daemon.process.wait(timeout=5)
    assert time.monotonic() - second < 2
    assert code == -signal.SIGTERM
    daemon.stop()

    # Killed mid-poll, the database is still whole and the next start polls normally.
    feed_server.route("/stuck.xml", rss([{"title": "x"}]))
    again = Daemon(tmp_path / "config.yaml", notify)
    daemons.append(again)
    again.wait_for(lambda e: e["event"] == "feed.polled" and e["status"] == 200)
    assert again.stop() == 0
    db = sqlite3.connect(tmp_path / "monitor.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()


def test_items_older_than_retention_are_pruned_at_start(
    tmp_path: Path, feed_server: FeedServer, notify: NotifySocket, daemons: list[Daemon]
) -> None:
    url = feed_server.route("/feed.xml", rss([]))
    config = _write(
        tmp_path / "config.yaml",
        feeds=[{"name": "Wire", "url": url}],
        retention={"items": "30d"},
    )
    store = Store.open(tmp_path / "monitor.db")
    feed = store.sync_feeds([FeedConfig(name="Wire", url=url)])["Wire"]
    old = datetime.now(UTC) - timedelta(days=40)
    items = tuple(
        NewItem(
            Item(guid, None, f"old {guid}", "", old, f"title:{guid}"),
            Analysis("en", 1.0, ()),
            (),
        )
        for guid in ("old-1", "old-2")
    )
    store.record_poll(PollWrite(feed.id, 200, None, None, None, None, old, items), old)
    store.close()

    daemon = Daemon(config, notify)
    daemons.append(daemon)
    pruned = daemon.wait_for(lambda e: e["event"] == "store.pruned")
    assert pruned["items"] == 2
    assert daemon.stop() == 0
    db = sqlite3.connect(tmp_path / "monitor.db")
    assert db.execute("SELECT COUNT(*) FROM items").fetchone() == (0,)
    db.close()
