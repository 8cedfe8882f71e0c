"""Several `news-monitor run` daemons on one database, as real processes (issue 13).

Each test runs on a SQLite file (BEGIN IMMEDIATE serializes the daemons) and on PostgreSQL
(tests/pg.py starts a real server). What the feed server saw, with its own clock, says how
often each feed was fetched; what the webhook receiver saw says whether an alert arrived twice.
"""

from __future__ import annotations

import base64
import itertools
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FeedServer, Reply, free_port, rss
from daemons import Daemon
from invariants import invariants
from pg import ENGINES
from receivers import Receiver
from standardwebhooks import Webhook, WebhookVerificationError

from monitor.config import load_config
from monitor.store import Store

SECRET = "whsec_" + base64.b64encode(b"news-monitor cluster test secret!").decode()
INTERVAL = 2.0
LEASE = 3.0
RESOLUTION = 0.001
"""Stored times have milliseconds: a lease's end is cut to one."""


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest) -> str:
    """The `database:` the daemons share: a SQLite file beside the config, or PostgreSQL."""
    if request.param == "sqlite":
        return "cluster.db"
    return str(request.getfixturevalue("pg_url"))


def _start(config: Path, count: int, daemons: list[Daemon]) -> list[Daemon]:
    """`count` daemons started together on one config (a fresh database: they migrate it once
    between them)."""
    started = [Daemon(config) for _ in range(count)]
    daemons += started
    return started


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def _write_config(directory: Path, database: str, feeds: dict[str, str], **extra: Any) -> Path:
    path = directory / "config.yaml"
    config = {
        "database": database,
        "polling": {
            "interval": f"{INTERVAL:g}s",
            "timeout": "15s",
            "jitter": 0,
            "backfill": "36500d",
            # Few slots: a burst of due feeds is more than one node leases at once.
            "concurrency": 2,
        },
        "cluster": {"lease": f"{LEASE:g}s"},
        "feeds": [{"name": name, "url": url, "language": "en"} for name, url in feeds.items()],
        "watchlists": [{"name": "khanaqin", "severity": "high", "terms": ["Khanaqin"]}],
        **extra,
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def _status(config: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "status", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def _requests_by_path(feed_server: FeedServer) -> dict[str, list[float]]:
    seen: dict[str, list[float]] = defaultdict(list)
    for request in feed_server.requests:
        seen[request.path].append(request.at)
    return seen


def test_two_daemons_share_the_feeds_and_never_fetch_one_twice_within_its_interval(
    tmp_path: Path, feed_server: FeedServer, daemons: list[Daemon], database: str
) -> None:
    feeds = {
        f"f{n}": feed_server.route(
            f"/f{n}.xml", rss([{"title": f"Dam report {n}", "guid": f"g{n}"}]), etag=f'"v{n}"'
        )
        for n in range(40)
    }
    config = _write_config(tmp_path, database, feeds)
    first, second = _start(config, 2, daemons)
    paths = [f"/f{n}.xml" for n in range(40)]
    _wait(
        lambda: all(len(_requests_by_path(feed_server)[p]) >= 2 for p in paths),
        60,
        "every feed fetched twice",
    )
    status = _status(config)
    nodes = {node["pid"]: node for node in status["nodes"]}
    assert sorted(nodes) == sorted([first.pid, second.pid])
    # Named <hostname>-<pid> by default, each alive.
    assert all(node["name"] == f"{node['host']}-{pid}" for pid, node in nodes.items())
    assert not any(node["silent"] for node in nodes.values())
    _wait(
        lambda: all(len(_requests_by_path(feed_server)[p]) >= 4 for p in paths),
        60,
        "every feed fetched four times",
    )
    assert first.stop() == 0
    assert second.stop() == 0

    for path, times in _requests_by_path(feed_server).items():
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        # A feed's next turn is its interval after its poll ended: never sooner.
        assert min(gaps) >= INTERVAL - 0.05, f"{path} fetched twice within its interval: {gaps}"
    # A 200 is a `feed.polled` line; 304s are counted in their batch's `feeds.unchanged` line.
    polled = [
        sum(
            1 if e["event"] == "feed.polled" else len(e["feeds"])
            for e in d.events()
            if e["event"] in ("feed.polled", "feeds.unchanged")
        )
        for d in daemons
    ]
    assert all(count > 0 for count in polled), f"one daemon polled nothing: {polled}"
    assert [d.tracebacks() for d in daemons] == [[], []]
    # A clean stop gives the leases back and removes the node.
    assert _status(config)["nodes"] == []


def _verified(arrival: Any) -> str | None:
    try:
        Webhook(SECRET).verify(arrival.body, arrival.headers)
    except WebhookVerificationError as exc:
        return f"signature: {exc}"
    return None


def _story(n: int) -> bytes:
    return rss(
        [
            {
                "title": f"Story {n}: checkpoint attack reported near Khanaqin",
                "guid": f"story-{n}",
                "link": f"https://desk.example.org/{n}",
            }
        ]
    )


def _holder(database: str, config: Path, feed: str) -> str | None:
    target = database if "://" in database else str(config.parent / database)
    store = Store.open_readonly(target)
    try:
        row = store.db.execute("SELECT leased_by FROM feeds WHERE name = ?", [feed]).fetchone()
        return None if row is None else row[0]
    finally:
        store.close()


@pytest.mark.timeout(180)
def test_a_daemon_killed_mid_poll_leaves_its_feeds_to_the_others_within_a_lease(
    tmp_path: Path, feed_server: FeedServer, daemons: list[Daemon], database: str
) -> None:
    feeds = {f"f{n}": feed_server.route(f"/f{n}.xml", _story(n)) for n in range(8)}
    # The first fetch of `slow` hangs: whoever leased it is mid-poll when it is killed.
    feeds["slow"] = feed_server.sequence("/slow.xml", Reply(_story(8), delay=20), Reply(_story(8)))
    receiver = Receiver("webhook", check=_verified)
    try:
        sinks = [{"name": "siem", "type": "webhook", "url": receiver.url(), "secret": SECRET}]
        config = _write_config(
            tmp_path, database, feeds, sinks=sinks, delivery={"digest_after": 1000}
        )
        # Three nodes, as issue 13 asks: one is killed, the two others carry on.
        started = _start(config, 3, daemons)
        _wait(lambda: "/slow.xml" in _requests_by_path(feed_server), 30, "slow fetched once")
        _wait(lambda: _holder(database, config, "slow") is not None, 10, "slow leased")
        holder = _holder(database, config, "slow")
        (victim,) = [d for d in started if holder is not None and holder.endswith(f"-{d.pid}")]
        survivors = [d for d in started if d is not victim]
        # The poll outlasts its lease: renewed by the node's heartbeats, nobody else takes it.
        (first,) = _requests_by_path(feed_server)["/slow.xml"]
        time.sleep(max(0.0, first + LEASE + RESOLUTION + 0.5 - time.monotonic()))
        assert len(_requests_by_path(feed_server)["/slow.xml"]) == 1
        assert _holder(database, config, "slow") == holder
        victim.kill()
        killed = time.monotonic()
        _wait(
            lambda: len(_requests_by_path(feed_server)["/slow.xml"]) >= 2,
            LEASE + RESOLUTION + 10,
            "slow fetched again",
        )
        again = _requests_by_path(feed_server)["/slow.xml"][1]
        # The victim's lease (renewed at most lease/3 ago) ends; a survivor wakes for it.
        assert again - killed <= LEASE + RESOLUTION + 0.5, again - killed
        arrivals = receiver.wait_for(9, timeout=60)
        time.sleep(INTERVAL)  # a late duplicate would arrive now
        assert [survivor.stop() for survivor in survivors] == [0, 0]
    finally:
        receiver.close()
    assert receiver.problems == []
    ids: dict[int, set[str]] = defaultdict(set)
    titles: set[str] = set()
    for arrival in receiver.arrivals:
        if arrival.status == 0 or 200 <= arrival.status < 300:
            payload = json.loads(arrival.body)
            ids[payload["data"]["item"]["id"]].add(arrival.headers["webhook-id"])
            titles.add(payload["data"]["item"]["title"])
    assert len(arrivals) >= 9
    assert titles == {f"Story {n}: checkpoint attack reported near Khanaqin" for n in range(9)}
    assert {item: len(seen) for item, seen in ids.items() if len(seen) != 1} == {}
    assert [survivor.tracebacks() for survivor in survivors] == [[], []]
    invariants(database if "://" in database else tmp_path / database, load_config(config))


def test_healthz_names_the_node_that_answers_and_status_lists_the_nodes(
    tmp_path: Path, feed_server: FeedServer, daemons: list[Daemon]
) -> None:
    port = free_port()
    feeds = {"Wire": feed_server.route("/wire.xml", _story(1))}
    config = _write_config(
        tmp_path,
        "cluster.db",
        feeds,
        cluster={"node": "desk-1", "lease": f"{LEASE:g}s"},
        http={"listen": f"127.0.0.1:{port}"},
    )
    # Another node, on another host, silent for five minutes.
    other = Store.open(tmp_path / "cluster.db")
    try:
        now = datetime.now(UTC)
        ago = now - timedelta(minutes=5)
        other.heartbeat("desk-2", "elsewhere", 4242, ago - timedelta(hours=1), ago)
    finally:
        other.close()
    daemon = Daemon(config)
    daemons.append(daemon)
    _wait(lambda: "/wire.xml" in _requests_by_path(feed_server), 30, "the feed polled")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        health = json.loads(response.read())
    assert health["node"] == "desk-1"
    shown = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "status"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    lines = shown[shown.index("nodes:") :].splitlines()
    assert lines[0] == "nodes:      2 running"
    assert lines[1].startswith(f"  desk-1 (host {socket.gethostname()}, pid {daemon.pid}):")
    assert "SILENT" not in lines[1]
    assert lines[2] == (
        "  desk-2 (host elsewhere, pid 4242): last heartbeat 5m ago, 0 feeds leased SILENT (dead?)"
    )
    nodes = {n["name"]: n for n in _status(config)["nodes"]}
    assert (nodes["desk-1"]["silent"], nodes["desk-2"]["silent"]) == (False, True)
    # A second daemon under the same name would poll the first one's feeds: it refuses.
    (tmp_path / "twin").mkdir()
    twin_config = _write_config(
        tmp_path / "twin",
        str(tmp_path / "cluster.db"),
        feeds,
        cluster={"node": "desk-1", "lease": f"{LEASE:g}s"},
    )
    twin = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(twin_config), "run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert twin.returncode == 1
    assert (
        f"cluster.node 'desk-1' is in use by a running daemon (host {socket.gethostname()},"
        f" pid {daemon.pid})" in twin.stderr
    )
    assert daemon.stop() == 0
    assert daemon.tracebacks() == []
