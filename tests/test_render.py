"""Rendering for every sink: hostile feed text stays inert, payloads stay valid and within limits.

The receivers' validators (tests/receivers.py) say what each service would refuse; the checks
here add what a service would accept but must not happen: a ping, an injected link or tag.
"""

from __future__ import annotations

import dataclasses
import html.parser
import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import apprise
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from receivers import markdown_links, telegram_visible, unescaped, validate

from monitor.config import SinkConfig
from monitor.deliver.apprise_sink import apprise_texts
from monitor.deliver.message import Digest, MatchedForm, Message, sink_test_message
from monitor.deliver.render import Outgoing
from monitor.deliver.safety import (
    WORD_JOINER,
    clean,
    escape_html,
    escape_markdown,
    escape_slack,
    fit,
    safe_url,
    utf8_len,
    utf16_len,
)
from monitor.deliver.sinks import sink_type

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LINK = "https://news.example.org/2026/khanaqin?id=7&lang=en"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TYPES = ["slack", "discord", "teams", "mattermost", "telegram", "matrix", "ntfy", "webhook"]

HOSTILE = {
    "mentions": "@everyone @here @channel @all @room <!channel> <!here> <@U024BE7LH> <@&123> "
    "<#C123> @bob",
    "markup": "**bold** _it_ ~~gone~~ `code` ```block``` # Heading\n> quote\n- list ||spoiler|| "
    "<b>bold</b> <script>alert(1)</script> :joy: <t:1700000000:R>",
    "links": "[click here](https://evil.example/phish) <https://evil.example|Open> "
    '<a href="https://evil.example">x</a> ![img](https://evil.example/i.png)',
    "rtl": "safe\u202etxt.exe \u2066isolated\u2069 \u202aembed\u202c \u202boverride\u202c",
    "controls": "nul\x00 bell\x07 esc\x1b[31m del\x7f c1\x85\x9b line\u2028para\u2029 tab\tend",
    "quotes": 'quote " single \' backslash \\ \\" \\\\ }{ ][ `',
    "long": "Khanaqin " * 1200,
    "entities": "&amp; &lt; &gt; &quot; &#64;everyone & < > " * 300,
    "astral": "🇮🇶👨‍👩‍👧‍👦🏳️‍🌈e\u0301\u0301" * 800,
    "surrogate": "broken \ud800 text \udfff end",
}


def message(
    title: str = "Checkpoint attacked near Khanaqin",
    summary: str = "Security forces said the attack took place at dawn.",
    *,
    title_en: str | None = "Checkpoint attacked near Khanaqin (EN)",
    url: str | None = LINK,
    delivery_id: int = 1,
    watchlist: str = "khanaqin",
) -> Message:
    return Message(
        key=f"msg_{delivery_id}",
        delivery_id=delivery_id,
        alert_id=delivery_id,
        watchlist=watchlist,
        severity="high",
        created_at="2026-11-24T12:00:00+00:00",
        story_key="url:https://news.example.org/a",
        item_id=delivery_id,
        guid=f"guid-{delivery_id}",
        title=title,
        summary=summary,
        url=url,
        published_at="2026-11-24T11:30:00+00:00",
        language="ckb",
        language_confidence=0.97,
        title_en=title_en,
        summary_en=None,
        feed="Kurdistan 24 (Sorani)",
        feed_url="https://www.kurdistan24.net/ckb/rss",
        matches=(MatchedForm("Khanaqin", "خانەقین", "title", 0, 7),),
    )


def sink(kind: str) -> SinkConfig:
    extra: dict[str, Any] = {"url": "https://hooks.example.org/services/T0/B0/x"}
    if kind == "telegram":
        extra = {"token": "123:abc", "chat_id": "-100200"}
    elif kind == "matrix":
        extra = {"url": "https://matrix.example.org", "room": "!room:example.org", "token": "t"}
    elif kind == "ntfy":
        extra = {"url": "https://ntfy.example.org/alerts"}
    elif kind == "webhook":
        extra["secret"] = [SECRET]
    return SinkConfig(name=f"{kind}-sink", type=kind, **extra)  # type: ignore[arg-type]


def render(kind: str, value: Message | Digest) -> Outgoing:
    config = sink(kind)
    return sink_type(config).render(config, value, None, NOW)


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")


def html_tags(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    parser.close()
    return parser


def assert_inert(kind: str, outgoing: Outgoing, link: str | None) -> dict[str, Any]:
    """Valid for the service, within its limits, and nothing pings or injects."""
    payload: dict[str, Any] = json.loads(outgoing.body)  # valid UTF-8 JSON
    path = "/bot123:abc/sendMessage" if kind == "telegram" else "/"
    if kind != "matrix":
        assert validate(kind, payload, path=path, size=len(outgoing.body)) == []
    texts = strings(payload)
    if kind == "webhook":
        return payload  # machines get the text as stored; JSON-escaped, checked valid above
    for text in texts:
        assert not re.search(r"@(?=\w)", text), text[:120]
        assert not re.search("[\u202a-\u202e\u2066-\u2069\x00-\x08\x0b-\x1f\x7f-\x9f]", text)
    expected = [safe_url(link)] if safe_url(link) else []
    if kind == "slack":
        assert all("<" not in t and ">" not in t for t in texts)
        actions = [b for b in payload["blocks"] if b["type"] == "actions"]
        buttons = [e["url"] for block in actions for e in block["elements"]]
        buttons += [b["accessory"]["url"] for b in payload["blocks"] if "accessory" in b]
        assert buttons == expected or len(buttons) > 1
    elif kind == "discord":
        embed_urls = [e.get("url") for e in payload["embeds"] if e.get("url")]
        assert embed_urls == expected or len(embed_urls) > 1
    elif kind == "mattermost":
        assert markdown_links(payload["text"]) == expected or len(expected) == 0
    elif kind == "telegram":
        _, links, problems = telegram_visible(payload["text"])
        assert problems == []
        assert links == expected
    elif kind == "matrix":
        assert payload["m.mentions"] == {}
        assert "@room" not in payload["body"]
        tags = html_tags(payload["formatted_body"])
        assert set(tags.tags) <= {"strong", "em", "br", "a", "ul", "li"}
        assert tags.hrefs == expected
        assert len(outgoing.body) < 65536
    elif kind == "ntfy":
        assert payload.get("click") == (expected[0] if expected else None)
        assert utf8_len(payload["message"]) <= 4096
    elif kind == "teams":
        actions = payload["attachments"][0]["content"].get("actions", [])
        assert [a["url"] for a in actions] == expected
    return payload


# Hostile items, every sink ------------------------------------------------------------------


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_title_and_summary_stay_inert_in_every_format(kind: str, case: str) -> None:
    text = HOSTILE[case]
    outgoing = render(kind, message(text, text, title_en=text))
    assert_inert(kind, outgoing, LINK)


@pytest.mark.parametrize("kind", TYPES)
def test_hostile_links_never_become_the_message_link(kind: str) -> None:
    for url in (
        "javascript:alert(1)",
        "https://bank.example@evil.example/",
        "data:text/html,<script>",
        "https://x.example/a b",
        "https://x.example/" + "a" * 3000,
    ):
        outgoing = render(kind, message(url=url))
        payload = assert_inert(kind, outgoing, None)
        if kind != "webhook":
            assert "evil.example" not in json.dumps(payload)
            assert "javascript" not in json.dumps(payload)


@pytest.mark.parametrize("kind", TYPES)
def test_link_with_markup_characters_is_encoded_not_broken(kind: str) -> None:
    url = 'https://news.example.org/a_(b)/[c]?q="x"&y=<z>|w'
    assert_inert(kind, render(kind, message(url=url)), url)
    assert safe_url(url) == ("https://news.example.org/a_%28b%29/%5Bc%5D?q=%22x%22&y=%3Cz%3E%7Cw")


@pytest.mark.parametrize("kind", [k for k in TYPES if k != "webhook"])
def test_hostile_digest_of_ten_stays_valid(kind: str) -> None:
    size = 5 if kind == "ntfy" else 10
    messages = tuple(
        message(HOSTILE["long"] + HOSTILE["mentions"], title_en=HOSTILE["entities"], delivery_id=n)
        for n in range(size)
    )
    digest = Digest("dig_x", "khanaqin", "high", messages, part=2, parts=3)
    payload = json.loads(render(kind, digest).body)
    path = "/bot123:abc/sendMessage" if kind == "telegram" else "/"
    if kind != "matrix":
        assert validate(kind, payload, path=path) == []
    for text in strings(payload):
        assert not re.search(r"@(?=\w)", text)
    flat = json.dumps(payload, ensure_ascii=False)
    assert "part 2 of 3" in flat
    assert flat.count("news.example.org/2026/khanaqin?id=7") >= size


# Apprise's e-mail plugin imports `imghdr` when Apprise loads its plugins; Python 3.11 warns
# that the module goes away in 3.13. Not ours to fix, and nothing else is silenced.
APPRISE_IMGHDR = pytest.mark.filterwarnings(
    "ignore:'imghdr' is deprecated and slated for removal:DeprecationWarning"
)


@APPRISE_IMGHDR
def test_apprise_text_cannot_ping_even_through_apprises_discord_plugin() -> None:
    title, body = apprise_texts(message(HOSTILE["mentions"], HOSTILE["mentions"]))
    discord = apprise.Apprise.instantiate("discord://1234567/abcdefg")
    assert discord is not None
    # The control: Apprise's own detection finds pings in the raw text...
    assert discord.ping_payload(HOSTILE["mentions"])["allow_mentions"]["parse"]
    # ...and none in ours.
    assert discord.ping_payload(title, body) == {}
    assert not re.search("[\u202a-\u202e]", title + body)


# What every message carries -----------------------------------------------------------------


@pytest.mark.parametrize("kind", TYPES)
def test_every_message_carries_watchlist_severity_titles_forms_source_time_link(kind: str) -> None:
    payload = json.loads(render(kind, message()).body)
    flat = json.dumps(payload, ensure_ascii=False).replace("\\\\", "").replace(WORD_JOINER, "")
    flat = re.sub(r"\\(?=[-.:()#\[\]])", "", flat)
    for needle in (
        "khanaqin",
        "Checkpoint attacked near Khanaqin",
        "Checkpoint attacked near Khanaqin (EN)",
        "خانەقین",
        "Kurdistan 24 (Sorani)",
        "ckb" if kind == "webhook" else "Sorani Kurdish",  # people read the language's name
        "2026-11-24",
        "news.example.org/2026/khanaqin",
    ):
        assert needle in flat, (kind, needle)
    assert re.search("high", flat, re.IGNORECASE)


@pytest.mark.parametrize("kind", TYPES)
def test_test_sink_message_is_clearly_marked(kind: str) -> None:
    test = sink_test_message("desk", NOW, "test_1")
    flat = json.dumps(json.loads(render(kind, test).body), ensure_ascii=False)
    assert "alert.test" in flat if kind == "webhook" else "TEST" in flat
    assert "test alert" in flat


# The safety functions, as properties (no example database: nothing left in the tree) --------

ESCAPES = {
    "plain": lambda s: s.replace("@", "@" + WORD_JOINER),
    "slack": escape_slack,
    "html": escape_html,
    "markdown": escape_markdown,
}
MEASURES = {"len": len, "utf16": utf16_len, "utf8": utf8_len}
HOSTILE_ALPHABET = [
    *"ab @<>&*_[]()\\`#:.!|~\"'",
    *("\u0301", "\u200d", "\u200c", "\ufe0f", "\u202e", "\x00"),  # marks, joiners, controls
    *("👨", "🇮", "🇶", "خ", "ە"),
]
hostile_text = st.text(
    alphabet=st.sampled_from(HOSTILE_ALPHABET),
    max_size=300,
)


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    text=hostile_text,
    limit=st.integers(0, 200),
    escape=st.sampled_from(sorted(ESCAPES)),
    measure=st.sampled_from(sorted(MEASURES)),
)
def test_fit_stays_within_the_limit_and_cuts_only_between_clusters(
    text: str, limit: int, escape: str, measure: str
) -> None:
    measured = MEASURES[measure]
    result = fit(text, limit, escape=escape, measure=measured)
    assert measured(result) <= limit
    if result == ESCAPES[escape](text):
        return
    assert result == "" or result.endswith("…")
    kept = result.removesuffix("…")
    # What is kept is the escaped form of a prefix of the text: no escape was split.
    prefixes = [text[:n] for n in range(len(text) + 1)]
    matching = [p for p in prefixes if ESCAPES[escape](p).rstrip() == kept]
    assert matching or kept == ""
    if matching and kept:
        rest = text[len(matching[-1]) :].lstrip()
        assert not rest or unicodedata.category(rest[0]) not in ("Mn", "Me")
        assert not matching[-1].endswith("\u200d")
    if escape in ("slack", "html"):  # escapes that write entities never leave half of one
        assert not re.search(r"&[#a-z0-9]*$", kept)
    if escape == "markdown":  # an escape is never cut in half: trailing backslashes pair up
        assert (len(kept) - len(kept.rstrip("\\"))) % 2 == 0


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=200))
def test_escapers_leave_nothing_active(text: str) -> None:
    cleaned = clean(text)
    assert not re.search("[\u202a-\u202e\u2066-\u2069\x00-\x1f\x7f-\x9f\ud800-\udfff]", cleaned)
    assert unescaped(escape_markdown(cleaned), "\\`*_{}[]()#+-.!|~<>:$=") == []
    slack = escape_slack(cleaned)
    assert "<" not in slack and ">" not in slack and not re.search(r"&(?!amp;|lt;|gt;)", slack)
    visible, links, problems = telegram_visible(escape_html(cleaned))
    assert problems == [] and links == []
    assert visible == cleaned.replace("@", "@" + WORD_JOINER)


@settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(title=st.text(max_size=400), summary=st.text(max_size=400), kind=st.sampled_from(TYPES))
def test_any_text_renders_to_a_valid_payload(title: str, summary: str, kind: str) -> None:
    assert_inert(kind, render(kind, message(title, summary, title_en=summary)), LINK)


def test_telegram_never_cuts_inside_an_entity_at_the_limit() -> None:
    for filler in ("&", "<", '"', "a&", "ab&"):
        outgoing = render("telegram", message(filler * 5000, filler * 5000, title_en=filler * 5000))
        text = json.loads(outgoing.body)["text"]
        visible, _, problems = telegram_visible(text)
        assert problems == []
        assert utf16_len(visible) <= 4096


@pytest.mark.parametrize("kind", [*(k for k in TYPES if k != "webhook"), "apprise"])
def test_every_digest_entry_says_what_matched_as_single_messages_do(kind: str) -> None:
    size = 5 if kind == "ntfy" else 10
    forms = ("خانەقین", "Xaneqînê", "بخانقين")
    messages = tuple(
        dataclasses.replace(
            message(f"Report {n}", delivery_id=n),
            matches=(MatchedForm("Khanaqin", forms[n % 3], "title", 0, 7),),
        )
        for n in range(size)
    )
    digest = Digest("dig_x", "khanaqin", "high", messages)
    if kind == "apprise":
        flat = apprise_texts(digest)[1]
    else:
        payload = json.loads(render(kind, digest).body)
        path = "/bot123:abc/sendMessage" if kind == "telegram" else "/"
        if kind != "matrix":
            assert validate(kind, payload, path=path) == []
        flat = json.dumps(payload, ensure_ascii=False)
    assert flat.lower().count("matched") >= size
    for n in range(size):
        assert forms[n % 3] in flat
