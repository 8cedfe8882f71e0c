"""Translation through the commands a user runs: `models install`, `analyze`, `poll-once`.

The tiny models (tests/tiny_models.py) say a known English phrase, so the test knows what the
second match sees: an Arabic item whose own text matches nothing alerts a watchlist written in
English only, once the translation lands, and the webhook carries the English title.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import FeedServer, rss
from receivers import Receiver
from tiny_models import ARGOS_ENGLISH, NLLB_ENGLISH, TinyModels, session_models

from monitor.cli import cli
from monitor.config import load_config
from monitor.service import Monitor
from monitor.store import Store


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return session_models(tmp_path_factory)


def _config(
    directory: Path, feed_url: str, hook_url: str, database: Path | str = "monitor.db"
) -> Path:
    path = directory / "config.yaml"
    data = {
        "database": str(database),
        "state_dir": "state",
        "polling": {"backfill": "36500d"},
        "feeds": [{"name": "Arabic desk", "url": feed_url, "language": "ar"}],
        # Written in English only, without gazetteer expansion: the Arabic text cannot match
        # it, only its translation can.
        "watchlists": [
            {
                "name": "bomber",
                "severity": "high",
                "terms": [{"term": "suicide bomber", "expand": False}],
            }
        ],
        "sinks": [{"name": "hook", "type": "webhook", "url": hook_url}],
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _arabic_feed(feed_server: FeedServer, summary: str = "") -> str:
    """One Arabic item whose own text matches no watchlist; its translation does."""
    item = {
        "title": "مقتل شخص قرب نقطة تفتيش",
        "summary": summary,
        "link": "https://ar.example.org/1",
    }
    return feed_server.route("/ar.xml", rss([item]))


def _invoke(config: Path, *args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], input=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_models_install_then_analyze_translates_arabic_and_sorani(
    tmp_path: Path, tiny: TinyModels
) -> None:
    config = _config(tmp_path, "http://127.0.0.1:9/feed.xml", "http://127.0.0.1:9/hook")

    def engines() -> dict[str, str | None]:
        rows = [
            json.loads(line) for line in _invoke(config, "models", "list", "--json").splitlines()
        ]
        return {row["language"]: row["engine"] for row in rows}

    assert engines() == {"ar": None, "ckb": None, "kmr": None}
    assert _invoke(config, "models", "install", str(tiny.argos_ar))
    assert _invoke(config, "models", "install", str(tiny.nllb))
    assert engines() == {"ar": "argos", "ckb": "nllb", "kmr": "nllb"}

    lines = [
        {"id": 1, "title": "مقتل شخص في السوق", "summary": "", "language": "ar"},
        {"id": 2, "title": "هەواڵێکی نوێ لە هەولێرەوە", "summary": "", "language": "ckb"},
    ]
    stdin = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n"
    arabic, sorani = (
        json.loads(line) for line in _invoke(config, "analyze", stdin=stdin).splitlines()
    )
    assert arabic["translation"]["title"] == ARGOS_ENGLISH
    assert arabic["translation"]["engine"] == "argos"
    # The English text alone matches the English-only watchlist: "why did this alert?"
    assert [(m["watchlist"], m["field"]) for m in arabic["matches"]] == [("bomber", "title_en")]
    assert sorani["language"] == "ckb"
    assert sorani["translation"]["title"] == NLLB_ENGLISH
    assert sorani["translation"]["engine"] == "nllb"
    assert sorani["matches"] == []


def test_an_alert_found_only_in_the_translation_is_delivered_with_the_english_title(
    tmp_path: Path, tiny: TinyModels, feed_server: FeedServer
) -> None:
    feed_url = _arabic_feed(feed_server, "أفادت مصادر أمنية بمقتل شخص")
    receiver = Receiver("webhook")
    try:
        config = _config(tmp_path, feed_url, receiver.url())
        _invoke(config, "models", "install", str(tiny.argos_ar))
        output = _invoke(config, "poll-once")
        assert "Arabic desk: 1 items, 1 new, 0 alerts" in output
        assert "deliveries: 1 sent" in output
        [arrival] = receiver.delivered
    finally:
        receiver.close()
    data = arrival.json["data"]
    assert data["alert"]["watchlist"] == "bomber"
    assert data["item"]["title"] == "مقتل شخص قرب نقطة تفتيش"
    assert data["translation"]["title"] == ARGOS_ENGLISH
    # The tiny model says the same phrase for the summary too.
    assert [(m["form"], m["field"]) for m in data["matches"]] == [
        (ARGOS_ENGLISH, "title_en"),
        (ARGOS_ENGLISH, "summary_en"),
    ]

    # Polling again changes nothing: no second alert, no second delivery.
    output = _invoke(config, "poll-once")
    assert "Arabic desk: 1 items, 0 new, 0 alerts" in output
    alerts = _invoke(config, "alerts", "--json").splitlines()
    assert len(alerts) == 1
    assert json.loads(alerts[0])["item"]["title_en"] == ARGOS_ENGLISH


def test_items_stored_before_a_model_was_installed_are_translated_when_the_daemon_starts(
    tmp_path: Path, tiny: TinyModels, feed_server: FeedServer, store_target: Path | str
) -> None:
    # The daemon's translation worker pulls the untranslated item from the store: the queue
    # the nodes share (issue 13), on both engines.
    feed_url = _arabic_feed(feed_server)
    receiver = Receiver("webhook")
    try:
        config_path = _config(tmp_path, feed_url, receiver.url(), store_target)
        # No model yet: the item is stored and matched on its Arabic text only.
        assert "1 new, 0 alerts" in _invoke(config_path, "poll-once")
        _invoke(config_path, "models", "install", str(tiny.argos_ar))
        config = load_config(config_path)

        async def daemon() -> None:
            async with Monitor(config) as monitor:
                running = asyncio.create_task(monitor.run())
                deadline = time.monotonic() + 20
                while not receiver.delivered and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                monitor.stopping.set()
                await running

        asyncio.run(daemon())
        [arrival] = receiver.delivered
    finally:
        receiver.close()
    assert arrival.json["data"]["translation"]["title"] == ARGOS_ENGLISH
    assert arrival.json["data"]["alert"]["watchlist"] == "bomber"


def test_the_daemon_pulls_only_matched_items_in_mode_matched(
    tmp_path: Path, tiny: TinyModels, feed_server: FeedServer, store_target: Path | str
) -> None:
    # Stored by a poll-once without a model, as a busy node leaves them: the daemon's pull
    # matches them again (the service's analyzer) and translates only the one that matched.
    items = [
        {"title": "طقس مشمس في بغداد", "summary": "", "link": "https://ar.example.org/w"},
        {"title": "مقتل شخص قرب نقطة تفتيش", "summary": "", "link": "https://ar.example.org/c"},
    ]
    feed_url = feed_server.route("/ar.xml", rss(items))
    config_path = _config(tmp_path, feed_url, "http://127.0.0.1:9/hook", store_target)
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data["translation"] = {"mode": "matched"}
    data["sinks"] = []
    data["watchlists"].append(
        {"name": "checkpoint", "terms": [{"term": "نقطة تفتيش", "expand": False}]}
    )
    config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert "2 new, 1 alerts" in _invoke(config_path, "poll-once")
    _invoke(config_path, "models", "install", str(tiny.argos_ar))
    config = load_config(config_path)
    english = "SELECT title, title_en FROM items ORDER BY title"

    reader = Store.open_readonly(config.database)

    async def daemon() -> list[tuple[str, str | None]]:
        async with Monitor(config) as monitor:
            running = asyncio.create_task(monitor.run())
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if any(title_en for _, title_en in reader.db.execute(english).fetchall()):
                    break
                await asyncio.sleep(0.05)
            monitor.stopping.set()
            await running
        return [tuple(row) for row in reader.db.execute(english).fetchall()]

    try:
        found = asyncio.run(daemon())
    finally:
        reader.close()
    assert found == [
        ("طقس مشمس في بغداد", None),
        ("مقتل شخص قرب نقطة تفتيش", ARGOS_ENGLISH),
    ]
