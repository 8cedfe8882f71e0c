"""Start-up (issue 14): each command imports only what it uses.

Every command runs in a fresh interpreter, through the real CLI, against real files and a
feed server on 127.0.0.1; a small wrapper then writes the names in `sys.modules`. These are
behaviour checks, with no bound on wall-clock time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import FeedServer, rss

import monitor
from monitor.cli import cli

# The wrapper: run the CLI with argv[2:], then write every loaded module's name to argv[1].
_WRAPPER = """\
import json, sys
from monitor.cli import cli
try:
    cli.main(sys.argv[2:], prog_name="news-monitor")
except SystemExit as exc:
    code = exc.code
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""

# What a command that sends nothing and translates nothing must not load.
_SENDING_AND_TRANSLATING = (
    "apprise",
    "prometheus_client",
    "httpx",
    "ctranslate2",
    "sentencepiece",
    "onnxruntime",
    "minisbd",
    "trafilatura",
    "numpy",
    "monitor.deliver.sinks",
    "monitor.deliver.slack",
    "monitor.deliver.apprise_sink",
    "monitor.metrics",
    "monitor.health",
    "monitor.ops",
)


def _python(directory: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -c SCRIPT ARGS` in `directory`, on the monitor package these tests import
    (whichever checkout that is)."""
    env = {**os.environ, "PYTHONPATH": str(Path(monitor.__file__).parent.parent)}
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _run(directory: Path, *args: str) -> tuple[int, str, set[str]]:
    """Exit code, stdout and the loaded modules of `news-monitor ARGS` run in `directory`."""
    report = directory / "modules.json"
    done = _python(directory, _WRAPPER, str(report), *args)
    assert report.exists(), done.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    return data["code"] or 0, done.stdout, set(data["modules"])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


def _config(directory: Path, url: str) -> None:
    data = {
        "database": "monitor.db",
        "polling": {"timeout": "5s", "jitter": 0},
        "feeds": [{"name": "Local desk", "url": url, "language": "en"}],
        "watchlists": [{"name": "khanaqin", "terms": ["Khanaqin"]}],
        "translation": {"mode": "off"},
        "sinks": [{"name": "desk-chat", "type": "slack", "url": "http://127.0.0.1:9/T0/B0/x"}],
    }
    (directory / "config.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")


def test_help_lists_every_command_and_loads_no_stage(tmp_path: Path) -> None:
    code, out, modules = _run(tmp_path, "--help")
    assert code == 0
    for name in cli.commands:  # type: ignore[attr-defined]
        assert f"  {name} " in out
    stages = ("monitor.config", "monitor.store", "monitor.service", "structlog", "pydantic")
    assert _loaded(modules, stages) == []


def test_check_config_loads_neither_store_nor_daemon(tmp_path: Path) -> None:
    _config(tmp_path, "http://127.0.0.1:9/desk.xml")
    code, out, modules = _run(tmp_path, "--config", "config.yaml", "check-config")
    assert code == 0
    assert "config.yaml: OK" in out
    daemon = ("monitor.store", "sqlite_utils", "monitor.service", "aiohttp", "apscheduler")
    assert _loaded(modules, daemon + _SENDING_AND_TRANSLATING) == []


def test_poll_once_with_nothing_to_send_loads_no_sink_metrics_or_translation_code(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    body = rss([{"title": "Diyarbakir city walls reopen", "guid": "desk-1"}])
    url = feed_server.route("/desk.xml", body, etag='"v1"')
    _config(tmp_path, url)
    first = _run(tmp_path, "--config", "config.yaml", "poll-once")
    again = _run(tmp_path, "--config", "config.yaml", "poll-once")
    assert first[:2] == (
        0,
        "Local desk: 1 items, 1 new, 0 alerts\ndeliveries: 0 sent, 0 to retry, 0 dead\n",
    )
    assert again[:2] == (0, "Local desk: not modified\ndeliveries: 0 sent, 0 to retry, 0 dead\n")
    assert _loaded(first[2], _SENDING_AND_TRANSLATING) == []
    assert _loaded(again[2], _SENDING_AND_TRANSLATING) == []
    # structlog imports its Twisted module whenever Twisted is installed (this virtualenv has
    # it for the Matrix test server): monitor.logging keeps it out.
    assert _loaded(again[2], ("twisted", "structlog.twisted")) == []
    # Small documents parse in-process: the parse pool's modules load with the first large one.
    pool = ("multiprocessing", "concurrent.futures.process")
    assert _loaded(first[2] | again[2], pool) == []
    # Nothing to place in an incident, send or install: no incident reader, no rendering,
    # messages or flood control, no model archive code.
    unused = (
        "monitor.incidents._evidence",
        "monitor.deliver.render",
        "monitor.deliver.message",
        "monitor.deliver.limits",
        "monitor.translate._archive",
        "tarfile",
    )
    assert _loaded(first[2] | again[2], unused) == []
    # Nothing new: no language identifier either (the translator only needs its constant).
    assert _loaded(again[2], ("langdetect_rs",)) == []


def test_poll_once_of_unchanged_feeds_loads_no_parser_or_language_identifier(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    body = rss([{"title": "Diyarbakir city walls reopen", "guid": "desk-1"}])
    url = feed_server.route("/desk.xml", body, etag='"v1"')
    _config(tmp_path, url)
    first = _run(tmp_path, "--config", "config.yaml", "poll-once")
    again = _run(tmp_path, "--config", "config.yaml", "poll-once")
    assert again[:2] == (0, "Local desk: not modified\ndeliveries: 0 sent, 0 to retry, 0 dead\n")
    parsing = ("feedparser", "xml.etree", "monitor._fastfeed")
    assert _loaded(again[2], parsing) == []
    # They load as soon as a document is read (a small one parses in-process).
    assert _loaded(first[2], parsing) == list(parsing)
    # langdetect's profiles are read from its directory: the package itself never loads.
    assert _loaded(first[2] | again[2], ("langdetect",)) == []


def test_poll_once_with_an_alert_to_send_loads_its_sink(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    # The same wrapper sees a sink's code once there is something to send.
    body = rss([{"title": "Checkpoint attacked near Khanaqin", "guid": "desk-1"}])
    _config(tmp_path, feed_server.route("/desk.xml", body))
    code, out, modules = _run(tmp_path, "--config", "config.yaml", "poll-once")
    assert code == 0
    assert "Local desk: 1 items, 1 new, 1 alerts" in out
    assert "1 to retry" in out  # nothing listens on port 9
    assert _loaded(modules, ("httpx", "monitor.deliver.slack")) == [
        "httpx",
        "monitor.deliver.slack",
    ]
    assert _loaded(modules, ("apprise", "prometheus_client", "trafilatura")) == []


def test_store_loads_sqlite_utils_without_numpy_which_stays_importable(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from monitor.store import Store\n"
        "assert 'numpy' not in sys.modules, 'numpy loaded with the store'\n"
        f"store = Store.open({str(tmp_path / 'monitor.db')!r})\n"
        "store.close()\n"
        "import numpy\n"
        "print(numpy.int64(7) + 1)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(monitor.__file__).parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "8\n"), done.stderr


# The real entry point, with an exit hook that leaves a mark: it runs only when the
# interpreter tears itself down.
_ENTRY = """\
import atexit, pathlib, sys
atexit.register(pathlib.Path(sys.argv[1]).write_text, "torn down")
from monitor.cli import main
sys.argv[1:2] = []
main()
"""


def _entry(directory: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    mark = directory / "teardown.txt"
    mark.unlink(missing_ok=True)
    done = _python(directory, _ENTRY, str(mark), *args)
    return done, mark.exists()


def test_poll_once_flushes_everything_then_skips_the_interpreters_teardown(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    body = rss([{"title": f"Khanaqin bulletin {n}", "guid": f"k-{n}"} for n in range(3)])
    _config(tmp_path, feed_server.route("/desk.xml", body, etag='"v1"'))
    done, torn_down = _entry(tmp_path, "--config", "config.yaml", "poll-once", "--json")
    assert done.returncode == 0, done.stderr
    assert not torn_down
    (line,) = done.stdout.splitlines()
    assert json.loads(line)["new_items"] == 3
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        assert db.execute("SELECT count(*) FROM items").fetchone() == (3,)
        assert db.execute("SELECT count(*) FROM alerts").fetchone() == (3,)
    # Every log line came out whole, the poll's included.
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(e["event"], e["new"]) for e in events if e["event"] == "feed.polled"] == [
        ("feed.polled", 3)
    ]


def test_a_failed_poll_once_exits_1_quickly_and_other_commands_tear_down(tmp_path: Path) -> None:
    _config(tmp_path, "http://127.0.0.1:9/desk.xml")  # nothing listens on the discard port
    done, torn_down = _entry(tmp_path, "--config", "config.yaml", "poll-once")
    assert (done.returncode, torn_down) == (1, False)
    assert done.stdout.startswith(
        "Local desk: FAILED cannot connect to 127.0.0.1:9: Connection refused\n"
    )
    done, torn_down = _entry(tmp_path, "--config", "config.yaml", "check-config")
    assert (done.returncode, torn_down) == (0, True)
