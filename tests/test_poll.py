"""The whole pipeline, `Monitor.poll_once`, against a real HTTP server and a real SQLite file."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import FeedServer, ago, atom, json_feed, rdf, rss

from monitor.config import Config
from monitor.service import Monitor, PollReport

Reports = dict[str, PollReport]


@dataclass
class Outcome:
    """What a run of poll cycles did, read from the store before it closed."""

    cycles: list[Reports] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    healths: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    """`feed_health()` by feed name after each cycle."""
    alerts: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[tuple[str, str, str]] = field(default_factory=list)
    titles: dict[str, str | None] = field(default_factory=dict)

    @property
    def last(self) -> Reports:
        return self.cycles[-1]

    @property
    def health(self) -> dict[str, dict[str, Any]]:
        return self.healths[-1]


def poll(
    config: Config,
    cycles: int = 1,
    *,
    between: Callable[[int], None] | None = None,
    restart: bool = False,
) -> Outcome:
    """Run `cycles` poll cycles; `between(n)` runs before cycle n > 0.

    With `restart`, every cycle gets a fresh `Monitor` over the same database, as after a
    daemon restart; otherwise one `Monitor` serves them all.
    """
    outcome = Outcome()

    async def cycle(monitor: Monitor, n: int) -> None:
        if n and between is not None:
            between(n)
        started = time.monotonic()
        reports = await monitor.poll_once()
        outcome.seconds.append(time.monotonic() - started)
        outcome.cycles.append({r.feed: r for r in reports})
        outcome.healths.append({row["name"]: row for row in monitor.store.feed_health()})

    def snapshot(monitor: Monitor) -> None:
        store = monitor.store
        outcome.alerts = store.alerts()
        outcome.counts = store.counts()
        outcome.items = [
            dict(row)
            for row in store.db.query(
                "SELECT f.name AS feed, i.* FROM items i JOIN feeds f ON f.id = i.feed_id "
                "ORDER BY i.id"
            )
        ]
        outcome.deliveries = [
            (row[0], row[1], row[2])
            for row in store.db.execute(
                "SELECT a.watchlist, d.sink, d.status FROM deliveries d "
                "JOIN alerts a ON a.id = d.alert_id ORDER BY a.watchlist, d.sink"
            )
        ]
        outcome.titles = dict(store.db.execute("SELECT name, title FROM feeds").fetchall())

    async def main() -> None:
        if restart:
            for n in range(cycles):
                async with Monitor(config, parse_workers=1) as monitor:
                    await cycle(monitor, n)
                    snapshot(monitor)
        else:
            async with Monitor(config, parse_workers=1) as monitor:
                for n in range(cycles):
                    await cycle(monitor, n)
                snapshot(monitor)

    asyncio.run(main())
    return outcome


def story(n: int, title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": title,
        "link": f"https://news.example.org/story/{n}",
        "guid": f"story-{n}",
        "summary": f"Summary of story {n}.",
        **extra,
    }


WATCH = {"khanaqin": ["Khanaqin"]}
KHANAQIN = [
    story(1, "Checkpoint attack foiled in Khanaqin", pubDate=ago(minutes=30)),
    story(2, "Farmers begin the autumn sowing", pubDate=ago(hours=1)),
    story(3, "Khanaqin council meets on water supply", pubDate=ago(hours=2)),
]


def moment(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


# Conditional GET and deduplication ---------------------------------------------------------


@pytest.mark.parametrize("restart", [False, True], ids=["same-monitor", "after-restart"])
def test_304_creates_no_items(feed_server: FeedServer, make_config: Any, restart: bool) -> None:
    url = feed_server.route("/a.xml", rss(KHANAQIN), etag='"v1"')
    config = make_config(feeds={"a": url}, watchlists=WATCH)
    outcome = poll(config, 2, restart=restart)
    first, second = outcome.cycles[0]["a"], outcome.cycles[1]["a"]
    assert (first.outcome, first.http_status, first.items, first.new_items) == ("new", 200, 3, 3)
    assert first.alerts == 2
    assert (second.outcome, second.http_status) == ("not_modified", 304)
    assert (second.items, second.new_items, second.alerts) == (0, 0, 0)
    assert outcome.counts == {"feeds": 1, "items": 3, "alerts": 2, "deliveries": 0}
    assert feed_server.requests_for("/a.xml")[1].headers["if-none-match"] == '"v1"'
    assert outcome.health["a"]["last_status"] == 304
    assert outcome.health["a"]["error_count"] == 0


def test_repoll_without_validators_creates_no_duplicates(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route("/a.xml", rss(KHANAQIN))
    config = make_config(feeds={"a": url}, watchlists=WATCH)
    outcome = poll(config, 2)
    second = outcome.cycles[1]["a"]
    assert (second.outcome, second.http_status, second.items) == ("new", 200, 3)
    assert (second.new_items, second.alerts) == (0, 0)
    assert outcome.counts["items"] == 3
    assert outcome.counts["alerts"] == 2


def test_a_guid_repeated_inside_one_document_is_stored_once(
    feed_server: FeedServer, make_config: Any
) -> None:
    twice = [story(1, "Khanaqin market reopens"), story(1, "Khanaqin market reopens (updated)")]
    url = feed_server.route("/a.xml", rss(twice))
    outcome = poll(make_config(feeds={"a": url}, watchlists=WATCH))
    assert outcome.last["a"].new_items == 1
    assert [item["title"] for item in outcome.items] == ["Khanaqin market reopens"]
    assert outcome.counts["alerts"] == 1


def test_same_article_in_two_feeds_alerts_once_per_watchlist(
    feed_server: FeedServer, make_config: Any
) -> None:
    wire = feed_server.route(
        "/wire.xml",
        rss(
            [
                {
                    "title": "Blast at a Khanaqin checkpoint",
                    "link": "https://news.example.org/story/77",
                    "guid": "wire-77",
                    "summary": "Two wounded.",
                }
            ]
        ),
    )
    desk = feed_server.route(
        "/desk.xml",
        atom(
            [
                {
                    "title": "Khanaqin: two hurt in checkpoint blast",
                    # The same story: http/www/tracking/trailing slash all canonicalise away.
                    "link": "http://www.news.example.org/story/77/?utm_source=rss",
                    "guid": "urn:desk:0042",
                    "summary": "A blast wounded two at a checkpoint.",
                }
            ]
        ),
    )
    config = make_config(
        feeds={"wire": wire, "desk": desk},
        watchlists={"khanaqin": ["Khanaqin"], "blasts": ["blast"]},
    )
    outcome = poll(config)
    assert outcome.counts["items"] == 2
    assert sorted(a["watchlist"] for a in outcome.alerts) == ["blasts", "khanaqin"]
    assert len({a["story_key"] for a in outcome.alerts}) == 1
    assert sum(r.alerts for r in outcome.last.values()) == 2


# Encodings and formats ---------------------------------------------------------------------

ARABIC_TITLE = "اشتباك قرب خانقين بعد منتصف الليل"
ARABIC_SUMMARY = "أفادت مصادر محلية في محافظة ديالى بأن الطريق أعيد فتحه صباحاً."


@pytest.mark.parametrize(
    "content_type",
    ["application/rss+xml; charset=windows-1256", "text/xml; charset=windows-1256"],
)
def test_windows_1256_declared_only_in_the_header_decodes_and_matches(
    feed_server: FeedServer, make_config: Any, content_type: str
) -> None:
    body = rss(
        [story(1, ARABIC_TITLE, summary=ARABIC_SUMMARY)],
        title="أخبار المحافظة",
        encoding="cp1256",
        declare_encoding=False,
    )
    assert b"encoding" not in body.split(b"?>", 1)[0]
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    url = feed_server.route("/ar.xml", body, content_type=content_type)
    config = make_config(
        feeds=[{"name": "ar", "url": url, "language": "ar"}],
        watchlists={"khanaqin": ["Khanaqin", "خانقين"], "diyala": ["ديالى"]},
    )
    outcome = poll(config)
    assert outcome.last["ar"].outcome == "new"
    [item] = outcome.items
    assert (item["title"], item["summary"]) == (ARABIC_TITLE, ARABIC_SUMMARY)
    assert item["language"] == "ar"
    assert outcome.titles["ar"] == "أخبار المحافظة"
    forms = {a["watchlist"]: a["matches"][0]["form"] for a in outcome.alerts}
    assert forms == {"khanaqin": "خانقين", "diyala": "ديالى"}


def test_json_feed_atom_and_rdf_are_parsed(feed_server: FeedServer, make_config: Any) -> None:
    entries = [
        {"title": "Khanaqin bridge repaired", "summary": "Traffic resumes."},
        {"title": "Football league resumes", "summary": "Eight clubs take part."},
    ]

    def numbered(prefix: str) -> list[dict[str, Any]]:
        return [
            {**e, "guid": f"{prefix}-{n}", "link": f"https://{prefix}.example.org/{n}"}
            for n, e in enumerate(entries)
        ]

    feeds = {
        "json": feed_server.route(
            "/feed.json", json_feed(numbered("json"), title="J"), content_type="application/json"
        ),
        "atom": feed_server.route(
            "/atom.xml", atom(numbered("atom"), title="A"), content_type="application/atom+xml"
        ),
        "rdf": feed_server.route(
            "/rdf.xml", rdf(numbered("rdf"), title="R"), content_type="application/rdf+xml"
        ),
    }
    outcome = poll(make_config(feeds=feeds, watchlists=WATCH))
    for name in feeds:
        report = outcome.last[name]
        assert (report.outcome, report.items, report.new_items, report.alerts) == (
            "new",
            2,
            2,
            1,
        ), name
    assert outcome.titles == {"json": "J", "atom": "A", "rdf": "R"}
    stored = {(i["feed"], i["url"]): i for i in outcome.items}
    for name in feeds:
        item = stored[(name, f"https://{name}.example.org/0")]
        assert item["title"] == "Khanaqin bridge repaired"
        assert item["summary"] == "Traffic resumes."
        assert item["published_at"] is not None
    assert stored[("json", "https://json.example.org/0")]["guid"] == "json-0"
    assert stored[("rdf", "https://rdf.example.org/0")]["guid"] == "https://rdf.example.org/0"


def test_items_without_guid_fall_back_to_link_then_a_stable_hash(
    feed_server: FeedServer, make_config: Any
) -> None:
    items: list[dict[str, Any]] = [
        {"title": "Khanaqin road reopened", "link": "https://n.example.org/road"},
        {"title": "Khanaqin bulletin without a link", "summary": "No link here."},
        {"title": "Another bulletin without a link", "pubDate": None},
    ]
    url = feed_server.route("/a.xml", rss(items))  # no validators: every poll is a 200
    outcome = poll(make_config(feeds={"a": url}, watchlists=WATCH), 2)
    guids = [item["guid"] for item in outcome.items]
    assert guids[0] == "https://n.example.org/road"
    assert guids[1].startswith("sha256:")
    assert guids[2].startswith("sha256:")
    assert guids[1] != guids[2]
    second = outcome.cycles[1]["a"]
    assert (second.http_status, second.items, second.new_items) == (200, 3, 0)
    assert outcome.counts["items"] == 3
    assert outcome.counts["alerts"] == 2  # the undated item is stored without alerting


# Documents that are broken or not feeds ----------------------------------------------------


def test_truncated_xml_still_yields_its_complete_items(
    feed_server: FeedServer, make_config: Any
) -> None:
    whole = rss(KHANAQIN)
    cut = whole[: whole.index(b"Khanaqin council") + 8]  # inside the third item's title
    url = feed_server.route("/cut.xml", cut)
    outcome = poll(make_config(feeds={"cut": url}, watchlists=WATCH))
    report = outcome.last["cut"]
    assert report.outcome == "new"
    titles = [item["title"] for item in outcome.items]
    assert titles[:2] == [KHANAQIN[0]["title"], KHANAQIN[1]["title"]]
    assert outcome.health["cut"]["error_count"] == 0


def test_unescaped_ampersand_still_yields_the_items(
    feed_server: FeedServer, make_config: Any
) -> None:
    items = [
        story(1, "Police & army deploy in Khanaqin"),
        story(2, "Water board answers questions & complaints"),
    ]
    body = rss(items).replace(b"&amp;", b"&")
    assert b" & " in body
    url = feed_server.route("/amp.xml", body)
    outcome = poll(make_config(feeds={"amp": url}, watchlists=WATCH))
    assert outcome.last["amp"].outcome == "new"
    titles = [item["title"] for item in outcome.items]
    assert titles == [item["title"] for item in items]
    assert outcome.counts["alerts"] == 1
    assert outcome.health["amp"]["error_count"] == 0


def test_unescaped_ampersand_before_a_word_is_kept_verbatim(
    feed_server: FeedServer, make_config: Any
) -> None:
    body = rss([story(1, "Q&A with the Khanaqin water board")]).replace(b"&amp;", b"&")
    url = feed_server.route("/amp.xml", body)
    outcome = poll(make_config(feeds={"amp": url}))
    assert [item["title"] for item in outcome.items] == ["Q&A with the Khanaqin water board"]


def test_an_html_page_fails_as_not_a_feed_while_other_feeds_succeed(
    feed_server: FeedServer, make_config: Any
) -> None:
    page = b"<!DOCTYPE html><html><head><title>Home</title></head><body>Hi</body></html>"
    feeds = {
        "page": feed_server.route("/index.html", page, content_type="text/html; charset=utf-8"),
        "good": feed_server.route("/good.xml", rss(KHANAQIN)),
    }
    outcome = poll(make_config(feeds=feeds, watchlists=WATCH))
    page_report, good = outcome.last["page"], outcome.last["good"]
    assert page_report.outcome == "failed"
    assert page_report.error is not None and "not a feed" in page_report.error
    assert page_report.http_status == 200
    assert outcome.health["page"]["error_count"] == 1
    assert "not a feed" in outcome.health["page"]["last_error"]
    assert outcome.health["page"]["last_ok_at"] is None
    assert (good.outcome, good.new_items) == ("new", 3)
    assert outcome.health["good"]["error_count"] == 0


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "streamed"])
def test_a_response_over_max_bytes_is_aborted_and_the_feed_fails(
    feed_server: FeedServer, make_config: Any, chunked: bool
) -> None:
    big = rss([story(n, f"Story number {n}") for n in range(40)])
    assert len(big) > 4096
    feeds = {
        "big": feed_server.route("/big.xml", big, chunked=chunked),
        "small": feed_server.route("/small.xml", rss(KHANAQIN[:1])),
    }
    outcome = poll(make_config(feeds=feeds, watchlists=WATCH, polling={"max_bytes": 4096}))
    report = outcome.last["big"]
    assert report.outcome == "failed"
    assert report.error is not None and "4,096-byte cap" in report.error
    assert outcome.health["big"]["error_count"] == 1
    assert "cap" in outcome.health["big"]["last_error"]
    assert outcome.health["big"]["items"] == 0
    assert outcome.last["small"].outcome == "new"


# Timeouts and failures ---------------------------------------------------------------------


def test_a_stalling_server_times_out_without_holding_up_the_other_feeds(
    feed_server: FeedServer, make_config: Any
) -> None:
    feeds = {
        "stalled": feed_server.route("/stalled.xml", rss(KHANAQIN), stall=True),
        "slow-start": feed_server.route("/late.xml", rss(KHANAQIN), delay=30),
        "one": feed_server.route("/one.xml", rss(KHANAQIN[:1])),
        "two": feed_server.route("/two.xml", atom(KHANAQIN[1:])),
    }
    polling = {"timeout": "1s", "per_host": 4}  # per-host queueing is tested on its own
    outcome = poll(make_config(feeds=feeds, watchlists=WATCH, polling=polling))
    for name in ("stalled", "slow-start"):
        report = outcome.last[name]
        assert report.outcome == "failed", name
        assert report.error == "timed out after 1s"
        assert outcome.health[name]["error_count"] == 1
    assert outcome.last["one"].outcome == "new"
    assert outcome.last["two"].outcome == "new"
    assert outcome.last["one"].seconds < 0.9
    assert outcome.last["two"].seconds < 0.9
    assert outcome.seconds[0] < 2.0


def test_a_failure_counts_and_schedules_the_next_poll_later(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route("/a.xml", b"gone", status=503, content_type="text/plain")
    config = make_config(feeds={"a": url}, polling={"interval": "10m", "max_backoff": "6h"})
    before = datetime.now(UTC)
    outcome = poll(config, 2)
    row = outcome.health["a"]
    assert row["error_count"] == 2
    assert row["last_status"] == 503
    assert row["last_error"] == "HTTP 503 Service Unavailable"
    # Two failures: 2 × 10 minutes, ±10%.
    delay = moment(row["next_poll_at"]) - before
    assert timedelta(minutes=17) < delay < timedelta(minutes=23)


def test_retry_after_pushes_the_next_poll_back(feed_server: FeedServer, make_config: Any) -> None:
    url = feed_server.route(
        "/a.xml", b"", status=429, content_type=None, headers={"Retry-After": "3000"}
    )
    config = make_config(feeds={"a": url}, polling={"interval": "1m", "max_backoff": "6h"})
    before = datetime.now(UTC)
    outcome = poll(config)
    assert outcome.last["a"].http_status == 429
    delay = moment(outcome.health["a"]["next_poll_at"]) - before
    assert timedelta(seconds=2990) < delay < timedelta(seconds=3010)


@pytest.mark.parametrize("restart", [False, True], ids=["same-monitor", "after-restart"])
def test_server_error_backs_off_then_recovery_resets_the_error_count(
    feed_server: FeedServer, make_config: Any, restart: bool
) -> None:
    url = feed_server.sequence(
        "/a.xml",
        {"status": 500, "body": b"Internal Server Error", "content_type": "text/plain"},
        {"body": rss(KHANAQIN)},
    )
    config = make_config(feeds={"a": url}, watchlists=WATCH, polling={"interval": "10m"})
    before = datetime.now(UTC)
    outcome = poll(config, 2, restart=restart)
    failed, recovered = outcome.cycles[0]["a"], outcome.cycles[1]["a"]
    assert (failed.outcome, failed.http_status) == ("failed", 500)
    assert failed.error == "HTTP 500 Internal Server Error"
    row = outcome.healths[0]["a"]
    assert (row["error_count"], row["last_status"]) == (1, 500)
    assert row["last_error"] == "HTTP 500 Internal Server Error"
    assert row["last_ok_at"] is None
    assert moment(row["next_poll_at"]) > before + timedelta(minutes=8)

    assert (recovered.outcome, recovered.new_items, recovered.alerts) == ("new", 3, 2)
    row = outcome.healths[1]["a"]
    assert (row["error_count"], row["last_error"], row["last_status"]) == (0, None, 200)
    assert row["last_ok_at"] is not None
    assert moment(row["next_poll_at"]) > before + timedelta(minutes=9)


def test_connection_refused_marks_only_that_feed(feed_server: FeedServer, make_config: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    feeds = {
        "down": f"http://127.0.0.1:{port}/feed.xml",
        "up": feed_server.route("/a.xml", rss([])),
    }
    outcome = poll(make_config(feeds=feeds))
    assert outcome.last["down"].outcome == "failed"
    assert (outcome.last["down"].error or "").startswith("cannot connect")
    assert outcome.last["up"].outcome == "new"


# Redirects ---------------------------------------------------------------------------------


def test_a_permanent_redirect_is_remembered_and_polled_directly(
    feed_server: FeedServer, make_config: Any
) -> None:
    feed_server.route("/new.xml", rss(KHANAQIN), etag='"n1"')
    old = feed_server.redirect("/old.xml", "/new.xml", status=301)
    outcome = poll(make_config(feeds={"a": old}, watchlists=WATCH), 2, restart=True)
    assert outcome.cycles[0]["a"].outcome == "new"
    assert outcome.cycles[1]["a"].outcome == "not_modified"
    assert outcome.health["a"]["moved_to"] == feed_server.url("/new.xml")
    assert outcome.health["a"]["url"] == old
    assert [r.path for r in feed_server.requests] == ["/old.xml", "/new.xml", "/new.xml"]


def test_a_temporary_redirect_is_not_remembered(feed_server: FeedServer, make_config: Any) -> None:
    feed_server.route("/new.xml", rss(KHANAQIN))
    old = feed_server.redirect("/old.xml", "/new.xml", status=302)
    outcome = poll(make_config(feeds={"a": old}), 2)
    assert outcome.health["a"]["moved_to"] is None
    assert [r.path for r in feed_server.requests] == ["/old.xml", "/new.xml"] * 2


@pytest.mark.parametrize("kind", ["atom-id", "rss-guid"])
def test_guids_do_not_depend_on_the_url_the_feed_was_fetched_from(
    feed_server: FeedServer, make_config: Any, kind: str
) -> None:
    # Neither an Atom <id> nor an RSS <guid> (isPermaLink defaults to true) is always a URL.
    entries = [story(1, "Khanaqin water supply restored")]
    if kind == "atom-id":
        body = atom(entries)
    else:
        body = rss(entries).replace(b' isPermaLink="false"', b"")
    feed_server.route("/v1/feed.xml", body)
    feed_server.route("/v2/feed.xml", body)
    # A load balancer sends each poll somewhere else, temporarily.
    url = feed_server.sequence(
        "/feed.xml",
        {"status": 302, "headers": {"Location": "/v1/feed.xml"}},
        {"status": 302, "headers": {"Location": "/v2/feed.xml"}},
    )
    outcome = poll(make_config(feeds={"a": url}, watchlists=WATCH), 2)
    assert [item["guid"] for item in outcome.items] == ["story-1"]
    assert outcome.cycles[1]["a"].new_items == 0
    assert [r.path for r in feed_server.requests] == [
        "/feed.xml",
        "/v1/feed.xml",
        "/feed.xml",
        "/v2/feed.xml",
    ]


def test_a_relative_item_link_is_stored_as_an_absolute_url(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route(
        "/news/feed.xml", rss([{"title": "Khanaqin road reopened", "link": "/news/road"}])
    )
    outcome = poll(make_config(feeds={"a": url}))
    [item] = outcome.items
    assert item["url"] == feed_server.url("/news/road")
    assert item["story_key"] == f"url:https://127.0.0.1:{feed_server.port}/news/road"


def test_a_busy_host_queues_its_feeds_but_each_keeps_its_full_timeout(
    feed_server: FeedServer, make_config: Any
) -> None:
    feeds = {
        "stalled": feed_server.route("/stalled.xml", rss(KHANAQIN), stall=True),
        "queued": feed_server.route("/queued.xml", rss(KHANAQIN), delay=0.5),
    }
    polling = {"timeout": "1s", "per_host": 1}
    outcome = poll(make_config(feeds=feeds, polling=polling))
    assert outcome.last["stalled"].error == "timed out after 1s"
    queued = outcome.last["queued"]
    # It waited ~1 s for the host's only slot, then had 1 s of its own for a 0.5 s answer:
    # had its deadline started while it queued, it would have timed out. The server's own
    # clock (below) shows the wait, so no wall-clock bound on the test's side is needed.
    assert queued.outcome == "new"
    first, second = feed_server.requests
    assert (first.path, second.path) == ("/stalled.xml", "/queued.xml")
    assert second.at - first.at > 0.9


# Backfill and deliveries -------------------------------------------------------------------


def test_first_poll_alerts_only_recent_items_then_every_new_item(
    feed_server: FeedServer, make_config: Any
) -> None:
    first_document = [
        story(1, "Khanaqin market fire put out", pubDate=ago(hours=2)),
        story(2, "Khanaqin schools close for the holiday", pubDate=ago(days=3)),
        story(3, "Khanaqin bulletin with no date", pubDate=None),
    ]
    later = story(4, "Khanaqin archive story surfaces", pubDate=ago(days=5))
    url = feed_server.route("/a.xml", rss(first_document))

    def publish_more(n: int) -> None:
        feed_server.route("/a.xml", rss([later, *first_document]))

    config = make_config(feeds={"a": url}, watchlists=WATCH, polling={"backfill": "24h"})
    outcome = poll(config, 2, between=publish_more)
    first, second = outcome.cycles[0]["a"], outcome.cycles[1]["a"]
    assert (first.new_items, first.alerts) == (3, 1)
    assert (second.new_items, second.alerts) == (1, 1)
    alerted = sorted(a["item"]["title"] for a in outcome.alerts)
    assert alerted == ["Khanaqin archive story surfaces", "Khanaqin market fire put out"]
    assert outcome.counts["items"] == 4


def test_backfill_window_applies_until_the_first_successful_poll(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.sequence(
        "/a.xml",
        {"status": 502, "content_type": "text/plain"},
        {"body": rss([story(1, "Old Khanaqin story", pubDate=ago(days=10))])},
    )
    config = make_config(feeds={"a": url}, watchlists=WATCH, polling={"backfill": "1d"})
    outcome = poll(config, 2)
    assert outcome.cycles[0]["a"].outcome == "failed"
    assert (outcome.cycles[1]["a"].new_items, outcome.cycles[1]["a"].alerts) == (1, 0)


def test_each_report_gets_one_pending_delivery_per_sink(
    feed_server: FeedServer, make_config: Any
) -> None:
    """An item matching two watchlists is one report: one delivery per sink, not per alert."""
    url = feed_server.route(
        "/a.xml",
        rss(
            [
                story(1, "Khanaqin checkpoint attack foiled", summary="Diyala police said."),
                story(2, "Khanaqin road works finished"),
            ]
        ),
    )
    config = make_config(
        feeds={"a": url},
        watchlists=[
            {"name": "khanaqin", "terms": ["Khanaqin"]},
            {"name": "diyala", "terms": ["Diyala"], "notify": ["one"]},
        ],
        sinks=[
            {"name": "one", "type": "webhook", "url": "http://127.0.0.1:9/one"},
            {"name": "two", "type": "webhook", "url": "http://127.0.0.1:9/two"},
        ],
    )
    outcome = poll(config, 2)
    assert outcome.counts["alerts"] == 3
    assert outcome.deliveries == [
        ("khanaqin", "one", "pending"),
        ("khanaqin", "one", "pending"),
        ("khanaqin", "two", "pending"),
        ("khanaqin", "two", "pending"),
    ]
    assert outcome.counts["deliveries"] == 4
    assert [r.path for r in feed_server.requests] == ["/a.xml", "/a.xml"]


def test_poll_once_polls_only_the_named_feeds(feed_server: FeedServer, make_config: Any) -> None:
    feeds = {
        "a": feed_server.route("/a.xml", rss(KHANAQIN)),
        "b": feed_server.route("/b.xml", rss(KHANAQIN)),
    }
    config = make_config(feeds=feeds)

    async def main() -> list[PollReport]:
        async with Monitor(config, parse_workers=1) as monitor:
            return await monitor.poll_once(["b"])

    reports = asyncio.run(main())
    assert [r.feed for r in reports] == ["b"]
    assert [r.path for r in feed_server.requests] == ["/b.xml"]


def test_a_large_feed_is_parsed_in_a_worker_process(
    feed_server: FeedServer, make_config: Any
) -> None:
    many = [
        story(n, f"Khanaqin bulletin number {n}", summary="Filler text. " * 20) for n in range(300)
    ]
    body = rss(many)
    page = b"<!DOCTYPE html><html><body>" + b"<p>filler</p>" * 10_000 + b"</body></html>"
    assert len(body) > 64_000 and len(page) > 64_000  # over the inline-parse threshold
    feeds = {
        "big": feed_server.route("/big.xml", body),
        "page": feed_server.route("/page.html", page, content_type="text/html"),
    }
    config = make_config(feeds=feeds, watchlists=WATCH)

    async def main() -> list[PollReport]:
        async with Monitor(config, parse_workers=2) as monitor:
            return await monitor.poll_once()

    reports = {r.feed: r for r in asyncio.run(main())}
    assert (reports["big"].outcome, reports["big"].new_items, reports["big"].alerts) == (
        "new",
        300,
        300,
    )
    assert reports["page"].outcome == "failed"
    assert reports["page"].error == "not a feed: the server sent an HTML page"
