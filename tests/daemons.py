"""`news-monitor run` as a real subprocess, for the end-to-end tests that start daemons."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Daemon", "daemons"]


class Daemon:
    """`news-monitor run` as a subprocess, its JSON log lines going to a file.

    A file, not a pipe: after a SIGKILL the parse pool's processes may hold a pipe open for a
    while, and reading it would wait for them.
    """

    _started = 0

    def __init__(self, config: Path) -> None:
        Daemon._started += 1
        self.log = config.parent / f"daemon-{Daemon._started}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "--config", str(config), "run"],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def events(self) -> list[dict[str, Any]]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def tracebacks(self) -> list[str]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        # After a SIGKILL, multiprocessing's resource tracker frees the semaphores the dead
        # daemon left and says so on the stderr it shares: the clean-up working, not a bug.
        return [
            line for line in lines if not line.startswith("{") and "resource_tracker" not in line
        ]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=15)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.kill()
