"""The daemon's steady cycle: CPU per 1,000 unchanged feeds and memory, inside `news-monitor run`.

    .venv/bin/python bench/cycle_bench.py --feeds 1000            # this tree
    .venv/bin/python bench/cycle_bench.py --feeds 1000 --tree /tmp/head --tree .   # A/B, rounds

Generates N feeds (bench/feedgen.py), serves them from another process (bench/server.py,
97 loopback hosts, `Cache-Control: no-cache`), writes a config with a short `interval` and no
jitter, and starts the real daemon. Once every feed has answered 304 once (the cold cycle and
its parsing are over), it reads the daemon's own CPU (utime + stime in /proc/PID/stat) and the
server's count of 304s over a steady window of a few intervals: CPU per 1,000 polls is the
cycle's cost, with everything the daemon does meanwhile (scheduler, logging, status refresh).
Memory is VmHWM (peak RSS over the whole run, the cold cycle included) and VmRSS at the end.
Each `--tree` is a source tree put first on PYTHONPATH (`git archive HEAD | tar -x -C DIR`
gives HEAD's), run in turn, `--rounds` times.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from feedgen import GenFeed, generate_feed  # noqa: E402
from poll_bench import WATCHLISTS  # noqa: E402
from server import Document, FeedServer, raise_fd_limit  # noqa: E402

# `python -m monitor` from the tree on PYTHONPATH: the editable install's import hook comes before
# PYTHONPATH and would load the working tree whatever `--tree` says.
FROM_PYTHONPATH = (
    "import runpy, sys; "
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
    "runpy.run_module('monitor', run_name='__main__', alter_sys=True)"
)

TARGET_CPU_PER_1000 = 0.25
TARGET_RSS_MB_AT_5000 = 120.0
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> dict[str, float]:
    """user, system, and the main thread's (the event loop's) user + system, in seconds."""

    def fields(path: str) -> list[str]:
        return Path(path).read_text().rsplit(")", 1)[1].split()

    whole, main = fields(f"/proc/{pid}/stat"), fields(f"/proc/{pid}/task/{pid}/stat")
    return {
        "user": int(whole[11]) / _TICKS,
        "system": int(whole[12]) / _TICKS,
        "loop": (int(main[11]) + int(main[12])) / _TICKS,
    }


def _status_mb(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) / 1024
    return out


def write_config(directory: Path, feeds: list[GenFeed], server: FeedServer, interval: int) -> Path:
    lines = [
        "# Written by bench/cycle_bench.py",
        "database: bench.db",
        "polling:",
        f"  interval: {interval}s",
        "  backfill: 36500d",
        "  jitter: 0",
        "feeds:",
    ]
    for feed in feeds:
        url = server.url(feed.index, feed.path)
        lines.append(f'  - {{name: "{feed.name}", url: "{url}"}}')
    path = directory / "config.yaml"
    path.write_text("\n".join(lines) + "\n" + WATCHLISTS, encoding="utf-8")
    return path


def _wait(what: str, done: Any, daemon: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited ({daemon.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def run_daemon(
    tree: Path, server: FeedServer, feeds: list[GenFeed], args: argparse.Namespace
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="nm-cycle-"))
    config = write_config(workdir, feeds, server, args.interval)
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    log = (workdir / "daemon.log").open("wb")
    base = server.stats()
    daemon = subprocess.Popen(
        [sys.executable, "-c", FROM_PYTHONPATH, "--config", str(config), "run"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    n = len(feeds)
    try:
        started = time.monotonic()
        _wait("the cold cycle", lambda: server.stats()["ok"] - base["ok"] >= n, daemon, 600)
        cold_s = time.monotonic() - started
        # Every feed answered 304 once: its 200 was parsed and stored before that.
        _wait(
            "a warm cycle",
            lambda: server.stats()["not_modified"] - base["not_modified"] >= n,
            daemon,
            600,
        )
        cpu0, polls0, t0 = _cpu(daemon.pid), server.stats()["not_modified"], time.time()
        window = args.interval * args.cycles
        if args.py_spy:
            # Samples without stopping the daemon; its own CPU is what is measured.
            profile = workdir / "profile.txt"
            subprocess.run(
                [
                    str(args.py_spy),
                    "record",
                    "--pid",
                    str(daemon.pid),
                    "--duration",
                    str(window),
                    "--rate",
                    str(args.rate),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--gil",
                    "--output",
                    str(profile),
                ],
                check=True,
                capture_output=True,
            )
        else:
            time.sleep(window)
        cpu1, polls1, t1 = _cpu(daemon.pid), server.stats()["not_modified"], time.time()
        memory = _status_mb(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
    polls = polls1 - polls0
    used = {key: cpu1[key] - cpu0[key] for key in cpu0}
    cpu = used["user"] + used["system"]
    return {
        "tree": str(tree),
        "feeds": n,
        "cold_s": round(cold_s, 2),
        "window_s": round(t1 - t0, 2),
        "polls": polls,
        "cpu_s": round(cpu, 3),
        "user_s": round(used["user"], 3),
        "system_s": round(used["system"], 3),
        "loop_thread_s": round(used["loop"], 3),
        "cpu_per_1000_polls_s": round(cpu / polls * 1000, 3) if polls else None,
        "vm_hwm_mb": round(memory["VmHWM"], 1),
        "vm_rss_mb": round(memory["VmRSS"], 1),
        "workdir": str(workdir),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=30, help="items per feed")
    parser.add_argument("--interval", type=int, default=15, help="polling.interval in seconds")
    parser.add_argument("--cycles", type=int, default=3, help="intervals in the steady window")
    parser.add_argument("--hosts", type=int, default=97, help="loopback addresses to serve from")
    parser.add_argument("--tree", type=Path, action="append", help="source tree (repeatable)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write every run here")
    parser.add_argument("--py-spy", type=Path, help="py-spy binary: profile the window")
    parser.add_argument(
        "--rate", type=int, default=100, help="py-spy samples per second (more: finer, dearer)"
    )
    parser.add_argument("--keep", action="store_true", help="keep each run's folder (logs, db)")
    args = parser.parse_args()
    raise_fd_limit()
    trees = args.tree or [ROOT]
    feeds = [generate_feed(index, args.items) for index in range(args.feeds)]
    documents = {f.path: Document(f.body, f.content_type, f.last_modified) for f in feeds}
    runs: list[dict[str, Any]] = []
    with FeedServer(documents, cache_control="no-cache", hosts=args.hosts) as server:
        for number in range(args.rounds):
            # Alternate the order each round: the machine's load drifts.
            order = trees if number % 2 == 0 else trees[::-1]
            for tree in order:
                run = run_daemon(tree, server, feeds, args)
                if not (args.keep or args.py_spy):
                    shutil.rmtree(run.pop("workdir"))
                runs.append(run)
                print(json.dumps(run), file=sys.stderr)
    print(f"\n{args.feeds} feeds, interval {args.interval}s, window {args.cycles} intervals")
    print("| tree | CPU per 1,000 polls (runs) | VmHWM MB | VmRSS MB |")
    print("|---|---|---|---|")
    for tree in trees:
        mine = [r for r in runs if r["tree"] == str(tree)]
        cpus = [r["cpu_per_1000_polls_s"] for r in mine if r["cpu_per_1000_polls_s"] is not None]
        shown = ", ".join(f"{c:.3f}" for c in cpus)
        print(
            f"| {tree} | {statistics.median(cpus):.3f} s ({shown}) "
            f"| {max(r['vm_hwm_mb'] for r in mine):.1f} | {max(r['vm_rss_mb'] for r in mine):.1f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
