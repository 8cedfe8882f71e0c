"""`deliveries` and `test-sink` through click's CliRunner, against real receivers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from engines import make_config_on_both_engines  # noqa: F401
from receivers import Answer, Receiver, add_alerts, receiver_fixture  # noqa: F401

from monitor.cli import deliveries as commands
from monitor.config import Config
from monitor.deliver import Dispatcher, DispatchReport
from monitor.store import Store
from monitor.store.thread import StoreThread


@click.group()
@click.option("--config", "config_path", type=click.Path(path_type=Path))
@click.pass_context
def root(ctx: click.Context, config_path: Path) -> None:
    """The real root group's contract: ctx.obj["config_path"]."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


root.add_command(commands.deliveries)
root.add_command(commands.sink_test)


def invoke(config: Config, *args: str) -> Result:
    return CliRunner().invoke(root, ["--config", str(config.source), *args], obj={})


def drain(config: Config) -> DispatchReport:
    async def main() -> DispatchReport:
        thread = StoreThread(Store.open(config.database))
        dispatcher = Dispatcher(config, thread)
        try:
            return await dispatcher.drain(20)
        finally:
            await dispatcher.aclose()
            thread.close()

    return asyncio.run(main())


@pytest.fixture
def setup(make_config: Any, receiver: Callable[..., Receiver]) -> tuple[Config, Receiver, Receiver]:
    broken = receiver("webhook")
    broken.script(Answer(404, b"no_service"), Answer(404, b"no_service"))
    working = receiver("slack")
    config = make_config(
        sinks=[
            {"name": "siem", "type": "webhook", "url": broken.url()},
            {"name": "desk-chat", "type": "slack", "url": working.url(), "rate": 100},
        ]
    )
    store = Store.open(config.database)
    add_alerts(store, ["siem", "desk-chat"], count=2)
    store.close()
    return config, broken, working


def test_lists_pending_and_dead_with_last_errors(setup: tuple[Config, Receiver, Receiver]) -> None:
    config, _, _ = setup
    before = invoke(config, "deliveries")
    assert before.exit_code == 0
    assert before.stdout.count("pending") == 4
    drain(config)
    result = invoke(config, "deliveries")
    assert result.exit_code == 0, result.output
    assert "#1  dead    siem" in result.stdout
    assert "last error: HTTP 404: no_service" in result.stdout
    assert "desk-chat" not in result.stdout  # sent: not listed
    assert invoke(config, "deliveries", "--pending").stderr.strip() == "no pending deliveries"
    rows = [
        json.loads(line)
        for line in invoke(config, "deliveries", "--dead", "--json").stdout.splitlines()
    ]
    assert [(r["id"], r["sink"], r["status"], r["last_status"]) for r in rows] == [
        (1, "siem", "dead", 404),
        (3, "siem", "dead", 404),
    ]


def test_retry_by_id_after_the_fix_sends_it(setup: tuple[Config, Receiver, Receiver]) -> None:
    config, broken, _ = setup
    drain(config)
    broken.script()  # the receiver is fixed
    result = invoke(config, "deliveries", "retry", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "1 delivery pending again"
    assert drain(config).sent == 1
    assert len(broken.delivered) == 1
    dead = [json.loads(line) for line in invoke(config, "deliveries", "--json").stdout.splitlines()]
    assert [r["id"] for r in dead] == [3]


def test_retry_all_dead(setup: tuple[Config, Receiver, Receiver]) -> None:
    config, broken, _ = setup
    drain(config)
    broken.script()
    result = invoke(config, "deliveries", "retry", "--all-dead")
    assert result.stdout.strip() == "2 deliveries pending again"
    assert drain(config).sent == 2
    assert invoke(config, "deliveries").stderr.strip() == "no pending or dead deliveries"


def test_retry_refuses_sent_unknown_or_no_ids(setup: tuple[Config, Receiver, Receiver]) -> None:
    config, _, _ = setup
    drain(config)
    assert invoke(config, "deliveries", "retry").exit_code == 2
    assert invoke(config, "deliveries", "retry", "1", "--all-dead").exit_code == 2
    unknown = invoke(config, "deliveries", "retry", "99")
    assert (unknown.exit_code, unknown.stderr.strip()) == (1, "Error: no delivery #99")
    sent = invoke(config, "deliveries", "retry", "2")
    assert (sent.exit_code, sent.stderr.strip()) == (1, "Error: delivery #2 was already sent")


def test_test_sink_prints_what_the_service_answered(
    setup: tuple[Config, Receiver, Receiver],
) -> None:
    config, broken, working = setup
    ok = invoke(config, "test-sink", "desk-chat")
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines()[0].startswith("desk-chat (slack): delivered, HTTP 200, ")
    assert "answer: ok" in ok.stdout
    body = working.delivered[0].json
    assert body["text"].startswith("TEST · [INFO] test: news-monitor test alert")
    failed = invoke(config, "test-sink", "siem", "--json")
    assert failed.exit_code == 1
    answer = json.loads(failed.stdout)
    assert (answer["ok"], answer["status"], answer["error"]) == (False, 404, "HTTP 404: no_service")
    assert broken.arrivals[0].json["type"] == "alert.test"
    store = Store.open(config.database)
    assert store.counts()["alerts"] == 2  # the test alert is not stored
    store.close()


def test_test_sink_never_prints_a_secret_the_service_echoes_back(
    make_config: Any, receiver: Callable[..., Receiver]
) -> None:
    token = "7123456789:AAHsecretTOKENvalue_0123456789abcdef"
    echo = receiver("webhook")
    echo.script(Answer(500, b"HTTP 500: ", echo=True), Answer(500, b"HTTP 500: ", echo=True))
    config = make_config(
        sinks=[
            {
                "name": "bot",
                "type": "telegram",
                "url": echo.url("/api"),
                "token": token,
                "chat_id": "42",
            }
        ]
    )
    human = invoke(config, "test-sink", "bot")
    as_json = invoke(config, "test-sink", "bot", "--json")
    assert token in echo.arrivals[0].path  # the service did echo it
    for result in (human, as_json):
        assert result.exit_code == 1
        assert "[redacted]" in result.stdout and token not in result.stdout
        assert "AAHsecret" not in result.stdout


def test_test_sink_unknown_name_is_a_usage_error(
    setup: tuple[Config, Receiver, Receiver],
) -> None:
    config, _, _ = setup
    result = invoke(config, "test-sink", "nope")
    assert result.exit_code == 2
    assert "no sink named 'nope' in config.yaml (sinks: siem, desk-chat)" in result.stderr


@pytest.mark.parametrize(
    "command", [commands.deliveries, commands.deliveries_retry, commands.sink_test]
)
def test_every_command_ends_its_help_with_an_example(command: click.Command) -> None:
    assert command.help is not None
    assert command.help.strip().splitlines()[-1].strip().startswith("Example: news-monitor ")
