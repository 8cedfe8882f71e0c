"""Incidents in the daemon: config, schema and migration, and the poll and rescan paths.

Real parts: the bundled demo feeds served on 127.0.0.1, the real `Monitor`, on both engines
(`make_config` below takes `store_target`: a SQLite file, then a PostgreSQL database).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner
from conftest import FeedServer, rss
from engines import make_config_on_both_engines  # noqa: F401
from tiny_models import ARGOS_ENGLISH, TinyModels, session_models

from monitor.analyze import Analyzer
from monitor.cli import cli
from monitor.config import Config, load_config
from monitor.demo import FEEDS_DIR, serve_directory
from monitor.errors import ConfigError
from monitor.incident_desk import incident_settings
from monitor.incidents import Settings
from monitor.rescan import rescan
from monitor.service import Monitor
from monitor.store import Store
from monitor.store.incidents import solo_incident_id
from monitor.store.schema import migrations

DEMO_FEEDS = [
    {"name": "Demo English", "file": "english.xml", "language": "en"},
    {"name": "Demo English wire", "file": "english-wire.xml", "language": "en"},
    {"name": "Demo Arabic", "file": "arabic.xml", "language": "ar"},
    {"name": "Demo Sorani", "file": "sorani.xml", "language": "ckb"},
    {"name": "Demo Kurmanji", "file": "kurmanji.xml", "language": "kmr"},
]
WATCHLISTS = [
    {
        "name": "khanaqin",
        "severity": "high",
        "terms": [{"term": "Khanaqin", "aliases": ["خانقين", "خانەقین", "Xaneqîn"]}],
    },
    {
        "name": "diyala",
        "severity": "medium",
        "terms": [{"term": "Diyala", "aliases": ["ديالى", "دیالە"]}],
    },
    {
        "name": "suicide-bomber",
        "severity": "critical",
        "terms": [{"term": "suicide bomber", "aliases": ["انتحاري", "خۆتەقێنەر", "xwekuj"]}],
        "none": ["exercise", "drill"],
    },
]
SINKS = [
    {"name": "siem", "type": "webhook", "url": "http://127.0.0.1:9/siem"},
    {"name": "desk", "type": "webhook", "url": "http://127.0.0.1:9/desk"},
]


def demo_config(make_config: Any, base: str, **overrides: Any) -> Config:
    feeds = [
        {"name": f["name"], "url": f"{base}/{f['file']}", "language": f["language"]}
        for f in DEMO_FEEDS
        if f["name"] in overrides.get("only", [f["name"] for f in DEMO_FEEDS])
    ]
    overrides.pop("only", None)
    return make_config(  # type: ignore[no-any-return]
        feeds=feeds,
        polling={"backfill": "36500d"},
        watchlists=overrides.pop("watchlists", WATCHLISTS),
        sinks=overrides.pop("sinks", SINKS),
        **overrides,
    )


def poll_once(config: Config, names: list[str] | None = None) -> None:
    async def run() -> None:
        async with Monitor(config, parse_workers=1) as monitor:
            await monitor.poll_once(names)

    asyncio.run(run())


def rows(config: Config, sql: str) -> list[tuple[Any, ...]]:
    store = Store.open_readonly(config.database)
    try:
        return [tuple(row) for row in store.db.execute(sql).fetchall()]
    finally:
        store.close()


# --- config ---


def test_the_incidents_section_maps_onto_the_incident_settings(make_config: Any) -> None:
    config = make_config(
        incidents={
            "window": "12h",
            "breaking": {"outlets": 2, "within": "30m"},
            "update_every": "5m",
        }
    )
    assert incident_settings(config.incidents) == Settings(
        window=timedelta(hours=12), breaking_outlets=2, breaking_within=timedelta(minutes=30)
    )
    assert config.incidents.update_every == timedelta(minutes=5)
    defaults = make_config().incidents
    assert incident_settings(defaults) == Settings()
    assert defaults.update_every == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  window: 0s\n", "incidents.window: must be longer than 0s"),
        ("  breaking: {outlets: 0}\n", "incidents.breaking.outlets: must be at least 1, not 0"),
        ("  update_every: 10\n", "incidents.update_every: 10 has no unit: write 10s"),
        ("  windw: 2h\n", "incidents.windw: unknown key (did you mean 'window'?)"),
    ],
)
def test_bad_incident_settings_are_refused_in_one_line(
    tmp_path: Path, section: str, message: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"incidents:\n{section}", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value) == f"{path}:2: {message}"


# --- the poll path ---


def test_the_demo_story_is_one_incident_with_one_created_delivery_per_sink(
    make_config: Any,
) -> None:
    with serve_directory(FEEDS_DIR) as base:
        config = demo_config(make_config, base)
        poll_once(config)
    (incident,) = rows(
        config,
        "SELECT id, reports, languages, places, terms, severity, breaking FROM incidents",
    )
    ident, reports, languages, places, terms, severity, breaking = incident
    assert reports == 4  # the English story's two feeds carry one link: one report
    assert set(json.loads(languages)) == {"en", "ar", "ckb", "kmr"}
    assert json.loads(places) == ["Khanaqin (Diyala)"]
    assert "suicide bomber" in json.loads(terms)
    assert (severity, breaking) == ("critical", 1)
    # One report per item, with the evidence a restore needs.
    reported = rows(config, "SELECT incident_id, places, events FROM incident_reports")
    assert len(reported) == 4
    assert {r[0] for r in reported} == {ident}
    assert all(json.loads(r[1]) == ["khanaqin"] and json.loads(r[2]) for r in reported)
    # 12 alerts (4 items × 3 watchlists), but one delivery per report and sink: the first
    # report of the incident is `created`, the others `updated`.
    assert rows(config, "SELECT COUNT(*) FROM alerts") == [(12,)]
    kinds = rows(
        config,
        "SELECT sink, kind, COUNT(*) FROM deliveries WHERE incident_id = '"
        + ident
        + "' GROUP BY sink, kind ORDER BY sink, kind",
    )
    assert kinds == [
        ("desk", "created", 1),
        ("desk", "updated", 3),
        ("siem", "created", 1),
        ("siem", "updated", 3),
    ]
    assert rows(config, "SELECT COUNT(*) FROM deliveries") == [(8,)]


def test_a_restarted_daemon_joins_later_reports_to_the_incidents_it_restores(
    make_config: Any,
) -> None:
    with serve_directory(FEEDS_DIR) as base:
        config = demo_config(make_config, base)
        poll_once(config, ["Demo English wire"])
        first = rows(config, "SELECT id FROM incidents")
        poll_once(config, ["Demo Arabic", "Demo Sorani"])  # a new Monitor: restored
    assert rows(config, "SELECT id, reports FROM incidents") == [(first[0][0], 3)]
    assert rows(
        config, "SELECT kind, COUNT(*) FROM deliveries WHERE sink = 'siem' GROUP BY kind"
    ) == [("created", 1), ("updated", 2)]


def test_rescan_adds_reports_to_incidents_as_the_poll_does(make_config: Any) -> None:
    with serve_directory(FEEDS_DIR) as base:
        config = demo_config(make_config, base, watchlists=WATCHLISTS[:1])
        poll_once(config)
        before = rows(config, "SELECT id, reports FROM incidents")
        assert [r[1] for r in before] == [4]
        wider = demo_config(make_config, base)
    store = Store.open(wider.database)
    try:
        now = datetime.now(UTC)
        result = rescan(
            store,
            Analyzer(wider.watchlists),
            wider,
            now - timedelta(days=1),
            now,
            alert_old=True,
        )
    finally:
        store.close()
    # The new watchlists' alerts belong to reports already in the incident: no new report,
    # no new delivery, the incident's watchlists widen.
    assert result.alerts == 8
    (incident,) = rows(config, "SELECT id, reports, watchlists FROM incidents")
    assert incident[:2] == before[0]
    assert set(json.loads(incident[2])) == {"khanaqin", "diyala", "suicide-bomber"}
    assert rows(config, "SELECT COUNT(*) FROM deliveries") == [(8,)]


# --- the migration ---


def test_existing_alerts_become_incidents_one_per_story(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="0009_incidents")
    now = "2026-11-20T10:00:00+00:00"
    db.execute("INSERT INTO feeds (id, name, url) VALUES (1, 'wire', 'http://x/1')")
    db.execute("INSERT INTO feeds (id, name, url) VALUES (2, 'other', 'http://x/2')")
    for item, feed, story, title, language in [
        (1, 1, "story-a", "Suicide bomber killed in Khanaqin", "en"),
        (2, 2, "story-a", "Suicide bomber killed in Khanaqin", "en"),
        (3, 1, "story-b", "انفجار في بعقوبة", "ar"),
    ]:
        db.execute(
            """INSERT INTO items (id, feed_id, guid, title, summary, fetched_at, language,
                   story_key) VALUES (?, ?, ?, ?, '', ?, ?, ?)""",
            [item, feed, f"g{item}", title, now, language, story],
        )
    for alert, item, story, watchlist, severity in [
        (1, 1, "story-a", "suicide-bomber", "critical"),
        (2, 1, "story-a", "khanaqin", "high"),
        (3, 2, "story-a", "diyala", "medium"),
        (4, 3, "story-b", "baqubah", "high"),
    ]:
        db.execute(
            """INSERT INTO alerts (id, item_id, story_key, watchlist, severity, matches,
                   created_at) VALUES (?, ?, ?, ?, ?, '[]', ?)""",
            [alert, item, story, watchlist, severity, now],
        )
        db.execute(
            """INSERT INTO deliveries (alert_id, sink, status, next_attempt_at, created_at)
               VALUES (?, 'slack', 'sent', ?, ?)""",
            [alert, now, now],
        )
    db.conn.commit()
    db.close()

    store = Store.open(path)
    try:
        assert "0009_incidents" in store.applied_migrations()
        incidents = store.db.execute(
            "SELECT id, title, watchlists, severity, reports, closed_at IS NOT NULL"
            " FROM incidents ORDER BY title"
        ).fetchall()
        reports = store.db.execute(
            "SELECT incident_id, item_id, key FROM incident_reports ORDER BY item_id"
        ).fetchall()
        deliveries = store.db.execute(
            "SELECT alert_id, incident_id, item_id, kind FROM deliveries ORDER BY alert_id"
        ).fetchall()
    finally:
        store.close()
    a, b = solo_incident_id("story-a"), solo_incident_id("story-b")
    assert incidents == [
        (a, "Suicide bomber killed in Khanaqin", '["suicide-bomber", "khanaqin", "diyala"]',
         "critical", 2, 1),
        (b, "انفجار في بعقوبة", '["baqubah"]', "high", 1, 1),
    ]  # fmt: skip
    assert reports == [(a, 1, "story-a"), (a, 2, "story-a#2"), (b, 3, "story-b")]
    # The first delivery per incident and sink is its `created` one; an item's extra
    # per-watchlist rows keep no report of their own.
    assert deliveries == [
        (1, a, 1, "created"),
        (2, a, None, "updated"),
        (3, a, 2, "updated"),
        (4, b, 3, "created"),
    ]


# --- second passes ---


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return session_models(tmp_path_factory)


def test_a_translation_that_lands_after_the_poll_titles_the_incident(
    make_config: Any, tiny: TinyModels, feed_server: FeedServer
) -> None:
    url = feed_server.route(
        "/ar.xml",
        rss([{"title": "مقتل شخص قرب نقطة تفتيش", "link": "https://ar.example.org/1"}]),
    )
    config = make_config(
        state_dir="state",
        feeds=[{"name": "Arabic desk", "url": url, "language": "ar"}],
        polling={"backfill": "36500d"},
        # Matches the Arabic text itself: the report is placed at the poll, untranslated.
        watchlists=[{"name": "checkpoint", "terms": [{"term": "تفتيش", "expand": False}]}],
        sinks=SINKS,
    )
    installed = CliRunner().invoke(
        cli, ["--config", str(config.source), "models", "install", str(tiny.argos_ar)]
    )
    assert installed.exit_code == 0, installed.output

    async def run() -> None:
        async with Monitor(config, parse_workers=1) as monitor:
            await monitor.poll_once()
            assert rows(config, "SELECT title FROM incidents") == [("مقتل شخص قرب نقطة تفتيش",)]
            await monitor.translate_queued()

    asyncio.run(run())
    assert rows(config, "SELECT title FROM incidents") == [(ARGOS_ENGLISH,)]
    assert rows(config, "SELECT title_en FROM incident_reports") == [(ARGOS_ENGLISH,)]
