"""No message, log line, column or endpoint ever shows a secret (SECURITY.md).

Sink URLs are shown as scheme and host; any text that may carry a secret (an error body a
service echoes back, an exception) has every configured secret and whatever looks like one
replaced by `[redacted]`. Checked end to end: a service that echoes the request in its error
page, a typo'd Slack URL in `check-config` and, after a reload, in /healthz and the status
line; then every column of every table of the SQLite file, its raw bytes and the captured logs.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner
from conftest import free_port
from receivers import Answer, Receiver, add_alerts, receiver_fixture  # noqa: F401
from structlog.testing import capture_logs

from monitor.cli import cli
from monitor.config import SinkConfig, load_config
from monitor.deliver import Dispatcher, RetryPolicy, send_test
from monitor.ops import Operations
from monitor.redact import REDACTED, Redactor, redact, shown_url
from monitor.service import Monitor
from monitor.store import Store
from monitor.store.thread import StoreThread

MakeReceiver = Callable[..., Receiver]

SLACK_SECRET = "TYPOSECRET0123456789"
TYPO_URL = f"htps://hooks.slack.com/services/T0/B0/{SLACK_SECRET}"
TELEGRAM_TOKEN = "7123456789:AAHtelegramSECRETtokenValue_0123456789"
MATRIX_TOKEN = "syt_bWF0cml4_SECRETmatrixToken_1a2b3c"
WHSEC = "whsec_c2VjcmV0LXdlYmhvb2stU0VDUkVULWtleQ=="
HEADER_SECRET = "hdr-SECRET-value-42"
HOOK_PATH_SECRET = "hookSECRETpath777"
SECRETS = (SLACK_SECRET, TELEGRAM_TOKEN, MATRIX_TOKEN, WHSEC, HEADER_SECRET, HOOK_PATH_SECRET)


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def _database_leaks(path: Path) -> list[str]:
    """Secrets in any column of any table, or anywhere in the file's bytes (WAL included)."""
    found: list[str] = []
    connection = sqlite3.connect(path)
    try:
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                found += _leaks(" ".join(str(value) for value in row))
    finally:
        connection.close()
    for file in path.parent.glob(path.name + "*"):
        data = file.read_bytes()
        found += [s for s in SECRETS if s.encode() in data]
    return found


def _echoing_sinks(echo: Receiver) -> list[dict[str, Any]]:
    return [
        {
            "name": "bot",
            "type": "telegram",
            "url": echo.url("/sink/echo"),
            "token": TELEGRAM_TOKEN,
            "chat_id": "42",
        },
        {
            "name": "room",
            "type": "matrix",
            "url": echo.base,
            "room": "!r:example.org",
            "token": MATRIX_TOKEN,
        },
        {
            "name": "siem",
            "type": "webhook",
            "url": echo.url(f"/hooks/{HOOK_PATH_SECRET}"),
            "secret": WHSEC,
            "headers": {"Authorization": f"Bearer {HEADER_SECRET}"},
        },
        {"name": "desk", "type": "slack", "url": echo.url(f"/services/T0/B0/{SLACK_SECRET}")},
    ]


def test_secrets_echoed_in_error_bodies_are_stored_and_logged_redacted(
    make_config: Any, receiver: MakeReceiver
) -> None:
    echo = receiver("webhook")
    echo.script(*[Answer(500, b"HTTP 500: ", echo=True)] * 4)
    config = make_config(sinks=_echoing_sinks(echo))
    store = Store.open(config.database)
    add_alerts(store, [s.name for s in config.sinks])
    store.close()

    async def main() -> None:
        thread = StoreThread(Store.open(config.database))
        dispatcher = Dispatcher(config, thread, retry=RetryPolicy(base=0.05, cap=0.1))
        try:
            report = await dispatcher.drain(20)
        finally:
            await dispatcher.aclose()
            thread.close()
        assert report.retrying == 4

    with capture_logs() as logs:
        asyncio.run(main())
    # The service did echo every secret back: the redaction had something to do.
    answers = " ".join(a.path + json.dumps(a.headers) for a in echo.arrivals)
    assert _leaks(answers) == [s for s in SECRETS if s != WHSEC]  # only its HMAC is sent
    store = Store.open(config.database)
    errors = [row["last_error"] for row in store.list_deliveries()]
    store.close()
    assert len(errors) == 4 and all(REDACTED in error for error in errors)
    assert _database_leaks(config.database) == []
    assert _leaks(json.dumps(logs, default=str)) == []
    assert any(e["event"] == "delivery.retry_scheduled" for e in logs)


def test_test_sink_answer_and_error_are_redacted(receiver: MakeReceiver) -> None:
    echo = receiver("webhook")
    for sink in _echoing_sinks(echo):
        echo.script(Answer(500, b"HTTP 500: ", echo=True))
        answer = asyncio.run(send_test(SinkConfig.model_validate(sink)))
        assert not answer.ok
        assert REDACTED in answer.answer
        assert _leaks(f"{answer.answer} {answer.error}") == []


def _config_file(tmp_path: Path, sinks: list[dict[str, Any]], port: int) -> Path:
    path = tmp_path / "config.yaml"
    data = {
        "database": "monitor.db",
        "translation": {"mode": "off"},
        "watchlists": [{"name": "khanaqin", "terms": ["Khanaqin"]}],
        "sinks": sinks,
        "http": {"listen": f"127.0.0.1:{port}"},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_check_config_shows_a_typod_sink_url_without_its_secret(tmp_path: Path) -> None:
    path = _config_file(tmp_path, [{"name": "desk", "type": "slack", "url": TYPO_URL}], free_port())
    result = CliRunner().invoke(cli, ["--config", str(path), "check-config"])
    assert result.exit_code == 2
    assert "url 'htps://hooks.slack.com/…' is not an http(s) URL" in result.output
    assert _leaks(result.output) == []


def test_a_typod_sink_url_after_reload_is_not_in_healthz_status_or_logs(tmp_path: Path) -> None:
    port = free_port()
    good = [
        {
            "name": "desk",
            "type": "slack",
            "url": f"https://hooks.slack.com/services/T0/B0/{SLACK_SECRET}",
        }
    ]
    path = _config_file(tmp_path, good, port)

    async def main() -> tuple[str, str]:
        config = load_config(path, env={})
        ops = Operations()
        async with Monitor(config, parse_workers=1) as monitor, ops.serve(monitor):
            _config_file(tmp_path, [{"name": "desk", "type": "slack", "url": TYPO_URL}], port)
            assert await ops.reload() is False
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://127.0.0.1:{port}/healthz")
            return response.text, ops.status_line()

    with capture_logs() as logs:
        healthz, status = asyncio.run(main())
    assert "htps://hooks.slack.com/…" in json.loads(healthz)["config"]["error"][0]
    assert "htps://hooks.slack.com/…" in status
    assert _leaks(healthz) == [] and _leaks(status) == []
    assert any(e["event"] == "config.invalid" for e in logs)
    assert _leaks(json.dumps(logs, default=str)) == []


# The rules themselves ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://hooks.slack.com/services/T0/B0/{SLACK_SECRET}", "https://hooks.slack.com/…"),
        (TYPO_URL, "htps://hooks.slack.com/…"),
        ("https://ntfy.example.org:8443/alerts?auth=x", "https://ntfy.example.org:8443/…"),
        ("https://matrix.example.org", "https://matrix.example.org"),
        ("http://127.0.0.1:9000/hook", "http://127.0.0.1:9000/…"),
        ("https://user:pass@example.org/x", "https://…"),
        (f"tgram://{TELEGRAM_TOKEN}/42", "tgram://…"),
        ("hooks.slack.com/services/T0/B0/X", "…"),
        ("", "…"),
    ],
)
def test_a_sink_url_is_shown_as_scheme_and_host(url: str, shown: str) -> None:
    assert shown_url(url) == shown


@pytest.mark.parametrize(
    ("text", "left"),
    [
        (f"HTTP 500: you asked for /sink/echo/bot{TELEGRAM_TOKEN}/sendMessage", "/sendMessage"),
        (f"token {TELEGRAM_TOKEN} refused", "refused"),
        (f"bad signature with {WHSEC}", "bad signature"),
        ("invalid_auth for xoxb-1234-5678-abcdefSECRET", "invalid_auth"),
        (f"no_service: https://hooks.slack.com/services/T0/B0/{SLACK_SECRET}", "no_service"),
        ("gone: https://discord.com/api/webhooks/123/abcSECRETdef", "gone"),
        (f"Authorization: Bearer {HEADER_SECRET}", "Authorization"),
        (f"M_UNKNOWN_TOKEN: {MATRIX_TOKEN}", "M_UNKNOWN_TOKEN"),
        ("unauthorized: tk_AgQdq7mVBoFD37zQVN29RhuMSECRET", "unauthorized"),
        ("https://x.logic.azure.com/workflows/1?api-version=1&sig=SIGSECRET", "api-version=1"),
        ("cannot connect to https://bob:hunter2SECRET@example.org/", "cannot connect"),
    ],
)
def test_secret_shaped_text_is_redacted_without_configuration(text: str, left: str) -> None:
    redacted = redact(text)
    assert REDACTED in redacted and left in redacted
    assert "SECRET" not in redacted and TELEGRAM_TOKEN not in redacted


def test_configured_secrets_are_redacted_however_they_come_back() -> None:
    sink = SinkConfig(
        name="siem",
        type="webhook",
        url=f"https://siem.example.org/hooks/{HOOK_PATH_SECRET}?k=1",
        headers={"X-Api-Key": HEADER_SECRET},
    )
    redactor = Redactor.for_sinks([sink])
    for text in (
        f"not found: /hooks/{HOOK_PATH_SECRET}?k=1",
        f"unknown hook {HOOK_PATH_SECRET}",
        f"key {HEADER_SECRET.upper().lower()} refused",
        "quoted: hdr-SECRET-value-42",
    ):
        assert _leaks(redactor(text)) == [], text
    # Plain words and short values are not secrets: the error stays readable.
    assert redactor("HTTP 404: no_service") == "HTTP 404: no_service"
