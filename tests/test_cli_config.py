"""Config at the command line: secrets resolved only by commands that send, check-config's
summary and --json, and OPML import/export keeping folders and refusing duplicates."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
import yaml
from click.testing import CliRunner, Result
from receivers import Receiver, receiver_fixture  # noqa: F401

from monitor.cli import cli
from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.store import Store

SECRETS = """\
database: monitor.db
feeds:
  - name: Desk
    url: https://desk.example.org/rss
watchlists:
  - name: khanaqin
    terms: [Khanaqin]
sinks:
  - name: desk-chat
    type: slack
    url: ${SLACK_WEBHOOK_URL}
  - name: siem
    type: webhook
    url: https://siem.example.org/hooks/news
    secret: ${WEBHOOK_SECRET}
"""
SLACK_UNSET = (
    "error: config.yaml:11: sinks[0].url: environment variable SLACK_WEBHOOK_URL is not set"
    " (set it, add a credential file of that name, or write ${SLACK_WEBHOOK_URL:-default})"
)
SECRET_UNSET = (
    "error: config.yaml:15: sinks[1].secret: environment variable WEBHOOK_SECRET is not set"
    " (set it, add a credential file of that name, or write ${WEBHOOK_SECRET:-default})"
)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    for name in ("NEWS_MONITOR_CONFIG", "SLACK_WEBHOOK_URL", "WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    yield
    structlog.reset_defaults()


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# Secrets: only commands that send resolve them (12.2) ----------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["alerts"],
        ["alerts", "--json"],
        ["status"],
        ["feeds"],
        ["feeds", "list"],
        ["feeds", "export"],
        ["deliveries"],
        ["analyze"],
    ],
    ids=" ".join,
)
def test_read_only_commands_need_no_sink_secrets(args: list[str]) -> None:
    write(Path("config.yaml"), SECRETS)
    Store.open(Path("monitor.db")).close()  # as the daemon leaves it
    result = invoke(*args, input="Khanaqin\n")
    assert result.exit_code == 0, result.output
    assert "SLACK_WEBHOOK_URL" not in result.stderr
    assert "WEBHOOK_SECRET" not in result.stderr


@pytest.mark.parametrize("args", [["check-config"], ["poll-once"], ["run"]], ids=" ".join)
def test_sending_commands_name_each_missing_secret_once(args: list[str]) -> None:
    write(Path("config.yaml"), SECRETS)
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [SLACK_UNSET, SECRET_UNSET]


def test_test_sink_needs_only_its_own_secret() -> None:
    write(Path("config.yaml"), SECRETS)
    result = invoke("test-sink", "siem")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [SECRET_UNSET]


def test_test_sink_sends_while_another_sinks_secret_is_unset(
    receiver: Callable[..., Receiver],
) -> None:
    slack = receiver("slack")
    write(Path("config.yaml"), SECRETS.replace("${SLACK_WEBHOOK_URL}", slack.url()))
    result = invoke("test-sink", "desk-chat")
    assert result.exit_code == 0, result.output
    assert len(slack.delivered) == 1


def test_a_sink_with_an_unset_secret_cannot_send(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "config.yaml", SECRETS), env={}, secrets=False)
    chat, siem = config.sinks
    # Nothing half-built: an unresolved sink keeps its name and type, and nothing to send with.
    assert (chat.name, chat.type, chat.url) == ("desk-chat", "slack", None)
    assert (siem.url, siem.secret, siem.token) == (None, (), None)
    with pytest.raises(ConfigError) as info:
        config.require_secrets(["siem"])
    assert info.value.problems == [SECRET_UNSET.removeprefix("error: ")]
    config.require_secrets([])


def test_load_config_resolves_every_secret_by_default(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "config.yaml", SECRETS), env={})
    assert info.value.problems == [
        SLACK_UNSET.removeprefix("error: "),
        SECRET_UNSET.removeprefix("error: "),
    ]


# check-config's summary and --json (12.16) ----------------------------------------------------


def test_check_config_counts_in_words() -> None:
    write(
        Path("config.yaml"),
        SECRETS.replace("${SLACK_WEBHOOK_URL}", "https://hooks.example.org/x").replace(
            "${WEBHOOK_SECRET}", "whsec_MTIzNDU2Nzg5MDEyMzQ1Njc4OTA="
        ),
    )
    result = invoke("check-config")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "  feeds:      1" in lines
    assert "  watchlists: 1 (1 term)" in lines
    assert "  sinks:      2" in lines


def test_check_config_json_on_success() -> None:
    write(
        Path("config.yaml"),
        SECRETS.replace("${SLACK_WEBHOOK_URL}", "https://hooks.example.org/x").replace(
            "${WEBHOOK_SECRET}", "whsec_MTIzNDU2Nzg5MDEyMzQ1Njc4OTA="
        ),
    )
    result = invoke("check-config", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] is True
    assert summary["config"] == "config.yaml"
    assert summary["feeds"] == 1
    assert summary["unverified_feeds"] == 0
    assert summary["watchlists"] == [
        {"name": "khanaqin", "severity": "medium", "terms": 1, "sinks": ["desk-chat", "siem"]}
    ]
    assert summary["sinks"] == [
        {"name": "desk-chat", "type": "slack"},
        {"name": "siem", "type": "webhook"},
    ]
    # Secrets never appear in the summary.
    assert "hooks.example.org" not in result.stdout
    assert "whsec_" not in result.stdout


def test_check_config_json_on_failure() -> None:
    write(Path("config.yaml"), SECRETS)
    result = invoke("check-config", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "ok": False,
        "errors": [SLACK_UNSET.removeprefix("error: "), SECRET_UNSET.removeprefix("error: ")],
    }


def test_check_config_json_without_a_config_file() -> None:
    result = invoke("check-config", "--json")
    assert result.exit_code == 2
    answer = json.loads(result.stdout)
    assert answer["ok"] is False
    assert answer["errors"][0].startswith("config.yaml: no such config file")


# feeds import / export (12.12) ----------------------------------------------------------------

OPML = """\
<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Subscriptions</title></head>
  <body>
    <outline text="Kurdish">
      <outline type="rss" text="K24" xmlUrl="https://www.kurdistan24.net/ckb/rss.xml"/>
      <outline type="rss" text="Rudaw" htmlUrl="https://www.rudaw.net/"/>
    </outline>
    <outline type="rss" text="Loose" xmlUrl="https://loose.example.org/rss"/>
    <outline text="Empty folder"/>
  </body>
</opml>
"""


def test_feeds_import_keeps_folders_and_warns_for_each_dropped_outline(tmp_path: Path) -> None:
    write(tmp_path / "subs.opml", OPML)
    result = invoke("feeds", "import", "subs.opml")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == [
        {"name": "K24", "url": "https://www.kurdistan24.net/ckb/rss.xml", "group": "Kurdish"},
        {"name": "Loose", "url": "https://loose.example.org/rss"},
    ]
    assert result.stderr.splitlines() == [
        "warning: subs.opml:7: outline 'Rudaw' has no xmlUrl: skipped",
        "warning: subs.opml:10: outline 'Empty folder' has no xmlUrl: skipped",
    ]


def test_feeds_import_refuses_two_outlines_with_one_url(tmp_path: Path) -> None:
    opml = OPML.replace(
        'htmlUrl="https://www.rudaw.net/"', 'xmlUrl="https://loose.example.org/rss"'
    )
    write(tmp_path / "subs.opml", opml)
    result = invoke("feeds", "import", "subs.opml")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "error: subs.opml:9: outline 'Loose' has the same xmlUrl as 'Rudaw' (line 7): keep one"
    )


def test_feeds_export_writes_groups_as_folders_and_import_reads_them_back(
    tmp_path: Path,
) -> None:
    write(tmp_path / "subs.opml", OPML.replace('    <outline text="Empty folder"/>\n', ""))
    write(
        tmp_path / "config.yaml",
        """\
feeds:
  - include: subs.opml
  - name: Sorani desk
    url: https://sorani.example.org/rss
    group: Kurdish / Sorani
    language: ckb
""",
    )
    exported = invoke("feeds", "export")
    assert exported.exit_code == 0, exported.output
    write(tmp_path / "out.opml", exported.stdout)
    imported = invoke("feeds", "import", "out.opml")
    assert imported.exit_code == 0, imported.output
    assert imported.stderr == ""
    assert yaml.safe_load(imported.stdout) == [
        {"name": "K24", "url": "https://www.kurdistan24.net/ckb/rss.xml", "group": "Kurdish"},
        {
            "name": "Sorani desk",
            "url": "https://sorani.example.org/rss",
            "language": "ckb",
            "group": "Kurdish / Sorani",
        },
        {"name": "Loose", "url": "https://loose.example.org/rss"},
    ]
