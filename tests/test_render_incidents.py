"""Rendering an incident for every sink type and capability (monitor/deliver/sinks.py).

Each message says what the incident is in English (`Khanaqin (Diyala) · suicide bomber`) next to
the original title, names the language, says when there is no translation, and says BREAKING;
later reports go out as the service allows (thread reply, edit, coalesced update, one event
each). Hostile feed text stays inert in every shape, as in tests/test_render.py.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from receivers import incident_report, markdown_links, telegram_visible, validate
from test_render import APPRISE_IMGHDR, HOSTILE, NOW, SECRET, html_tags, sink, strings

from monitor.config import SinkConfig
from monitor.deliver.apprise_sink import apprise_texts
from monitor.deliver.message import Message
from monitor.deliver.render import LANGUAGES, Outgoing, language_name
from monitor.deliver.safety import WORD_JOINER, safe_url
from monitor.deliver.sinks import SINK_TYPES, Capability, RemoteRef, sink_type
from monitor.errors import ConfigError, DeliveryError

CHAT = ["slack", "slack-api", "discord", "teams", "mattermost", "telegram", "matrix", "ntfy"]
LINK = "https://news.example.org/khanaqin/1"
ROOTS = {
    "slack-api": RemoteRef("1700000001.000001", "C0123"),
    "discord": RemoteRef("1100000000000000001"),
    "telegram": RemoteRef("41"),
    "matrix": RemoteRef("$root-event:localhost"),
}


def sink_of(kind: str) -> SinkConfig:
    if kind == "slack-api":
        return SinkConfig(name="slack-bot", type="slack", token="xoxb-1-2-abc", channel="C0123")
    if kind == "apprise":
        return SinkConfig(name="apprise-sink", type="apprise", url="json://127.0.0.1:9/")
    return sink(kind)


def render(kind: str, message: Message, root: RemoteRef | None = None) -> Outgoing:
    config = sink_of(kind)
    return sink_type(config).render(config, message, root, NOW)


def reports(count: int, **kwargs: Any) -> tuple[Message, ...]:
    return tuple(
        incident_report(
            n,
            kind="updated",
            **{
                "title": f"Report {n} from Khanaqin",
                "url": f"https://news.example.org/khanaqin/{n}",
                **kwargs,
            },
        )
        for n in range(1, count + 1)
    )


def update(kind: str, count: int = 3, **kwargs: Any) -> tuple[Message, RemoteRef | None]:
    """The update a sink of `kind` gets for the newest of `count` reports, with its root."""
    capability = sink_type(sink_of(kind)).capability(sink_of(kind))
    listed = reports(count, reports=count, **kwargs)
    # An edit lists every report; a coalesced update those added since the last one.
    new = listed if capability == "edit" else listed[1:] if capability == "coalesce" else ()
    message = dataclasses.replace(listed[-1], new_reports=new)
    return message, ROOTS.get(kind)


def text_of(kind: str, outgoing: Outgoing) -> str:
    """Everything a reader sees, as one string, unescaped enough to search."""
    flat = json.dumps(json.loads(outgoing.body), ensure_ascii=False)
    flat = flat.replace("\\\\", "").replace(WORD_JOINER, "")
    return re.sub(r"\\(?=[-.:()#\[\]*_|])", "", flat)


def payload_links(kind: str, payload: dict[str, Any]) -> list[str]:
    """Every link target a reader could click."""
    if kind.startswith("slack"):
        blocks = payload["blocks"]
        found = [e["url"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
        return found + [b["accessory"]["url"] for b in blocks if "accessory" in b]
    if kind == "discord":
        return [e["url"] for e in payload["embeds"] if "url" in e]
    if kind == "mattermost":
        return markdown_links(payload["text"])
    if kind == "telegram":
        return telegram_visible(payload["text"])[1]
    if kind == "matrix":
        return html_tags(payload["formatted_body"]).hrefs
    if kind == "ntfy":
        return [payload["click"]] if "click" in payload else []
    card = payload["attachments"][0]["content"]
    found = [a["url"] for a in card.get("actions", [])]
    return found + [c["selectAction"]["url"] for c in card["body"] if "selectAction" in c]


def assert_valid_and_inert(kind: str, outgoing: Outgoing) -> dict[str, Any]:
    """What the service would accept (its validator), and nothing pings, injects or links
    anywhere but to the items."""
    payload: dict[str, Any] = json.loads(outgoing.body)
    parts = urlsplit(outgoing.url)
    service = "slack" if kind == "slack-api" else kind
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if kind != "matrix":
        problems = validate(
            service,
            payload,
            path=path,
            size=len(outgoing.body),
            method=outgoing.method,
            headers={k.lower(): v for k, v in outgoing.headers.items()},
        )
        assert problems == []
    for text in strings(payload):
        assert not re.search(r"@(?=\w)", text), text[:120]
        assert not re.search("[\u202a-\u202e\u2066-\u2069\x00-\x08\x0b-\x1f\x7f-\x9f]", text)
    if kind.startswith("slack"):
        assert all("<" not in t and ">" not in t for t in strings(payload["blocks"]))
    if kind == "telegram":
        assert telegram_visible(payload["text"])[2] == []
    if kind == "matrix":
        assert payload["m.mentions"] == {}
        assert set(html_tags(payload["formatted_body"]).tags) <= {
            "strong",
            "em",
            "br",
            "a",
            "ul",
            "li",
        }
        assert len(outgoing.body) < 65536
    allowed = {safe_url(f"https://news.example.org/khanaqin/{n}") for n in range(0, 30)}
    assert set(payload_links(kind, payload)) <= allowed
    return payload


# The protocol --------------------------------------------------------------------------------


def test_every_sink_type_is_served_and_says_how_it_updates() -> None:
    capabilities = {kind: sink_type(sink_of(kind)).capability(sink_of(kind)) for kind in CHAT}
    capabilities["apprise"] = SINK_TYPES["apprise"].capability(sink_of("apprise"))
    capabilities["webhook"] = SINK_TYPES["webhook"].capability(sink_of("webhook"))
    expected: dict[str, Capability] = {
        "slack": "coalesce",
        "slack-api": "thread",
        "discord": "edit",
        "teams": "coalesce",
        "mattermost": "coalesce",
        "telegram": "thread",
        "matrix": "thread",
        "ntfy": "coalesce",
        "apprise": "coalesce",
        "webhook": "each",
    }
    assert capabilities == expected
    assert set(SINK_TYPES) == set(SinkConfig.model_fields["type"].annotation.__args__)  # type: ignore[union-attr]
    assert [name for name, kind in SINK_TYPES.items() if kind.direct] == ["apprise"]
    assert SINK_TYPES["webhook"].digest_size is None and SINK_TYPES["ntfy"].digest_size == 5


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        (
            "slack",
            '{"ok":true,"channel":"C0123","ts":"1700000001.000100"}',
            RemoteRef("1700000001.000100", "C0123"),
        ),
        ("slack", "ok", None),
        ("slack", '{"ok":true,"ts":"not a ts"}', None),
        (
            "discord",
            '{"id":"1100000000000000001","channel_id":"22"}',
            RemoteRef("1100000000000000001", "22"),
        ),
        ("discord", '{"id":"../../x"}', None),
        ("discord", "", None),
        ("telegram", '{"ok":true,"result":{"message_id":42,"chat":{"id":-1}}}', RemoteRef("42")),
        ("telegram", '{"ok":true,"result":{"message_id":true}}', None),
        ("telegram", '{"ok":true,"result":[]}', None),
        ("matrix", '{"event_id":"$abc:localhost"}', RemoteRef("$abc:localhost")),
        ("matrix", '{"event_id":"abc"}', None),
        ("matrix", '{"event_id":"$a b"}', None),
        ("teams", "1", None),
        ("mattermost", "ok", None),
        ("ntfy", '{"id":"x1"}', None),
        ("webhook", '{"id":"x1"}', None),
    ],
)
def test_the_first_messages_id_is_read_from_the_services_answer(
    kind: str, body: str, expected: RemoteRef | None
) -> None:
    assert SINK_TYPES[kind].remote_ref(body) == expected


def test_a_cut_answer_is_sent_whatever_the_body_says() -> None:
    slack = SINK_TYPES["slack"]
    assert slack.classify(200, {}, "invalid_payload").kind == "dead"
    assert slack.classify(200, {}, "invalid_pay", complete=False).kind == "sent"
    assert slack.classify(500, {}, "", complete=False).kind == "retry"


def test_slack_web_api_rate_limit_in_a_200_is_retried_not_dead() -> None:
    slack = SINK_TYPES["slack"]
    assert slack.classify(200, {}, '{"ok":false,"error":"ratelimited"}').kind == "retry"
    assert slack.classify(200, {}, '{"ok":false,"error":"not_in_channel"}').kind == "dead"


def test_language_names_cover_every_language_the_monitor_detects() -> None:
    assert language_name("ckb") == "Sorani Kurdish"
    assert language_name("kmr") == "Kurmanji Kurdish"
    assert language_name("kmr-Arab") == "Kurdish (Badini)"
    assert language_name("ar") == "Arabic"
    assert language_name("en") == "English"
    assert language_name(None) == "language unknown"
    assert language_name("sw\u202e") == "sw"  # an unknown code is shown, cleaned
    assert {"en", "ar", "ckb", "kmr", "kmr-Arab", "und"} <= set(LANGUAGES)


def test_slack_with_a_token_needs_a_channel_and_a_channel_needs_a_token() -> None:
    with pytest.raises(ValueError, match="needs channel"):
        SinkConfig(name="s", type="slack", token="xoxb-1")
    with pytest.raises(ValueError, match="channel applies to slack sinks with a token"):
        SinkConfig(
            name="s", type="slack", url="https://hooks.slack.com/services/T/B/x", channel="C1"
        )
    assert SinkConfig(name="s", type="slack", token="xoxb-1", channel="C1").url is None


def test_a_slack_token_sink_in_config_yaml_loads_with_its_channel(make_config: Any) -> None:
    config = make_config(
        sinks=[{"name": "bot", "type": "slack", "token": "xoxb-1", "channel": "C1"}]
    )
    assert sink_type(config.sinks[0]).capability(config.sinks[0]) == "thread"
    with pytest.raises(ConfigError, match="channel"):
        make_config(sinks=[{"name": "bot", "type": "slack", "token": "xoxb-1"}])


# The created message -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*CHAT, "webhook"])
def test_created_message_names_the_incident_in_english_beside_the_original(kind: str) -> None:
    flat = text_of(kind, render(kind, incident_report()))
    for needle in (
        "هێرشی خۆکوژ لە خانەقین",  # the original title
        "suicide-bomber",
        "khanaqin",  # every watchlist routed here
        "Rudaw (Sorani)",
    ):
        assert needle in flat, (kind, needle)
    if kind == "webhook":
        assert "Khanaqin (Diyala)" in flat and "suicide bomber" in flat
    else:
        assert "Khanaqin (Diyala) · suicide bomber" in flat, kind
        assert "Sorani Kurdish" in flat
        assert "not translated: no model for ckb" in flat
        assert "[HIGH]" in flat and "BREAKING" not in flat


@APPRISE_IMGHDR
def test_apprise_created_message_names_the_incident_too() -> None:
    title, body = apprise_texts(incident_report(breaking=True))
    assert title.startswith("BREAKING · [CRITICAL] suicide-bomber, khanaqin")
    assert "Khanaqin (Diyala) · suicide bomber" in body
    assert "not translated: no model for ckb" in body and "Sorani Kurdish" in body


@pytest.mark.parametrize("kind", CHAT)
def test_a_breaking_incident_says_so_in_created_and_updates(kind: str) -> None:
    created = text_of(kind, render(kind, incident_report(breaking=True)))
    assert "BREAKING" in created and "CRITICAL" in created
    message, root = update(kind, breaking=True)
    assert "BREAKING" in text_of(kind, render(kind, message, root))


@pytest.mark.parametrize("kind", CHAT)
def test_translation_is_shown_or_its_absence_explained(kind: str) -> None:
    translated = text_of(kind, render(kind, incident_report(title_en="Suicide bomber killed")))
    assert "Suicide bomber killed" in translated and "not translated" not in translated
    unknown = incident_report(translation_note=None)
    assert "not translated" in text_of(kind, render(kind, unknown))
    english = incident_report(title="Suicide bomber killed", language="en", translation_note=None)
    flat = text_of(kind, render(kind, english))
    assert "not translated" not in flat and "English" in flat
    badini = incident_report(language="kmr-Arab", translation_note="no model for kmr-Arab")
    flat = text_of(kind, render(kind, badini))
    assert "Kurdish (Badini)" in flat and "not translated: no model for kmr-Arab" in flat


def test_an_old_alert_without_an_incident_names_its_matched_terms() -> None:
    message = dataclasses.replace(incident_report(), incident=None)
    flat = text_of("slack", render("slack", message))
    assert "[HIGH] suicide-bomber" in flat and "Khanaqin" in flat


# Updates, per capability ---------------------------------------------------------------------


def test_telegram_update_is_a_reply_to_the_first_message() -> None:
    message, root = update("telegram")
    outgoing = render("telegram", message, root)
    payload = assert_valid_and_inert("telegram", outgoing)
    assert payload["reply_parameters"] == {"message_id": 41, "allow_sending_without_reply": True}
    assert outgoing.url.endswith("/bot123:abc/sendMessage")
    assert "report 3" in payload["text"] and "Report 3 from Khanaqin" in payload["text"]
    created = json.loads(render("telegram", incident_report()).body)
    assert "reply_parameters" not in created


def test_telegram_refuses_a_root_that_is_not_a_message_id() -> None:
    message, _ = update("telegram")
    with pytest.raises(DeliveryError, match="not a Telegram message id"):
        render("telegram", message, RemoteRef("1; drop"))


def test_matrix_update_is_a_thread_reply_with_the_reply_fallback() -> None:
    message, root = update("matrix")
    payload = assert_valid_and_inert("matrix", render("matrix", message, root))
    assert payload["m.relates_to"] == {
        "rel_type": "m.thread",
        "event_id": "$root-event:localhost",
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": "$root-event:localhost"},
    }
    assert "m.relates_to" not in json.loads(render("matrix", incident_report()).body)


def test_slack_with_a_token_posts_through_the_web_api_and_threads_updates() -> None:
    created = render("slack-api", incident_report())
    assert created.url == "https://slack.com/api/chat.postMessage"
    assert created.headers["Authorization"] == "Bearer xoxb-1-2-abc"
    payload = assert_valid_and_inert("slack-api", created)
    assert payload["channel"] == "C0123" and "thread_ts" not in payload
    message, root = update("slack-api")
    payload = assert_valid_and_inert("slack-api", render("slack-api", message, root))
    assert payload["thread_ts"] == "1700000001.000001"
    # The sink's url, when given, is the API's base: a test server or a proxy.
    local = SinkConfig(
        name="b", type="slack", token="xoxb-1", channel="C1", url="http://127.0.0.1:9/api/"
    )
    assert sink_type(local).render(local, message, root, NOW).url == (
        "http://127.0.0.1:9/api/chat.postMessage"
    )


def test_discord_creates_with_wait_and_edits_the_first_message_to_list_every_report() -> None:
    threaded = SinkConfig(
        name="d", type="discord", url="https://discord.com/api/webhooks/1/tok?thread_id=77"
    )
    created = sink_type(threaded).render(threaded, incident_report(), None, NOW)
    assert created.method == "POST"
    assert parse_qs(urlsplit(created.url).query) == {"thread_id": ["77"], "wait": ["true"]}
    message, root = update("discord", count=4)
    edit = sink_type(threaded).render(threaded, message, root, NOW)
    assert edit.method == "PATCH"
    assert edit.url == (
        "https://discord.com/api/webhooks/1/tok/messages/1100000000000000001?thread_id=77"
    )
    payload = assert_valid_and_inert("discord", render("discord", message, root))
    assert payload["allowed_mentions"] == {"parse": []}
    titles = [embed["title"] for embed in payload["embeds"]]
    assert titles == [f"Report {n} from Khanaqin" for n in range(1, 5)]
    assert "4 reports" in payload["content"]
    with pytest.raises(DeliveryError, match="not a Discord message id"):
        render("discord", message, RemoteRef("1/../../x"))


def test_discord_edit_of_many_reports_lists_the_newest_and_counts_the_rest() -> None:
    message, root = update("discord", count=14)
    payload = assert_valid_and_inert("discord", render("discord", message, root))
    assert len(payload["embeds"]) == 10
    assert payload["embeds"][-1]["title"] == "Report 14 from Khanaqin"
    assert "and 4 earlier reports" in payload["content"]


@pytest.mark.parametrize("kind", ["slack", "teams", "mattermost", "ntfy"])
def test_coalesced_update_lists_the_reports_added_since(kind: str) -> None:
    message, root = update(kind, count=4)
    outgoing = render(kind, message, root)
    payload = assert_valid_and_inert(kind, outgoing)
    flat = text_of(kind, outgoing)
    assert "update: 3 new reports" in flat
    for n in (2, 3, 4):
        assert f"Report {n} from Khanaqin" in flat
    assert "Report 1 from Khanaqin" not in flat
    assert "Suicide bomber killed at a Khanaqin checkpoint" in flat  # the incident's title
    assert len(payload_links(kind, payload)) == (0 if kind == "ntfy" else 3)


@APPRISE_IMGHDR
def test_apprise_coalesced_update_lists_the_reports_added_since() -> None:
    message, _ = update("apprise", count=3)
    title, body = apprise_texts(message)
    assert "update: 2 new reports" in title
    assert "Report 2 from Khanaqin" in body and "Report 3 from Khanaqin" in body


def test_ntfy_coalesced_update_of_many_reports_stays_under_its_limit() -> None:
    message, _ = update("ntfy", count=12, title_en="x" * 400)
    payload = assert_valid_and_inert("ntfy", render("ntfy", message))
    assert "and 6 earlier reports" in payload["message"]
    assert payload["message"].count("Report ") == 5


def _webhook_signature(outgoing: Outgoing) -> str:
    key = base64.b64decode(SECRET.removeprefix("whsec_") + "==")
    signed = f"{outgoing.headers['webhook-id']}.{outgoing.headers['webhook-timestamp']}."
    mac = hmac.new(key, signed.encode() + outgoing.body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def test_webhook_sends_one_signed_event_per_report() -> None:
    created = render("webhook", incident_report())
    message, _ = update("webhook")
    updated = render("webhook", message)
    for outgoing in (created, updated):
        assert outgoing.headers["webhook-signature"] == _webhook_signature(outgoing)
    first, later = json.loads(created.body), json.loads(updated.body)
    assert first["type"] == "incident.created" and later["type"] == "incident.updated"
    assert created.headers["webhook-id"] != updated.headers["webhook-id"]
    incident = later["data"]["incident"]
    assert incident == {
        "id": "inc-khanaqin",
        "title": "Suicide bomber killed at a Khanaqin checkpoint",
        "severity": "high",
        "breaking": False,
        "watchlists": ["suicide-bomber", "khanaqin"],
        "places": ["Khanaqin (Diyala)"],
        "terms": ["suicide bomber"],
        "languages": ["en", "ar", "ckb", "kmr"],
        "outlets": ["Rudaw (Sorani)", "Shafaq News", "Kurdistan 24", "ANF (Kurmanji)"],
        "reports": 3,
        "first_seen": "2026-11-24T11:30:00+00:00",
        "last_seen": "2026-11-24T12:00:00+00:00",
    }
    assert later["data"]["item"]["title"] == "Report 3 from Khanaqin"
    assert set(later["data"]) == {"incident", "alert", "item", "translation", "matches", "feed"}


def test_an_update_whose_first_message_was_never_sent_goes_out_on_its_own() -> None:
    for kind in ("telegram", "matrix", "slack-api"):
        message, _ = update(kind)
        payload = assert_valid_and_inert(kind, render(kind, message, None))
        assert not {"reply_parameters", "m.relates_to", "thread_ts"} & set(payload)
    message, _ = update("discord")
    assert render("discord", message, None).method == "POST"


# Hostile text in every shape -----------------------------------------------------------------

SHAPES = ["created", "update"]


@pytest.mark.parametrize("kind", CHAT)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_text_stays_inert_in_every_shape(kind: str, shape: str, case: str) -> None:
    text = HOSTILE[case]
    hostile: dict[str, Any] = {
        "title": text,
        "title_en": text,
        "feed": text,
        "places": (text,),
        "terms": (text,),
        "incident_title": text,
        "translation_note": text,
    }
    if shape == "created":
        message, root = incident_report(**hostile), None
    else:
        message, root = update(kind, count=4, **hostile)
    assert_valid_and_inert(kind, render(kind, message, root))


@pytest.mark.parametrize("kind", CHAT)
def test_hostile_untranslated_note_and_language_stay_inert(kind: str) -> None:
    message = incident_report(language="@everyone<b>", translation_note=HOSTILE["mentions"])
    assert_valid_and_inert(kind, render(kind, message))


@settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    text=st.text(max_size=300),
    kind=st.sampled_from(CHAT),
    shape=st.sampled_from(SHAPES),
    breaking=st.booleans(),
)
def test_any_text_in_any_shape_renders_to_a_valid_inert_payload(
    text: str, kind: str, shape: str, breaking: bool
) -> None:
    fields: dict[str, Any] = {
        "title": text,
        "places": (text,),
        "terms": (text, "suicide bomber"),
        "incident_title": text,
        "translation_note": text or None,
        "breaking": breaking,
    }
    if shape == "created":
        message, root = incident_report(**fields), None
    else:
        message, root = update(kind, count=3, **fields)
    assert_valid_and_inert(kind, render(kind, message, root))
