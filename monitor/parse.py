"""Feed bytes → `ParsedFeed` of plain-text `Item`s. Pure: no I/O, safe to run in a worker process.

feedparser reads RSS, Atom and RDF and is given the HTTP `Content-Type`, so a charset declared
only there (windows-1256 Arabic, say) decodes right. JSON Feed is read here. HTML in titles and
summaries becomes plain text, with entities decoded even when the publisher escaped them twice.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser

from monitor.errors import NotAFeedError
from monitor.models import Item, ParsedFeed

__all__ = ["canonical_url", "html_to_text", "parse_feed", "story_key"]

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
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_NEWLINES = re.compile(r"\s*\n\s*")
_TRACKING = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|yclid|_ga|ocid|at_\w+)$"
)
_BARE_AMPERSAND = re.compile(
    rb"&(?!(?:[A-Za-z][A-Za-z0-9]{0,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});)"
)
_FINGERPRINT_JUNK = re.compile(r"[\W_]+")
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._-]+)["']?""", re.IGNORECASE)
_UTF8 = frozenset({"utf-8", "utf8"})
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _extract(markup: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return "".join(extractor.parts)


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded (twice-escaped ones too)."""
    if not markup:
        return ""
    text = markup
    if "<" in text or "&" in text:
        text = _extract(text)
        # Markup escaped twice (`&amp;lt;b&amp;gt;`) is still markup after one decoding.
        if _TAG.search(text):
            text = _extract(text)
        # `&amp;quot;` arrives as `&quot;` after one decoding: publishers escape twice.
        if "&" in text:
            text = html.unescape(text)
    text = _SPACES.sub(" ", text)
    return _NEWLINES.sub("\n", text).strip()


def canonical_url(url: str) -> str:
    """A link as a story identity: lower-case scheme and host, no `www.`, tracking or fragment."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "http":
        scheme = "https"
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    path = parts.path.rstrip("/") or "/"
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING.match(k)
        ]
    )
    return urlunsplit((scheme, host, path, query, ""))


def title_fingerprint(title: str) -> str:
    folded = _FINGERPRINT_JUNK.sub(" ", title.casefold()).strip()
    return hashlib.sha256(folded.encode()).hexdigest()[:24]


def story_key(url: str | None, title: str) -> str:
    """The identity of a story across feeds (DESIGN §6)."""
    if url and urlsplit(url).scheme in ("http", "https"):
        return "url:" + canonical_url(url)
    return "title:" + title_fingerprint(title)


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


def _make_item(
    entry_id: str | None,
    link: str | None,
    raw_title: str,
    raw_summary: str,
    published_at: datetime | None,
    published_text: str | None,
) -> Item | None:
    title = html_to_text(raw_title).replace("\n", " ")
    summary = html_to_text(raw_summary)
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
    )


def _looks_like_json(content: bytes, content_type: str | None) -> bool:
    if content_type and "json" in content_type.lower():
        return True
    return content.lstrip()[:1] == b"{"


def _parse_json_feed(content: bytes) -> ParsedFeed:
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
        published_at = None
        if isinstance(published, str):
            try:
                published_at = datetime.fromisoformat(published.replace("Z", "+00:00"))
                if published_at.tzinfo is None:
                    published_at = published_at.replace(tzinfo=UTC)
                published_at = published_at.astimezone(UTC)
            except ValueError:
                published_at = None
        summary = entry.get("summary") or entry.get("content_html") or entry.get("content_text")
        entry_id = entry.get("id")
        link = entry.get("url") or entry.get("external_url")
        item = _make_item(
            str(entry_id) if entry_id is not None else None,
            link if isinstance(link, str) else None,
            str(entry.get("title") or ""),
            str(summary or ""),
            published_at,
            published if isinstance(published, str) else None,
        )
        if item:
            items.append(item)
    title = document.get("title")
    return ParsedFeed(tuple(items), title if isinstance(title, str) else None, "json1")


_HARMLESS = feedparser.NonXMLContentType
"""A missing or generic Content-Type is not a defect of the document itself."""


def _feedparser(content: bytes, headers: Mapping[str, str]) -> Any:
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


def parse_feed(
    content: bytes, content_type: str | None = None, url: str | None = None
) -> ParsedFeed:
    """Parse a fetched document.

    Raises:
        NotAFeedError: the document holds no feed (an HTML page, an empty body, random JSON).
    """
    if not content.strip():
        raise NotAFeedError("not a feed: the response body is empty")
    if _looks_like_json(content, content_type):
        return _parse_json_feed(content)
    content, content_type = _utf8_repaired(content, content_type)
    # No Content-Location: feedparser would resolve relative guids against the URL, and an
    # item's identity must not change when its feed moves.
    headers: Mapping[str, str] = {"content-type": content_type} if content_type else {}
    parsed = _feedparser(content, headers)
    if parsed.bozo and _BARE_AMPERSAND.search(content):
        # A bare `&` (Q&A, AT&T) sends feedparser to its loose parser, which turns `&A` into
        # `&A;`. Escaping them and parsing again recovers the text as published.
        retry = _feedparser(_BARE_AMPERSAND.sub(b"&amp;", content), headers)
        if not retry.bozo or isinstance(retry.bozo_exception, _HARMLESS):
            parsed = retry
    warning = None
    if parsed.bozo and not isinstance(parsed.bozo_exception, _HARMLESS):
        warning = f"{type(parsed.bozo_exception).__name__}: {parsed.bozo_exception}"
    if not parsed.version and not parsed.entries:
        sniff = content[:512].lower()
        if any(tag in sniff for tag in (b"<html", b"<!doctype html", b"<head", b"<body")):
            raise NotAFeedError("not a feed: the server sent an HTML page")
        raise NotAFeedError(f"not a feed: {warning or 'no RSS, Atom or RDF root element'}")
    items = []
    for entry in parsed.entries:
        summary = entry.get("summary") or ""
        if not summary and entry.get("content"):
            summary = entry["content"][0].get("value", "")
        link = entry.get("link")
        if link and url:
            link = urljoin(url, link)
        item = _make_item(
            entry.get("id"),
            link,
            entry.get("title") or "",
            summary,
            _from_struct(entry.get("published_parsed") or entry.get("updated_parsed")),
            entry.get("published") or entry.get("updated"),
        )
        if item:
            items.append(item)
    title = html_to_text(parsed.feed.get("title") or "").replace("\n", " ") or None
    return ParsedFeed(tuple(items), title, parsed.version or "unknown", warning)
