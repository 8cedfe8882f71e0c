"""The README's sample output is what the commands print: `demo` and `analyze`, run for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text("utf-8")


def _block(opening: str) -> str:
    start = README.index(opening) + len(opening)
    return README[start : README.index("\n```", start)]


def _run(*args: str, stdin: str = "") -> str:
    env = {k: v for k, v in os.environ.items() if k != "NEWS_MONITOR_CONFIG"}
    result = subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def _steady(text: str) -> list[str]:
    """The demo's lines less what changes from run to run: its port and temporary folder."""
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r"database \S+demo\.db", "database DB", text)
    return text.strip().splitlines()


def test_the_readme_demo_is_what_demo_prints() -> None:
    shown = _block("```console\n$ .venv/bin/news-monitor demo\n")
    assert _steady(_run("demo")) == _steady(shown)


def test_the_readme_analyze_line_is_what_analyze_prints() -> None:
    command = next(
        line
        for line in README.splitlines()
        if line.startswith('echo \'{"id": 1') and "analyze" in line
    )
    record = command.split("'")[1]
    shown = json.loads(_block("`analyze` prints, per line read:\n\n```json\n"))
    printed = json.loads(_run("--config", "config.yaml", "analyze", stdin=record + "\n"))
    assert printed == shown
