"""`news-monitor demo`: bundled sample feeds served on 127.0.0.1, polled and analyzed once.

The feeds (original texts, see feeds/README.md) tell the Khanaqin story in Sorani, Kurmanji,
Arabic and English, beside unrelated news and near-misses that must not alert.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.config import load_config
from monitor.deliver.render import language_name
from monitor.service import Monitor

__all__ = ["FEEDS_DIR", "run_demo", "serve_directory"]

FEEDS_DIR = Path(__file__).parent / "feeds"

_CONFIG = """\
# Written by `news-monitor demo`.
database: demo.db
polling:
  interval: 10m
  timeout: 10s
  backfill: 36500d   # the sample stories are dated; alert on all of them
feeds:
  - {{name: Demo English, url: "{base}/english.xml", language: en}}
  - {{name: Demo English wire, url: "{base}/english-wire.xml", language: en}}
  - {{name: Demo Arabic, url: "{base}/arabic.xml", language: ar}}
  - {{name: Demo Sorani, url: "{base}/sorani.xml", language: ckb}}
  - {{name: Demo Kurmanji, url: "{base}/kurmanji.xml", language: kmr}}
watchlists:
  - name: khanaqin
    severity: high
    terms:
      - term: Khanaqin
        aliases: [خانقين, خانەقین, Xaneqîn]
  - name: diyala
    severity: medium
    terms:
      - term: Diyala
        aliases: [ديالى, دیالە]
  - name: suicide-bomber
    severity: critical
    terms:
      - term: suicide bomber
        aliases: [انتحاري, خۆتەقێنەر, xwekuj]
    none: [exercise, drill]
"""

_CONTENT_TYPES = {".xml": "application/xml"}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 (the base class declares it so)
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        **_CONTENT_TYPES,
    }

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve `directory` on an ephemeral 127.0.0.1 port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def run_demo(keep: Path | None, echo: Callable[[str], None]) -> int:
    """Run the pipeline over the sample feeds and print the incidents with their reports;
    returns how many alerts they raised."""
    with contextlib.ExitStack() as stack:
        workdir = keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        workdir.mkdir(parents=True, exist_ok=True)
        base = stack.enter_context(serve_directory(FEEDS_DIR))
        config_path = workdir / "config.yaml"
        config_path.write_text(_CONFIG.format(base=base), encoding="utf-8")
        config = load_config(config_path, env={})
        echo(f"Serving {len(config.feeds)} sample feeds on {base}; database {config.database}")
        async with Monitor(config, parse_workers=1) as monitor:
            # One feed after the other, in the config's order: two feeds carry the English
            # story, and the one polled first raises its alerts, so the output is the same
            # every run (the daemon polls concurrently; either feed may win there).
            reports = [r for feed in config.feeds for r in await monitor.poll_once([feed.name])]
            alerts = monitor.store.alerts(limit=100)
            incidents = [
                monitor.store.incident_timeline(row["id"])
                for row in monitor.store.list_incidents(datetime.fromtimestamp(0, UTC))
            ]
        for report in reports:
            echo(f"  {report.feed}: {report.items} items, {report.alerts} alerts")
        by_item: dict[int, list[dict[str, Any]]] = {}
        for alert in reversed(alerts):
            by_item.setdefault(alert["item"]["id"], []).append(alert)
        for incident in filter(None, incidents):
            timeline = incident["timeline"]
            languages = len(incident["languages"])
            echo("")
            echo(
                f"1 incident from {len(timeline)} report{'s' if len(timeline) != 1 else ''}"
                f" in {languages} language{'s' if languages != 1 else ''}: {incident['title']}"
            )
            flag = "BREAKING · " if incident["breaking"] else ""
            about = " · ".join([*incident["places"], *incident["terms"]])
            echo(f"  {flag}[{incident['severity']}] {', '.join(incident['watchlists'])}")
            if about:
                echo(f"  about: {about}")
            for report in timeline:
                item_alerts = by_item.get(report["item_id"], [])
                forms = ", ".join(
                    dict.fromkeys(m["form"] for alert in item_alerts for m in alert["matches"])
                )
                echo(
                    f"    {report['at'][11:16]} {report['outlet']} ·"
                    f" {language_name(report['language'])}: {report['title']}"
                )
                echo(f"        matched {forms}")
        total_items = sum(r.items for r in reports)
        echo("")
        echo(
            f"{len(incidents)} incident{'s' if len(incidents) != 1 else ''} from {len(by_item)}"
            f" reports ({len(alerts)} alerts) of {total_items} items in {len(reports)} feeds:"
            " each sink hears of an incident once, and of each later report as an update."
        )
        if keep:
            echo(f"Files kept in {workdir}: try `news-monitor --config {config_path} alerts`")
        return len(alerts)
