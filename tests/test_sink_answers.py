"""What a service's answer means, per service: a 2xx is not always a success, and a 2xx whose
body is slow is not a failure.

Each sink module states its service's documented success rule (`classify_<sink>`); the tables
below hold the answers each service gives, and the receiver tests show the dispatcher acting on
them against real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from receivers import Answer, Receiver, add_alerts, receiver_fixture  # noqa: F401
from structlog.testing import capture_logs

from monitor.config import Config
from monitor.deliver import Dispatcher, DispatchReport, RetryPolicy
from monitor.deliver.discord import classify_discord
from monitor.deliver.matrix import classify_matrix
from monitor.deliver.mattermost import classify_mattermost
from monitor.deliver.ntfy import classify_ntfy
from monitor.deliver.retry import SuccessRule, classify
from monitor.deliver.slack import classify_slack
from monitor.deliver.teams import classify_teams
from monitor.deliver.telegram import classify_telegram
from monitor.store import Store
from monitor.store.thread import StoreThread

MakeReceiver = Callable[..., Receiver]
JSON = {"Content-Type": "application/json"}

RULES: dict[str, SuccessRule] = {
    "slack": classify_slack,
    "discord": classify_discord,
    "teams": classify_teams,
    "mattermost": classify_mattermost,
    "telegram": classify_telegram,
    "matrix": classify_matrix,
    "ntfy": classify_ntfy,
}
TEAMS_429 = (
    "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error "
    "429 with ContextId tcid=0,server=msgapi,cv=x"
)
TEAMS_413 = TEAMS_429.replace("429", "413")


@pytest.mark.parametrize(
    ("sink", "status", "body", "kind", "wait"),
    [
        ("slack", 200, "ok", "sent", None),
        ("slack", 200, '{"ok": true}', "sent", None),
        ("slack", 200, "invalid_payload", "dead", None),
        ("slack", 200, "no_service", "dead", None),
        ("slack", 200, "rollup_error", "retry", None),
        ("slack", 200, '{"ok": false, "error": "channel_not_found"}', "dead", None),
        ("slack", 200, "<html>Sign in</html>", "dead", None),
        ("slack", 200, "", "dead", None),
        ("telegram", 200, '{"ok": true, "result": {"message_id": 1}}', "sent", None),
        (
            "telegram",
            200,
            '{"ok": false, "error_code": 400, "description": "Bad Request"}',
            "dead",
            None,
        ),
        (
            "telegram",
            200,
            '{"ok": false, "error_code": 429, "parameters": {"retry_after": 9}}',
            "retry",
            9.0,
        ),
        ("telegram", 200, '{"ok": false, "error_code": 502}', "retry", None),
        ("telegram", 200, "<html>proxy</html>", "dead", None),
        ("discord", 204, "", "sent", None),
        ("discord", 200, '{"id": "1234", "type": 0, "content": "x"}', "sent", None),
        (
            "discord",
            200,
            '{"code": 50006, "message": "Cannot send an empty message"}',
            "dead",
            None,
        ),
        ("discord", 200, '{"message": "rate limited", "retry_after": 1.5}', "retry", 1.5),
        ("discord", 200, "", "dead", None),
        ("teams", 202, "", "sent", None),
        ("teams", 200, "1", "sent", None),
        ("teams", 200, "", "sent", None),
        ("teams", 200, TEAMS_429, "retry", None),
        ("teams", 200, TEAMS_413, "dead", None),
        ("teams", 200, "Summary or Text is required.", "retry", None),
        ("mattermost", 200, "ok", "sent", None),
        ("mattermost", 200, '{"id": "x", "message": "m", "status_code": 400}', "dead", None),
        ("mattermost", 200, '{"id": "x", "message": "m", "status_code": 503}', "retry", None),
        ("mattermost", 200, "<html>", "dead", None),
        ("matrix", 200, '{"event_id": "$abc:example.org"}', "sent", None),
        ("matrix", 200, '{"errcode": "M_FORBIDDEN", "error": "not in room"}', "dead", None),
        ("matrix", 200, '{"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 2000}', "retry", 2.0),
        ("matrix", 200, "{}", "dead", None),
        ("ntfy", 200, '{"id": "x1", "time": 1, "event": "message", "topic": "t"}\n', "sent", None),
        ("ntfy", 200, '{"code": 42901, "http": 429, "error": "limit reached"}', "retry", None),
        ("ntfy", 200, '{"code": 40301, "http": 403, "error": "forbidden"}', "dead", None),
        ("ntfy", 200, "ok", "dead", None),
    ],
)
def test_2xx_answers_are_judged_by_each_services_success_rule(
    sink: str, status: int, body: str, kind: str, wait: float | None
) -> None:
    outcome = classify(status, {}, body, success=RULES[sink])
    assert (outcome.kind, outcome.retry_after, outcome.status) == (kind, wait, status)
    if kind != "sent":
        assert outcome.error is not None and outcome.error.startswith(f"HTTP {status} but ")


def test_without_a_rule_any_2xx_is_sent_and_errors_keep_their_status() -> None:
    assert classify(200, {}, "invalid_payload").kind == "sent"
    assert classify(404, {}, "ok", success=classify_slack).kind == "dead"


# Against real receivers -------------------------------------------------------------------


def _drain(config: Config, timeout: float = 20.0) -> DispatchReport:
    async def main() -> DispatchReport:
        thread = StoreThread(Store.open(config.database))
        retry = RetryPolicy(base=0.05, cap=0.2)
        dispatcher = Dispatcher(config, thread, rng=random.Random(7), retry=retry)
        try:
            return await dispatcher.drain(timeout)
        finally:
            await dispatcher.aclose()
            thread.close()

    return asyncio.run(main())


def _seed(config: Config, sinks: list[str]) -> None:
    store = Store.open(config.database)
    try:
        add_alerts(store, sinks)
    finally:
        store.close()


def _rows(config: Config) -> list[tuple[str, str, int, str | None]]:
    store = Store.open(config.database)
    try:
        return [
            (str(r[0]), str(r[1]), int(r[2]), r[3])
            for r in store.db.execute(
                "SELECT sink, status, attempts, last_error FROM deliveries ORDER BY id"
            ).fetchall()
        ]
    finally:
        store.close()


def test_200_with_an_error_body_is_not_counted_as_delivered(
    make_config: Any, receiver: MakeReceiver
) -> None:
    slack, telegram, teams = receiver("slack"), receiver("telegram"), receiver("teams")
    slack.script(Answer(200, b"invalid_payload", {"Content-Type": "text/plain"}))
    telegram.script(
        Answer(
            200,
            json.dumps(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too ManyRequests",
                    "parameters": {"retry_after": 3},
                }
            ).encode(),
            JSON,
        )
    )
    teams.script(Answer(200, TEAMS_413.encode(), {"Content-Type": "text/plain"}))
    config = make_config(
        sinks=[
            {"name": "chat", "type": "slack", "url": slack.url()},
            {
                "name": "bot",
                "type": "telegram",
                "url": telegram.base,
                "token": "1:x",
                "chat_id": "5",
            },
            {"name": "room", "type": "teams", "url": teams.url()},
        ]
    )
    _seed(config, ["chat", "bot", "room"])
    report = _drain(config)
    assert (report.sent, report.retrying, report.dead) == (0, 1, 2)
    rows = {sink: (status, error) for sink, status, _, error in _rows(config)}
    assert rows["chat"] == ("dead", "HTTP 200 but Slack answered 'invalid_payload'")
    assert rows["bot"][0] == "pending" and "429" in str(rows["bot"][1])
    assert rows["room"][0] == "dead" and "HTTP error 413" in str(rows["room"][1])


def test_a_2xx_whose_body_trickles_in_is_sent_once_not_resent(
    make_config: Any, receiver: MakeReceiver
) -> None:
    slack, hook = receiver("slack"), receiver("webhook")
    # 60 bytes at one a second: a minute to read, three times the drain's whole timeout.
    slack.script(Answer(200, b"ok" + b" " * 58, {"Content-Type": "text/plain"}, trickle=1.0))
    hook.script(Answer(200, b"x" * 60, trickle=1.0))
    config = make_config(
        sinks=[
            {"name": "chat", "type": "slack", "url": slack.url(), "timeout": "1s"},
            {"name": "hook", "type": "webhook", "url": hook.url(), "timeout": "1s"},
        ]
    )
    _seed(config, ["chat", "hook"])
    with capture_logs() as logs:
        report = _drain(config, timeout=20)
    assert not report.timed_out
    assert (report.sent, report.retrying, report.dead) == (2, 0, 0)
    assert [(s, status, n) for s, status, n, _ in _rows(config)] == [
        ("chat", "sent", 1),
        ("hook", "sent", 1),
    ]
    assert len(slack.arrivals) == 1 and len(hook.arrivals) == 1
    # Slack's rule needs the body, which did not come in time: said so. The webhook needs none.
    cut = [e for e in logs if e["event"] == "delivery.answer_cut"]
    assert [e["sink"] for e in cut] == ["chat"]
