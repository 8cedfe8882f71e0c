"""Item fields through the whole poll, on feeds served on 127.0.0.1: a bad field drops that
field, never the item or the feed; the article body (`content`) is matched."""

from __future__ import annotations

import asyncio
import email.utils
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from conftest import FeedServer, ago, json_feed, rss

from monitor.cli import cli
from monitor.config import Config
from monitor.service import Monitor, PollReport
from monitor.store import iso

WATCH = {"khanaqin": ["Khanaqin"]}


def poll_once(config: Config) -> tuple[PollReport, list[dict[str, Any]], list[dict[str, Any]]]:
    """One cycle over the one feed: its report, the items stored, the alerts."""

    async def main() -> tuple[PollReport, list[dict[str, Any]], list[dict[str, Any]]]:
        async with Monitor(config, parse_workers=1) as monitor:
            (report,) = await monitor.poll_once()
            items = [
                dict(row)
                for row in monitor.store.db.query(
                    "SELECT guid, url, title, summary, published_at, story_key FROM items "
                    "ORDER BY id"
                )
            ]
            return report, items, monitor.store.alerts()

    return asyncio.run(main())


def test_an_out_of_range_json_feed_date_fails_neither_the_item_nor_the_feed(
    feed_server: FeedServer, make_config: Any
) -> None:
    now = ago(minutes=10)
    url = feed_server.route(
        "/feed.json",
        json_feed(
            [
                {
                    "guid": "late",
                    "title": "Khanaqin: the end of time",
                    "pubDate": "9999-12-31T23:59:59-12:00",
                },
                {
                    "guid": "early",
                    "title": "Khanaqin: the dawn of time",
                    "pubDate": "0001-01-01T00:00:00+01:00",
                },
                {"guid": "valid", "title": "Khanaqin market reopens", "pubDate": now},
            ]
        ),
        content_type="application/feed+json",
    )
    report, items, alerts = poll_once(make_config(feeds={"json": url}, watchlists=WATCH))
    assert (report.outcome, report.new_items, report.error) == ("new", 3, None)
    assert [(i["guid"], i["published_at"]) for i in items] == [
        ("late", None),
        ("early", None),
        ("valid", iso(now)),
    ]
    # A first poll: undated items are stored, not alerted (backfill); the dated one alerts.
    assert [a["item"]["title"] for a in alerts] == ["Khanaqin market reopens"]


def test_an_rss_date_in_year_0001_is_dropped_not_stored_as_year_0100(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route(
        "/rss.xml",
        rss(
            [
                {
                    "guid": "old",
                    "title": "Undated really",
                    "pubDate": "Mon, 01 Jan 0001 00:00:00 +0100",
                },
                {"guid": "new", "title": "Dated", "pubDate": ago(minutes=5)},
            ]
        ),
        content_type="application/rss+xml",
    )
    report, items, _ = poll_once(make_config(feeds={"rss": url}, watchlists=WATCH))
    assert (report.outcome, report.new_items) == ("new", 2)
    assert items[0]["published_at"] is None
    assert items[1]["published_at"] is not None


def test_a_link_that_cannot_be_read_fails_neither_the_item_nor_the_feed(
    feed_server: FeedServer, make_config: Any
) -> None:
    url = feed_server.route(
        "/rss.xml",
        rss(
            [
                {"guid": "a", "title": "Khanaqin bad port", "link": "http://example.org:99999/a"},
                {"guid": "b", "title": "Khanaqin bad host", "link": "http://[::1/b"},
                {"guid": "c", "title": "Khanaqin good", "link": "https://example.org/c"},
            ]
        ),
        content_type="application/rss+xml",
    )
    report, items, _ = poll_once(make_config(feeds={"rss": url}, watchlists=WATCH))
    assert (report.outcome, report.new_items, report.alerts) == ("new", 3, 3)
    assert [i["url"] for i in items] == [
        "http://example.org:99999/a",
        None,
        "https://example.org/c",
    ]
    assert [i["story_key"][:6] for i in items] == ["title:", "title:", "url:ht"]


def _rss_with_content(title: str, teaser: str, body: str) -> bytes:
    date = email.utils.format_datetime(ago(minutes=15), usegmt=True)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>Body feed</title><link>https://body.example.org/</link><description>d</description>
<item><title>{title}</title><link>https://body.example.org/news/1</link>
<guid isPermaLink="false">body-1</guid><pubDate>{date}</pubDate>
<description>{teaser}</description>
<content:encoded><![CDATA[{body}]]></content:encoded></item>
</channel></rss>""".encode()


def test_a_term_only_in_the_article_body_alerts_and_the_message_keeps_the_teaser(
    feed_server: FeedServer, make_config: Any
) -> None:
    document = _rss_with_content(
        "Security tightened on the eastern road",
        "Checkpoints were reinforced overnight.",
        "<p>Checkpoints were reinforced overnight.</p><p>Officials in <b>Khanaqin</b> said so.</p>",
    )
    url = feed_server.route("/body.xml", document, content_type="application/rss+xml")
    report, items, alerts = poll_once(make_config(feeds={"body": url}, watchlists=WATCH))
    assert (report.outcome, report.alerts) == ("new", 1)
    (alert,) = alerts
    assert [(m["term"], m["form"], m["field"]) for m in alert["matches"]] == [
        ("Khanaqin", "Khanaqin", "content")
    ]
    assert alert["item"]["summary"] == "Checkpoints were reinforced overnight."
    assert items[0]["summary"] == "Checkpoints were reinforced overnight."


def test_analyze_command_reads_content(tmp_path: Path, make_config: Any) -> None:
    make_config(watchlists=WATCH)
    record = {"id": 1, "title": "Roads", "summary": "Teaser.", "content": "In Khanaqin today."}
    result = CliRunner().invoke(
        cli, ["--config", str(tmp_path / "config.yaml"), "analyze"], input=json.dumps(record)
    )
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["matches"] == [
        {"watchlist": "khanaqin", "term": "Khanaqin", "form": "Khanaqin", "field": "content"}
    ]
