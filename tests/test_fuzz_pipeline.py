"""Fuzzing the whole text path: feed bytes → parse → normalize and match → render for every sink.

Hypothesis writes feeds of hostile item text (mentions, markup, bidi and control characters,
Arabic and Kurdish letters, entities) and raw junk. Nothing may escape but a `FetchError` for
what is not a feed, and every rendered payload must be one the service accepts, with no ping.
"""

from __future__ import annotations

import json
from typing import Any

from conftest import rss
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from receivers import validate
from test_render import message, render

from monitor.analyze import Analyzer
from monitor.config import Term, WatchlistConfig
from monitor.errors import FetchError
from monitor.parse import parse_feed

ANALYZER = Analyzer(
    (
        WatchlistConfig(name="khanaqin", terms=(Term(term="Khanaqin"),)),
        WatchlistConfig(name="bomber", terms=(Term(term="suicide bomber"),)),
    )
)
SINKS = ["slack", "discord", "teams", "mattermost", "telegram", "matrix", "ntfy", "webhook"]
ALPHABET = st.sampled_from(
    [
        *"ab Kk @<>&*_[]()\\`#:.!|~\"';/",
        *"خانقينەێۆڕڵ",
        "Khanaqin",
        "خانەقین",
        "@everyone",
        "@room",
        "<!channel>",
        "<@U1>",
        "&amp;",
        "&#64;",
        "]]>",
        "<![CDATA[",
        "\u202e",
        "\u2066",
        "\u200c",
        "\u0640",
        "\x00",
        "\x1b",
        "\u2028",
        "\ufeff",
        "👨‍👩‍👧",
        "e\u0301",
        "\n",
    ]
)
TEXT = st.lists(ALPHABET, max_size=60).map("".join)
MENTIONS = {
    "slack": ("<!channel>", "<!here>", "<@U1>"),
    "discord": ("@everyone", "@here", "<@U1>"),
    "mattermost": ("@channel", "@here", "@all", "@everyone"),
    "matrix": ("@room",),
    "teams": ("<at>",),
}
"""What pings in each service when it arrives as written (ours carry a word joiner or an
entity)."""


def _no_live_mention(kind: str, payload: Any) -> list[str]:
    text = json.dumps(payload, ensure_ascii=False)
    return [f"{kind}: {m!r} is live" for m in MENTIONS.get(kind, ()) if m in text]


@settings(max_examples=40, deadline=None, database=None)
@given(items=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=4))
def test_hostile_items_go_through_parse_match_and_every_renderer_safely(
    items: list[tuple[str, str]],
) -> None:
    # The XML writer drops what XML 1.0 cannot carry; feeds cannot carry it either.
    legal = [
        tuple("".join(c for c in part if c in "\t\n" or c >= " ") for part in item)
        for item in items
    ]
    document = rss(
        [
            {"title": title, "summary": summary, "link": f"https://news.example.org/{n}"}
            for n, (title, summary) in enumerate(legal)
        ]
    )
    parsed = parse_feed(document, "application/rss+xml", "https://news.example.org/feed")
    # An item whose text is blank once markup is gone has nothing to match and is skipped.
    assert len(parsed.items) <= len(legal)
    for item in parsed.items:
        analysis = ANALYZER.analyze(item.title, item.summary, None)
        for match in analysis.matches:
            field = item.title if match.field == "title" else item.summary
            assert field[match.start : match.end] == match.form
        value = message(item.title, item.summary, title_en=None, url=item.url)
        for kind in SINKS:
            outgoing = render(kind, value)
            payload = json.loads(outgoing.body)
            if kind == "matrix":
                assert payload["msgtype"] == "m.text" and payload["m.mentions"] == {}
            else:
                assert validate(kind, payload) == [], (kind, item.title)
            assert _no_live_mention(kind, payload) == []


@settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda head, junk: head + junk,
            st.sampled_from(
                [b"<?xml version='1.0'?><rss version='2.0'><channel>", b"<feed ", b"{", b"<html>"]
            ),
            st.binary(max_size=200),
        ),
    ),
    content_type=st.sampled_from(
        [None, "application/rss+xml", "text/xml; charset=windows-1256", "application/json"]
    ),
)
def test_junk_bytes_are_a_clear_error_or_a_feed_never_a_crash(
    body: bytes, content_type: str | None
) -> None:
    try:
        parsed = parse_feed(body, content_type, "https://news.example.org/feed")
    except FetchError as exc:
        assert str(exc)
        return
    for item in parsed.items:
        ANALYZER.analyze(item.title, item.summary, None)
