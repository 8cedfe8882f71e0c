"""A fast reader for the plain RSS 2.0 and Atom 1.0 feeds that make up most of a poll.

feedparser is the reference: this module reads only documents whose every element it knows,
and gives the same entries, texts, dates and ids as feedparser would (`parse.py` hands them on
the same way). Anything else (another format, an unknown element or attribute, a DOCTYPE,
`xml:base`, a charset other than UTF-8, a document expat rejects) returns None, and feedparser
reads the document. tests/test_fast_parse_differential.py holds the two to the same output.

The XML parser is expat, as under feedparser's own strict parser, so both accept and reject
the same documents; with no DOCTYPE there are no entities beyond XML's five to expand.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from time import struct_time

from feedparser.datetimes import _parse_date

__all__ = ["FastEntry", "FastFeed", "read"]


@dataclass(frozen=True, slots=True)
class FastEntry:
    """The fields of a feedparser entry that `parse.py` reads."""

    id: str | None
    link: str | None
    title: str
    summary: str
    content: str
    dates: tuple[struct_time | None, ...]
    """`published_parsed`, then `updated_parsed`, those that feedparser would have."""
    date_text: str | None
    """`published`, else `updated`."""


@dataclass(frozen=True, slots=True)
class FastFeed:
    version: str
    title: str | None
    entries: tuple[FastEntry, ...]


class _Refused(Exception):
    """Something feedparser reads in a way this module does not copy."""


_ATOM = "{http://www.w3.org/2005/Atom}"
_CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"
_DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

_RSS_CHANNEL_LEAVES = frozenset(
    {
        "title",
        "link",
        "description",
        "language",
        "lastBuildDate",
        "pubDate",
        "generator",
        "ttl",
        "copyright",
        "managingEditor",
        "webMaster",
        "docs",
        "category",
    }
)
_RSS_ITEM_OTHER = frozenset({_DC_CREATOR, "category", "author", "comments"})
"""Item children feedparser keeps elsewhere: they change none of the fields read here."""
_ATOM_FEED_LEAVES = frozenset(
    f"{_ATOM}{name}" for name in ("title", "id", "updated", "subtitle", "rights", "generator")
)
_ATOM_PERSON = frozenset(f"{_ATOM}{name}" for name in ("name", "email", "uri"))
_ATOM_LINK_ATTRS = frozenset({"rel", "href", "type", "hreflang", "title", "length"})
_HTML_TYPES = frozenset({"html", "xhtml", "text/html", "application/xhtml+xml"})
"""Link types feedparser takes an entry's link from (its `html_types`, before mapping)."""
_TEXT_TYPES = {"text": "text/plain", "html": "text/html"}
_XML_ENCODING = re.compile(rb"""^<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_URI_FIXER = re.compile("^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
_LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")
_C1 = re.compile("[\x80-\x9f]")
"""feedparser maps these to windows-1252's characters; such a rare document goes to it."""
_UTF8_NAMES = frozenset({"utf-8", "utf8"})
_XML_TYPES = ("application/xml", "application/xml-dtd", "application/xml-external-parsed-entity")
_TEXT_XML_TYPES = ("text/xml", "text/xml-external-parsed-entity")


def _decodes_as_utf8(content: bytes, content_type: str | None) -> bool:
    """Whether feedparser would decode `content` (valid UTF-8) as UTF-8, with no warning.

    Follows feedparser's RFC 3023 rules (encodings.convert_to_utf8): the header's charset,
    else the XML declaration's, else a default that depends on the media type.
    """
    if content[:1] != b"<" or b"\x00" in content[:4]:
        return False  # a byte order mark or a UTF-16/32 marker: feedparser's own sniffing
    declared = _XML_ENCODING.match(content[:256])
    in_document = declared.group(1).decode("ascii").lower() if declared else ""
    if in_document not in ("", *_UTF8_NAMES):
        return False
    if content_type is None:
        chosen = in_document or "utf-8"
    else:
        mime, _, rest = content_type.partition(";")
        mime = mime.strip()
        charset = ""
        for chunk in rest.split(";"):
            key, _, value = chunk.partition("=")
            if key.strip().lower() == "charset":
                charset = value.strip().strip("\"'")
        if mime in _XML_TYPES or (mime.startswith("application/") and mime.endswith("+xml")):
            chosen = charset or in_document or "utf-8"
        elif mime.startswith("text/"):
            chosen = charset or "us-ascii"
        else:
            chosen = in_document or "utf-8"
    chosen = chosen.lower()
    return chosen in _UTF8_NAMES or (chosen in ("us-ascii", "ascii") and content.isascii())


def _value(element: ET.Element) -> str:
    """An element's text as feedparser's `pop` leaves it (no child elements allowed)."""
    if len(element):
        raise _Refused
    text = (element.text or "").strip()
    if _C1.search(text):
        raise _Refused
    try:
        # feedparser undoes UTF-8 that was decoded as Latin-1 (`Ã©` → `é`).
        return text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _uri(value: str) -> str:
    # feedparser resolves against an empty base: only the slashes after `scheme://` go.
    fixed = _URI_FIXER.match(value)
    return fixed.group(1) + value[fixed.end() :] if fixed and fixed.group(2) else value


def _no_attributes(element: ET.Element, allowed: frozenset[str] = frozenset()) -> None:
    if element.attrib and not allowed.issuperset(element.attrib):
        raise _Refused


def _date(value: str) -> struct_time | None:
    if not value:
        raise _Refused  # an empty date: feedparser's key mapping differs there
    parsed: struct_time | None = _parse_date(value)
    return parsed


def _rss_item(item: ET.Element) -> FastEntry:
    _no_attributes(item)
    seen: set[str] = set()
    entry_id = link = guid_link = published = None
    title = summary = content = ""
    dates: tuple[struct_time | None, ...] = ()
    for child in item:
        tag = child.tag
        if tag in _RSS_ITEM_OTHER:
            _no_attributes(child, frozenset({"domain"}) if tag == "category" else frozenset())
            if len(child):
                raise _Refused
            continue
        if tag in seen or not isinstance(tag, str):
            raise _Refused
        seen.add(tag)
        if tag == "guid":
            _no_attributes(child, frozenset({"isPermaLink"}))
            permalink = child.get("isPermaLink", "true")
            if permalink not in ("true", "false"):
                raise _Refused
            entry_id = _value(child)
            if permalink == "true":
                entry_id = _uri(entry_id) if entry_id else entry_id
                guid_link = entry_id
            continue
        _no_attributes(child)
        value = _value(child)
        if tag == "title":
            title = value
        elif tag == "link":
            value = _uri(value) if value else value
            link = _LINK_ENTITY.sub(r"&\g<1>", value.replace("&amp;", "&"))
        elif tag == "pubDate":
            published = value
            dates = (_date(value),)
        elif tag == "description":
            if _CONTENT_ENCODED in seen:
                raise _Refused  # description after content: feedparser's order rules
            summary = value
        elif tag == _CONTENT_ENCODED:
            content = value
            summary = summary if "description" in seen else value
        else:
            raise _Refused
    return FastEntry(
        entry_id, link if link is not None else guid_link, title, summary, content, dates, published
    )


def _rss(root: ET.Element) -> FastFeed:
    if root.get("version") != "2.0" or len(root) != 1 or root[0].tag != "channel":
        raise _Refused
    _no_attributes(root, frozenset({"version"}))
    channel = root[0]
    _no_attributes(channel)
    title: str | None = None
    entries = []
    for child in channel:
        tag = child.tag
        if tag == "item":
            entries.append(_rss_item(child))
        elif tag == "title":
            if title is not None or entries:
                raise _Refused  # feedparser's title-depth rules decide which title wins
            _no_attributes(child)
            title = _value(child)
        elif tag in _RSS_CHANNEL_LEAVES or tag == f"{_ATOM}link":
            if len(child):
                raise _Refused
        else:
            raise _Refused
    return FastFeed("rss20", title, tuple(entries))


def _atom_text(element: ET.Element) -> tuple[str, str]:
    """(value, media type) of an Atom text construct of type text or html."""
    _no_attributes(element, frozenset({"type"}))
    kind = _TEXT_TYPES.get(element.get("type", "text"))
    if kind is None:
        raise _Refused
    return _value(element), kind


def _atom_entry(entry: ET.Element) -> FastEntry:
    _no_attributes(entry)
    seen: set[str] = set()
    entry_id = link = published = updated = None
    title = summary = content = ""
    parsed: dict[str, struct_time | None] = {}
    for child in entry:
        tag = child.tag
        if tag == f"{_ATOM}link":
            _no_attributes(child, _ATOM_LINK_ATTRS)
            href = child.get("href")
            if href is None or len(child):
                raise _Refused
            kind = child.get("type")
            rel = child.get("rel", "alternate").lower()
            if rel == "alternate" and (kind is None or kind.lower() in _HTML_TYPES):
                link = _uri(href)
            continue
        if tag == f"{_ATOM}category":
            _no_attributes(child, frozenset({"term", "scheme", "label"}))
            if len(child):
                raise _Refused
            continue
        if tag == f"{_ATOM}author":
            _no_attributes(child)
            if any(part.tag not in _ATOM_PERSON or len(part) or part.attrib for part in child):
                raise _Refused
            continue
        if tag in seen or not isinstance(tag, str):
            raise _Refused
        seen.add(tag)
        if tag == f"{_ATOM}id":
            _no_attributes(child)
            entry_id = _value(child)
            entry_id = _uri(entry_id) if entry_id else entry_id
            if link is None:
                link = entry_id  # an id before any link is the link until one comes
        elif tag == f"{_ATOM}title":
            title = _atom_text(child)[0]
        elif tag == f"{_ATOM}summary":
            if f"{_ATOM}content" in seen:
                raise _Refused
            summary = _atom_text(child)[0]
        elif tag == f"{_ATOM}content":
            if "src" in child.attrib:
                raise _Refused
            content = _atom_text(child)[0]
            summary = summary if f"{_ATOM}summary" in seen else content
        elif tag == f"{_ATOM}published":
            _no_attributes(child)
            published = _value(child)
            parsed["published"] = _date(published)
        elif tag == f"{_ATOM}updated":
            _no_attributes(child)
            updated = _value(child)
            parsed["updated"] = _date(updated)
        else:
            raise _Refused
    dates = tuple(parsed[key] for key in ("published", "updated") if key in parsed)
    return FastEntry(
        entry_id, link, title, summary, content, dates, published if published else updated
    )


def _atom(root: ET.Element) -> FastFeed:
    _no_attributes(root, frozenset({_XML_LANG}))
    title: str | None = None
    entries = []
    for child in root:
        tag = child.tag
        if tag == f"{_ATOM}entry":
            entries.append(_atom_entry(child))
        elif tag == f"{_ATOM}title":
            if title is not None or entries:
                raise _Refused
            title = _atom_text(child)[0]
        elif tag == f"{_ATOM}link":
            _no_attributes(child, _ATOM_LINK_ATTRS)
            if len(child):
                raise _Refused
        elif tag in _ATOM_FEED_LEAVES:
            _no_attributes(child, frozenset({"type"}))
            if len(child):
                raise _Refused
        else:
            raise _Refused
    return FastFeed("atom10", title, tuple(entries))


def read(content: bytes, content_type: str | None) -> FastFeed | None:
    """The feed in `content` as feedparser would read it, or None to let feedparser read it.

    `content` is what `parse.py` would give feedparser (after its UTF-8 repairs).
    """
    if b"<!DOCTYPE" in content or b"xml:base" in content:
        return None
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not _decodes_as_utf8(content, content_type):
        return None
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        return None
    try:
        if root.tag == "rss":
            return _rss(root)
        if root.tag == f"{_ATOM}feed":
            return _atom(root)
    except _Refused:
        return None
    return None
