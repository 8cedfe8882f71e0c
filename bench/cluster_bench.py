"""Several daemons on one database: 1, 2 and 3 nodes, SQLite and PostgreSQL (issue 13).

    .venv/bin/python bench/cluster_bench.py                          # 5,000 feeds, about 15 min
    .venv/bin/python bench/cluster_bench.py --feeds 2000 --nodes 1,2 --engines postgresql --check

For each engine and node count: a fresh database (a SQLite file, or a new database on a
PostgreSQL server the bench starts from Debian's package, with its default durable settings),
N generated feeds (bench/feedgen.py; about 2% of items mention a watch term) served by another
process (bench/server.py, 97 loopback hosts, `Cache-Control: no-cache`), a signed webhook sink
to a receiver on 127.0.0.1, and K real `news-monitor run` daemons started together on one
config.

- **cold**: from the start of the daemons until every feed was fetched once and no delivery is
  pending (wall time), the CPU each node used by then (utime + stime, /proc), and the 200s the
  feed server counted (N when no feed was fetched twice);
- **cold burst latency**: per delivery of the cold cycle (about a thousand alerts at once),
  from the item's fetch (`items.fetched_at`) to the webhook's 2xx (`deliveries.sent_at`), both
  written by the daemons: median and 95th percentile; webhook posts against distinct
  `webhook-id`s (equal when no delivery was sent twice);
- **steady**: over `--cycles` intervals of unchanged feeds (all 304), polls and CPU per node;
- **news latency**: then a fifth of the feeds publish 3 new items each at once; from that
  moment to each new alert's arrival at the webhook (what a desk waits: at most an interval
  for the next poll, then the pipeline), and from the item's fetch to the webhook's 2xx;
- **shortest gap**: from the daemons' own `feed.polled` lines, the shortest time between the
  starts of two polls of one feed by any nodes over the whole run; `--check` fails the run if
  it is below the interval.

This machine has two cores: three nodes here share them, so the numbers show what the
coordination costs and that the work is shared, not the speed-up separate machines would give.
Prints a markdown table and writes the runs to bench/results/cluster-*.json.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from cycle_bench import FROM_PYTHONPATH  # noqa: E402
from feedgen import GenFeed, generate_feed  # noqa: E402
from poll_bench import WATCHLISTS  # noqa: E402
from server import Document, FeedServer, raise_fd_limit  # noqa: E402

_TICKS = os.sysconf("SC_CLK_TCK")
_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a made-up signing key, for the bench


# PostgreSQL, started for the bench -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def postgres() -> Iterator[int]:
    """A PostgreSQL server from Debian's package in a temporary folder; its port."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        sys.exit("cluster_bench: PostgreSQL is not installed: apt-get install postgresql")
    bin_dir = found[-1].parent
    root = Path(tempfile.mkdtemp(prefix="nm-cluster-pg-"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()
    subprocess.run(
        [
            *as_postgres,
            *(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres"),
            *("--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"),
        ],
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root}"
        " -c max_connections=100"
    )
    subprocess.run(
        [
            *as_postgres,
            *(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log")),
            *("-o", options, "-w", "start"),
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield port
    finally:
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def _create_database(port: int, name: str) -> str:
    import psycopg

    base = f"postgresql://postgres@127.0.0.1:{port}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


# The webhook receiver ---------------------------------------------------------------------


class Receiver:
    """Answers every POST with 204 and keeps each one's `webhook-id`."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.arrivals: list[float] = []
        lock = threading.Lock()
        ids, arrivals = self.ids, self.arrivals

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with lock:
                    ids.append(self.headers.get("webhook-id") or "")
                    arrivals.append(time.time())
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()


# One run ------------------------------------------------------------------------------------


def write_config(
    directory: Path, database: str, feeds: list[GenFeed], server: FeedServer, args: Any, hook: str
) -> Path:
    sink = f"sinks:\n  - {{name: desk, type: webhook, url: '{hook}', secret: {_SECRET}}}\n"
    lines = [
        "# Written by bench/cluster_bench.py",
        f"database: '{database}'",
        "polling:",
        f"  interval: {args.interval}s",
        "  backfill: 36500d   # the generated items are dated early 2025: alert on all",
        "  jitter: 0",
        "cluster:",
        f"  lease: {args.lease}s",
        "feeds:",
    ]
    lines += [f'  - {{name: "{f.name}", url: "{server.url(f.index, f.path)}"}}' for f in feeds]
    path = directory / "config.yaml"
    path.write_text(
        "\n".join(lines) + "\n" + WATCHLISTS.replace("sinks: []\n", sink), encoding="utf-8"
    )
    return path


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _rows(database: str, sql: str) -> list[tuple[Any, ...]]:
    if database.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(database) as connection:
            return list(connection.execute(sql).fetchall())
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return list(connection.execute(sql).fetchall())


def _count(database: str, status: str) -> int:
    try:
        sql = f"SELECT COUNT(*) FROM deliveries WHERE status = '{status}'"
        return int(_rows(database, sql)[0][0])
    except Exception:  # not created yet: the daemons are still migrating
        return -1


def _stored_since(database: str, since: str) -> int:
    try:
        sql = f"SELECT COUNT(*) FROM items WHERE fetched_at >= '{since}'"
        return int(_rows(database, sql)[0][0])
    except Exception:  # not created yet: the daemons are still migrating
        return -1


def _latencies(database: str, since: str = "") -> list[float]:
    rows = _rows(
        database,
        f"""SELECT i.fetched_at, d.sent_at FROM deliveries d JOIN alerts a ON a.id = d.alert_id
            JOIN items i ON i.id = a.item_id
            WHERE d.status = 'sent' AND i.fetched_at >= '{since}'""",
    )
    return sorted(
        (datetime.fromisoformat(sent) - datetime.fromisoformat(fetched)).total_seconds()
        for fetched, sent in rows
    )


def _events(log: Path) -> Iterator[dict[str, Any]]:
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            yield json.loads(line)


def _p50_p95(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    ordered = sorted(values)
    return round(statistics.median(ordered), 2), round(ordered[int(0.95 * (len(ordered) - 1))], 2)


def _wait(what: str, done: Any, daemons: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        for daemon in daemons:
            if daemon.poll() is not None:
                raise RuntimeError(f"a daemon exited ({daemon.returncode}) waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def run(
    engine: str,
    nodes: int,
    database: str,
    feeds: list[GenFeed],
    server: FeedServer,
    receiver: Receiver,
    args: Any,
) -> dict[str, Any]:
    # Served again at the start of each run: a run publishes news on some of them.
    server.replace({f.path: Document(f.body, f.content_type, f.last_modified) for f in feeds})
    workdir = Path(tempfile.mkdtemp(prefix=f"nm-cluster-{engine}-{nodes}-"))
    config = write_config(workdir, database, feeds, server, args, receiver.url)
    receiver.ids.clear()
    receiver.arrivals.clear()
    base = server.stats()
    env = {**os.environ, "PYTHONPATH": str(args.tree.resolve())}
    logs = [workdir / f"node-{number}.log" for number in range(nodes)]
    daemons: list[subprocess.Popen[bytes]] = []
    n = len(feeds)
    started = time.monotonic()
    try:
        for log in logs:
            with log.open("wb") as out:
                daemons.append(
                    subprocess.Popen(
                        [sys.executable, "-c", FROM_PYTHONPATH, "--config", str(config), "run"],
                        cwd=workdir,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        _wait("every feed fetched", lambda: server.stats()["ok"] - base["ok"] >= n, daemons, 900)
        _wait(
            "every item stored",
            lambda: _stored_since(database, "") >= n * args.items,
            daemons,
            900,
        )
        _wait("every delivery sent", lambda: _count(database, "pending") == 0, daemons, 900)
        cold_s = time.monotonic() - started
        cold_cpu = [_cpu_s(daemon.pid) for daemon in daemons]
        fetched = server.stats()["ok"] - base["ok"]
        _wait(
            "a warm cycle",
            lambda: server.stats()["not_modified"] - base["not_modified"] >= n,
            daemons,
            900,
        )
        cpu0 = [_cpu_s(daemon.pid) for daemon in daemons]
        t0 = datetime.now(UTC)
        time.sleep(args.interval * args.cycles)
        t1 = datetime.now(UTC)
        cpu1 = [_cpu_s(daemon.pid) for daemon in daemons]
        # News: a fifth of the feeds publish 3 new items each, at once.
        revised = [generate_feed(f.index, args.items, revision=1) for f in feeds[::5]]
        posts_before, ok_before = len(receiver.ids), server.stats()["ok"]
        published = time.time()
        published_iso = datetime.fromtimestamp(published, UTC).isoformat()
        server.replace({f.path: Document(f.body, f.content_type, f.last_modified) for f in revised})
        _wait(
            "the news fetched",
            lambda: server.stats()["ok"] - ok_before >= len(revised),
            daemons,
            900,
        )
        # Every new item stored (a 200 counted by the server may still be parsing), then sent.
        _wait(
            "the news stored",
            lambda: _stored_since(database, published_iso) >= 3 * len(revised),
            daemons,
            900,
        )
        _wait("the news delivered", lambda: _count(database, "pending") == 0, daemons, 900)
        news_waits = [at - published for at in receiver.arrivals[posts_before:]]
        rss = [_peak_rss_mb(daemon.pid) for daemon in daemons]
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
    # Each poll's start (its log line's time less its duration): a feed's next turn counts from
    # its fetch, so two starts of one feed are never closer than the interval.
    starts: dict[str, list[datetime]] = defaultdict(list)
    steady_polls = []
    for log in logs:
        mine = 0
        for event in _events(log):
            if event.get("event") != "feed.polled":
                continue
            at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
            starts[event["feed"]].append(at - timedelta(seconds=event["seconds"]))
            mine += t0 <= at < t1
        steady_polls.append(mine)
    gaps = [
        (later - earlier).total_seconds()
        for times in starts.values()
        for earlier, later in zip(sorted(times), sorted(times)[1:], strict=False)
    ]
    cold_burst = _latencies(database)
    news_pipeline = _latencies(database, since=published_iso)
    steady_cpu = [after - before for before, after in zip(cpu0, cpu1, strict=True)]
    polls = sum(steady_polls)
    result = {
        "engine": engine,
        "nodes": nodes,
        "feeds": n,
        "interval_s": args.interval,
        "cold_s": round(cold_s, 1),
        "cold_cpu_per_node_s": [round(cpu, 1) for cpu in cold_cpu],
        "fetches_in_cold_cycle": fetched,
        "deliveries_sent": _count(database, "sent"),
        "webhook_posts": len(receiver.ids),
        "webhook_ids": len(set(receiver.ids)),
        "cold_burst_fetch_to_webhook_s": _p50_p95(cold_burst),
        "news_alerts": len(news_waits),
        "news_published_to_webhook_s": _p50_p95(news_waits),
        "news_fetch_to_webhook_s": _p50_p95(news_pipeline),
        "steady_polls_per_node": steady_polls,
        "steady_cpu_per_node_s": [round(cpu, 2) for cpu in steady_cpu],
        "steady_cpu_per_1000_polls_s": round(sum(steady_cpu) / polls * 1000, 3) if polls else None,
        "peak_rss_mb_per_node": [round(mb) for mb in rss],
        "shortest_gap_s": round(min(gaps), 3) if gaps else None,
    }
    if args.keep:
        result["workdir"] = str(workdir)
    else:
        shutil.rmtree(workdir)
    return result


def _pair(values: tuple[float | None, float | None]) -> str:
    return f"{values[0]} s / {values[1]} s"


def _table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| engine | nodes | cold: fetched + delivered | CPU per node, cold | 200s | "
        "webhook posts / ids / sent | cold burst: fetch → webhook p50 / p95 | "
        "news: published → webhook p50 / p95 | news: fetch → webhook p50 / p95 | "
        "steady polls per node | steady CPU per 1,000 polls | peak RSS per node | shortest gap |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        cpu = " / ".join(f"{c:.0f} s" for c in r["cold_cpu_per_node_s"])
        rss = " / ".join(f"{m} MB" for m in r["peak_rss_mb_per_node"])
        polls = " / ".join(f"{p:,}" for p in r["steady_polls_per_node"])
        lines.append(
            f"| {r['engine']} | {r['nodes']} | {r['cold_s']:.1f} s | {cpu} | "
            f"{r['fetches_in_cold_cycle']:,} | {r['webhook_posts']} / {r['webhook_ids']} / "
            f"{r['deliveries_sent']} | {_pair(r['cold_burst_fetch_to_webhook_s'])} | "
            f"{_pair(r['news_published_to_webhook_s'])} ({r['news_alerts']} alerts) | "
            f"{_pair(r['news_fetch_to_webhook_s'])} | "
            f"{polls} | {r['steady_cpu_per_1000_polls_s']} s | {rss} | "
            f"{r['shortest_gap_s']} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=5000)
    parser.add_argument("--items", type=int, default=10, help="items per feed")
    parser.add_argument("--nodes", default="1,2,3", help="node counts, comma-separated")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--interval", type=int, default=60, help="polling.interval in seconds")
    parser.add_argument("--lease", type=int, default=60, help="cluster.lease in seconds")
    parser.add_argument("--cycles", type=int, default=1, help="intervals in the steady window")
    parser.add_argument("--hosts", type=int, default=97, help="loopback addresses to serve from")
    parser.add_argument("--check", action="store_true", help="fail if a feed came too soon")
    parser.add_argument(
        "--tree",
        type=Path,
        default=ROOT,
        help="source tree to run (`git archive HEAD | tar -x -C DIR` gives HEAD's)",
    )
    parser.add_argument("--keep", action="store_true", help="keep each run's folder (logs, db)")
    args = parser.parse_args()
    raise_fd_limit()
    feeds = [generate_feed(index, args.items) for index in range(args.feeds)]
    documents = {f.path: Document(f.body, f.content_type, f.last_modified) for f in feeds}
    engines = args.engines.split(",")
    counts = [int(n) for n in args.nodes.split(",")]
    runs: list[dict[str, Any]] = []
    receiver = Receiver()
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(
            FeedServer(documents, cache_control="no-cache", hosts=args.hosts)
        )
        port = stack.enter_context(postgres()) if "postgresql" in engines else 0
        for engine in engines:
            for nodes in counts:
                if engine == "postgresql":
                    database = _create_database(port, f"bench_{nodes}")
                else:
                    folder = Path(tempfile.mkdtemp(prefix="nm-cluster-db-"))
                    stack.callback(shutil.rmtree, folder, True)
                    database = str(folder / "bench.db")
                result = run(engine, nodes, database, feeds, server, receiver, args)
                print(json.dumps(result), file=sys.stderr, flush=True)
                runs.append(result)
    receiver.close()
    table = _table(runs)
    print(f"\n{args.feeds} feeds × {args.items} items, interval {args.interval}s\n\n{table}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = BENCH / "results" / f"cluster-{stamp}.json"
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    out.write_text(
        json.dumps({"machine": machine, "args": vars(args), "runs": runs, "table": table}, indent=2)
        + "\n"
    )
    print(f"wrote {out.relative_to(ROOT)}")
    if args.check and any(
        r["shortest_gap_s"] is not None and r["shortest_gap_s"] < args.interval - 0.002
        for r in runs
    ):
        sys.exit("a feed was polled twice within its interval")


if __name__ == "__main__":
    main()
