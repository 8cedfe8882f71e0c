"""A feed's redirects, through the whole poll: refused ones store nothing and move nothing.

The feed's own address is `localhost` (where the test server really is), and the resolver the
fetcher is given claims it is a public host, as a feed on the internet would be; the redirect
then points into 127.0.0.1, where a second server stands for a service on the machine.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FeedServer, rss

from monitor.config import PollingConfig
from monitor.fetch import Fetcher
from monitor.service import Monitor, PollReport

INSIDE = rss([{"title": "Khanaqin internal memo", "guid": "m-1", "link": "https://i.example/1"}])


def public_localhost(host: str) -> list[str]:
    if host == "localhost":
        return ["93.184.216.34"]
    raise OSError(f"no address for {host}")


@pytest.fixture
def inside() -> Iterator[FeedServer]:
    server = FeedServer()
    try:
        yield server
    finally:
        server.close()


def poll_twice(config: Any) -> list[PollReport]:
    def make_fetcher(polling: PollingConfig) -> Fetcher:
        return Fetcher(polling, resolve=public_localhost)

    async def main() -> list[PollReport]:
        async with Monitor(config, parse_workers=1, make_fetcher=make_fetcher) as monitor:
            return [*await monitor.poll_once(), *await monitor.poll_once()]

    return asyncio.run(main())


def feed_row(database: Path) -> tuple[Any, ...]:
    db = sqlite3.connect(database)
    try:
        return tuple(db.execute("SELECT moved_to, error_count FROM feeds").fetchone())
    finally:
        db.close()


def test_a_public_feed_moving_into_loopback_is_refused_and_not_remembered(
    feed_server: FeedServer, inside: FeedServer, make_config: Any
) -> None:
    feed_server.redirect("/feed.xml", inside.route("/memo.xml", INSIDE), status=301)
    url = f"http://localhost:{feed_server.port}/feed.xml"
    config = make_config(feeds={"Wire": url}, watchlists={"khanaqin": ["Khanaqin"]})
    reports = poll_twice(config)
    assert [r.outcome for r in reports] == ["failed", "failed"]
    assert reports[0].error == (
        "refused a redirect to 127.0.0.1: a loopback address, and the feed is not on one"
        " (polling.allow_private)"
    )
    assert inside.requests == []
    assert feed_row(config.database) == (None, 2)


def test_with_allow_private_the_same_move_is_followed_and_remembered(
    feed_server: FeedServer, inside: FeedServer, make_config: Any
) -> None:
    target = inside.route("/memo.xml", INSIDE)
    feed_server.redirect("/feed.xml", target, status=301)
    url = f"http://localhost:{feed_server.port}/feed.xml"
    config = make_config(
        feeds={"Wire": url},
        watchlists={"khanaqin": ["Khanaqin"]},
        polling={"allow_private": True},
    )
    reports = poll_twice(config)
    assert [(r.outcome, r.new_items) for r in reports] == [("new", 1), ("new", 0)]
    assert feed_row(config.database) == (target, 0)
    # The second poll went to the remembered address directly.
    assert len(feed_server.requests) == 1 and len(inside.requests) == 2


def test_a_remembered_address_is_held_to_the_rule_too(
    feed_server: FeedServer, inside: FeedServer, make_config: Any
) -> None:
    # A move remembered before the rule existed, or while allow_private was on.
    target = inside.route("/memo.xml", INSIDE)
    feed_server.redirect("/feed.xml", target, status=301)
    url = f"http://localhost:{feed_server.port}/feed.xml"
    allowed = make_config(feeds={"Wire": url}, polling={"allow_private": True})
    poll_twice(allowed)
    assert feed_row(allowed.database)[0] == target
    requests = len(inside.requests)

    config = make_config(feeds={"Wire": url})
    reports = poll_twice(config)
    assert [r.outcome for r in reports] == ["failed", "failed"]
    assert reports[0].error is not None and reports[0].error.startswith(
        "refused a redirect to 127.0.0.1: a loopback address"
    )
    assert len(inside.requests) == requests
