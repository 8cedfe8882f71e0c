"""`news-monitor run` as a real process: polls on schedule, reloads on SIGHUP, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.demo import FEEDS_DIR, serve_directory

CONFIG = """\
database: run.db
polling:
  interval: 1s
  timeout: 5s
  jitter: 0
  backfill: 36500d
feeds:
{feeds}
watchlists:
  - name: khanaqin
    terms: [Khanaqin]
"""


def _feed(name: str, url: str) -> str:
    return f'  - {{name: "{name}", url: "{url}"}}'


@pytest.fixture
def base_url() -> Iterator[str]:
    with serve_directory(FEEDS_DIR) as url:
        yield url


class Daemon:
    def __init__(self, config: Path) -> None:
        self.events: list[dict[str, object]] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        os.set_blocking(self.process.stderr.fileno(), False)  # type: ignore[union-attr]

    def _read(self) -> None:
        assert self.process.stderr is not None
        while line := self.process.stderr.readline():
            self.events.append(json.loads(line))

    def wait_for(self, predicate: object, timeout: float = 15.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            self._read()
            for event in self.events[seen:]:
                if predicate(event):  # type: ignore[operator]
                    return event
            seen = len(self.events)
            time.sleep(0.05)
        raise AssertionError(f"no such event within {timeout}s; saw {self.events[-5:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=12)
        self._read()
        assert self.process.stderr is not None
        self.process.stderr.close()
        return code


def test_run_polls_on_schedule_and_stops_on_sigterm(tmp_path: Path, base_url: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        CONFIG.format(feeds=_feed("English", f"{base_url}/english.xml")), encoding="utf-8"
    )
    daemon = Daemon(config)
    try:
        daemon.wait_for(lambda e: e["event"] == "monitor.started")
        first = daemon.wait_for(lambda e: e["event"] == "feed.polled")
        assert first["feed"] == "English" and first["status"] == 200 and first["alerts"] == 1
        # The next scheduled poll, a second later, is a conditional GET answered 304: logged
        # with the other 304s of its batch, one line naming their feeds.
        again = daemon.wait_for(lambda e: e["event"] == "feeds.unchanged")
        assert again["status"] == 304 and again["feeds"] == ["English"]
        started = time.monotonic()
    finally:
        code = daemon.stop()
    assert code == 0
    assert time.monotonic() - started < 10
    assert any(e["event"] == "monitor.stopped" for e in daemon.events)


def test_sighup_reloads_a_valid_config_and_keeps_the_old_on_error(
    tmp_path: Path, base_url: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        CONFIG.format(feeds=_feed("English", f"{base_url}/english.xml")), encoding="utf-8"
    )
    daemon = Daemon(config)
    try:
        daemon.wait_for(lambda e: e["event"] == "feed.polled")
        config.write_text("polling:\n  intervall: 1s\n", encoding="utf-8")
        daemon.process.send_signal(signal.SIGHUP)
        invalid = daemon.wait_for(lambda e: e["event"] == "config.invalid")
        assert "config.yaml:2: polling.intervall: unknown key" in str(invalid["problems"])
        # Still polling under the old config.
        daemon.wait_for(lambda e: e["event"] == "feed.polled" and e["feed"] == "English")

        feeds = "\n".join(
            [
                _feed("English", f"{base_url}/english.xml"),
                _feed("Arabic", f"{base_url}/arabic.xml"),
            ]
        )
        config.write_text(CONFIG.format(feeds=feeds), encoding="utf-8")
        daemon.process.send_signal(signal.SIGHUP)
        reloaded = daemon.wait_for(lambda e: e["event"] == "config.reloaded")
        assert reloaded["feeds"] == 2
        daemon.wait_for(lambda e: e["event"] == "feed.polled" and e["feed"] == "Arabic")
    finally:
        assert daemon.stop() == 0


def test_failing_feed_is_retried_and_shows_as_failing(tmp_path: Path, base_url: str) -> None:
    config = tmp_path / "config.yaml"
    feeds = "\n".join(
        [
            _feed("Missing", f"{base_url}/missing.xml"),
            _feed("English", f"{base_url}/english.xml"),
        ]
    )
    config.write_text(CONFIG.format(feeds=feeds), encoding="utf-8")
    daemon = Daemon(config)
    try:
        failed = daemon.wait_for(lambda e: e["event"] == "feed.failed")
        assert failed["feed"] == "Missing" and failed["status"] == 404
        assert failed["errors"] == 1
        # Backoff doubles from the interval; the feed is tried again, never dropped.
        second = daemon.wait_for(lambda e: e["event"] == "feed.failed" and e["errors"] == 2)
        assert second["retry_in"] >= 1
        daemon.wait_for(lambda e: e["event"] == "feed.polled" and e["feed"] == "English")
    finally:
        assert daemon.stop() == 0
