"""Benchmark of `news-monitor poll-once` and `news-monitor analyze` against a local feed server.

    .venv/bin/python bench/poll_bench.py --feeds 1000 --items 30     # or: make bench

Generates N feeds × M items (bench/feedgen.py), serves them from another process
(bench/server.py), writes a config.yaml in a temporary directory and runs the real command
line as a subprocess: a cold poll (fresh database, every feed 200 and every item new), then
warm polls (every feed 304), then `analyze` over K JSON lines, then in-process floors (what
feedparser alone, `parse_feed` and the analyzer cost for the same bytes). Prints a markdown
table and writes everything to bench/results/*.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import multiprocessing
import os
import platform
import resource
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from feedgen import GenFeed, generate_feed  # noqa: E402
from server import Document, FeedServer, die_with_parent, raise_fd_limit  # noqa: E402

TARGETS = {
    "warm_wall_s": 1.0,
    "cold_wall_s": 20.0,
    "analyze_items_per_s": 3000.0,
    "rss_mb": 200.0,
}
"""From the issue, for 1,000 feeds × 30 items on a 2-core machine."""
TARGET_FEEDS, TARGET_ITEMS = 1000, 30

WATCHLISTS = """\
watchlists:
  - name: khanaqin
    severity: high
    terms:
      - term: Khanaqin
        aliases: [Khaneqin, Xaneqîn, Xaneqin, خانقين, خانەقین]
    none: [exercise, drill]
  - name: diyala
    severity: medium
    terms:
      - term: Diyala
        aliases: [Diyale, ديالى, دیالە]
  - name: suicide-bomber
    severity: critical
    terms:
      - term: suicide bomber
        aliases: [suicide bombers, انتحاري, مفجر انتحاري, خۆتەقێنەر, xwekuj]
      - term: suicide attack
        aliases: [هجوم انتحاري, êrîşa xwekujî]
sinks: []
"""


# Measuring a child process and everything it starts. -----------------------------------------

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Orphaned descendants (a forkserver, its pool workers) are then re-parented to this
    process instead of init, so they can be waited for and their CPU time counted."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (task / "children").read_text().split())
    return found


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(_children(current))
    return out


def _status_kb(pid: int, keys: tuple[str, ...]) -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in keys:
                values[name] = int(rest.split()[0])
    return values


def _pss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


class _Sampler(threading.Thread):
    """Samples the process tree's memory from /proc while the measured command runs."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.main_hwm_kb = 0
        self.tree_rss_kb = 0
        self.tree_pss_kb = 0
        self.max_processes = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        tick = 0
        while not self._stop_event.is_set():
            tree = _descendants(self.pid)
            main = _status_kb(self.pid, ("VmHWM",))
            if main:
                self.main_hwm_kb = max(self.main_hwm_kb, main["VmHWM"])
            rss = sum(_status_kb(p, ("VmRSS",)).get("VmRSS", 0) for p in tree)
            self.tree_rss_kb = max(self.tree_rss_kb, rss)
            self.max_processes = max(self.max_processes, len(tree))
            if tick % 4 == 0:
                self.tree_pss_kb = max(self.tree_pss_kb, sum(_pss_kb(p) for p in tree))
            tick += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass
class Measured:
    argv: list[str]
    returncode: int
    wall_s: float
    cpu_user_s: float
    cpu_sys_s: float
    maxrss_mb: float
    """ru_maxrss from wait4: the command's own process, or one it waited for, whichever peaked
    higher (a maximum, not a sum)."""
    main_hwm_mb: float
    """VmHWM of the command's own process, sampled from /proc (may miss the last 50 ms)."""
    tree_rss_peak_mb: float
    """Largest sampled sum of VmRSS over the whole process tree (counts shared pages twice)."""
    tree_pss_peak_mb: float
    """Largest sampled sum of PSS over the tree (shared pages divided among their users)."""
    max_processes: int
    orphans_reaped: int
    leftover_processes: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"cpu_s": round(self.cpu_user_s + self.cpu_sys_s, 3)}


def run_measured(
    argv: list[str],
    *,
    stdin: Path | None = None,
    stdout: Path | None = None,
    stderr: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Measured:
    """Run `argv` to completion; wall time, CPU of it and all its descendants, memory peaks.

    `env` (default: this environment) and `cwd` (default: the repository root) are the
    command's.

    Meant to run in the `Spawner` process: RUSAGE_CHILDREN there holds nothing but the
    measured commands, and it is small, so the RSS it had when it forked (which Linux carries
    into the child's ru_maxrss across exec) stays below anything measured.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    known = _children(os.getpid())
    with contextlib.ExitStack() as stack:
        stdin_file = stack.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
        stdout_file = stack.enter_context(stdout.open("wb")) if stdout else subprocess.DEVNULL
        stderr_file = stack.enter_context(stderr.open("wb")) if stderr else subprocess.DEVNULL
        started = time.perf_counter()
        process = subprocess.Popen(
            argv,
            stdin=stdin_file,
            stdout=stdout_file,
            stderr=stderr_file,
            cwd=cwd or ROOT,
            env=env,
        )
        sampler = _Sampler(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
    orphans, leftovers = _reap_orphans(known)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Measured(
        argv=argv,
        returncode=process.returncode,
        wall_s=round(wall, 3),
        cpu_user_s=round(after.ru_utime - before.ru_utime, 3),
        cpu_sys_s=round(after.ru_stime - before.ru_stime, 3),
        maxrss_mb=round(usage.ru_maxrss / 1024, 1),
        main_hwm_mb=round(sampler.main_hwm_kb / 1024, 1),
        tree_rss_peak_mb=round(sampler.tree_rss_kb / 1024, 1),
        tree_pss_peak_mb=round(sampler.tree_pss_kb / 1024, 1),
        max_processes=sampler.max_processes,
        orphans_reaped=orphans,
        leftover_processes=leftovers,
    )


def _reap_orphans(known: set[int], timeout: float = 10.0) -> tuple[int, int]:
    """Wait for descendants of the measured command that were re-parented to us."""
    reaped = 0
    deadline = time.monotonic() + timeout
    while True:
        pending = _children(os.getpid()) - known
        for pid in list(pending):
            with contextlib.suppress(ChildProcessError):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    reaped += 1
                    pending.discard(pid)
        if not pending:
            return reaped, 0
        if time.monotonic() > deadline:
            for pid in pending:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
            return reaped, len(pending)
        time.sleep(0.02)


def _spawner_main(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    subreaper = become_subreaper()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    conn.send({"subreaper": subreaper, "spawner_maxrss_mb": round(baseline / 1024, 1)})
    while True:
        request = conn.recv()
        if request is None:
            return
        argv, stdin, stdout, stderr, env, cwd = request
        try:
            conn.send(
                run_measured(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env, cwd=cwd)
            )
        except Exception as exc:
            conn.send(exc)


class Spawner:
    """A small process, forked before the feeds are generated, that runs measured commands.

    Linux copies the RSS high-water mark of the process that forks into the child's
    ru_maxrss, even across exec: spawned from the driver (holding every generated feed),
    a child would report the driver's size. This process is the commands' parent and their
    subreaper, so orphaned descendants (a forkserver, its workers) are counted there too.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_spawner_main, args=(child,), name="bench-spawner", daemon=True
        )
        self._process.start()
        self.info: dict[str, Any] = self._conn.recv()

    def run(
        self,
        argv: list[str],
        *,
        stdin: Path | None = None,
        stdout: Path | None = None,
        stderr: Path | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Measured:
        self._conn.send((argv, stdin, stdout, stderr, env, cwd))
        answer = self._conn.recv()
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, Measured)
        return answer

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._process.join(timeout=10)


# The benchmark. ---------------------------------------------------------------------------------


_COMMAND: list[str] = []
"""Set by --command: another way to start news-monitor (another venv, a branch's checkout)."""


def monitor_argv() -> list[str]:
    if _COMMAND:
        return list(_COMMAND)
    script = Path(sys.executable).parent / "news-monitor"
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor"]


def write_config(directory: Path, feeds: list[GenFeed], base_url: str, args: Any) -> Path:
    lines = [
        "# Written by bench/poll_bench.py",
        "database: bench.db",
        "polling:",
        "  interval: 10m",
        f"  timeout: {args.timeout}",
        f"  concurrency: {args.concurrency}",
        f"  per_host: {args.per_host}",
        "  backfill: 36500d   # the generated items are dated early 2025: alert on all",
        "  jitter: 0",
        "feeds:",
    ]
    for feed in feeds:
        language = f", language: {feed.hint}" if feed.hint else ""
        lines.append(f'  - {{name: "{feed.name}", url: "{base_url}{feed.path}"{language}}}')
    path = directory / "config.yaml"
    path.write_text("\n".join(lines) + "\n" + WATCHLISTS, encoding="utf-8")
    return path


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _poll_summary(stdout: Path, stderr: Path) -> dict[str, Any]:
    reports = [json.loads(line) for line in stdout.read_text().splitlines() if line.strip()]
    outcomes: dict[str, int] = {}
    for report in reports:
        outcomes[report["outcome"]] = outcomes.get(report["outcome"], 0) + 1
    levels: dict[str, int] = {}
    events: dict[str, int] = {}
    for line in stderr.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            levels["unparsed"] = levels.get("unparsed", 0) + 1
            continue
        levels[event.get("level", "?")] = levels.get(event.get("level", "?"), 0) + 1
        if event.get("level") in ("warning", "error", "critical"):
            events[event.get("event", "?")] = events.get(event.get("event", "?"), 0) + 1
    seconds = [float(r["seconds"]) for r in reports]
    errors = sorted({r["error"] for r in reports if r.get("error")})
    return {
        "feeds_reported": len(reports),
        "outcomes": outcomes,
        "items_seen": sum(r["items"] for r in reports),
        "new_items": sum(r["new_items"] for r in reports),
        "alerts": sum(r["alerts"] for r in reports),
        "feed_seconds_p50": round(_percentile(seconds, 0.5), 3),
        "feed_seconds_p95": round(_percentile(seconds, 0.95), 3),
        "feed_seconds_max": round(max(seconds, default=0.0), 3),
        "log_levels": levels,
        "log_warnings": events,
        "first_errors": errors[:5],
    }


def _db_counts(path: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            table: int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in ("feeds", "items", "alerts")
        }
    finally:
        db.close()


def run_poll(
    spawner: Spawner, server: FeedServer, config: Path, workdir: Path, label: str
) -> dict[str, Any]:
    stdout, stderr = workdir / f"{label}.stdout.jsonl", workdir / f"{label}.stderr.jsonl"
    argv = [*monitor_argv(), "--config", str(config), "poll-once", "--json"]
    server_cpu, server_stats = server.cpu_seconds(), server.stats()
    measured = spawner.run(argv, stdout=stdout, stderr=stderr)
    served = {k: v - server_stats[k] for k, v in server.stats().items()}
    return {
        "measured": measured.as_dict(),
        **_poll_summary(stdout, stderr),
        "db": _db_counts(workdir / "bench.db"),
        "server": served | {"cpu_s": round(server.cpu_seconds() - server_cpu, 3)},
    }


def _best_of(spawner: Spawner, runs: int, argv: list[str]) -> dict[str, Any]:
    results = [spawner.run(argv) for _ in range(runs)]
    best = min(results, key=lambda m: m.wall_s)
    return best.as_dict() | {"walls_s": [m.wall_s for m in results]}


def run_analyze(spawner: Spawner, config: Path, workdir: Path, args: Any) -> dict[str, Any]:
    records = []
    index = 0
    while len(records) < args.analyze_items:
        feed = generate_feed(index, args.items, args.seed)
        for item in feed.items:
            record: dict[str, Any] = {"id": item.guid, "title": item.title}
            record["summary"] = item.summary
            if feed.hint:
                record["language"] = feed.hint
            records.append(record)
        index += 1
    sizes = sorted({max(1, args.analyze_items // 10), args.analyze_items})
    runs: dict[int, dict[str, Any]] = {}
    for size in sizes:
        stdin = workdir / f"analyze-{size}.jsonl"
        with stdin.open("w", encoding="utf-8") as out:
            for record in records[:size]:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        stdout = workdir / f"analyze-{size}.out.jsonl"
        argv = [*monitor_argv(), "--config", str(config), "analyze"]
        measured = spawner.run(argv, stdin=stdin, stdout=stdout)
        results = [json.loads(line) for line in stdout.read_text().splitlines() if line]
        runs[size] = {
            "items": size,
            "measured": measured.as_dict(),
            "results": len(results),
            "items_with_matches": sum(bool(r["matches"]) for r in results),
            "items_per_s_total": round(size / measured.wall_s, 1),
        }
    small, large = runs[sizes[0]], runs[sizes[-1]]
    extra_wall = large["measured"]["wall_s"] - small["measured"]["wall_s"]
    marginal = (large["items"] - small["items"]) / extra_wall if extra_wall > 0 else None
    startup = small["measured"]["wall_s"] - small["items"] / marginal if marginal else None
    return {
        "runs": list(runs.values()),
        "items_per_s_total": large["items_per_s_total"],
        "items_per_s_marginal": round(marginal, 1) if marginal else None,
        "startup_s_estimate": round(startup, 3) if startup is not None else None,
    }


def run_floors(feeds: list[GenFeed], config: Path, cores: int) -> dict[str, Any]:
    """In this process, one core: what parsing and analysis alone cost for the same input."""
    import feedparser

    from monitor.analyze import Analyzer
    from monitor.config import load_config
    from monitor.parse import parse_feed

    def timed(fn: Any) -> tuple[float, Any]:
        cpu = time.process_time()
        value = fn()
        return time.process_time() - cpu, value

    def feedparser_all() -> int:
        count = 0
        for feed in feeds:
            parsed = feedparser.parse(
                feed.body,
                response_headers={"content-type": feed.content_type},
                sanitize_html=False,
                resolve_relative_uris=False,
            )
            count += len(parsed.entries)
        return count

    def parse_all() -> list[Any]:
        return [parse_feed(f.body, f.content_type, f"http://bench{f.path}") for f in feeds]

    fp_cpu, entries = timed(feedparser_all)
    pf_cpu, parsed = timed(parse_all)
    analyzer = Analyzer(load_config(config).watchlists)
    pairs = [
        (item, feed.hint) for feed, doc in zip(feeds, parsed, strict=True) for item in doc.items
    ]

    def analyze_all() -> int:
        return sum(bool(analyzer.analyze(i.title, i.summary, hint).matches) for i, hint in pairs)

    an_cpu, matched = timed(analyze_all)
    return {
        "cores": cores,
        "feedparser_cpu_s": round(fp_cpu, 3),
        "feedparser_entries": entries,
        "feedparser_floor_s": round(fp_cpu / cores, 3),
        "parse_feed_cpu_s": round(pf_cpu, 3),
        "analyze_cpu_s": round(an_cpu, 3),
        "analyze_items": len(pairs),
        "analyze_items_matched": matched,
        "analyze_in_process_items_per_s": round(len(pairs) / an_cpu, 1) if an_cpu else None,
        "pipeline_cpu_s": round(pf_cpu + an_cpu, 3),
        "pipeline_floor_s": round((pf_cpu + an_cpu) / cores, 3),
    }


# Reporting. -------------------------------------------------------------------------------------


def _verdict(value: float | None, target: float, lower_is_better: bool, applies: bool) -> str:
    if value is None:
        return "—"
    if not applies:
        return "n/a at this size"
    ok = value <= target if lower_is_better else value >= target
    return "pass" if ok else "**MISS**"


def render_table(result: dict[str, Any]) -> str:
    args = result["args"]
    at_target = args["feeds"] == TARGET_FEEDS and args["items"] == TARGET_ITEMS
    cold, warm = result["cold"], result.get("warm") or []
    rows: list[tuple[str, str, str, str]] = []

    def add(name: str, value: str, target: str = "", verdict: str = "") -> None:
        rows.append((name, value, target, verdict))

    startup = result.get("startup") or {}
    if startup:
        add("start-up: `--version` (imports)", f"{startup['version']['wall_s']:.2f} s")
        add(
            f"start-up: `check-config` ({args['feeds']} feeds)",
            f"{startup['check_config']['wall_s']:.2f} s",
        )
    cm = cold["measured"]
    add(
        "cold poll-once: wall",
        f"{cm['wall_s']:.2f} s",
        "≤ 20 s",
        _verdict(cm["wall_s"], TARGETS["cold_wall_s"], True, at_target),
    )
    add("cold poll-once: CPU user+sys (all processes)", f"{cm['cpu_s']:.2f} s")
    add(
        "cold poll-once: peak RSS (main process)",
        f"{cm['maxrss_mb']:.0f} MB",
        "≤ 200 MB",
        _verdict(cm["maxrss_mb"], TARGETS["rss_mb"], True, True),
    )
    add(
        "cold poll-once: peak tree RSS / PSS (sampled)",
        f"{cm['tree_rss_peak_mb']:.0f} / {cm['tree_pss_peak_mb']:.0f} MB "
        f"({cm['max_processes']} processes)",
    )
    add(
        "cold: feeds 200 / failed; items stored; alerts",
        f"{cold['outcomes'].get('new', 0)} / {cold['outcomes'].get('failed', 0)}; "
        f"{cold['db']['items']:,}; {cold['db']['alerts']:,}",
    )
    add(
        "cold: server requests / new connections / server CPU",
        f"{cold['server']['requests']:,} / {cold['server']['connections']:,} / "
        f"{cold['server']['cpu_s']:.2f} s",
    )
    add(
        "cold: per-feed seconds p50 / p95 / max",
        f"{cold['feed_seconds_p50']:.2f} / {cold['feed_seconds_p95']:.2f} / "
        f"{cold['feed_seconds_max']:.2f} s",
    )
    if warm:
        walls = [w["measured"]["wall_s"] for w in warm]
        median = statistics.median(walls)
        add(
            f"warm poll-once: wall (median of {len(walls)})",
            f"{median:.2f} s (" + ", ".join(f"{w:.2f}" for w in walls) + ")",
            "≤ 1 s",
            _verdict(median, TARGETS["warm_wall_s"], True, at_target),
        )
        cpus = [w["measured"]["cpu_s"] for w in warm]
        add("warm poll-once: CPU user+sys", f"{statistics.median(cpus):.2f} s")
        rss = max(w["measured"]["maxrss_mb"] for w in warm)
        add(
            "warm poll-once: peak RSS (main process)",
            f"{rss:.0f} MB",
            "≤ 200 MB",
            _verdict(rss, TARGETS["rss_mb"], True, True),
        )
        last = warm[-1]
        add(
            "warm: feeds 304 / failed",
            f"{last['outcomes'].get('not_modified', 0)} / {last['outcomes'].get('failed', 0)}",
        )
        add(
            "warm: server requests / new connections / server CPU",
            f"{last['server']['requests']:,} / {last['server']['connections']:,} / "
            f"{last['server']['cpu_s']:.2f} s",
        )
    analyze = result.get("analyze")
    if analyze:
        big = analyze["runs"][-1]
        add(
            f"analyze: {big['items']:,} items, incl. start-up",
            f"{analyze['items_per_s_total']:,.0f} items/s ({big['measured']['wall_s']:.2f} s)",
            "≥ 3,000/s",
            _verdict(analyze["items_per_s_total"], TARGETS["analyze_items_per_s"], False, True),
        )
        if analyze["items_per_s_marginal"]:
            add(
                "analyze: marginal (two sizes differenced)",
                f"{analyze['items_per_s_marginal']:,.0f} items/s "
                f"(start-up ≈ {analyze['startup_s_estimate']:.2f} s)",
            )
        add(
            "analyze: peak RSS",
            f"{big['measured']['maxrss_mb']:.0f} MB",
            "≤ 200 MB",
            _verdict(big["measured"]["maxrss_mb"], TARGETS["rss_mb"], True, True),
        )
    floors = result.get("floors")
    if floors:
        add(
            f"floor: feedparser.parse CPU ÷ {floors['cores']} cores",
            f"{floors['feedparser_floor_s']:.2f} s ({floors['feedparser_cpu_s']:.2f} s CPU)",
        )
        add(
            f"floor: parse_feed + analyze CPU ÷ {floors['cores']} cores",
            f"{floors['pipeline_floor_s']:.2f} s ({floors['parse_feed_cpu_s']:.2f} + "
            f"{floors['analyze_cpu_s']:.2f} s CPU)",
        )
    lines = [
        f"### news-monitor benchmark: {args['feeds']} feeds × {args['items']} items",
        "",
        f"{result['machine']['cores']} cores, Python {result['machine']['python']}, "
        f"{result['feeds_bytes'] / 1e6:.1f} MB of feeds; concurrency {args['concurrency']}, "
        f"per_host {args['per_host']}",
        "",
        "| measure | value | target | |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    if not at_target:
        lines.append("")
        lines.append(
            f"Wall-time targets are for {TARGET_FEEDS} feeds × {TARGET_ITEMS} items; "
            "RSS and analyze targets apply at any size."
        )
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    out = {}
    for name in ("news-monitor", "feedparser", "httpx", "langdetect-rs", "pydantic"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def _serve_forever(server: FeedServer, config: Path) -> None:
    print(f"serving {server.base_url}/feeds/…; config: {config}", file=sys.stderr)
    print(
        f"  {' '.join(monitor_argv())} --config {config} poll-once --json > /dev/null",
        file=sys.stderr,
    )
    print("Ctrl+C to stop", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=30, help="items per feed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=64, help="polling.concurrency")
    parser.add_argument(
        "--per-host",
        type=int,
        default=8,
        help="polling.per_host (every feed is on 127.0.0.1: one connection pool of this size; "
        "httpcore's pool slows down with its size, 64 makes a warm poll 4× slower)",
    )
    parser.add_argument("--timeout", default="20s", help="polling.timeout (the default is 20s)")
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--analyze-items", type=int, default=20_000, help="0 to skip")
    parser.add_argument("--no-floors", action="store_true", help="skip the in-process floors")
    parser.add_argument("--server-processes", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep config, database and logs here")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="only serve the feeds and write the config (with --keep), for profiling by hand",
    )
    parser.add_argument(
        "--command",
        help="how to start news-monitor, e.g. '/other/venv/bin/python -m monitor' "
        "(default: the news-monitor script beside this Python)",
    )
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    if args.command:
        _COMMAND[:] = shlex.split(args.command)
    if args.serve and not args.keep:
        parser.error("--serve needs --keep DIR (where the config is written)")

    # Ctrl+C and SIGTERM unwind through the `finally`s that stop the server and the spawner,
    # also when started in the background (where a shell leaves SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    raise_fd_limit()
    spawner = Spawner()
    try:
        run_benchmark(args, spawner)
    finally:
        spawner.close()


def run_benchmark(args: argparse.Namespace, spawner: Spawner) -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    started = time.perf_counter()
    feeds = [generate_feed(index, args.items, args.seed) for index in range(args.feeds)]
    generate_s = time.perf_counter() - started
    feeds_bytes = sum(len(feed.body) for feed in feeds)
    print(
        f"generated {len(feeds)} feeds × {args.items} items, {feeds_bytes / 1e6:.1f} MB "
        f"in {generate_s:.1f}s",
        file=sys.stderr,
    )
    if args.keep:
        workdir = args.keep.resolve()
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="news-monitor-bench-"))
    documents = {f.path: Document(f.body, f.content_type, f.last_modified) for f in feeds}
    result: dict[str, Any] = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": cores,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "versions": _versions(),
            **spawner.info,
        },
        "feeds_bytes": feeds_bytes,
        "generated_items": sum(len(f.items) for f in feeds),
        "generated_watch_items": sum(i.watch for f in feeds for i in f.items),
        "workdir": str(workdir),
    }
    try:
        with FeedServer(documents, args.server_processes) as server:
            config = write_config(workdir, feeds, server.base_url, args)
            if args.serve:
                _serve_forever(server, config)
                return
            argv = monitor_argv()
            print("start-up…", file=sys.stderr)
            result["startup"] = {
                "version": _best_of(spawner, 3, [*argv, "--version"]),
                "check_config": _best_of(
                    spawner, 3, [*argv, "--config", str(config), "check-config"]
                ),
            }
            print("cold poll-once…", file=sys.stderr)
            result["cold"] = run_poll(spawner, server, config, workdir, "cold")
            result["warm"] = []
            for number in range(args.warm_runs):
                print(f"warm poll-once {number + 1}/{args.warm_runs}…", file=sys.stderr)
                result["warm"].append(
                    run_poll(spawner, server, config, workdir, f"warm{number + 1}")
                )
            if args.analyze_items > 0:
                print(f"analyze ({args.analyze_items:,} items)…", file=sys.stderr)
                result["analyze"] = run_analyze(spawner, config, workdir, args)
        if not args.no_floors:
            print("in-process floors…", file=sys.stderr)
            result["floors"] = run_floors(feeds, config, cores or 1)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    table = render_table(result)
    result["table"] = table
    print(table)
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results / f"poll-{args.feeds}x{args.items}-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nresults: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
