"""The command line (DESIGN §5) through click's CliRunner: exit codes 0/1/2, --json, stdin,
and one end-to-end poll against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import click
import pytest
import structlog
import yaml
from click.testing import CliRunner, Result

from monitor.cli import cli
from monitor.config import load_config
from monitor.demo import serve_directory
from monitor.store import Store

README = Path(__file__).parent.parent / "README.md"

CONFIG = """\
database: monitor.db
polling:
  interval: 10m
  timeout: 5s
feeds:
  - name: Local desk
    url: {base}/desk.xml
    language: en
  - name: Arabic desk
    url: {base}/arabic.xml
    language: ar
watchlists:
  - name: khanaqin
    severity: high
    terms:
      - term: Khanaqin
        aliases: [خانقين]
  - name: diyala
    terms: [Diyala]
    notify: [desk-chat]
sinks:
  - name: desk-chat
    type: slack
    url: http://127.0.0.1:9/services/T0/B0/x
"""

FEED = """\
<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>Local desk</title>
    <link>https://desk.example.org/</link>
    <description>Test feed</description>
    <item>
      <title>Checkpoint attacked near Khanaqin</title>
      <link>https://desk.example.org/2026/khanaqin-checkpoint?utm_source=rss</link>
      <guid isPermaLink="false">desk-1</guid>
      <pubDate>{now}</pubDate>
      <description>&lt;p&gt;Police said the attack on the road to &lt;b&gt;Khanaqin&lt;/b&gt;
        was repelled.&lt;/p&gt;</description>
    </item>
    <item>
      <title>Diyarbakir city walls reopen</title>
      <link>https://desk.example.org/2026/diyarbakir-walls</link>
      <guid isPermaLink="false">desk-2</guid>
      <pubDate>{now}</pubDate>
      <description>Tourists return to the old city.</description>
    </item>
  </channel>
</rss>
"""


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    # The CLI configures structlog to write to the runner's stderr, which is gone afterwards.
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWS_MONITOR_CONFIG", raising=False)


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(base="https://feeds.example.org"), encoding="utf-8")
    return path


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    now = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
    (www / "desk.xml").write_text(FEED.format(now=now), encoding="utf-8")
    (www / "arabic.xml").write_text(
        FEED.format(now=now)
        .replace("Checkpoint attacked near Khanaqin", "هجوم على حاجز قرب خانقين")
        .replace("desk-1", "ar-1")
        .replace("desk-2", "ar-2")
        .replace("khanaqin-checkpoint", "ar/khanaqin-checkpoint")
        .replace("diyarbakir-walls", "ar/diyarbakir-walls"),
        encoding="utf-8",
    )
    with serve_directory(www) as base:
        yield base


@pytest.fixture
def live_config(tmp_path: Path, site: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(base=site), encoding="utf-8")
    return path


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# check-config ------------------------------------------------------------------------------


def test_check_config_ok_prints_a_summary(config_path: Path) -> None:
    result = invoke("--config", str(config_path), "check-config")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"{config_path}: OK" in out
    assert re.search(r"feeds: +2\b", out)
    assert re.search(r"watchlists: +2 \(2 terms\)", out)
    assert "khanaqin [high] → desk-chat" in out
    assert "diyala [medium] → desk-chat" in out
    assert "desk-chat (slack)" in out


def test_check_config_uses_the_environment_variable(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWS_MONITOR_CONFIG", str(config_path))
    assert invoke("check-config").exit_code == 0


def test_check_config_reports_every_error_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        """\
polling:
  intervall: 10m
  timeout: soon
watchlists:
  - name: w
    severity: urgent
    terms: [x]
""",
        encoding="utf-8",
    )
    result = invoke("check-config")
    assert result.exit_code == 2
    assert result.stdout == ""
    errors = result.stderr.splitlines()
    assert sorted(errors) == sorted(
        [
            "error: config.yaml:2: polling.intervall: unknown key (did you mean 'interval'?)",
            "error: config.yaml:3: polling.timeout: 'soon' is not a duration:"
            " write e.g. 90s, 10m, 2h or 1d",
            "error: config.yaml:6: watchlists[0].severity:"
            " must be 'info', 'low', 'medium', 'high' or 'critical', not 'urgent'",
        ]
    )


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = invoke("--config", str(tmp_path / "nope.yaml"), "check-config")
    assert result.exit_code == 2
    assert "nope.yaml: no such config file" in result.stderr


def test_default_config_is_config_yaml_in_the_working_directory() -> None:
    result = invoke("check-config")
    assert result.exit_code == 2
    assert "config.yaml: no such config file" in result.stderr


# analyze -----------------------------------------------------------------------------------


def test_analyze_json_and_plain_text_lines(config_path: Path) -> None:
    stdin = "\n".join(
        [
            json.dumps({"id": "a1", "title": "Suicide bomber killed in Khanaqin", "summary": ""}),
            json.dumps(
                {"id": 7, "title": "Walls reopen", "summary": "Diyarbakir welcomes tourists."}
            ),
            "",
            "مقتل انتحاري في خانقين بمحافظة ديالى",
            json.dumps({"id": "h", "title": "Markets", "summary": "Diyala", "language": "ar"}),
        ]
    )
    result = invoke("--config", str(config_path), "analyze", input=stdin + "\n")
    assert result.exit_code == 0, result.output
    results = json_lines(result.stdout)
    assert len(results) == 4
    for record in results:
        assert set(record) == {
            "id",
            "language",
            "language_confidence",
            "evidence",
            "matches",
            "translation",
        }
        assert record["translation"] is None
        assert isinstance(record["language_confidence"], float)
    first, near_miss, plain, hinted = results
    assert first["id"] == "a1"
    assert first["language"] == "en"
    assert first["matches"] == [
        {"watchlist": "khanaqin", "term": "Khanaqin", "form": "Khanaqin", "field": "title"}
    ]
    # What the incident stage reads, named in English.
    assert first["evidence"]["places"] == ["Khanaqin (Diyala)"]
    assert "suicide bomber" in first["evidence"]["terms"]
    assert first["evidence"]["events"]
    # "Diyarbakir" is not "Diyala".
    assert near_miss["id"] == 7
    assert near_miss["matches"] == []
    # A plain text line is a title, and its id is its line number.
    assert plain["id"] == 4
    assert plain["language"] == "ar"
    # The watchlist says only "Diyala"; the gazetteer knows its Arabic spelling.
    assert {(m["watchlist"], m["form"]) for m in plain["matches"]} == {
        ("khanaqin", "خانقين"),
        ("diyala", "ديالى"),
    }
    assert hinted["matches"] == [
        {"watchlist": "diyala", "term": "Diyala", "form": "Diyala", "field": "summary"}
    ]


def test_analyze_output_keeps_non_ascii_readable(config_path: Path) -> None:
    result = invoke("--config", str(config_path), "analyze", input="في خانقين اليوم\n")
    assert "خانقين" in result.stdout


def test_analyze_invalid_json_names_the_line(config_path: Path) -> None:
    stdin = '{"id": 1, "title": "fine"}\n{"id": 2, "title": \n'
    result = invoke("--config", str(config_path), "analyze", input=stdin)
    assert result.exit_code == 2
    assert "stdin:2: invalid JSON" in result.stderr


def test_analyze_json_that_is_not_an_object(config_path: Path) -> None:
    result = invoke("--config", str(config_path), "analyze", input="{}\n[1, 2]\n")
    # "[1, 2]" does not start with "{": it is taken as a plain-text title.
    assert result.exit_code == 0
    result = invoke("--config", str(config_path), "analyze", input='{"a": 1}\n{"b"}\n')
    assert result.exit_code == 2
    assert "stdin:2:" in result.stderr


# alerts ------------------------------------------------------------------------------------


def _empty_database(config_path: Path) -> None:
    """The database as the daemon leaves it before its first poll."""
    Store.open(config_path.parent / "monitor.db").close()


def test_alerts_json_on_an_empty_database(config_path: Path) -> None:
    _empty_database(config_path)
    result = invoke("--config", str(config_path), "alerts", "--json")
    assert result.exit_code == 0
    assert result.stdout == ""


def test_alerts_on_an_empty_database_says_so(config_path: Path) -> None:
    _empty_database(config_path)
    result = invoke("--config", str(config_path), "alerts", "--since", "7d")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no alerts in the last 7d" in result.stderr


def test_alerts_with_a_bogus_since(config_path: Path) -> None:
    result = invoke("--config", str(config_path), "alerts", "--since", "bogus")
    assert result.exit_code == 2
    assert "'bogus' is not a duration" in result.stderr


# feeds -------------------------------------------------------------------------------------


def test_feeds_export_then_import_round_trips(config_path: Path, tmp_path: Path) -> None:
    exported = invoke("--config", str(config_path), "feeds", "export")
    assert exported.exit_code == 0
    assert exported.stdout.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml')
    opml = tmp_path / "exported.opml"
    opml.write_text(exported.stdout, encoding="utf-8")

    imported = invoke("feeds", "import", str(opml))
    assert imported.exit_code == 0
    catalog = yaml.safe_load(imported.stdout)
    config = load_config(config_path, env={})
    assert catalog == [{"name": f.name, "url": f.url, "language": f.language} for f in config.feeds]

    # The imported catalog is a valid include, giving the same feeds again.
    (tmp_path / "mine.yaml").write_text(imported.stdout, encoding="utf-8")
    (tmp_path / "again.yaml").write_text("feeds:\n  - include: mine.yaml\n", encoding="utf-8")
    again = load_config(tmp_path / "again.yaml", env={})
    assert again.feeds == config.feeds


def test_feeds_export_escapes_names(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        'feeds:\n  - name: \'Tom & "Jerry" <news>\'\n    url: "https://x.example.org/?a=1&b=2"\n',
        encoding="utf-8",
    )
    exported = invoke("--config", str(path), "feeds", "export")
    (tmp_path / "out.opml").write_text(exported.stdout, encoding="utf-8")
    catalog = yaml.safe_load(invoke("feeds", "import", str(tmp_path / "out.opml")).stdout)
    assert catalog == [{"name": 'Tom & "Jerry" <news>', "url": "https://x.example.org/?a=1&b=2"}]


def test_feeds_import_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = invoke("feeds", "import", str(tmp_path / "nope.opml"))
    assert result.exit_code == 2


def test_feeds_import_of_broken_opml_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.opml"
    broken.write_text('<opml version="2.0"><body><outline xmlUrl="https://x"', encoding="utf-8")
    result = invoke("feeds", "import", str(broken))
    assert result.exit_code == 2
    assert "broken.opml:1: invalid OPML" in result.stderr


def test_feeds_list_before_any_poll(config_path: Path) -> None:
    _empty_database(config_path)
    result = invoke("--config", str(config_path), "feeds")
    assert result.exit_code == 0
    assert "Local desk: never polled; 0 items" in result.stdout
    assert "Arabic desk: never polled; 0 items" in result.stdout


# poll-once, end to end ---------------------------------------------------------------------


def test_poll_once_unknown_feed_exits_2(config_path: Path) -> None:
    result = invoke("--config", str(config_path), "poll-once", "--feed", "nope")
    assert result.exit_code == 2
    assert "no feed named 'nope'" in result.stderr


def test_poll_once_then_alerts(live_config: Path) -> None:
    polled = invoke("--config", str(live_config), "poll-once")
    assert polled.exit_code == 0, polled.output
    assert sorted(polled.stdout.splitlines()) == [
        "Arabic desk: 2 items, 2 new, 1 alerts",
        "Local desk: 2 items, 2 new, 1 alerts",
        # Nothing listens on the sink's port: the first send fails and the sink backs off, so
        # the second alert waits untried; both stay pending, none is lost.
        "deliveries: 0 sent, 1 to retry, 0 dead; 2 still pending: the daemon, or the next "
        "poll-once, sends them",
    ]

    listed = invoke("--config", str(live_config), "alerts", "--json")
    assert listed.exit_code == 0
    alerts = json_lines(listed.stdout)
    assert len(alerts) == 2
    by_feed = {alert["feed"]: alert for alert in alerts}
    desk = by_feed["Local desk"]
    assert desk["watchlist"] == "khanaqin"
    assert desk["severity"] == "high"
    assert desk["story_key"] == "url:https://desk.example.org/2026/khanaqin-checkpoint"
    assert {m["form"] for m in desk["matches"]} == {"Khanaqin"}  # type: ignore[union-attr]
    assert {m["field"] for m in desk["matches"]} == {"title", "summary"}  # type: ignore[union-attr]
    assert desk["item"]["title"] == "Checkpoint attacked near Khanaqin"  # type: ignore[index]
    assert desk["item"]["language"] == "en"  # type: ignore[index]
    arabic = by_feed["Arabic desk"]
    assert arabic["watchlist"] == "khanaqin"
    assert "خانقين" in {m["form"] for m in arabic["matches"]}  # type: ignore[union-attr]

    human = invoke("--config", str(live_config), "alerts", "--watchlist", "khanaqin")
    assert "[high] khanaqin: Checkpoint attacked near Khanaqin" in human.stdout
    assert "matched Khanaqin" in human.stdout
    assert invoke("--config", str(live_config), "alerts", "--watchlist", "diyala").stdout == ""

    # A second poll finds nothing new and raises no second alert.
    again = invoke("--config", str(live_config), "poll-once", "--json", "--feed", "Local desk")
    assert again.exit_code == 0
    (report,) = json_lines(again.stdout)
    assert report["feed"] == "Local desk"
    assert report["new_items"] == 0
    assert report["alerts"] == 0
    assert report["outcome"] in {"new", "not_modified"}
    listed = invoke("--config", str(live_config), "alerts", "--json")
    assert len(json_lines(listed.stdout)) == 2

    health = invoke("--config", str(live_config), "feeds", "list", "--json")
    rows = {row["name"]: row for row in json_lines(health.stdout)}
    assert rows["Local desk"]["items"] == 2
    assert rows["Local desk"]["error_count"] == 0


def test_poll_once_exits_1_when_every_feed_fails(tmp_path: Path, site: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"feeds:\n  - name: Gone\n    url: {site}/missing.xml\n"
        f"  - name: Not a feed\n    url: {site}/page.html\n",
        encoding="utf-8",
    )
    (tmp_path / "www" / "page.html").write_text(
        "<!DOCTYPE html><html><body><p>Hello</p></body></html>", encoding="utf-8"
    )
    result = invoke("--config", str(path), "poll-once")
    assert result.exit_code == 1
    lines = sorted(result.stdout.splitlines())
    assert lines[0].startswith("Gone: FAILED")
    assert "404" in lines[0]
    assert lines[1].startswith("Not a feed: FAILED")
    assert "HTML" in lines[1]


# demo --------------------------------------------------------------------------------------


def test_demo(tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    result = invoke("demo", "--keep", str(keep))
    assert result.exit_code == 0, result.output
    out = result.stdout
    for feed in ("Demo English", "Demo Arabic", "Demo Sorani", "Demo Kurmanji"):
        assert feed in out
    # The Khanaqin story as written in each of the four languages.
    for form in ("Khanaqin", "خانقين", "خانەقین", "Xaneqîn"):
        assert form in out
    assert "khanaqin" in out

    listed = invoke("--config", str(keep / "config.yaml"), "alerts", "--json")
    alerts = json_lines(listed.stdout)
    khanaqin = [a for a in alerts if a["watchlist"] == "khanaqin"]
    languages = sorted(a["item"]["language"] for a in khanaqin)  # type: ignore[index]
    assert languages == ["ar", "ckb", "en", "kmr"]
    feeds = {a["feed"] for a in khanaqin}
    assert {"Demo Arabic", "Demo Sorani", "Demo Kurmanji"} < feeds
    # The English story is in two feeds, polled at once: whichever stored it first holds the
    # one alert.
    assert len(feeds & {"Demo English", "Demo English wire"}) == 1
    assert len({a["story_key"] for a in khanaqin}) == 4
    english_story = [a for a in alerts if str(a["story_key"]).endswith("suicide-bomber")]
    assert sorted(a["watchlist"] for a in english_story) == ["diyala", "khanaqin", "suicide-bomber"]


# Docs: every command has help and is in the README -----------------------------------------


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")


ALL_COMMANDS = list(_commands(cli))


@pytest.mark.parametrize(("name", "command"), ALL_COMMANDS, ids=[n for n, _ in ALL_COMMANDS])
def test_every_command_has_help(name: str, command: click.Command) -> None:
    assert command.help, f"{name} has no help text"
    assert "Example:" in command.help, f"{name}'s help has no Example:"
    result = invoke(*name.split(), "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: ")


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_is_in_the_readme(name: str) -> None:
    readme = README.read_text(encoding="utf-8")
    assert re.search(rf"^\| `{re.escape(name)}[` ]", readme, re.MULTILINE), (
        f"README.md's command table has no row for `{name}`"
    )


def test_commands_run_on_uvloop_and_leave_the_loop_policy_alone() -> None:
    import asyncio

    import uvloop

    from monitor.cli.common import run_async

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_async(loop_module()).startswith("uvloop")
    # Code that makes its own loop (libraries, the tests' in-process daemons) keeps asyncio's.
    assert not isinstance(asyncio.get_event_loop_policy(), uvloop.EventLoopPolicy)
    assert asyncio.run(loop_module()).startswith("asyncio")
