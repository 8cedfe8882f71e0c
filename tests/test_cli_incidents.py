"""`news-monitor incidents`, `incidents show`, `merge` and `split`, on the demo's database; and
a running daemon following an analyst's correction. The corrections on a daemon's database run
on both engines (`make_config` from tests/engines.py); the demo's is a SQLite file."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from engines import make_config_on_both_engines  # noqa: F401
from invariants import invariants
from test_incidents_wiring import SINKS, demo_config

from monitor.cli import cli
from monitor.config import load_config
from monitor.demo import FEEDS_DIR, serve_directory
from monitor.incident_desk import incident_settings, split_incident
from monitor.service import Monitor
from monitor.store import Store


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    keep = tmp_path / "demo"
    result = invoke("demo", "--keep", str(keep))
    assert result.exit_code == 0, result.output
    assert "1 incident from 4 reports in 4 languages: " in result.stdout
    return keep / "config.yaml"


@pytest.fixture
def delivered(make_config: Any) -> Path:
    """The demo story polled with two sinks and its deliveries written (not sent)."""
    with serve_directory(FEEDS_DIR) as base:
        config = demo_config(make_config, base)

        async def run() -> None:
            async with Monitor(config, parse_workers=1) as monitor:
                await monitor.poll_once()

        asyncio.run(run())
    return config.source


def query(config: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(config.parent / "demo.db") as db:
        return db.execute(sql).fetchall()


def database(config: Path) -> Any:
    """The database a config file names: a SQLite path or a PostgreSQL URL."""
    return load_config(config, env={}).database


def rows(target: Any, sql: str) -> list[tuple[Any, ...]]:
    store = Store.open_readonly(target)
    try:
        return [tuple(row) for row in store.db.execute(sql).fetchall()]
    finally:
        store.close()


def test_incidents_lists_the_demo_story_as_one_incident(demo: Path) -> None:
    plain = invoke("--config", str(demo), "incidents")
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.count("inc-") == 1
    assert "4 reports in " in plain.stdout  # the languages in the order polls stored them
    assert "Khanaqin (Diyala)" in plain.stdout
    (row,) = [
        json.loads(line)
        for line in invoke("--config", str(demo), "incidents", "--json").stdout.splitlines()
    ]
    assert row["reports"] == 4 and row["breaking"] is True
    assert sorted(row["languages"]) == ["ar", "ckb", "en", "kmr"]
    only = invoke("--config", str(demo), "incidents", "--watchlist", "diyala", "--json")
    assert len(only.stdout.splitlines()) == 1
    unknown = invoke("--config", str(demo), "incidents", "--watchlist", "nope")
    assert unknown.exit_code == 2
    assert "no watchlist named 'nope'" in unknown.output


def test_incidents_show_gives_the_timeline(demo: Path) -> None:
    (ident,) = query(demo, "SELECT id FROM incidents")[0]
    shown = invoke("--config", str(demo), "incidents", "show", ident)
    assert shown.exit_code == 0, shown.output
    for outlet in ("Demo Arabic", "Demo Sorani", "Demo Kurmanji"):
        assert outlet in shown.stdout
    for title in ("مقتل انتحاري قبل وصوله", "Xaneqîn: Êrîşkarekî xwekuj"):
        assert title in shown.stdout
    assert "https://news.example.org/ckb/2026/11/17/khanaqin-xoteqener" in shown.stdout
    data = json.loads(invoke("--config", str(demo), "incidents", "show", ident, "--json").stdout)
    times = [report["at"] for report in data["timeline"]]
    assert times == sorted(times) and len(times) == 4
    missing = invoke("--config", str(demo), "incidents", "show", "inc-nope")
    assert missing.exit_code == 1
    assert "no incident inc-nope" in missing.output


def test_split_and_merge_keep_each_incident_created_once_per_sink(delivered: Path) -> None:
    db = database(delivered)

    def kinds() -> list[tuple[Any, ...]]:
        return rows(
            db,
            "SELECT incident_id, sink, kind, COUNT(*) FROM deliveries"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        )

    ident, first = rows(
        db, "SELECT incident_id, item_id FROM deliveries WHERE kind = 'created' ORDER BY id LIMIT 1"
    )[0]
    # The incident's first report leaves: it is an incident of its own, created once per
    # sink; the incident it left keeps a first delivery per sink.
    split = invoke("--config", str(delivered), "incidents", "split", ident, str(first))
    assert split.exit_code == 0, split.output
    invariants(db)
    alone = next(k[0] for k in kinds() if k[0] != ident)
    sinks = sorted(s["name"] for s in SINKS)
    assert kinds() == sorted(
        [(ident, s, "created", 1) for s in sinks]
        + [(ident, s, "updated", 2) for s in sinks]
        + [(alone, s, "created", 1) for s in sinks]
    )
    merged = invoke("--config", str(delivered), "incidents", "merge", ident, alone)
    assert merged.exit_code == 0, merged.output
    invariants(db)
    assert kinds() == sorted(
        [(ident, s, "created", 1) for s in sinks] + [(ident, s, "updated", 3) for s in sinks]
    )
    # A later report leaves: its deliveries become its own incident's first ones.
    (later,) = rows(
        db, "SELECT item_id FROM deliveries WHERE kind = 'updated' ORDER BY id LIMIT 1"
    )[0]
    assert (
        invoke("--config", str(delivered), "incidents", "split", ident, str(later)).exit_code == 0
    )
    invariants(db)


def test_split_then_merge_persists_and_restores_the_incident(demo: Path) -> None:
    (ident,) = query(demo, "SELECT id FROM incidents")[0]
    (item,) = query(demo, "SELECT item_id FROM incident_reports WHERE language = 'kmr'")[0]
    split = invoke("--config", str(demo), "incidents", "split", ident, str(item))
    assert split.exit_code == 0, split.output
    (alone,) = query(demo, f"SELECT incident_id FROM incident_reports WHERE item_id = {item}")[0]
    assert alone != ident
    assert query(demo, f"SELECT reports FROM incidents WHERE id = '{ident}'") == [(3,)]
    merged = invoke("--config", str(demo), "incidents", "merge", ident, alone)
    assert merged.exit_code == 0, merged.output
    assert query(demo, "SELECT id, reports FROM incidents WHERE merged_into IS NULL") == [
        (ident, 4)
    ]
    assert query(demo, f"SELECT merged_into FROM incidents WHERE id = '{alone}'") == [(ident,)]
    listed = invoke("--config", str(demo), "incidents", "--json")
    assert len(listed.stdout.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("merge", "inc-a", "inc-a"), "inc-a and inc-a are the same incident"),
        (("merge", "inc-nope", "inc-other"), "no incident inc-nope"),
        (("split", "inc-nope", "3"), "no incident inc-nope"),
    ],
)
def test_a_bad_correction_is_refused_in_one_line(
    demo: Path, args: tuple[str, ...], message: str
) -> None:
    result = invoke("--config", str(demo), "incidents", *args)
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {message} (see `news-monitor incidents`)" or (
        result.output.strip() == f"Error: {message}"
    )


def test_a_running_daemon_follows_a_split_made_by_another_process(make_config: Any) -> None:
    with serve_directory(FEEDS_DIR) as base:
        config = demo_config(make_config, base)

        async def run() -> None:
            async with Monitor(config, parse_workers=1) as monitor:
                await monitor.poll_once(["Demo English wire", "Demo Arabic"])
                # `incidents split`, as another process does it, while the daemon runs.
                other = Store.open(config.database)
                try:
                    (ident, item) = other.db.execute(
                        "SELECT incident_id, item_id FROM incident_reports WHERE language = 'ar'"
                    ).fetchone()
                    split_incident(other, ident, item, incident_settings(config.incidents))
                finally:
                    other.close()
                await monitor.poll_once(["Demo Kurmanji"])

        asyncio.run(run())
    counted = rows(
        config.database,
        """SELECT i.id, i.reports, (SELECT COUNT(*) FROM incident_reports r
                                   WHERE r.incident_id = i.id)
           FROM incidents i WHERE merged_into IS NULL""",
    )
    # Two incidents after the split; the daemon placed the Kurmanji report knowing it, so
    # each incident's row counts exactly the reports that are its own.
    assert len(counted) == 2
    assert all(reports == rows for _, reports, rows in counted)
    assert sum(reports for _, reports, _ in counted) == 3
