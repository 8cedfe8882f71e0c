"""`full_text` feeds: the article behind a headline is fetched, read and matched (field `content`).

A real server on 127.0.0.1 serves a headline-only feed and the article pages it links to; the
daemon's own `poll_once` and `read_queued_articles` (what `poll-once` runs) do the work over a
real SQLite file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from conftest import FeedServer, ago, rss, write_config
from receivers import Receiver
from structlog.testing import capture_logs

from monitor.article import ArticleJob, extract_text
from monitor.cli import cli
from monitor.config import Config
from monitor.service import Monitor, PollReport
from monitor.store import Store
from monitor.store.articles import CachedArticle

HEADLINE = "Road reopens after three weeks of repairs"


def article_page(body: str, *, padding: int = 0) -> bytes:
    """An article page as a news site serves one: navigation, the story, comments, a footer."""
    paragraphs = "".join(f"<p>{sentence}</p>" for sentence in body.split(". "))
    filler = "".join(
        f"<p>Part {n}: " + "more about the district's markets and the weather. " * 20 + "</p>"
        for n in range(padding)
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Road reopens</title></head>"
        "<body><nav><a href='/'>Home</a> | <a href='/world'>World</a></nav>"
        f"<article><h1>{HEADLINE}</h1>{paragraphs}{filler}</article>"
        "<div class='comments'><p>Reader: first!</p></div>"
        "<footer>Copyright the desk</footer></body></html>"
    ).encode()


STORY = (
    "Officials in Khanaqin said on Tuesday that the main road to the border crossing reopened "
    "after three weeks of repairs. Traders said the closure had doubled the price of fruit in "
    "the district's markets. The provincial council promised to finish the remaining work on "
    "the bridge before the rains begin"
)
QUIET = (
    "Officials said on Tuesday that the main road reopened after three weeks of repairs. "
    "Traders said the closure had doubled the price of fruit in the markets. The council "
    "promised to finish the remaining work on the bridge before the rains begin"
)


def headline_feed(server: FeedServer, path: str, links: list[str], title: str = HEADLINE) -> str:
    """A feed of headlines only: a title and a link per item, no summary."""
    items = [{"title": title, "link": link, "guid": f"{path}#{n}"} for n, link in enumerate(links)]
    return server.route(path, rss(items))


def make(tmp_path: Path, feeds: list[dict[str, Any]], **overrides: Any) -> Config:
    return write_config(tmp_path, feeds=feeds, watchlists={"khanaqin": ["Khanaqin"]}, **overrides)


async def poll_and_read(config: Config, *names: str) -> list[PollReport]:
    async with Monitor(config, parse_workers=1) as monitor:
        reports = await monitor.poll_once(list(names) or None)
        await monitor.read_queued_articles()
        return reports


def alerts(config: Config) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        async with Monitor(config, parse_workers=1) as monitor:
            return monitor.store.alerts()

    return asyncio.run(read())


def article_rows(config: Config) -> list[tuple[str, str | None, str | None]]:
    async def read() -> list[tuple[str, str | None, str | None]]:
        async with Monitor(config, parse_workers=1) as monitor:
            rows = monitor.store.db.execute("SELECT url, text, error FROM articles").fetchall()
            return [tuple(row) for row in rows]

    return asyncio.run(read())


def test_an_article_whose_body_names_a_watch_term_alerts_with_field_content(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    link = feed_server.route("/news/1.html", article_page(STORY), content_type="text/html")
    feed = headline_feed(feed_server, "/feed.xml", [link])
    config = make(tmp_path, [{"name": "desk", "url": feed, "full_text": True}])

    [report] = asyncio.run(poll_and_read(config))

    # The poll itself matched nothing: the headline does not name the place.
    assert (report.outcome, report.new_items, report.alerts) == ("new", 1, 0)
    [alert] = alerts(config)
    assert alert["watchlist"] == "khanaqin"
    assert alert["item"]["title"] == HEADLINE
    assert [(m["form"], m["field"]) for m in alert["matches"]] == [("Khanaqin", "content")]
    [(url, text, error)] = article_rows(config)
    assert url == f"https://127.0.0.1:{feed_server.port}/news/1.html"
    assert text is not None and "Officials in Khanaqin" in text
    assert error is None
    # trafilatura kept the story and left the page's furniture and comments out.
    assert "Reader: first!" not in text and "Copyright" not in text


def test_an_article_is_fetched_once_across_polls_and_feeds(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    link = feed_server.route("/news/1.html", article_page(STORY), content_type="text/html")
    first = headline_feed(feed_server, "/a.xml", [link])
    # Another desk links the same story with a tracking parameter: one canonical URL.
    second = headline_feed(feed_server, "/b.xml", [link + "?utm_source=rss"])
    config = make(
        tmp_path,
        [
            {"name": "a", "url": first, "full_text": True},
            {"name": "b", "url": second, "full_text": True},
        ],
    )

    asyncio.run(poll_and_read(config, "a"))
    asyncio.run(poll_and_read(config, "a", "b"))
    asyncio.run(poll_and_read(config))

    assert len(feed_server.requests_for("/news/1.html")) == 1
    assert len(feed_server.requests_for("/b.xml")) == 2
    # One story, one alert, though both feeds' items read its text.
    assert [a["watchlist"] for a in alerts(config)] == ["khanaqin"]


def test_two_feeds_polled_together_share_one_fetch_of_their_article(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    link = feed_server.route(
        "/news/1.html", article_page(STORY), content_type="text/html", delay=0.2
    )
    config = make(
        tmp_path,
        [
            {"name": "a", "url": headline_feed(feed_server, "/a.xml", [link]), "full_text": True},
            {"name": "b", "url": headline_feed(feed_server, "/b.xml", [link]), "full_text": True},
        ],
    )

    asyncio.run(poll_and_read(config))

    assert len(feed_server.requests_for("/news/1.html")) == 1
    assert len(alerts(config)) == 1


def test_a_feed_without_full_text_never_fetches_its_articles(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    link = feed_server.route("/news/1.html", article_page(STORY), content_type="text/html")
    config = make(tmp_path, [{"name": "desk", "url": headline_feed(feed_server, "/f.xml", [link])}])

    [report] = asyncio.run(poll_and_read(config))

    assert report.new_items == 1
    assert feed_server.requests_for("/news/1.html") == []
    assert alerts(config) == []


def test_backfilled_items_of_a_first_poll_are_not_read(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    link = feed_server.route("/news/1.html", article_page(STORY), content_type="text/html")
    old = [{"title": HEADLINE, "link": link, "guid": "old", "pubDate": ago(days=3)}]
    feed = feed_server.route("/f.xml", rss(old))
    config = make(tmp_path, [{"name": "desk", "url": feed, "full_text": True}])

    [report] = asyncio.run(poll_and_read(config))

    assert report.new_items == 1
    assert feed_server.requests_for("/news/1.html") == []


def _arrivals(
    tmp_path: Path, feed_server: FeedServer, pages: int, per_host: int, delay: float
) -> list[float]:
    """When each of `pages` slow article pages was asked for, by the server's clock."""
    links = [
        feed_server.route(
            f"/news/{n}.html", article_page(QUIET), content_type="text/html", delay=delay
        )
        for n in range(pages)
    ]
    feed = headline_feed(feed_server, "/f.xml", links)
    config = make(
        tmp_path, [{"name": "desk", "url": feed, "full_text": True}], polling={"per_host": per_host}
    )
    asyncio.run(poll_and_read(config))
    return sorted(r.at for r in feed_server.requests if r.path.startswith("/news/"))


def test_articles_take_turns_on_their_host(tmp_path: Path, feed_server: FeedServer) -> None:
    first, second = _arrivals(tmp_path, feed_server, 2, per_host=1, delay=0.3)
    assert second - first > 0.25


def test_at_most_four_articles_are_read_at_once(tmp_path: Path, feed_server: FeedServer) -> None:
    arrivals = _arrivals(tmp_path, feed_server, 6, per_host=8, delay=1.0)
    # Four at once, before the first is answered; the fifth only once one of them was.
    assert arrivals[3] - arrivals[0] < 0.9
    assert arrivals[4] - arrivals[0] > 0.9


def test_beyond_the_queue_s_bound_articles_are_skipped_and_logged(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    # 201 new items at once: 200 articles wait or are read, one is skipped. Unrouted pages
    # answer 404 at once, which is all this needs.
    links = [feed_server.url(f"/news/{n}.html") for n in range(201)]
    feed = headline_feed(feed_server, "/f.xml", links)
    config = make(tmp_path, [{"name": "desk", "url": feed, "full_text": True}])

    with capture_logs() as logs:
        [report] = asyncio.run(poll_and_read(config))

    assert report.new_items == 201
    assert [e for e in logs if e["event"] == "article.queue_full"] == [
        {"event": "article.queue_full", "log_level": "warning", "skipped": 1, "queue": 200}
    ]
    read = [r for r in feed_server.requests if r.path.startswith("/news/")]
    assert len(read) == 200
    assert {error for _, _, error in article_rows(config)} == {"HTTP 404 Not Found"}


def _failed_article(tmp_path: Path, feed_server: FeedServer, **reply: Any) -> str:
    """Poll a feed whose one article fails as `reply` makes it; returns the cached error."""
    link = feed_server.route("/news/1.html", **reply)
    feed = headline_feed(feed_server, "/f.xml", [link])
    config = make(
        tmp_path, [{"name": "desk", "url": feed, "full_text": True}], polling={"timeout": "1s"}
    )

    [report] = asyncio.run(poll_and_read(config))

    # The feed's poll is unaffected: its item is stored, it did not fail.
    assert (report.outcome, report.new_items, report.alerts, report.error) == ("new", 1, 0, None)
    assert alerts(config) == []
    [(_, text, error)] = article_rows(config)
    assert text is None and error is not None
    return error


def test_an_article_over_the_size_cap_gives_no_alert(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    # Over 2 MB of HTML (the article cap), though under the feeds' polling.max_bytes.
    body = article_page(STORY, padding=2_500)
    assert len(body) > 2_000_000
    error = _failed_article(tmp_path, feed_server, body=body, content_type="text/html")
    assert "2,000,000-byte cap" in error


def test_an_article_streamed_past_the_size_cap_gives_no_alert(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    body = article_page(STORY, padding=2_500)
    error = _failed_article(
        tmp_path, feed_server, body=body, content_type="text/html", chunked=True, chunk_size=65536
    )
    assert "2,000,000-byte cap" in error


def test_an_article_that_stalls_times_out_and_gives_no_alert(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    error = _failed_article(
        tmp_path, feed_server, body=article_page(STORY), content_type="text/html", stall=True
    )
    assert error == "timed out after 1s"


def test_a_link_to_something_other_than_html_is_not_read(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    error = _failed_article(
        tmp_path, feed_server, body=b"%PDF-1.7 Khanaqin", content_type="application/pdf"
    )
    assert error == "not an HTML page (application/pdf)"


def test_an_article_link_into_a_private_network_is_refused_without_a_request(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    # The feed is on loopback: its articles may be too, but not on the private network.
    feed = headline_feed(feed_server, "/f.xml", ["http://10.255.255.1/news/1.html"])
    config = make(tmp_path, [{"name": "desk", "url": feed, "full_text": True}])

    [report] = asyncio.run(poll_and_read(config))

    assert (report.outcome, report.new_items) == ("new", 1)
    [(_, text, error)] = article_rows(config)
    assert text is None
    assert error is not None and "a private address" in error
    assert "polling.allow_private" in error


def test_a_reload_applies_new_polling_settings_to_articles(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feeds = [
        {
            "name": name,
            "url": headline_feed(
                feed_server,
                f"/{name}.xml",
                [feed_server.route(f"/news/{name}.html", article_page(STORY), stall=True)],
            ),
            "full_text": True,
        }
        for name in ("a", "b")
    ]
    before = make(tmp_path, feeds, polling={"timeout": "1s"})

    async def poll_reload_poll() -> None:
        async with Monitor(before, parse_workers=1) as monitor:
            await monitor.poll_once(["a"])
            await monitor.read_queued_articles()
            await monitor.reload(make(tmp_path, feeds, polling={"timeout": "2s"}))
            await monitor.poll_once(["b"])
            await monitor.read_queued_articles()

    asyncio.run(poll_reload_poll())

    errors = {url.rsplit("/", 1)[1]: error for url, _, error in article_rows(before)}
    assert errors == {"a.html": "timed out after 1s", "b.html": "timed out after 2s"}


def test_a_poll_stores_its_own_alerts_without_waiting_for_its_articles(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    # The article hangs; the headline itself names a watched place.
    link = feed_server.route(
        "/news/1.html", article_page(STORY), content_type="text/html", stall=True
    )
    feed = headline_feed(feed_server, "/f.xml", [link], title="Curfew declared in Diyala")
    config = write_config(
        tmp_path,
        feeds=[{"name": "desk", "url": feed, "full_text": True}],
        watchlists={"diyala": ["Diyala"], "khanaqin": ["Khanaqin"]},
        polling={"timeout": "20s"},
    )

    async def poll_only() -> tuple[PollReport, list[dict[str, Any]]]:
        async with Monitor(config, parse_workers=1) as monitor:
            [report] = await monitor.poll_once()
            # The article is still being read (the page stalls); closing the monitor cuts it.
            return report, monitor.store.alerts()

    report, stored = asyncio.run(poll_only())

    assert report.alerts == 1
    assert [a["watchlist"] for a in stored] == ["diyala"]
    assert article_rows(config) == []


def test_a_none_term_in_the_article_excludes_the_watchlist(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    link = feed_server.route(
        "/news/1.html",
        article_page(STORY + ". The drill in Khanaqin ended at noon"),
        content_type="text/html",
    )
    feed = headline_feed(feed_server, "/f.xml", [link])
    config = write_config(
        tmp_path,
        feeds=[{"name": "desk", "url": feed, "full_text": True}],
        watchlists=[{"name": "khanaqin", "terms": ["Khanaqin"], "none": ["drill"]}],
    )

    asyncio.run(poll_and_read(config))

    assert len(feed_server.requests_for("/news/1.html")) == 1
    assert alerts(config) == []


def test_poll_once_reads_articles_before_it_delivers(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    link = feed_server.route("/news/1.html", article_page(STORY), content_type="text/html")
    feed = headline_feed(feed_server, "/f.xml", [link])
    receiver = Receiver("webhook")
    try:
        config = make(
            tmp_path,
            [{"name": "desk", "url": feed, "full_text": True}],
            sinks=[{"name": "hook", "type": "webhook", "url": receiver.url()}],
        )
        result = CliRunner().invoke(cli, ["--config", str(config.source), "poll-once"])
        assert result.exit_code == 0, result.output
        assert "desk: 1 items, 1 new, 0 alerts" in result.stdout
        assert "deliveries: 1 sent" in result.stdout
        [arrival] = receiver.delivered
    finally:
        receiver.close()
    data = arrival.json["data"]
    assert data["alert"]["watchlist"] == "khanaqin"
    assert [(m["form"], m["field"]) for m in data["matches"]] == [("Khanaqin", "content")]


def test_the_daemon_reads_articles_and_delivers_their_alerts(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    link = feed_server.route("/news/1.html", article_page(STORY), content_type="text/html")
    feed = headline_feed(feed_server, "/f.xml", [link])
    receiver = Receiver("webhook")
    try:
        config = make(
            tmp_path,
            # A short interval: the first poll comes within a second of the start.
            [{"name": "desk", "url": feed, "full_text": True, "interval": "1s"}],
            sinks=[{"name": "hook", "type": "webhook", "url": receiver.url()}],
        )

        async def daemon() -> None:
            async with Monitor(config, parse_workers=1) as monitor:
                running = asyncio.create_task(monitor.run())
                while not receiver.delivered and not running.done():
                    await asyncio.sleep(0.05)
                monitor.stopping.set()
                await running

        asyncio.run(asyncio.wait_for(daemon(), 30))
        [arrival] = receiver.delivered
    finally:
        receiver.close()
    assert arrival.json["data"]["alert"]["watchlist"] == "khanaqin"


# Extraction --------------------------------------------------------------------------------


def test_extraction_keeps_the_story_and_cuts_it_at_the_content_limit() -> None:
    text, error = extract_text(article_page(STORY, padding=200), "https://desk.example/1")
    assert error is None and text is not None
    assert text.startswith(HEADLINE)
    assert "Officials in Khanaqin" in text
    assert len(text) == 20_000


def test_a_page_with_too_many_elements_is_not_extracted() -> None:
    # trafilatura takes minutes over pages like this one; they are refused before it starts.
    page = b"<html><body><article>" + b"<p>Khanaqin <b>a</b> <i>b</i></p>" * 6_000 + b"</article>"
    text, error = extract_text(page, "https://desk.example/1")
    assert text is None
    assert error is not None and error.startswith("page of 18,0")
    assert error.endswith(" elements is over the 15,000-element cap")


def test_a_page_with_no_main_text_says_so() -> None:
    page = b"<html><body><script>var story = 1;</script></body></html>"
    assert extract_text(page, "https://x.example/") == (
        None,
        "no main text found",
    )


def test_a_failed_article_is_read_again_after_an_hour_and_a_text_is_kept(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "monitor.db")
    url = "https://desk.example.org/story"
    try:
        store.record_article(CachedArticle(url, None, "timed out"), 1, "k", (), ago(hours=2))
        assert store.cached_article(url, retry_before=ago(hours=3)) is not None
        assert store.cached_article(url, retry_before=ago(hours=1)) is None

        store.record_article(CachedArticle(url, STORY, None), 1, "k", (), ago(minutes=1))
        store.record_article(CachedArticle(url, None, "timed out"), 1, "k", (), ago(seconds=1))
        cached = store.cached_article(url, retry_before=ago(seconds=0))
        assert cached is not None and (cached.text, cached.error) == (STORY, None)
    finally:
        store.close()


def test_retention_prunes_articles_read_before_the_cutoff(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "monitor.db")
    try:
        store.record_article(
            CachedArticle("https://a.example/old", STORY, None), 1, "k", (), ago(days=100)
        )
        store.record_article(
            CachedArticle("https://a.example/new", STORY, None), 1, "k", (), ago(days=1)
        )

        assert store.prune_articles(ago(days=90)) == 1
        assert store.cached_article("https://a.example/new", ago(days=0)) is not None
        assert store.cached_article("https://a.example/old", ago(days=200)) is None
    finally:
        store.close()


def test_a_link_that_cannot_be_read_is_passed_over_and_the_rest_are_read(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    link = feed_server.route("/news/1.html", article_page(STORY), content_type="text/html")
    config = make(tmp_path, [{"name": "desk", "url": link, "full_text": True}])
    jobs = [
        ArticleJob(1, "k1", broken, link, HEADLINE, "")
        for broken in (
            "http://[::1/broken",
            "http://example.org:99999/a",
            "mailto:desk@example.org",
        )
    ]

    async def submit() -> int:
        async with Monitor(config, parse_workers=1) as monitor:
            taken = monitor._articles.submit([*jobs, ArticleJob(2, "k2", link, link, HEADLINE, "")])
            await monitor.read_queued_articles()
            return taken

    with capture_logs() as logs:
        assert asyncio.run(submit()) == 1
    assert len(feed_server.requests_for("/news/1.html")) == 1
    assert not [e for e in logs if e["event"] == "article.crashed"]
