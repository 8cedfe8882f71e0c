"""Log lines: one JSON shape for ours and the libraries', with syslog priorities in the journal."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from monitor.logging import configure_logging

ROOT = Path(__file__).parents[1]


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


_EMIT = """
import logging, structlog
from monitor.logging import configure_logging
configure_logging("info")
log = structlog.get_logger()
log.info("feed.polled", feed="desk", new=2)
log.warning("feed.failing", feed="desk")
log.error("delivery.dead", sink="chat")
logging.getLogger("apscheduler.scheduler").warning("Run time of job %s was missed", "poll")
logging.getLogger("apscheduler.scheduler").info("Added job %s", "poll")
log.debug("feed.skipped")
"""


def _run(tmp_path: Path, journal: bool) -> list[str]:
    """The lines the snippet above writes to stderr, a file standing in for the journal."""
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as out:
        stat = os.fstat(out.fileno())
        env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
        # A journal stream other than stderr (stdout's, say) must not change stderr's lines.
        env["JOURNAL_STREAM"] = f"{stat.st_dev}:{stat.st_ino}" if journal else "0:1"
        subprocess.run(
            [sys.executable, "-c", _EMIT], cwd=ROOT, env=env, stderr=out, check=True, timeout=60
        )
    return stderr.read_text("utf-8").splitlines()


def test_lines_to_the_journal_start_with_their_syslog_priority(tmp_path: Path) -> None:
    lines = _run(tmp_path, journal=True)
    assert [line[:3] for line in lines] == ["<6>", "<4>", "<3>", "<4>"]
    events = [json.loads(line[3:]) for line in lines]
    assert [(e["event"], e["level"]) for e in events] == [
        ("feed.polled", "info"),
        ("feed.failing", "warning"),
        ("delivery.dead", "error"),
        ("Run time of job poll was missed", "warning"),
    ]
    assert events[0]["feed"] == "desk"
    assert events[3]["logger"] == "apscheduler.scheduler"
    assert all(e["timestamp"].endswith("Z") for e in events)


def test_lines_elsewhere_are_plain_json(tmp_path: Path) -> None:
    lines = _run(tmp_path, journal=False)
    assert [json.loads(line)["event"] for line in lines] == [
        "feed.polled",
        "feed.failing",
        "delivery.dead",
        "Run time of job poll was missed",
    ]


def test_library_logs_have_the_shape_of_ours() -> None:
    out = io.StringIO()
    configure_logging("info", json=True, stream=out, environ={})
    structlog.get_logger().warning("feed.failing", feed="desk")
    logging.getLogger("apprise").warning("Failed to send %s notification", "JSON")
    logging.getLogger("httpx").info("HTTP Request: GET https://news.example.org/rss")
    logging.getLogger("argostranslate.utils").setLevel(logging.INFO)  # as it does on import
    logging.getLogger("argostranslate.utils").info("('Loading package index',)")
    try:
        raise ValueError("bad model")
    except ValueError:
        logging.getLogger("argostranslate.utils").exception("cannot load")
    ours, apprise, argos = (json.loads(line) for line in out.getvalue().splitlines())
    assert set(ours) == {"event", "feed", "level", "timestamp"}
    assert apprise == {
        "event": "Failed to send JSON notification",
        "level": "warning",
        "logger": "apprise",
        "timestamp": apprise["timestamp"],
    }
    assert argos["level"] == "error"
    assert "ValueError: bad model" in argos["exception"]


def test_configuring_again_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", json=True, stream=first, environ={})
    configure_logging("warning", json=True, stream=second, environ={})
    logging.getLogger("apprise").warning("once")
    structlog.get_logger().info("feed.polled")
    assert first.getvalue() == ""
    assert [json.loads(line)["event"] for line in second.getvalue().splitlines()] == ["once"]


def test_library_lines_never_show_a_sink_url_or_a_token() -> None:
    out = io.StringIO()
    configure_logging("debug", json=True, stream=out, environ={})
    hook = "https://hooks.slack.com/services/T0AAAA/B0BBBB/XyzSecretPart123"
    logging.getLogger("httpx").info('HTTP Request: POST %s "HTTP/1.1 200 OK"', hook)
    try:
        raise ValueError(f"cannot reach https://api.telegram.org/bot12345:AAbbCCddEEff/send {hook}")
    except ValueError:
        logging.getLogger("apprise").exception("send failed")
    structlog.get_logger().info("feed.polled", url="https://news.example.org/rss?id=7")

    request, failure, ours = (json.loads(line) for line in out.getvalue().splitlines())
    text = out.getvalue()
    for secret in ("XyzSecretPart123", "T0AAAA", "AAbbCCddEEff", "12345:"):
        assert secret not in text
    assert request["event"] == 'HTTP Request: POST https://hooks.slack.com/… "HTTP/1.1 200 OK"'
    assert "https://api.telegram.org/…" in failure["exception"]
    # Our own events are not rewritten: a feed URL is not a secret.
    assert ours["url"] == "https://news.example.org/rss?id=7"


def test_every_line_of_a_multiline_event_in_the_journal_carries_its_priority(
    tmp_path: Path,
) -> None:
    """Our events skip the stdlib handler chain (issue 14); the journal prefix stays per line."""
    with (tmp_path / "journal").open("w", encoding="utf-8") as out:
        stat = os.fstat(out.fileno())
        environ = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        configure_logging("info", json=False, stream=out, environ=environ)
        try:
            raise ValueError("first line\nsecond line")
        except ValueError:
            structlog.get_logger().exception("feed.crashed", feed="desk")
        logging.getLogger("apprise").warning("library line")
    lines = (tmp_path / "journal").read_text("utf-8").splitlines()
    assert len(lines) > 3  # the console renderer's traceback spans lines
    assert all(line.startswith("<3>") for line in lines[:-1])
    assert "feed.crashed" in lines[0] and "second line" in "".join(lines)
    assert lines[-1].startswith("<4>") and "library line" in lines[-1]
