"""A reload applies every polling setting to the next polls: the fetcher is rebuilt.

`Monitor.reload` with a config written to disk, then a poll against a real server on
127.0.0.1; what the server saw (headers, its own clock) says which settings were in force.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from conftest import FeedServer, rss, write_config

from monitor.service import Monitor, PollReport

FEED = rss([{"title": "Dam gates opened", "guid": "d-1", "link": "https://d.example.org/1"}])


def test_a_reload_applies_the_new_user_agent_timeout_and_size_cap(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.route("/feed.xml", FEED)
    feeds = {"Wire": url}
    config = write_config(tmp_path, feeds=feeds, polling={"timeout": "5s", "user_agent": "desk/1"})

    async def main() -> list[PollReport]:
        async with Monitor(config, parse_workers=1) as monitor:
            reports = await monitor.poll_once()
            new = write_config(
                tmp_path,
                feeds=feeds,
                polling={"timeout": "1s", "user_agent": "desk/2", "max_bytes": 2048},
            )
            await monitor.reload(new)
            feed_server.route("/feed.xml", FEED, delay=2.5)
            reports += await monitor.poll_once()
            feed_server.route("/feed.xml", FEED + b" " * 4096)
            reports += await monitor.poll_once()
            return reports

    first, slow, big = asyncio.run(main())
    assert first.outcome == "new"
    agents = [r.headers["user-agent"] for r in feed_server.requests_for("/feed.xml")]
    assert agents == ["desk/1", "desk/2", "desk/2"]
    assert (slow.outcome, slow.error) == ("failed", "timed out after 1s")
    assert big.outcome == "failed"
    assert big.error is not None and "2,048-byte cap" in big.error


def test_a_reload_applies_the_new_per_host_limit(feed_server: FeedServer, tmp_path: Path) -> None:
    feeds = {f"Wire {n}": feed_server.route(f"/{n}.xml", FEED, delay=0.5) for n in range(2)}
    config = write_config(tmp_path, feeds=feeds, polling={"per_host": 2})

    async def main() -> None:
        async with Monitor(config, parse_workers=1) as monitor:
            await monitor.poll_once()
            await monitor.reload(write_config(tmp_path, feeds=feeds, polling={"per_host": 1}))
            await monitor.poll_once()

    asyncio.run(main())
    first = sorted(r.at for r in feed_server.requests if r.path in ("/0.xml", "/1.xml"))
    before, after = first[:2], first[2:]
    # Both at once under per_host 2; one after the other's 0.5 s answer under per_host 1.
    assert before[1] - before[0] < 0.4
    assert after[1] - after[0] >= 0.5


def test_a_reload_that_changes_the_database_keeps_the_open_one_and_says_so(
    feed_server: FeedServer, tmp_path: Path, capsys: Any
) -> None:
    feeds = {"Wire": feed_server.route("/feed.xml", FEED)}
    config = write_config(tmp_path, feeds=feeds)

    async def main() -> tuple[tuple[str, ...], tuple[str, ...]]:
        async with Monitor(config, parse_workers=1) as monitor:
            await monitor.reload(write_config(tmp_path, feeds=feeds, database="other.db"))
            changed = monitor.restart_needed
            await monitor.poll_once()
            await monitor.reload(write_config(tmp_path, feeds=feeds))
            return changed, monitor.restart_needed

    changed, back = asyncio.run(main())
    assert changed == ("database",)
    assert back == ()
    assert not (tmp_path / "other.db").exists()


def test_a_reload_applies_a_new_jitter_to_the_feeds_schedule(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feeds = {f"f{n}": feed_server.route(f"/{n}.xml", FEED) for n in range(20)}

    async def main() -> list[set[float]]:
        polling = {"interval": "10m", "jitter": 0}
        async with Monitor(write_config(tmp_path, feeds=feeds, polling=polling)) as monitor:
            spreads = []
            for jitter in (0.2, 0):
                polling = {"interval": "10m", "jitter": jitter}
                await monitor.reload(write_config(tmp_path, feeds=feeds, polling=polling))
                await monitor.poll_once()
                # The schedule is in the store: each poll's write set the feed's next turn.
                spreads.append(
                    {
                        (
                            datetime.fromisoformat(row["next_poll_at"])
                            - datetime.fromisoformat(row["last_polled_at"])
                        ).total_seconds()
                        for row in monitor.store.feed_health()
                    }
                )
            return spreads

    jittered, exact = asyncio.run(main())
    # 10 minutes ± 20 %, spread (20 feeds drawing the same delay is out of the question); then
    # the interval itself, to the millisecond: no rounding to a whole second lengthens it.
    assert len(jittered) > 1 and all(480 <= s <= 720 for s in jittered), jittered
    assert exact == {600.0}, exact
