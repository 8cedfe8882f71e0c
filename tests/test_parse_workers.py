"""Analysis in the parse workers (issue 14): the same results as the analysis thread.

A large document is parsed in a worker process, and its new items are analyzed there too, so
both cores share parsing, language identification and matching. These tests hold the worker
path to the analysis thread's results item by item, over the benchmark's mixed-language feeds,
on a first poll and on a later one with new items, and across a reload of the watchlists.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sqlite3
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from conftest import FeedServer, Reply, write_config

from monitor import analyze
from monitor.analyze import Analyzer, analyze_in_worker, parse_and_analyze, worker_analyzer
from monitor.config import Config, WatchlistConfig
from monitor.service import Monitor

ROOT = Path(__file__).parent.parent
WATCH = {
    # Terms the generated feeds carry (bench/feedgen.py plants them), in several scripts.
    "khanaqin": ["Khanaqin"],
    "diyala": ["Diyala"],
    "bomber": ["suicide bomber"],
}


def _feedgen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("feedgen", ROOT / "bench" / "feedgen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["feedgen"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _rows(config: Config) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(config.database)
    try:
        return db.execute(
            "SELECT i.guid, i.language, i.language_confidence,"
            " (SELECT group_concat(a.watchlist, ',') FROM"
            "   (SELECT watchlist FROM alerts WHERE item_id = i.id ORDER BY watchlist) a)"
            " FROM items i ORDER BY i.guid"
        ).fetchall()
    finally:
        db.close()


def _run(config: Config, workers: int, rounds: int) -> list[list[tuple[Any, ...]]]:
    """Poll `rounds` times with `workers` parse workers; the stored rows after each."""
    seen = []

    async def main() -> None:
        async with Monitor(config, parse_workers=workers) as monitor:
            for _ in range(rounds):
                await monitor.poll_once()
                seen.append(_rows(config))

    asyncio.run(main())
    return seen


def _serve(server: FeedServer, feedgen: ModuleType, count: int) -> list[dict[str, str]]:
    """`count` generated feeds, each revised once after its first answer (3 new items), with
    their `language:` hints."""
    feeds = []
    for index in range(count):
        first, second = feedgen.generate_feed(index), feedgen.generate_feed(index, revision=1)
        assert len(first.body) > 4_000  # parsed in a worker, not inline
        url = server.sequence(
            first.path,
            Reply(first.body, content_type=first.content_type),
            Reply(second.body, content_type=second.content_type),
        )
        hint = {"language": first.hint} if first.hint else {}
        feeds.append({"name": first.name, "url": url, **hint})
    assert any("language" in feed for feed in feeds)
    return feeds


def test_items_analyzed_in_workers_are_stored_as_the_analysis_thread_stores_them(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feedgen = _feedgen()
    feeds = _serve(feed_server, feedgen, 12)
    polling = {"backfill": "36500d"}  # the generated items are dated 2025: alert on all
    inline = tmp_path / "inline"
    inline.mkdir()
    thread_config = write_config(inline, feeds=feeds, watchlists=WATCH, polling=polling)
    thread_rows = _run(thread_config, workers=1, rounds=2)

    feed_server.close()  # the same replies again, from the start, for the worker run
    again = FeedServer()
    try:
        feeds = _serve(again, feedgen, 12)
        pool = tmp_path / "pool"
        pool.mkdir()
        pool_config = write_config(pool, feeds=feeds, watchlists=WATCH, polling=polling)
        pool_rows = _run(pool_config, workers=2, rounds=2)
    finally:
        again.close()

    first, second = thread_rows
    assert len(first) == 12 * 30 and len(second) == 12 * 33  # three new items per feed
    assert any(row[3] for row in first) and {row[1] for row in first} >= {"ckb", "ar", "en"}
    assert pool_rows == thread_rows


def test_a_worker_asks_for_the_watchlists_once_and_rebuilds_when_they_change() -> None:
    feedgen = _feedgen()
    feed = feedgen.generate_feed(2)
    assert feed.hint == "kmr"
    analyze._built = analyze._built_key = None  # a fresh worker
    watch_a = _watchlists({"w": ["Khanaqin"]})
    watch_b = _watchlists({"w": ["Diyala"]})
    spec_a, spec_b = worker_analyzer(watch_a), worker_analyzer(watch_b)
    assert spec_a.key != spec_b.key
    assert worker_analyzer(_watchlists({"w": ["Khanaqin"]})).key == spec_a.key  # by content

    parsed, none = parse_and_analyze(spec_a.key, None, None, feed.body, feed.content_type, None)
    assert none is None and len(parsed.items) == 30  # no analyzer yet: the caller resends
    texts = [(i.title, i.summary, i.content) for i in parsed.items]
    with_a = analyze_in_worker(spec_a.key, spec_a.payload, feed.hint, texts)
    assert with_a == analyze_in_worker(spec_a.key, None, feed.hint, texts)  # kept
    reference_a = Analyzer(watch_a)
    assert with_a == tuple(reference_a.analyze(t, s, feed.hint, content=c) for t, s, c in texts)

    assert analyze_in_worker(spec_b.key, None, feed.hint, texts) is None  # changed: resend
    with_b = analyze_in_worker(spec_b.key, spec_b.payload, feed.hint, texts)
    reference_b = Analyzer(watch_b)
    assert with_b == tuple(reference_b.analyze(t, s, feed.hint, content=c) for t, s, c in texts)
    assert {m.term for a in with_a for m in a.matches} <= {"Khanaqin"}
    assert {m.term for a in with_b for m in a.matches} <= {"Diyala"}


def _watchlists(terms: dict[str, list[str]]) -> tuple[WatchlistConfig, ...]:
    return tuple(
        WatchlistConfig.model_validate({"name": name, "terms": words})
        for name, words in terms.items()
    )


def test_the_daemon_loads_no_language_profiles_while_its_workers_analyze(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feeds = _serve(feed_server, _feedgen(), 2)
    config = write_config(tmp_path, feeds=feeds, watchlists=WATCH, polling={"backfill": "36500d"})

    async def main() -> bool:
        async with Monitor(config, parse_workers=2) as monitor:
            await monitor.poll_once()
            await monitor.poll_once()  # new items: analyzed in a worker too
            # The daemon's own analyzer (translations, articles) only matches.
            return monitor.analyzer.identifier is None

    assert asyncio.run(main())
    rows = _rows(config)
    assert len(rows) == 66 and all(row[1] for row in rows)


def test_a_parse_pool_that_lost_a_worker_is_replaced(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """A worker killed under the pool (the OOM killer, say) breaks the whole pool: the poll
    that finds it fails, and the next one parses in a new pool instead of failing for ever."""
    import os
    import signal

    feedgen = _feedgen()
    feed = feedgen.generate_feed(0)
    url = feed_server.route(feed.path, feed.body, content_type=feed.content_type)
    config = write_config(tmp_path, feeds=[{"name": feed.name, "url": url}], watchlists=WATCH)

    async def main() -> list[str]:
        outcomes = []
        async with Monitor(config, parse_workers=2) as monitor:
            # A document of another feed parsed first, so the pool is running.
            monitor._parse_executor(len(feed.body))
            pool = monitor._parse_pool
            assert isinstance(pool, ProcessPoolExecutor)
            await asyncio.get_running_loop().run_in_executor(pool, abs, -1)
            for process in list(pool._processes.values()):  # type: ignore[attr-defined]
                os.kill(process.pid, signal.SIGKILL)
            while not pool._broken:  # type: ignore[attr-defined]  # the pool's own thread says
                await asyncio.sleep(0.01)
            for _ in range(2):
                (report,) = await monitor.poll_once()
                outcomes.append(report.outcome)
            assert monitor._parse_pool is not pool
        return outcomes

    assert asyncio.run(main()) == ["failed", "new"]
    assert len(_rows(config)) == 30
