"""Side by side: news-monitor, rss2email and feed2exec on the same feeds, in the same run.

    .venv/bin/python bench/peers.py                # or: make bench (about 10 minutes on 2 cores)
    .venv/bin/python bench/peers.py --feeds 1000   # issue 14's targets: about 7 minutes
    .venv/bin/python bench/peers.py --quick        # about 4 minutes

Each peer is installed from PyPI into its own virtualenv under bench/.venvs/ on first use and
driven as its documentation says, with the smallest hook it offers for the part it lacks:
a substring filter for the seed watchlists' spellings (bench/peer_hooks/bench_hooks.py) and a
local sink (rss2email: `sendmail` is a script appending to a file; feed2exec: an output plugin
appending JSON lines). news-monitor runs `poll-once` with the seed watchlists and does its
whole job: language detection, matching, storing every item and every alert in SQLite.

Every tool polls the same feeds (bench/feedgen.py) from the same server (bench/server.py, its
own process, `Cache-Control: no-cache` so every tool asks every time) in the same run, in
turns: cold (every feed new), warm (every feed 304), steady state (10% of the feeds changed
before each cycle, 3 new items each). Then news-monitor alone at larger N and with larger
watchlists. Wall, CPU (the command and all its children) and peak RSS come from
bench/poll_bench.py's spawner; the floor is feedparser's CPU for the same bytes ÷ cores.
Last, the daemon (`news-monitor run`) at 1,000 and 5,000 feeds, measured inside it by
bench/cycle_bench.py's run_daemon: CPU per 1,000 unchanged polls over a steady window, VmHWM.
Writes bench/results/peers-<time>.json and .md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from cycle_bench import run_daemon  # noqa: E402
from feedgen import GenFeed, generate_feed  # noqa: E402
from poll_bench import WATCHLISTS, Spawner, monitor_argv  # noqa: E402
from server import Document, FeedServer, raise_fd_limit  # noqa: E402

PEERS = {"rss2email": "rss2email==3.14", "feed2exec": "feed2exec==0.23.0"}
"""Pinned, so that a rerun compares against the same code."""
VENVS = BENCH / ".venvs"
HOOKS = BENCH / "peer_hooks"
MONITOR = "news-monitor"

TARGETS = {
    "warm_vs_fastest_peer": 3.0,
    "cold_vs_fastest_peer": 3.0,
    "cold_vs_floor": 1.5,
    "rss_mb": 200.0,
    "daemon_cpu_per_1000_polls_s": 0.25,
    "daemon_vm_hwm_mb": 120.0,
}
RSS_TARGET_FEEDS = 5000
DAEMON_CPU_TARGET_FEEDS = 1000
DAEMON_RSS_TARGET_FEEDS = 5000
"""The daemon's targets are judged at these N; at other N the row is shown for information."""
CHANGED_EVERY = 10
"""Steady state: feed i changes in cycle c when i % CHANGED_EVERY == c % CHANGED_EVERY."""


# Watchlists: the seed story's, and filler terms for the scaling runs. ----------------------------


def seed_watchlists() -> list[dict[str, Any]]:
    data = yaml.safe_load(WATCHLISTS)
    return list(data["watchlists"])


def seed_spellings() -> list[str]:
    """Every term and alias of the seed watchlists: what the peers' substring filter looks for."""
    out: list[str] = []
    for watchlist in seed_watchlists():
        for term in watchlist["terms"]:
            out.append(term["term"])
            out.extend(term.get("aliases", ()))
    return out


def seed_term_count() -> int:
    return sum(len(w["terms"]) for w in seed_watchlists())


_LATIN: tuple[str, ...] = ("qar", "zel", "mor", "vin", "tash", "kul", "ber", "dan")
_LATIN += ("hov", "sir", "gol", "pex", "rum", "yaz", "nek", "fir")
_ARABIC: tuple[str, ...] = ("قر", "زل", "مور", "ڤین", "تاش", "کول", "بەر", "دان")
_ARABIC += ("هۆڤ", "سیر", "گۆل", "پەخ", "ڕوم", "یاز", "نەک", "فیر")


def filler_watchlists(terms: int, per_watchlist: int = 100) -> list[dict[str, Any]]:
    """`terms` made-up place names, each with an Arabic-script alias, 100 to a watchlist.

    Four syllables from 16, so they look like names and match none of the generated text: the
    scaling runs measure what more terms cost, with the same alerts.
    """
    out: list[dict[str, Any]] = []
    for start in range(0, terms, per_watchlist):
        entries = []
        for number in range(start, min(terms, start + per_watchlist)):
            code = (number * 40_503 + 7) % 65_536
            digits = [(code >> shift) & 15 for shift in (12, 8, 4, 0)]
            latin = "".join(_LATIN[d] for d in digits).capitalize()
            arabic = "".join(_ARABIC[d] for d in digits)
            entries.append({"term": latin, "aliases": [arabic]})
        out.append({"name": f"filler-{start // per_watchlist:04d}", "terms": entries})
    return out


# The tools. -----------------------------------------------------------------------------------


def ensure_peer(name: str) -> dict[str, Any]:
    """bench/.venvs/NAME with the pinned release installed; returns what is installed."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    marker = venv / f".installed-{PEERS[name]}"
    started = time.perf_counter()
    if not marker.exists():
        print(f"installing {PEERS[name]} into {venv.relative_to(ROOT)}…", file=sys.stderr)
        shutil.rmtree(venv, ignore_errors=True)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--no-input", PEERS[name]],
            check=True,
        )
        marker.touch()
    probe = (
        "import json, importlib.metadata as m; "
        "print(json.dumps({p: m.version(p) for p in "
        f"({name!r}, 'feedparser', 'requests', 'CacheControl', 'html2text') "
        "if any(d.metadata['Name'].lower() == p.lower() for d in m.distributions())}))"
    )
    versions = json.loads(subprocess.check_output([str(python), "-c", probe], text=True))
    return {"versions": versions, "install_s": round(time.perf_counter() - started, 1)}


class Tool:
    """One tool's state directory, config, command line and sink."""

    name = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)

    def setup(self, feeds: Sequence[GenFeed], urls: Sequence[str]) -> None:
        """Fresh state and a config for `feeds`, feed i at `urls[i]`."""
        raise NotImplementedError

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def delivered(self) -> list[str]:
        """Links of the items handed to the sink so far, in order, repeats kept."""
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        return {}


class NewsMonitor(Tool):
    name = MONITOR

    def __init__(self, workdir: Path, polling: dict[str, Any], filler_terms: int = 0) -> None:
        super().__init__(workdir)
        self.polling = polling
        self.filler_terms = filler_terms
        self.config = workdir / "config.yaml"
        self.database = workdir / "bench.db"

    def setup(self, feeds: Sequence[GenFeed], urls: Sequence[str]) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.database}{suffix}").unlink(missing_ok=True)
        lines = [
            "# Written by bench/peers.py",
            f"database: {self.database.name}",
            "polling:",
            "  interval: 10m",
            "  backfill: 36500d   # the generated items are dated 2025: alert on all",
            "  jitter: 0",
            *(f"  {key}: {value}" for key, value in self.polling.items()),
            "feeds:",
        ]
        for feed, url in zip(feeds, urls, strict=True):
            language = f", language: {feed.hint}" if feed.hint else ""
            lines.append(f'  - {{name: "{feed.name}", url: "{url}"{language}}}')
        watchlists = seed_watchlists() + filler_watchlists(self.filler_terms)
        rest = yaml.safe_dump(
            {"watchlists": watchlists, "sinks": []}, allow_unicode=True, sort_keys=False
        )
        self.config.write_text("\n".join(lines) + "\n" + rest, encoding="utf-8")
        # Compiled as `pip install` compiles a package, before any run is measured.
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(ROOT / "monitor")],
            env=monitor_env(),
            check=True,
        )

    def command(self) -> tuple[list[str], dict[str, str]]:
        argv = [*monitor_argv(), "--config", str(self.config), "poll-once", "--json"]
        return argv, monitor_env()

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        if not self.database.exists():
            return []
        db = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def delivered(self) -> list[str]:
        # An alert is news-monitor's hand-over: the outbox row a sink is served from.
        rows = self._query(
            "SELECT DISTINCT i.url FROM alerts a JOIN items i ON i.id = a.item_id ORDER BY a.id"
        )
        return [row[0] for row in rows]

    def summary(self) -> dict[str, Any]:
        counts = {}
        for table in ("items", "alerts", "incidents", "incident_reports"):
            rows = self._query(f"SELECT COUNT(*) FROM {table}")
            counts[table] = int(rows[0][0]) if rows else 0
        return counts


class Rss2email(Tool):
    name = "rss2email"

    def setup(self, feeds: Sequence[GenFeed], urls: Sequence[str]) -> None:
        self.sink = self.workdir / "sent.mbox"
        self.data = self.workdir / "rss2email.json"
        self.config = self.workdir / "rss2email.cfg"
        self.terms = self.workdir / "terms.json"
        for path in (self.sink, self.data):
            path.unlink(missing_ok=True)
        self.terms.write_text(json.dumps(seed_spellings(), ensure_ascii=False), encoding="utf-8")
        sendmail = self.workdir / "sendmail.sh"
        # rss2email pipes each message to `sendmail -F name -f from to`; this one keeps it.
        sendmail.write_text(
            f"#!/bin/sh\n{{ cat; printf '\\n\\0\\n'; }} >> '{self.sink}'\n", encoding="utf-8"
        )
        sendmail.chmod(0o755)
        lines = [
            "[DEFAULT]",
            "to = desk@bench.invalid",
            "email-protocol = sendmail",
            f"sendmail = {sendmail}",
            "post-process = bench_hooks rss2email_filter",
            "verbose = warning",
            "",
        ]
        for feed, url in zip(feeds, urls, strict=True):
            lines += [f"[feed.{feed.name}]", f"url = {url}", ""]
        self.config.write_text("\n".join(lines), encoding="utf-8")

    def command(self) -> tuple[list[str], dict[str, str]]:
        argv = [str(VENVS / "rss2email" / "bin" / "r2e"), "-c", str(self.config)]
        argv += ["-d", str(self.data), "run"]
        return argv, _peer_env(self.workdir, self.terms, self.workdir / "unused.sink")

    def delivered(self) -> list[str]:
        if not self.sink.exists():
            return []
        links = []
        for chunk in self.sink.read_bytes().split(b"\n\0\n"):
            if chunk.strip():
                links.append(str(email.message_from_bytes(chunk)["X-RSS-URL"]))
        return links


class Feed2exec(Tool):
    name = "feed2exec"

    def setup(self, feeds: Sequence[GenFeed], urls: Sequence[str]) -> None:
        self.sink = self.workdir / "sink.jsonl"
        self.database = self.workdir / "feed2exec.db"
        self.config = self.workdir / "feed2exec.ini"
        self.terms = self.workdir / "terms.json"
        for path in (self.sink, self.database):
            path.unlink(missing_ok=True)
        self.terms.write_text(json.dumps(seed_spellings(), ensure_ascii=False), encoding="utf-8")
        lines = ["[DEFAULT]", "output = bench_hooks", "filter = bench_hooks", ""]
        for feed, url in zip(feeds, urls, strict=True):
            lines += [f"[{feed.name}]", f"url = {url}", ""]
        self.config.write_text("\n".join(lines), encoding="utf-8")

    def command(self) -> tuple[list[str], dict[str, str]]:
        argv = [str(VENVS / "feed2exec" / "bin" / "feed2exec"), "--config", str(self.config)]
        # --parallel parses in a process per core: its fastest mode on this machine.
        argv += ["--database", str(self.database), "fetch", "--parallel"]
        return argv, _peer_env(self.workdir, self.terms, self.sink)

    def delivered(self) -> list[str]:
        if not self.sink.exists():
            return []
        lines = self.sink.read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["link"] for line in lines if line]


def _peer_env(workdir: Path, terms: Path, sink: Path) -> dict[str, str]:
    home = workdir / "home"
    return {
        **os.environ,
        "PYTHONPATH": str(HOOKS),
        "NM_BENCH_TERMS": str(terms),
        "NM_BENCH_SINK": str(sink),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }


# Measuring. -------------------------------------------------------------------------------------


@dataclass
class Block:
    """Everything measured at one N."""

    feeds: int
    runs: list[dict[str, Any]] = field(default_factory=list)
    floors: dict[str, Any] = field(default_factory=dict)
    sets: dict[str, Any] = field(default_factory=dict)
    terms: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, Any] = field(default_factory=dict)
    """bench/nm_phases.py after the warm runs: where a warm poll-once's time goes."""
    load: dict[str, Any] = field(default_factory=dict)


def measure(
    spawner: Spawner, server: FeedServer, tool: Tool, scenario: str, cycle: int
) -> dict[str, Any]:
    before = len(tool.delivered())
    stats, server_cpu = server.stats(), server.cpu_seconds()
    argv, env = tool.command()
    label = f"{scenario}-{cycle}"
    stdout, stderr = tool.workdir / f"{label}.out", tool.workdir / f"{label}.err"
    measured = spawner.run(argv, stdout=stdout, stderr=stderr, env=env, cwd=tool.workdir)
    served = {k: v - stats[k] for k, v in server.stats().items()}
    delivered = tool.delivered()
    run = {
        "tool": tool.name,
        "scenario": scenario,
        "cycle": cycle,
        "measured": measured.as_dict(),
        "server": served | {"cpu_s": round(server.cpu_seconds() - server_cpu, 3)},
        "to_sink": len(delivered) - before,
        **tool.summary(),
    }
    if measured.returncode != 0:
        tail = stderr.read_text(errors="replace")[-2000:]
        run["error_tail"] = tail
        print(f"  {tool.name} {label}: exit {measured.returncode}\n{tail}", file=sys.stderr)
    if isinstance(tool, NewsMonitor):
        reports = [json.loads(x) for x in stdout.read_text().splitlines() if x.strip()]
        run["failed_feeds"] = sum(r["outcome"] == "failed" for r in reports)
    print(
        f"  {scenario:<6} {cycle} {tool.name:<12} {measured.wall_s:7.2f} s wall "
        f"{measured.cpu_user_s + measured.cpu_sys_s:7.2f} s CPU {measured.maxrss_mb:6.0f} MB  "
        f"200/304 {served['ok']}/{served['not_modified']}  to sink +{run['to_sink']}",
        file=sys.stderr,
    )
    return run


_FLOOR_DOCS: list[tuple[bytes, str]] = []


def _floor_chunk(bounds: tuple[int, int]) -> list[float]:
    import feedparser

    out = []
    for body, content_type in _FLOOR_DOCS[bounds[0] : bounds[1]]:
        started = time.process_time()
        feedparser.parse(
            body,
            response_headers={"content-type": content_type},
            sanitize_html=False,
            resolve_relative_uris=False,
        )
        out.append(time.process_time() - started)
    return out


def feedparser_cpu(documents: Sequence[tuple[bytes, str]], cores: int) -> list[float]:
    """feedparser's CPU seconds for each document, with the arguments monitor/parse.py uses.

    Measured in one process per core at once, which is how the floor (CPU ÷ cores) would be
    reached, and which takes half the time on this machine.
    """
    import multiprocessing

    _FLOOR_DOCS[:] = documents
    chunks = [(lo, min(len(documents), lo + 50)) for lo in range(0, len(documents), 50)]
    try:
        with multiprocessing.get_context("fork").Pool(cores) as pool:
            return [cpu for part in pool.map(_floor_chunk, chunks) for cpu in part]
    finally:
        _FLOOR_DOCS.clear()


def monitor_env() -> dict[str, str]:
    """news-monitor's environment: with its `.pyc` files, as the peers' virtualenvs have theirs.

    The working tree is installed editable, so with `PYTHONDONTWRITEBYTECODE` set (as in this
    development environment) every run would compile the whole package again, where a `pip
    install` compiles it once. `NewsMonitor.setup` compiles it beside the sources (git ignores
    `__pycache__/`); no `PYTHONPYCACHEPREFIX`, which would hide the dependencies' own `.pyc`.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def run_phases(spawner: Spawner, tool: NewsMonitor) -> dict[str, Any]:
    """poll-once's steps timed in one process, twice: the second cycle has no start-up."""
    out = tool.workdir / "phases.json"
    argv = [sys.executable, str(BENCH / "nm_phases.py"), "--config", str(tool.config)]
    measured = spawner.run(
        [*argv, "--cycles", "2"],
        stdout=out,
        stderr=tool.workdir / "phases.err",
        env=monitor_env(),
        cwd=tool.workdir,
    )
    if measured.returncode != 0:
        return {"error": (tool.workdir / "phases.err").read_text(errors="replace")[-2000:]}
    phases: dict[str, Any] = json.loads(out.read_text())
    phases["process_wall_s"] = measured.wall_s
    return phases


def _rotate(tools: Sequence[Tool], turn: int) -> list[Tool]:
    """Each round starts with another tool, so none always runs right after the same one."""
    turn %= len(tools)
    return [*tools[turn:], *tools[:turn]]


def _documents(feeds: Iterable[GenFeed]) -> dict[str, Document]:
    return {f.path: Document(f.body, f.content_type, f.last_modified) for f in feeds}


def run_block(
    spawner: Spawner,
    args: argparse.Namespace,
    feeds: list[GenFeed],
    floor_cpu: list[float],
    cores: int,
    workroot: Path,
    tool_names: list[str],
    terms: list[int],
) -> Block:
    n = len(feeds)
    block = Block(n, load={"before": os.getloadavg()})
    print(f"\n{n} feeds: {', '.join(tool_names)}", file=sys.stderr)
    polling = monitor_polling(args)
    factories: dict[str, Callable[[Path], Tool]] = {
        MONITOR: lambda workdir: NewsMonitor(workdir, polling),
        "rss2email": Rss2email,
        "feed2exec": Feed2exec,
    }
    tools = [factories[name](workroot / f"n{n}" / name) for name in tool_names]
    truth = {item.link for feed in feeds for item in feed.items if item.watch}
    block.floors = {
        "cold_cpu_s": round(sum(floor_cpu[:n]), 3),
        "cold_floor_s": round(sum(floor_cpu[:n]) / cores, 3),
        "steady_floor_s": [],
    }
    with FeedServer(_documents(feeds), cache_control="no-cache", hosts=args.hosts) as server:
        urls = [server.url(feed.index, feed.path) for feed in feeds]
        for tool in tools:
            tool.setup(feeds, urls)
        turn = 0
        for tool in _rotate(tools, turn):
            block.runs.append(measure(spawner, server, tool, "cold", 0))
        for number in range(args.warm_runs):
            turn += 1
            for tool in _rotate(tools, turn):
                block.runs.append(measure(spawner, server, tool, "warm", number))
        monitor_tool = next((t for t in tools if isinstance(t, NewsMonitor)), None)
        if monitor_tool is not None and args.warm_runs:
            block.phases = run_phases(spawner, monitor_tool)
        revisions = [0] * n
        for cycle in range(args.steady_cycles):
            changed = [i for i in range(n) if i % CHANGED_EVERY == cycle % CHANGED_EVERY]
            for i in changed:
                revisions[i] += 1
            updated = [
                generate_feed(i, args.items, args.seed, revision=revisions[i]) for i in changed
            ]
            truth |= {item.link for feed in updated for item in feed.items if item.watch}
            server.replace(_documents(updated))
            cpu = feedparser_cpu([(f.body, f.content_type) for f in updated], cores)
            block.floors["steady_floor_s"].append(round(sum(cpu) / cores, 3))
            turn += 1
            for tool in _rotate(tools, turn):
                block.runs.append(measure(spawner, server, tool, "steady", cycle))
        found = {tool.name: tool.delivered() for tool in tools}
        monitor = set(found.get(MONITOR, []))
        block.sets = {
            "truth": len(truth),
            "tools": {
                name: {
                    "delivered": len(links),
                    "distinct": len(set(links)),
                    "repeats": len(links) - len(set(links)),
                    "missed_by_news_monitor": sorted(set(links) - monitor)[:20],
                    "missed_by_news_monitor_count": len(set(links) - monitor),
                    "not_found_by_this_tool": len(monitor - set(links)),
                    "truth_missed": len(truth - set(links)),
                }
                for name, links in found.items()
            },
        }
        if terms:
            server.replace(_documents(feeds))
            print(f"  news-monitor with more watchlist terms, {n} feeds, cold:", file=sys.stderr)
            for count in terms:
                filler = max(0, count - seed_term_count())
                workdir = workroot / f"n{n}" / f"terms-{count}"
                tool = NewsMonitor(workdir, polling, filler_terms=filler)
                tool.setup(feeds, urls)
                run = measure(spawner, server, tool, "cold", 0)
                run["terms"] = seed_term_count() + filler
                run["spellings"] = len(seed_spellings()) + 2 * filler
                missed = set(found.get(MONITOR, [])) - set(tool.delivered())
                run["alerted_links_missing_vs_seed_only"] = len(missed) if MONITOR in found else 0
                block.terms.append(run)
    block.load["after"] = os.getloadavg()
    return block


def monitor_polling(args: argparse.Namespace) -> dict[str, Any]:
    """news-monitor's `polling:` settings besides interval, backfill and jitter."""
    polling: dict[str, Any] = {"timeout": "20s"}
    if args.concurrency:
        polling["concurrency"] = args.concurrency
    if args.per_host:
        polling["per_host"] = args.per_host
    return polling


def run_daemons(
    args: argparse.Namespace, feeds: list[GenFeed], workroot: Path
) -> list[dict[str, Any]]:
    """`news-monitor run` at each of `--daemon-feeds`, measured inside it by cycle_bench.run_daemon.

    Its steady window is CPU per 1,000 polls once every feed answers 304, with all the daemon
    does meanwhile; memory is VmHWM over the whole run, the cold cycle included. The feeds are
    the original revisions, served from their own server process as in the poll-once runs.
    """
    sizes = sorted(set(args.daemon_feeds))
    if not sizes:
        return []
    options = argparse.Namespace(
        interval=args.daemon_interval, cycles=args.daemon_cycles, py_spy=None, rate=100
    )
    out: list[dict[str, Any]] = []
    documents = _documents(feeds[: max(sizes)])
    with FeedServer(documents, cache_control="no-cache", hosts=args.hosts) as server:
        for n in sizes:
            print(
                f"\ndaemon, {n} feeds: interval {args.daemon_interval} s, "
                f"window {args.daemon_cycles} intervals…",
                file=sys.stderr,
            )
            started = time.perf_counter()
            try:
                run = run_daemon(ROOT, server, feeds[:n], options)
            except RuntimeError as error:
                print(f"  daemon, {n} feeds: {error}", file=sys.stderr)
                out.append({"feeds": n, "error": str(error)})
                continue
            workdir = Path(run.pop("workdir"))
            if args.keep:
                shutil.move(workdir, workroot / f"daemon-{n}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
            run |= {
                "interval_s": args.daemon_interval,
                "seconds": round(time.perf_counter() - started, 1),
            }
            print(
                f"  {run['polls']} polls in {run['window_s']:.1f} s: {run['cpu_s']:.2f} s CPU, "
                f"{run['cpu_per_1000_polls_s']} s per 1,000; VmHWM {run['vm_hwm_mb']:.0f} MB",
                file=sys.stderr,
            )
            out.append(run)
    return out


# Reporting. -------------------------------------------------------------------------------------


def _pick(block: Block, tool: str, scenario: str) -> list[dict[str, Any]]:
    return [r for r in block.runs if r["tool"] == tool and r["scenario"] == scenario]


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r["measured"][key] for r in runs]
    return statistics.median(values) if values else None


def summarize(block: Block) -> dict[str, dict[str, dict[str, Any]]]:
    """scenario → tool → median wall, CPU and peak RSS, and ratios to news-monitor."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    tools = list(dict.fromkeys(r["tool"] for r in block.runs))
    for scenario in ("cold", "warm", "steady"):
        rows: dict[str, dict[str, Any]] = {}
        for tool in tools:
            runs = _pick(block, tool, scenario)
            if not runs:
                continue
            rows[tool] = {
                "runs": len(runs),
                "wall_s": _median(runs, "wall_s"),
                "cpu_s": _median(runs, "cpu_s"),
                "maxrss_mb": max(r["measured"]["maxrss_mb"] for r in runs),
                "tree_pss_mb": max(r["measured"]["tree_pss_peak_mb"] for r in runs),
                "ok": statistics.median(r["server"]["ok"] for r in runs),
                "not_modified": statistics.median(r["server"]["not_modified"] for r in runs),
                "to_sink": sum(r["to_sink"] for r in runs),
                "failed": sum(r["measured"]["returncode"] != 0 for r in runs),
            }
        base = rows.get(MONITOR)
        if base:
            for row in rows.values():
                row["x_wall"] = row["wall_s"] / base["wall_s"] if base["wall_s"] else None
                row["x_cpu"] = row["cpu_s"] / base["cpu_s"] if base["cpu_s"] else None
                row["x_rss"] = row["maxrss_mb"] / base["maxrss_mb"] if base["maxrss_mb"] else None
        out[scenario] = rows
    return out


def _fastest_peer(rows: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    peers = [(name, row) for name, row in rows.items() if name != MONITOR]
    return min(peers, key=lambda p: p[1]["wall_s"]) if peers else None


def targets(
    blocks: list[Block], daemon: Sequence[dict[str, Any]] = ()
) -> list[tuple[str, str, str, str]]:
    """(target, measured, needed, verdict) for each target where it can be judged."""
    out = []
    for block in blocks:
        summary = summarize(block)
        mine = block.sets.get("tools", {}).get(MONITOR)
        if mine and block.sets["truth"]:
            found = block.sets["truth"] - mine["truth_missed"]
            recall = found / block.sets["truth"]
            out.append(
                (
                    f"recall, {block.feeds} feeds: alerted on every item with a seed term",
                    f"{recall:.3f} ({found} of {block.sets['truth']})",
                    "1.0",
                    "pass" if found == block.sets["truth"] else "**MISS**",
                )
            )
        for scenario, needed in (
            ("warm", TARGETS["warm_vs_fastest_peer"]),
            ("cold", TARGETS["cold_vs_fastest_peer"]),
        ):
            rows = summary.get(scenario, {})
            fastest = _fastest_peer(rows)
            if fastest is None or MONITOR not in rows:
                continue
            name, row = fastest
            ratio = row["wall_s"] / rows[MONITOR]["wall_s"]
            out.append(
                (
                    f"{scenario}, {block.feeds} feeds: faster than the fastest peer ({name})",
                    f"{ratio:.2f}× ({rows[MONITOR]['wall_s']:.2f} s vs {row['wall_s']:.2f} s)",
                    f"≥ {needed:g}×",
                    "pass" if ratio >= needed else "**MISS**",
                )
            )
            cycles = block.phases.get("cycles") or []
            if scenario == "warm" and cycles:
                cycle = cycles[0]["wall_s"]
                out.append(
                    (
                        f"warm, {block.feeds} feeds: the poll cycle alone, as in the daemon "
                        f"(no start-up), vs {name}'s whole run",
                        f"{row['wall_s'] / cycle:.2f}× ({cycle:.2f} s vs {row['wall_s']:.2f} s)",
                        f"(≥ {needed:g}×)",
                        "info",
                    )
                )
        cold = summary.get("cold", {}).get(MONITOR)
        if cold and block.floors.get("cold_floor_s"):
            floor = block.floors["cold_floor_s"]
            multiple = cold["wall_s"] / floor
            out.append(
                (
                    f"cold, {block.feeds} feeds: wall ÷ feedparser floor",
                    f"{multiple:.2f}× ({cold['wall_s']:.2f} s vs {floor:.2f} s)",
                    f"≤ {TARGETS['cold_vs_floor']:g}×",
                    "pass" if multiple <= TARGETS["cold_vs_floor"] else "**MISS**",
                )
            )
        if block.feeds >= RSS_TARGET_FEEDS:
            peak = max(
                (r["measured"]["maxrss_mb"] for r in block.runs if r["tool"] == MONITOR),
                default=None,
            )
            if peak is not None:
                out.append(
                    (
                        f"peak RSS, {block.feeds} feeds (any scenario)",
                        f"{peak:.0f} MB",
                        f"≤ {TARGETS['rss_mb']:g} MB",
                        "pass" if peak <= TARGETS["rss_mb"] else "**MISS**",
                    )
                )
    out += daemon_targets(daemon)
    return out


def daemon_targets(daemon: Sequence[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """CPU per 1,000 unchanged polls and VmHWM, judged at their N and shown at the others."""
    out = []
    for run in daemon:
        n = run["feeds"]
        checks = (
            (
                "daemon, {n} feeds: CPU per 1,000 unchanged polls (steady window)",
                "cpu_per_1000_polls_s",
                "s",
                TARGETS["daemon_cpu_per_1000_polls_s"],
                DAEMON_CPU_TARGET_FEEDS,
            ),
            (
                "daemon, {n} feeds: peak RSS (VmHWM, cold cycle included)",
                "vm_hwm_mb",
                "MB",
                TARGETS["daemon_vm_hwm_mb"],
                DAEMON_RSS_TARGET_FEEDS,
            ),
        )
        for label, key, unit, needed, judged_at in checks:
            value = run.get(key)
            bound = f"≤ {needed:g} {unit}"
            if value is None:
                measured, verdict = run.get("error", "no steady polls"), "**MISS**"
            else:
                measured = f"{value:.3f} s" if unit == "s" else f"{value:.0f} MB"
                verdict = "pass" if value <= needed else "**MISS**"
            if n != judged_at:
                bound, verdict = f"({bound} at {judged_at:,})", "info"
            out.append((label.format(n=n), measured, bound, verdict))
    return out


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def render(result: dict[str, Any], blocks: list[Block]) -> str:
    machine = result["machine"]
    lines = [
        "## news-monitor side by side with rss2email and feed2exec",
        "",
        f"{machine['cores']} cores ({machine['cpu']}), {machine['memory_gb']} GB, "
        f"Python {machine['python']}, {machine['platform']}; "
        f"{result['args']['items']} items per feed; {result['when']}. "
        f"Load average before/after: {machine['load_before']} / {machine['load_after']}.",
        "",
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in sorted(machine["versions"].items()))
        + "; "
        + "; ".join(
            f"{peer}: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
            for peer, info in result["peers"].items()
        )
        + ".",
        "",
        "Medians of the runs in each scenario (cold 1, warm and steady as given). "
        "×: the tool's value ÷ news-monitor's (above 1: news-monitor is faster or smaller). "
        "CPU is the command and all its children; RSS is the peak of the main process "
        "(or a child it waited for).",
        "",
        "| feeds | scenario | tool | wall | CPU | peak RSS | 200 / 304 | to sink | "
        "wall × | CPU × | RSS × |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for block in blocks:
        for scenario, rows in summarize(block).items():
            for tool, row in rows.items():
                name = f"**{tool}**" if tool == MONITOR else tool
                runs = f" ({row['runs']})" if row["runs"] > 1 else ""
                lines.append(
                    f"| {block.feeds:,} | {scenario}{runs} | {name} | {row['wall_s']:.2f} s | "
                    f"{row['cpu_s']:.2f} s | {row['maxrss_mb']:.0f} MB | "
                    f"{row['ok']:g} / {row['not_modified']:g} | {row['to_sink']} | "
                    f"{_x(row.get('x_wall'))} | {_x(row.get('x_cpu'))} | {_x(row.get('x_rss'))} |"
                )
    lines += [
        "",
        "### The floor: feedparser alone on the same bytes",
        "",
        "| feeds | feedparser CPU | floor (÷ cores) | news-monitor cold | multiple | "
        "steady floor / news-monitor steady |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for block in blocks:
        cold = summarize(block).get("cold", {}).get(MONITOR)
        steady = summarize(block).get("steady", {}).get(MONITOR)
        floors = block.floors
        steady_floor = statistics.median(floors["steady_floor_s"] or [0])
        if cold:
            multiple = cold["wall_s"] / floors["cold_floor_s"]
            steady_text = f"{steady_floor:.2f} s / {steady['wall_s']:.2f} s" if steady else "—"
            lines.append(
                f"| {block.feeds:,} | {floors['cold_cpu_s']:.2f} s | "
                f"{floors['cold_floor_s']:.2f} s | {cold['wall_s']:.2f} s | {multiple:.2f}× | "
                f"{steady_text} |"
            )
    lines += [
        "",
        "### Same items? (cold + steady cycles, by item link)",
        "",
        "| feeds | items with a seed term (generator) | tool | handed to sink (distinct) | "
        "found by this tool, not by news-monitor | found by news-monitor, not by this tool |",
        "| ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for block in blocks:
        for tool, row in block.sets.get("tools", {}).items():
            lines.append(
                f"| {block.feeds:,} | {block.sets['truth']} | {tool} | {row['distinct']} | "
                f"{row['missed_by_news_monitor_count'] if tool != MONITOR else '—'} | "
                f"{row['not_found_by_this_tool'] if tool != MONITOR else '—'} |"
            )
    for block in blocks:
        mine = [r for r in block.runs if r["tool"] == MONITOR]
        if mine:
            # The last cycle's counts: the store after cold and every steady cycle.
            last = mine[-1]
            lines.append(
                f"\nnews-monitor's SQLite store after its last cycle at {block.feeds:,} feeds: "
                f"{last.get('items', 0):,} items, {last.get('alerts', 0):,} alerts, "
                f"{last.get('incidents', 0):,} incidents from "
                f"{last.get('incident_reports', 0):,} reports."
            )
    terms_blocks = [b for b in blocks if b.terms]
    if terms_blocks:
        lines += [
            "",
            "### news-monitor with more watchlist terms (cold)",
            "",
            "| feeds | terms (spellings) | wall | CPU | peak RSS | items stored | alerts |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for block in terms_blocks:
            for run in block.terms:
                m = run["measured"]
                lines.append(
                    f"| {block.feeds:,} | {run['terms']:,} ({run['spellings']:,}) | "
                    f"{m['wall_s']:.2f} s | {m['cpu_s']:.2f} s | {m['maxrss_mb']:.0f} MB | "
                    f"{run.get('items', 0):,} | {run.get('alerts', 0):,} |"
                )
    phase_blocks = [b for b in blocks if b.phases.get("steps")]
    if phase_blocks:
        lines += [
            "",
            "### Where a warm news-monitor poll-once goes (bench/nm_phases.py, one process)",
            "",
            "| feeds | imports | config | Monitor() | 1st cycle (fresh connections) | "
            "2nd cycle (same process) | process wall |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for block in phase_blocks:
            steps, cycles = block.phases["steps"], block.phases["cycles"]
            cells = [
                steps[name]["wall_s"]
                for name in ("imports", "load config", "Monitor() (store, analyzer)")
            ]
            lines.append(
                f"| {block.feeds:,} | "
                + " | ".join(f"{cell:.2f} s" for cell in cells)
                + " | "
                + " | ".join(f"{c['wall_s']:.2f} s ({c['cpu_s']:.2f} s CPU)" for c in cycles[:2])
                + f" | {block.phases['process_wall_s']:.2f} s |"
            )
    daemon = result.get("daemon", [])
    if daemon:
        lines += [
            "",
            "### The daemon (`news-monitor run`), measured inside it (bench/cycle_bench.py)",
            "",
            "Steady window: every feed 304, CPU of the daemon's process (utime + stime) over "
            "the window's polls; VmHWM is its peak RSS over the whole run, the cold cycle "
            "included.",
            "",
            "| feeds | cold cycle | interval | window | 304s | CPU | per 1,000 polls | "
            "event-loop thread | VmHWM | VmRSS at end |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for run in daemon:
            if "error" in run:
                lines.append(f"| {run['feeds']:,} | {run['error']} |" + " |" * 8)
                continue
            per = run["cpu_per_1000_polls_s"]
            lines.append(
                f"| {run['feeds']:,} | {run['cold_s']:.1f} s | {run['interval_s']} s | "
                f"{run['window_s']:.1f} s | {run['polls']:,} | {run['cpu_s']:.2f} s | "
                f"{'—' if per is None else f'{per:.3f} s'} | {run['loop_thread_s']:.2f} s | "
                f"{run['vm_hwm_mb']:.0f} MB | {run['vm_rss_mb']:.0f} MB |"
            )
    lines += [
        "",
        "### Targets",
        "",
        "| target | measured | needed | |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets(blocks, daemon)]
    return "\n".join(lines)


def _machine(cores: int) -> dict[str, Any]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    versions = {}
    for name in (MONITOR, "feedparser", "httpx"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {
        "cores": cores,
        "cpu": cpu,
        "memory_gb": round(memory),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "versions": versions,
    }


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="100 and 1,000 feeds, one warm and one steady run; the daemon at 1,000 feeds, "
        "a one-interval window",
    )
    parser.add_argument("--feeds", type=_ints, default=[100, 1000, 5000])
    parser.add_argument(
        "--peer-max-feeds", type=int, default=1000, help="run the peers up to this N"
    )
    parser.add_argument("--terms", type=_ints, default=[10, 1000, 10_000])
    parser.add_argument("--term-feeds", type=int, default=1000, help="N for the terms runs")
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--steady-cycles", type=int, default=3)
    parser.add_argument(
        "--hosts",
        type=int,
        default=97,
        help="serve the feeds from this many loopback addresses, feed i on 127.0.0.(1 + i %% "
        "hosts), as feeds come from many sites (1: every feed on 127.0.0.1)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=0, help="news-monitor polling.concurrency (0: default)"
    )
    parser.add_argument(
        "--per-host", type=int, default=0, help="news-monitor polling.per_host (0: default)"
    )
    parser.add_argument("--tools", default=f"{MONITOR},rss2email,feed2exec", help="comma-separated")
    parser.add_argument(
        "--daemon-feeds",
        type=_ints,
        default=[DAEMON_CPU_TARGET_FEEDS, DAEMON_RSS_TARGET_FEEDS],
        help="run `news-monitor run` at these N and measure it inside (empty: skip)",
    )
    parser.add_argument("--no-daemon", action="store_true", help="skip the daemon runs")
    parser.add_argument(
        "--daemon-interval", type=int, default=15, help="the daemon's polling.interval, seconds"
    )
    parser.add_argument(
        "--daemon-cycles", type=int, default=3, help="intervals in the daemon's steady window"
    )
    parser.add_argument("--keep", type=Path, help="keep every tool's state and logs here")
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    if args.quick:
        args.feeds, args.terms, args.term_feeds = [100, 1000], [10, 1000], 100
        args.warm_runs, args.steady_cycles = 1, 1
        args.daemon_feeds, args.daemon_cycles = [DAEMON_CPU_TARGET_FEEDS], 1
    if args.no_daemon:
        args.daemon_feeds = []

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    raise_fd_limit()
    spawner = Spawner()  # before the feeds exist: see Spawner
    try:
        run(args, spawner)
    finally:
        spawner.close()


def run(args: argparse.Namespace, spawner: Spawner) -> None:
    started = time.perf_counter()
    tool_names = [t for t in args.tools.split(",") if t]
    peers = {name: ensure_peer(name) for name in tool_names if name in PEERS}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    cores = cores or os.cpu_count() or 1
    machine = _machine(cores) | {"load_before": [round(x, 2) for x in os.getloadavg()]}
    sizes = sorted(set(args.feeds))
    feeds = [
        generate_feed(i, args.items, args.seed)
        for i in range(max(sizes + args.daemon_feeds, default=0))
    ]
    print(f"generated {len(feeds)} feeds; feedparser floor…", file=sys.stderr)
    floor_cpu = feedparser_cpu(
        [(f.body, f.content_type) for f in feeds[: max(sizes, default=0)]], cores
    )
    if args.keep:
        shutil.rmtree(args.keep, ignore_errors=True)
        workroot = args.keep.resolve()
        workroot.mkdir(parents=True)
    else:
        workroot = Path(tempfile.mkdtemp(prefix="news-monitor-peers-"))
    blocks = []
    try:
        for n in sizes:
            names = [t for t in tool_names if t == MONITOR or n <= args.peer_max_feeds]
            terms = args.terms if n == args.term_feeds and MONITOR in names else []
            blocks.append(
                run_block(spawner, args, feeds[:n], floor_cpu, cores, workroot, names, terms)
            )
        daemon = run_daemons(args, feeds, workroot)
    finally:
        if not args.keep:
            shutil.rmtree(workroot, ignore_errors=True)
    machine["load_after"] = [round(x, 2) for x in os.getloadavg()]
    result: dict[str, Any] = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine | spawner.info,
        "peers": peers,
        "seed_spellings": seed_spellings(),
        "blocks": [
            {
                "feeds": b.feeds,
                "summary": summarize(b),
                "floors": b.floors,
                "sets": b.sets,
                "terms": b.terms,
                "phases": b.phases,
                "load": b.load,
                "runs": b.runs,
            }
            for b in blocks
        ],
        "daemon": daemon,
        "seconds": round(time.perf_counter() - started, 1),
    }
    table = render(result, blocks)
    result["table"] = table
    result["targets"] = targets(blocks, daemon)
    print(table)
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results / f"peers-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"\nresults: {shown} (.md beside it); {result['seconds']:.0f} s in all")


if __name__ == "__main__":
    main()
