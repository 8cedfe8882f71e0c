"""Feed bytes → `ParsedFeed` of plain-text `Item`s. Pure: no I/O, safe to run in a worker process.

feedparser reads RSS, Atom and RDF and is given the HTTP `Content-Type`, so a charset declared
only there (windows-1256 Arabic, say) decodes right. Plain UTF-8 RSS 2.0 and Atom 1.0, most of
a poll, go through `_fastfeed` first, which gives feedparser's results or steps aside. JSON
Feed is read here. HTML in titles, summaries and content becomes plain text, with entities
decoded even when the publisher escaped them twice.

A bad field drops that field, never the item or the feed: an implausible date leaves the item
undated, a link that cannot be read leaves it a title story key.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from monitor._storykey import canonical_url, story_key
from monitor.errors import NotAFeedError
from monitor.models import Item, ParsedFeed

# feedparser and the fast reader (with ElementTree) load with the first document parsed: a
# process that parses nothing (a `poll-once` of unchanged feeds, whose parsing runs in worker
# processes anyway) does not pay 40 ms for them (issue 14).
if TYPE_CHECKING:
    from monitor import _fastfeed

__all__ = ["CONTENT_CHARS", "canonical_url", "html_to_text", "parse_feed", "story_key"]

CONTENT_CHARS = 20_000
"""Text of an item's content (the article body) kept for matching; more is cut."""
_CONTENT_MARKUP = 20 * CONTENT_CHARS
"""Markup of a content read at most: bounds the time HTML-to-text takes on a huge body."""
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""Dates on or before this are not news: a zero timestamp, or a year 0001 read as 0100."""
_AHEAD = timedelta(days=1)
"""How far past now a date may lie (a publisher's clock or zone off by hours). A date further
ahead would dodge `backfill` forever, so it is dropped."""

_BLOCK_TAGS = frozenset(
    [
        "p",
        "br",
        "div",
        "li",
        "ul",
        "ol",
        "tr",
        "td",
        "th",
        "table",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "section",
        "article",
        "header",
        "footer",
        "figure",
        "figcaption",
        "pre",
        "hr",
        "dd",
        "dt",
    ]
)
_SKIP_TAGS = frozenset({"script", "style", "template", "noscript"})
_LITERAL_TAGS = frozenset({"code", "kbd", "pre", "samp", "tt"})
"""Elements whose text shows markup as written: an escaped tag in them is text, not markup."""
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_NEWLINES = re.compile(r"\s*\n\s*")
_BARE_AMPERSAND = re.compile(
    rb"&(?!(?:[A-Za-z][A-Za-z0-9]{0,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});)"
)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._-]+)["']?""", re.IGNORECASE)
_UTF8 = frozenset({"utf-8", "utf8"})
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")


class _TextExtractor(HTMLParser):
    """A fragment's text as (text, literal) parts; literal parts lie inside `_LITERAL_TAGS`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[tuple[str, bool]] = []
        self._skipping = 0
        self._literal = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
            return
        if tag in _LITERAL_TAGS:
            self._literal += 1
        if tag in _BLOCK_TAGS:
            self.parts.append(("\n", False))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
            return
        if tag in _LITERAL_TAGS:
            self._literal = max(0, self._literal - 1)
        if tag in _BLOCK_TAGS:
            self.parts.append(("\n", False))

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append((data, self._literal > 0))


def _extract(markup: str) -> list[tuple[str, bool]]:
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return extractor.parts


def _decoded_again(text: str) -> str:
    # Markup escaped twice (`&amp;lt;b&amp;gt;`) is still markup after one decoding.
    if _TAG.search(text):
        text = "".join(part for part, _ in _extract(text))
    # `&amp;quot;` arrives as `&quot;` after one decoding: publishers escape twice.
    if "&" in text:
        text = html.unescape(text)
    return text


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded (twice-escaped ones too).

    Text in `<code>`, `<pre>`, `<kbd>`, `<samp>` and `<tt>` is decoded once only: there an
    escaped tag (`<code>&lt;br /></code>`) is text the publisher meant to show.
    """
    if not markup:
        return ""
    text = markup
    if "<" in text or "&" in text:
        pieces = []
        for literal, parts in groupby(_extract(text), key=itemgetter(1)):
            run = "".join(part for part, _ in parts)
            pieces.append(run if literal else _decoded_again(run))
        text = "".join(pieces)
    text = _SPACES.sub(" ", text)
    return _NEWLINES.sub("\n", text).strip()


def _guid(entry_id: str | None, link: str | None, title: str, published: str | None) -> str:
    if entry_id:
        return entry_id.strip()
    if link:
        return link.strip()
    digest = hashlib.sha256(f"{title}\x00{published or ''}".encode()).hexdigest()
    return "sha256:" + digest[:32]


def _from_struct(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, TypeError):
        return None


def _from_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)  # a date without a zone is taken as UTC
        # Near datetime's ends, a zone can carry the moment out of range.
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _plausible(dates: Iterable[datetime | None], now: datetime) -> datetime | None:
    """The first date that could be a news item's (see `_EARLIEST` and `_AHEAD`)."""
    return next((d for d in dates if d is not None and _EARLIEST < d <= now + _AHEAD), None)


def _make_item(
    entry_id: str | None,
    link: str | None,
    raw_title: str,
    raw_summary: str,
    raw_content: str,
    published_at: datetime | None,
    published_text: str | None,
) -> Item | None:
    title = html_to_text(raw_title).replace("\n", " ")
    summary = html_to_text(raw_summary)
    content = html_to_text(raw_content[:_CONTENT_MARKUP])[:CONTENT_CHARS]
    if not summary:
        summary, content = content, ""
    elif content == summary:
        content = ""
    if not title and not summary:
        return None
    link = link.strip() if link else None
    return Item(
        guid=_guid(entry_id, link, title, published_text),
        url=link or None,
        title=title,
        summary=summary,
        published_at=published_at,
        story_key=story_key(link, title or summary[:200]),
        content=content,
    )


def _looks_like_json(content: bytes, content_type: str | None) -> bool:
    if content_type and "json" in content_type.lower():
        return True
    return content.lstrip()[:1] == b"{"


def _parse_json_feed(content: bytes, now: datetime) -> ParsedFeed:
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotAFeedError(f"not a feed: invalid JSON ({exc})") from None
    version = document.get("version", "") if isinstance(document, dict) else ""
    if not isinstance(version, str) or "jsonfeed.org" not in version:
        raise NotAFeedError("not a feed: JSON without a JSON Feed 'version'")
    entries = document.get("items")
    items = []
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        published = entry.get("date_published") or entry.get("date_modified")
        published_at = _plausible(
            (_from_iso(entry.get("date_published")), _from_iso(entry.get("date_modified"))), now
        )
        body = entry.get("content_html") or entry.get("content_text")
        entry_id = entry.get("id")
        link = entry.get("url") or entry.get("external_url")
        item = _make_item(
            str(entry_id) if entry_id is not None else None,
            link if isinstance(link, str) else None,
            str(entry.get("title") or ""),
            str(entry.get("summary") or ""),
            str(body or ""),
            published_at,
            published if isinstance(published, str) else None,
        )
        if item:
            items.append(item)
    title = document.get("title")
    return ParsedFeed(tuple(items), title if isinstance(title, str) else None, "json1")


def _harmless(exception: object) -> bool:
    """A missing or generic Content-Type is not a defect of the document itself."""
    import feedparser

    return isinstance(exception, feedparser.NonXMLContentType)


def _feedparser(content: bytes, headers: Mapping[str, str]) -> Any:
    import feedparser

    return feedparser.parse(
        content, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )


def _utf8_repaired(content: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    """Undo the two charset mistakes that turn a whole UTF-8 feed into mojibake.

    A document declared UTF-8 with some invalid bytes: feedparser would decode all of it as
    windows-1252; the bad bytes become U+FFFD instead. Valid UTF-8 with non-ASCII text served
    with another `charset=` in the header (windows-1256, say): it is UTF-8 all the same,
    since legacy-encoded Arabic or Kurdish text is practically never valid UTF-8.
    """
    header = _HEADER_CHARSET.search(content_type or "")
    declared = header.group(1).lower() if header else None
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        xml = _XML_ENCODING.match(content[:256])
        in_document = xml.group(1).decode("ascii").lower() if xml else None
        if declared in _UTF8 or (declared is None and in_document in _UTF8):
            return content.decode("utf-8", "replace").encode("utf-8"), content_type
        return content, content_type
    if header and content_type and declared not in _UTF8 and not content.isascii():
        start, end = header.span(1)
        return content, content_type[:start] + "utf-8" + content_type[end:]
    return content, content_type


def _resolved(link: str | None, base: str | None) -> str | None:
    if not link or not base:
        return link
    try:
        return urljoin(base, link)
    except ValueError:
        return None  # a link that cannot be read (`http://[::1/`) is no link


def _from_fast(fast: _fastfeed.FastFeed, url: str | None, now: datetime) -> ParsedFeed:
    items = []
    for entry in fast.entries:
        item = _make_item(
            entry.id,
            _resolved(entry.link, url),
            entry.title,
            entry.summary,
            entry.content,
            _plausible((_from_struct(d) for d in entry.dates), now),
            entry.date_text,
        )
        if item:
            items.append(item)
    title = html_to_text(fast.title or "").replace("\n", " ") or None
    return ParsedFeed(tuple(items), title, fast.version)


def parse_feed(
    content: bytes,
    content_type: str | None = None,
    url: str | None = None,
    *,
    now: datetime | None = None,
    fast_path: bool = True,
) -> ParsedFeed:
    """Parse a fetched document; `now` (default: the clock) bounds plausible item dates.

    Plain RSS 2.0 and Atom 1.0 are read by `_fastfeed` with feedparser's results at a fraction
    of its CPU; feedparser reads everything else, and everything with `fast_path=False`.

    Raises:
        NotAFeedError: the document holds no feed (an HTML page, an empty body, random JSON).
    """
    if not content.strip():
        raise NotAFeedError("not a feed: the response body is empty")
    now = now or datetime.now(UTC)
    if _looks_like_json(content, content_type):
        return _parse_json_feed(content, now)
    content, content_type = _utf8_repaired(content, content_type)
    # No Content-Location: feedparser would resolve relative guids against the URL, and an
    # item's identity must not change when its feed moves.
    headers: Mapping[str, str] = {"content-type": content_type} if content_type else {}
    from monitor import _fastfeed

    if fast_path and (fast := _fastfeed.read(content, content_type)) is not None:
        return _from_fast(fast, url, now)
    parsed = _feedparser(content, headers)
    if parsed.bozo and _BARE_AMPERSAND.search(content):
        # A bare `&` (Q&A, AT&T) sends feedparser to its loose parser, which turns `&A` into
        # `&A;`. Escaping them and parsing again recovers the text as published.
        retry = _feedparser(_BARE_AMPERSAND.sub(b"&amp;", content), headers)
        if not retry.bozo or _harmless(retry.bozo_exception):
            parsed = retry
    warning = None
    if parsed.bozo and not _harmless(parsed.bozo_exception):
        warning = f"{type(parsed.bozo_exception).__name__}: {parsed.bozo_exception}"
    if not parsed.version and not parsed.entries:
        sniff = content[:512].lower()
        if any(tag in sniff for tag in (b"<html", b"<!doctype html", b"<head", b"<body")):
            raise NotAFeedError("not a feed: the server sent an HTML page")
        raise NotAFeedError(f"not a feed: {warning or 'no RSS, Atom or RDF root element'}")
    items = []
    for entry in parsed.entries:
        body = entry["content"][0].get("value", "") if entry.get("content") else ""
        # `in`, not `get`: feedparser warns when `updated_parsed` is read and only
        # `published_parsed` exists.
        dates = [entry[key] for key in ("published_parsed", "updated_parsed") if key in entry]
        item = _make_item(
            entry.get("id"),
            _resolved(entry.get("link"), url),
            entry.get("title") or "",
            entry.get("summary") or "",
            body,
            _plausible((_from_struct(d) for d in dates), now),
            # `dict.get`: feedparser's `get("updated")` falls back to an empty `published`, and
            # warns.
            entry.get("published") or dict.get(entry, "updated"),
        )
        if item:
            items.append(item)
    title = html_to_text(parsed.feed.get("title") or "").replace("\n", " ") or None
    return ParsedFeed(tuple(items), title, parsed.version or "unknown", warning)
