"""parse.py: feed bytes → plain-text Items, on fixture documents in tests/fixtures/."""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import json_feed, rss

from monitor.errors import FetchError, NotAFeedError
from monitor.models import ParsedFeed
from monitor.parse import CONTENT_CHARS, canonical_url, html_to_text, parse_feed, story_key

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
        ("https://news.example.org/x?b=2&a=1", "https://news.example.org/x?a=1&b=2"),
        ("https://news.example.org/x?utm_source=rss", "https://news.example.org/x"),
        ("https://News.Example.org/a%2fb%7e", "https://news.example.org/a%2Fb~"),
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


SORANI_PATH = "/هەواڵ/خانەقین"
SORANI_ENCODED = "/%D9%87%DB%95%D9%88%D8%A7%DA%B5/%D8%AE%D8%A7%D9%86%DB%95%D9%82%DB%8C%D9%86"


@pytest.mark.parametrize(
    "spelling",
    [
        f"https://ckb.example.org{SORANI_PATH}?id=7&lang=ckb",
        f"https://ckb.example.org{SORANI_ENCODED.lower()}?id=7&lang=ckb",
        f"https://ckb.example.org{SORANI_ENCODED}?id=7&lang=ckb",
        f"https://ckb.example.org{SORANI_ENCODED}?lang=ckb&id=7",
        f"http://WWW.ckb.example.org{SORANI_PATH}/?lang=ckb&utm_source=tg&id=7&fbclid=x#top",
    ],
)
def test_one_sorani_link_however_written_has_one_story_key(spelling: str) -> None:
    assert story_key(spelling, "any title") == (
        f"url:https://ckb.example.org{SORANI_ENCODED}?id=7&lang=ckb"
    )


@pytest.mark.parametrize("link", ["http://example.org:99999/a", "http://[::1/a", "http://[x]/"])
def test_a_broken_link_does_not_fail_the_feed(link: str) -> None:
    document = rss([{"title": "Broken link story", "guid": "broken", "link": link}])
    (item,) = parse_feed(document, "application/rss+xml", FEED_URL).items
    assert item.title == "Broken link story"
    assert item.story_key == story_key(None, "Broken link story")


# Content -----------------------------------------------------------------------------------


def test_content_encoded_is_read_beside_the_teaser() -> None:
    teaser, _, body_only = parse("rss2_teaser_and_content_encoded.xml").items
    assert teaser.summary == "Checkpoints were reinforced overnight."
    assert teaser.content == (
        "Checkpoints were reinforced overnight.\n"
        "Officials in Khanaqin said a suicide bomber was stopped at the gate."
    )
    # No description: the body is the summary, and is not repeated as content.
    assert body_only.summary == "The body is the summary when there is no description."
    assert body_only.content == ""


def test_atom_content_that_is_the_summary_is_not_repeated() -> None:
    border, updated_only = parse("atom_html_content.xml").items
    assert border.content == updated_only.content == ""


def test_json_feed_content_beside_a_summary() -> None:
    document: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [
            {
                "id": "1",
                "title": "Roads",
                "summary": "Roads reopened.",
                "content_html": "<p>Roads reopened.</p><p>Khanaqin traffic resumed.</p>",
            },
            {"id": "2", "title": "Text", "summary": "Short.", "content_text": "Long text."},
            {"id": "3", "title": "Body only", "content_text": "Only a body."},
        ],
    }
    html_body, text_body, body_only = parse_feed(
        json.dumps(document).encode(), "application/feed+json", FEED_URL
    ).items
    assert (html_body.summary, html_body.content) == (
        "Roads reopened.",
        "Roads reopened.\nKhanaqin traffic resumed.",
    )
    assert (text_body.summary, text_body.content) == ("Short.", "Long text.")
    assert (body_only.summary, body_only.content) == ("Only a body.", "")


def test_content_is_cut_to_its_limit() -> None:
    body = "<p>" + "word " * (CONTENT_CHARS // 2) + "</p>"
    document = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [{"id": "1", "title": "Long", "summary": "Teaser.", "content_html": body}],
        }
    ).encode()
    (item,) = parse_feed(document, "application/feed+json", FEED_URL).items
    assert len(item.content) == CONTENT_CHARS
    assert item.content.startswith("word word")


def test_escaped_tag_in_a_description_stays_literal_text() -> None:
    item = parse("rss2_teaser_and_content_encoded.xml").items[1]
    assert item.summary == "Editors write <br /> for a line break."


# Dates -------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 17, 12, 0, tzinfo=UTC)
"""The clock of the date tests: dates more than a day after it are not plausible."""


@pytest.mark.parametrize(
    "date",
    [
        "9999-12-31T23:59:59-12:00",  # past datetime.max once in UTC
        "0001-01-01T00:00:00+01:00",  # before datetime.min once in UTC
        "0001-01-01T00:00:00Z",
        "1969-07-20T20:17:00Z",
        "1970-01-01T00:00:00Z",  # a zero timestamp
        "2026-11-18T12:00:01Z",  # more than a day ahead
        "2126-11-17T12:00:00Z",
    ],
)
def test_json_feed_item_with_an_implausible_date_is_kept_undated(date: str) -> None:
    document = json_feed(
        [
            {"guid": "bad", "title": "Bad date", "pubDate": date},
            {"guid": "good", "title": "Good date", "pubDate": "2026-11-17T10:00:00+03:00"},
        ]
    )
    feed = parse_feed(document, "application/feed+json", FEED_URL, now=NOW)
    bad, good = feed.items
    assert (bad.guid, bad.title, bad.published_at) == ("bad", "Bad date", None)
    assert good.published_at == datetime(2026, 11, 17, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "date",
    [
        "Mon, 01 Jan 0001 00:00:00 +0100",  # feedparser reads the year as 0100
        "Fri, 31 Dec 9999 23:59:59 -1200",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Thu, 19 Nov 2026 12:00:00 GMT",
    ],
)
def test_rss_item_with_an_implausible_date_is_kept_undated(date: str) -> None:
    document = rss(
        [
            {"guid": "bad", "title": "Bad date", "pubDate": date},
            {"guid": "good", "title": "Good date", "pubDate": "Tue, 17 Nov 2026 10:00:00 +0300"},
        ]
    )
    bad, good = parse_feed(document, "application/rss+xml", FEED_URL, now=NOW).items
    assert (bad.guid, bad.published_at) == ("bad", None)
    assert good.published_at == datetime(2026, 11, 17, 7, 0, tzinfo=UTC)


def test_a_date_a_few_hours_ahead_is_kept() -> None:
    # A publisher's clock or time zone a few hours off: the date is still the best there is.
    document = json_feed([{"guid": "a", "title": "Ahead", "pubDate": "2026-11-17T20:00:00Z"}])
    (item,) = parse_feed(document, "application/feed+json", FEED_URL, now=NOW).items
    assert item.published_at == datetime(2026, 11, 17, 20, 0, tzinfo=UTC)


def test_an_implausible_published_date_falls_back_to_the_modified_date() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [
            {
                "id": "a",
                "title": "Modified",
                "date_published": "0001-01-01T00:00:00+01:00",
                "date_modified": "2026-11-17T09:00:00Z",
            }
        ],
    }
    (item,) = parse_feed(
        json.dumps(document).encode(), "application/feed+json", FEED_URL, now=NOW
    ).items
    assert item.published_at == datetime(2026, 11, 17, 9, 0, tzinfo=UTC)


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
        # An escaped tag inside code is text the publisher meant to show.
        ("<p>Write <code>&lt;br /></code> here</p>", "Write <br /> here"),
        ("<pre>if a &lt;b&gt; c</pre>", "if a <b> c"),
        ("<p>Type <kbd>&amp;nbsp;</kbd></p>", "Type &nbsp;"),
        # Markup with no tag of its own, escaped once more: still markup.
        ("&lt;p&gt;One&lt;/p&gt;&lt;p&gt;Two&lt;/p&gt;", "One\nTwo"),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


def test_empty_pub_date_without_guid_hashes_without_a_warning() -> None:
    # feedparser maps `updated` to an empty `published`, with a DeprecationWarning (an error
    # under the test settings); the empty text hashes as no date at all.
    content = rss([{"title": "Undated", "pubDate": ""}])
    for fast_path in (True, False):
        (item,) = parse_feed(content, "application/rss+xml", FEED_URL, fast_path=fast_path).items
        expected = hashlib.sha256(b"Undated\x00").hexdigest()[:32]
        assert item.guid == f"sha256:{expected}"
