"""The fast RSS/Atom reader against feedparser: the same `ParsedFeed`, or it steps aside.

Every fixture, every feed the benchmark generates and documents from conftest's builders with
generated texts are parsed twice, `fast_path=True` and `fast_path=False` (feedparser alone),
and the results must be equal: items (guid, link, title, summary, content, date, story key),
feed title, version and warning.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import hypothesis
import pytest
from conftest import atom, rdf, rss
from hypothesis import strategies as st

from monitor import _fastfeed
from monitor.parse import parse_feed

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).parent.parent


def _feedgen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("feedgen", ROOT / "bench" / "feedgen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["feedgen"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _same(content: bytes, content_type: str | None = None, url: str | None = None) -> bool:
    """Assert both paths agree; return whether the fast path read the document."""
    fast = parse_feed(content, content_type, url, now=NOW)
    reference = parse_feed(content, content_type, url, now=NOW, fast_path=False)
    assert fast == reference
    return _fastfeed.read(content, content_type) is not None


@pytest.mark.parametrize(
    "path", sorted(p for p in FIXTURES.iterdir() if p.suffix in (".xml", ".json")), ids=str
)
@pytest.mark.parametrize("content_type", [None, "application/rss+xml; charset=utf-8", "text/xml"])
def test_every_fixture_parses_the_same(path: Path, content_type: str | None) -> None:
    _same(path.read_bytes(), content_type, "https://feeds.example.org/feed.xml")


def test_windows1256_fixture_parses_the_same_with_its_header() -> None:
    content = (FIXTURES / "rss2_windows1256_header_only.xml").read_bytes()
    assert not _same(content, "application/rss+xml; charset=windows-1256")


def test_every_benchmark_feed_takes_the_fast_path_with_the_same_result() -> None:
    feedgen = _feedgen()
    feeds = [feedgen.generate_feed(index, items=30) for index in range(120)]
    feeds += [feedgen.generate_feed(index, items=30, revision=2) for index in range(0, 120, 7)]
    formats = {feed.format for feed in feeds}
    assert formats == {"rss20", "atom10"}
    for feed in feeds:
        assert _same(feed.body, feed.content_type, f"https://news.example.org{feed.path}")


_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
) | st.sampled_from(
    [
        "Q&A at AT&T",
        "<b>bold</b> &amp;lt;i&amp;gt;",
        "Ã©tÃ©",  # UTF-8 read as Latin-1: feedparser repairs it
        "  padded  ",
        "خانەقین &nbsp; Khanaqin",
        "\x85 next line",
        "https:///three.slashes/x",
        "http://example.org/?a=1&b=2&amp;c=3&copy;",
        "",
    ]
)
_DATE = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1960, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from(["", "not a date", "Wed, 15 Jan 2025 12:00:00 +0300", "2025-01-15"]),
)
_ITEM = st.fixed_dictionaries(
    {"pubDate": _DATE},
    optional={"title": _TEXT, "summary": _TEXT, "link": _TEXT, "guid": _TEXT},
)


@hypothesis.given(st.lists(_ITEM, max_size=4), _TEXT)
@hypothesis.settings(max_examples=300, deadline=None)
def test_generated_rss_parses_the_same(items: list[dict[str, Any]], title: str) -> None:
    try:
        content = rss(items, title=title)
    except UnicodeEncodeError:
        return
    _same(content, "application/rss+xml", "https://feeds.example.org/rss")
    _same(content, None)


@hypothesis.given(st.lists(_ITEM, max_size=4), _TEXT)
@hypothesis.settings(max_examples=300, deadline=None)
def test_generated_atom_parses_the_same(items: list[dict[str, Any]], title: str) -> None:
    _same(atom(items, title=title), "application/atom+xml", "https://feeds.example.org/atom")


@hypothesis.given(st.lists(_ITEM, max_size=3))
@hypothesis.settings(max_examples=100, deadline=None)
def test_generated_rdf_parses_the_same(items: list[dict[str, Any]]) -> None:
    assert not _same(rdf(items), "application/rdf+xml")


def _rss_items(*items: str, head: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>T</title>{head}{''.join(items)}</channel></rss>"
    ).encode()


FAST = {
    "permalink guid is the link": _rss_items(
        "<item><title>a</title><guid>https://e.org/1</guid></item>"
    ),
    "link wins over a permalink guid": _rss_items(
        "<item><guid>https://e.org/g</guid><title>a</title><link>https://e.org/l</link></item>"
    ),
    "content only is the summary": _rss_items(
        "<item><title>a</title><content:encoded>&lt;p&gt;body&lt;/p&gt;</content:encoded></item>"
    ),
    "teaser then content": _rss_items(
        "<item><title>a</title><description>t</description>"
        "<content:encoded><![CDATA[<p>long body</p>]]></content:encoded></item>"
    ),
    "no guid, no link, no date": _rss_items("<item><title>only a title</title></item>"),
    "padded date, no guid, no link": _rss_items(
        "<item><title>a</title><pubDate> Wed, 15 Jan 2025 12:00:00 +0000\n</pubDate></item>"
    ),
    "link with entities": _rss_items(
        "<item><title>a</title><link>https://e.org/?a=1&amp;amp;b=2&amp;c=3</link></item>"
    ),
    "comment and processing instruction": _rss_items(
        "<item><title>a<!-- c -->b</title><?pi x?><description>d</description></item>"
    ),
    "atom id before link": (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry><id>https://e.org/id'
        b'</id><title type="html">&lt;b&gt;x&lt;/b&gt;</title><link href="https://e.org/a"/>'
        b'<link rel="alternate" type="text/html" href="https://e.org/b"/>'
        b'<content type="html">c</content><updated>2025-01-01T00:00:00Z</updated></entry></feed>'
    ),
    "atom id only": (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>tag:e.org,2025:1</id>'
        b"<title>t</title><published>2025-01-01T00:00:00Z</published></entry></feed>"
    ),
}

REFUSED = {
    "doctype": _rss_items(head="").replace(b"<rss", b'<!DOCTYPE rss [<!ENTITY a "b">]>\n<rss'),
    "xml:base": _rss_items(
        '<item xml:base="https://e.org/x/"><title>a</title><link>y</link></item>'
    ),
    "undeclared entity": _rss_items("<item><title>a&nbsp;b</title></item>"),
    "C1 control": _rss_items("<item><title>a\u0085b</title></item>"),
    "unknown element": _rss_items("<item><title>a</title><media:title xmlns:media='m'/></item>"),
    "markup inside the description": _rss_items(
        "<item><description><p>hi</p></description></item>"
    ),
    "description after content": _rss_items(
        "<item><content:encoded>c</content:encoded><description>d</description></item>"
    ),
    "base64 mode": _rss_items('<item><description mode="base64">aGk=</description></item>'),
    "image": _rss_items("<item><title>a</title></item>", head="<image><title>i</title></image>"),
    "title after items": _rss_items("<item><title>a</title></item>", head="").replace(
        b"</channel>", b"<title>late</title></channel>"
    ),
    "atom xhtml": (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><title type="xhtml">'
        b'<div xmlns="http://www.w3.org/1999/xhtml">x</div></title></entry></feed>'
    ),
    "byte order mark": b"\xef\xbb\xbf" + _rss_items("<item><title>a</title></item>"),
}


@pytest.mark.parametrize("content", FAST.values(), ids=FAST.keys())
def test_plain_documents_take_the_fast_path_with_the_same_result(content: bytes) -> None:
    assert _same(content, "application/xml", "https://e.org/feed")


@pytest.mark.parametrize("content", REFUSED.values(), ids=REFUSED.keys())
def test_unusual_documents_go_to_feedparser(content: bytes) -> None:
    assert not _same(content, "application/xml", "https://e.org/feed")


@pytest.mark.parametrize(
    ("content_type", "fast"),
    [
        (None, True),
        ("application/rss+xml", True),
        ("application/xml; charset=UTF-8", True),
        ("text/xml; charset=utf-8", True),
        ("text/xml", False),  # RFC 3023: us-ascii, so feedparser warns on non-ASCII text
        ("text/html", False),
        ("text/html; charset=utf-8", True),  # not an XML type: feedparser's harmless note
        ("application/octet-stream", True),
        ("application/rss+xml; charset=iso-8859-1", False),
    ],
)
def test_charset_rules_follow_feedparser(content_type: str | None, fast: bool) -> None:
    content = _rss_items("<item><title>خانەقین Xaneqînê</title></item>")
    assert _same(content, content_type) is fast


def test_dates_out_of_range_are_dropped_the_same_way() -> None:
    late = (NOW + timedelta(days=3)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    content = _rss_items(
        f"<item><title>a</title><pubDate>{late}</pubDate></item>",
        "<item><title>b</title><pubDate>Thu, 01 Jan 1970 00:00:00 +0000</pubDate></item>",
    )
    assert _same(content, "application/rss+xml")
