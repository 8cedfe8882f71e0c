"""parse.py: feed bytes → plain-text Items, on fixture documents in tests/fixtures/."""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import FetchError, NotAFeedError
from monitor.models import ParsedFeed
from monitor.parse import canonical_url, html_to_text, parse_feed, story_key

FIXTURES = Path(__file__).parent / "fixtures"
FEED_URL = "https://feeds.example.org/feed"


def parse(name: str, content_type: str | None = "application/xml") -> ParsedFeed:
    return parse_feed((FIXTURES / name).read_bytes(), content_type, FEED_URL)


# Formats -----------------------------------------------------------------------------------


def test_rss2_titles_and_summaries_are_plain_text() -> None:
    feed = parse("rss2_double_escaped_entities.xml", "application/rss+xml")
    assert feed.format == "rss20"
    assert feed.title == "Double Escape Daily"
    assert feed.warning is None
    second = feed.items[1]
    # CDATA HTML: tags dropped, <script> skipped, paragraphs become lines, &#8217; decoded.
    assert second.title == "Markets & prices steady in Erbil"
    assert second.summary == "Traders\u2019 stalls reopened.\nTomatoes & onions cost less."


def test_double_escaped_entities_are_decoded() -> None:
    first = parse("rss2_double_escaped_entities.xml").items[0]
    # `&amp;quot;` and `&amp;amp;` in the XML: escaped twice by the publisher.
    assert first.title == 'Governor calls the checkpoint "secure" & open'
    assert "&" not in first.summary.replace(" & ", "")
    assert "\u2014 traffic & trade resumed." in first.summary
    assert first.summary.endswith("\nSecond paragraph.")


def test_double_escaped_markup_becomes_plain_text() -> None:
    first = parse("rss2_double_escaped_entities.xml").items[0]
    assert first.summary == (
        "Officials said the road is not closed \u2014 traffic & trade resumed.\nSecond paragraph."
    )


def test_atom_html_content() -> None:
    feed = parse("atom_html_content.xml", "application/atom+xml")
    assert feed.format == "atom10"
    border, updated_only = feed.items
    assert border.guid == "tag:atom.example.net,2026-11-17:border"
    assert border.url == "https://atom.example.net/2026/11/17/border"
    assert border.title == "Border crossing reopens"
    assert border.summary == "The crossing reopened at dawn.\nTrucks first\nCars after noon"
    assert updated_only.summary == "An XHTML body."


def test_feed_title_is_plain_text() -> None:
    assert parse("atom_html_content.xml").title == "Atom & HTML content"


def test_rdf_rss1() -> None:
    feed = parse("rdf_rss1.xml", "application/rdf+xml")
    assert feed.format == "rss10"
    assert [(i.guid, i.title, i.summary) for i in feed.items] == [
        (
            "https://rdf.example.org/story/1",
            "Water levels rise at Darbandikhan dam",
            "Engineers open a second spillway.",
        ),
        (
            "https://rdf.example.org/story/2",
            "New bus line links Sulaymaniyah and Halabja",
            "Buses run every hour.",
        ),
    ]
    assert feed.items[0].published_at == datetime(2026, 11, 17, 6, 0, tzinfo=UTC)


def test_json_feed() -> None:
    feed = parse("jsonfeed_v1.json", "application/feed+json")
    assert feed.format == "json1"
    assert feed.title == "JSON Feed example"
    first, second, third = feed.items  # the non-object entry is skipped
    assert first.guid == "json-1"
    assert first.summary == "Forecasters expect heavy rain & wind."
    assert first.published_at == datetime(2026, 11, 17, 7, 0, tzinfo=UTC)
    assert first.story_key == "url:https://json.example.org/posts/1"
    assert second.guid == "https://json.example.org/posts/2"  # no id: the link
    assert second.summary == "Pupils returned on Sunday."
    assert third.url is None
    assert third.guid.startswith("sha256:")  # neither id nor link: a hash
    # A date without a zone is taken as UTC.
    assert third.published_at == datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def test_json_feed_is_recognised_without_a_json_content_type() -> None:
    feed = parse("jsonfeed_v1.json", "text/plain")
    assert feed.format == "json1"
    assert len(feed.items) == 3


def test_windows_1256_declared_only_in_the_http_header() -> None:
    content = (FIXTURES / "rss2_windows1256_header_only.xml").read_bytes()
    assert b"encoding" not in content.split(b"?>")[0]
    feed = parse_feed(content, "application/rss+xml; charset=windows-1256", FEED_URL)
    assert feed.title == "أخبار ديالى"
    (item,) = feed.items
    assert item.title == "مقتل انتحاري قرب مقر الحشد في خانقين"
    assert item.summary == "قال مسؤولون إن الوضع الأمني في محافظة ديالى ما زال هشاً."


def test_windows_1256_without_the_header_is_not_arabic() -> None:
    # Why the Content-Type must reach the parser: without it the bytes are misread.
    content = (FIXTURES / "rss2_windows1256_header_only.xml").read_bytes()
    feed = parse_feed(content, None, FEED_URL)
    assert "خانقين" not in feed.items[0].title


# Identity: guid and story_key --------------------------------------------------------------


def test_guid_falls_back_from_id_to_link_to_a_hash() -> None:
    feed = parse("rss2_no_guid_no_date.xml")
    guids = [item.guid for item in feed.items]
    assert guids[0] == "sparse-a"
    assert guids[1] == "https://sparse.example.org/b"
    assert guids[2].startswith("sha256:")
    assert guids[3].startswith("sha256:")
    assert guids[2] != guids[3]
    title = "Has neither guid nor link nor date"
    digest = hashlib.sha256(f"{title}\x00".encode()).hexdigest()[:32]
    assert guids[2] == f"sha256:{digest}"


def test_hash_guid_is_stable_across_parses() -> None:
    first = [i.guid for i in parse("rss2_no_guid_no_date.xml").items]
    again = [i.guid for i in parse("rss2_no_guid_no_date.xml", "text/xml").items]
    assert first == again


def test_items_without_title_or_summary_are_dropped() -> None:
    assert len(parse("rss2_no_guid_no_date.xml").items) == 4


def test_undated_items_have_no_published_at() -> None:
    assert {item.published_at for item in parse("rss2_no_guid_no_date.xml").items} == {None}


def test_linkless_items_get_a_title_story_key() -> None:
    items = parse("rss2_no_guid_no_date.xml").items
    assert items[0].story_key == "url:https://sparse.example.org/a"
    assert items[2].story_key.startswith("title:")
    assert story_key(None, "Has NEITHER guid, nor link nor date!") == story_key(
        None, "has neither guid nor link nor date"
    )


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "HTTP://WWW.Example.ORG/a/b/?utm_source=x&id=3&fbclid=abc&utm_medium=y#comments",
            "https://example.org/a/b?id=3",
        ),
        ("https://example.org/story?gclid=1&utm_campaign=z", "https://example.org/story"),
        ("https://example.org:443/a", "https://example.org/a"),
        ("http://example.org:8080/a/", "https://example.org:8080/a"),
        ("https://news.example.org/x?b=2&a=1", "https://news.example.org/x?b=2&a=1"),
        ("https://www.example.org", "https://example.org/"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_same_story_has_one_key_across_feeds() -> None:
    plain = "https://news.example.org/en/2026/11/17/khanaqin"
    tracked = "http://www.NEWS.example.org/en/2026/11/17/khanaqin/?utm_source=rss#top"
    assert story_key(plain, "One title") == story_key(tracked, "Another title")
    assert story_key(plain, "x") == f"url:{plain}"


# Dates -------------------------------------------------------------------------------------


def test_published_at_is_utc() -> None:
    items = parse("rss2_double_escaped_entities.xml").items
    # "Tue, 17 Nov 2026 06:20:00 +0300"
    assert items[0].published_at == datetime(2026, 11, 17, 3, 20, tzinfo=UTC)
    assert items[0].published_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    # "Mon, 16 Nov 2026 23:10:00 GMT"
    assert items[1].published_at == datetime(2026, 11, 16, 23, 10, tzinfo=UTC)


def test_atom_published_and_updated_are_utc() -> None:
    border, updated_only = parse("atom_html_content.xml").items
    assert border.published_at == datetime(2026, 11, 17, 1, 5, tzinfo=UTC)  # 04:05+03:00
    # No <published>: <updated> 2026-11-16T22:30:00-05:00.
    assert updated_only.published_at == datetime(2026, 11, 17, 3, 30, tzinfo=UTC)


# Broken and non-feeds ----------------------------------------------------------------------


def test_truncated_feed_still_yields_items_with_a_warning() -> None:
    feed = parse("rss2_truncated.xml", "application/rss+xml")
    assert feed.warning is not None
    assert "SAXParseException" in feed.warning
    assert [item.title for item in feed.items][:2] == [
        "First complete story",
        "Second complete story",
    ]
    assert feed.items[0].guid == "https://cutoff.example.org/1"


def test_html_page_is_not_a_feed() -> None:
    with pytest.raises(NotAFeedError, match="HTML page"):
        parse("html_not_a_feed.html", "text/html; charset=utf-8")


def test_html_page_is_not_a_feed_whatever_its_content_type() -> None:
    with pytest.raises(NotAFeedError):
        parse("html_not_a_feed.html", "application/rss+xml")


def test_not_a_feed_is_a_fetch_error() -> None:
    assert issubclass(NotAFeedError, FetchError)


@pytest.mark.parametrize("body", [b"", b"   \r\n\t"])
def test_empty_body_is_not_a_feed(body: bytes) -> None:
    with pytest.raises(NotAFeedError, match="empty"):
        parse_feed(body, "application/rss+xml", FEED_URL)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"status": "ok", "data": [1, 2, 3]}', "application/json"),
        (b'{"status": "ok"}', None),
        (b"[1, 2, 3]", "application/json"),
        (b'"just a string"', "application/json"),
        (b'{"version": 1.1, "items": []}', "application/json"),
        (b"{not json at all", "application/json"),
    ],
)
def test_random_json_is_not_a_feed(body: bytes, content_type: str | None) -> None:
    with pytest.raises(NotAFeedError):
        parse_feed(body, content_type, FEED_URL)


def test_plain_text_is_not_a_feed() -> None:
    with pytest.raises(NotAFeedError):
        parse_feed(b"Service temporarily unavailable", "text/plain", FEED_URL)


@pytest.mark.parametrize(
    "document",
    [
        {"version": "https://jsonfeed.org/version/1", "items": 5},
        {
            "version": "https://jsonfeed.org/version/1",
            "items": [{"id": "a", "title": "x", "url": 123}],
        },
    ],
)
def test_json_feed_with_wrong_field_types_does_not_crash(document: object) -> None:
    # Either a (possibly empty) feed or NotAFeedError: never a TypeError from deep inside.
    with contextlib.suppress(NotAFeedError):
        parse_feed(json.dumps(document).encode(), "application/feed+json", FEED_URL)


# html_to_text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("", ""),
        ("plain words", "plain words"),
        ("<p>One</p><p>Two</p>", "One\nTwo"),
        ("a<br>b", "a\nb"),
        ("x &amp; y", "x & y"),
        ("x &amp;amp; y", "x & y"),
        ("&amp;quot;quoted&amp;quot;", '"quoted"'),
        ("<style>p {color: red}</style>Visible", "Visible"),
        ("spaced\u00a0\u00a0 out   words", "spaced out words"),
        ("<b>Khanaqin</b>&#8217;s", "Khanaqin\u2019s"),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup) == text
