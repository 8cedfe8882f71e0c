"""Benchmark of alert delivery: throughput to a local webhook, and commit-to-arrival latency.

    .venv/bin/python bench/deliver_bench.py                  # about 20 s
    .venv/bin/python bench/deliver_bench.py --alerts 5000 --rate 50

Everything is real and local: a SQLite outbox in a temporary directory, the `Dispatcher` with
a signed `webhook` sink, and a receiver in its own process (so its CPU is not charged to the
dispatcher) that timestamps each arrival.

1. **Throughput**: N alerts are committed as pending deliveries, then `drain()` sends them
   all; alerts/s is N over the time from the start of the drain to the last arrival.
2. **Latency**: the dispatcher runs as in the daemon (`run()`); a writer thread commits one
   alert at a time (`record_poll`, as a poll does) at `--rate` per second and calls `wake()`
   as the service does after a poll. Latency is from the commit to the webhook's arrival
   at the receiver, both on the wall clock of this machine.
3. The same without `wake()`: what the dispatcher's idle re-read alone gives.

Prints a markdown table and writes it with the raw numbers to bench/results/deliver-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from monitor.config import Config, load_config  # noqa: E402
from monitor.deliver import Dispatcher  # noqa: E402
from monitor.logging import configure_logging  # noqa: E402
from monitor.models import Analysis, Item, Match  # noqa: E402
from monitor.store import AlertPlan, NewItem, PollWrite, Store  # noqa: E402
from monitor.store.thread import StoreThread  # noqa: E402

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


# The receiver, in its own process ----------------------------------------------------------


def _receive(conn: Connection) -> None:
    """A minimal HTTP/1.1 keep-alive server: 200 to every POST, arrival times recorded."""
    arrivals: list[tuple[int, float]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                if head.startswith(b"GET /dump"):
                    data = json.dumps(arrivals).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data))
                    writer.write(data)
                else:
                    alert = json.loads(body)["data"]["alert"]["id"]
                    arrivals.append((alert, time.time()))
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        conn.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@dataclass
class Receiver:
    process: multiprocessing.Process
    port: int

    @classmethod
    def start(cls) -> Receiver:
        parent, child = multiprocessing.Pipe()
        process = multiprocessing.Process(target=_receive, args=(child,), daemon=True)
        process.start()
        return cls(process, int(parent.recv()))

    def arrivals(self) -> dict[int, float]:
        data = httpx.get(f"http://127.0.0.1:{self.port}/dump", timeout=10).json()
        return {int(alert): float(at) for alert, at in data}

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)


# The outbox ---------------------------------------------------------------------------------


def _config(directory: Path, port: int) -> Config:
    path = directory / "config.yaml"
    path.write_text(
        "database: monitor.db\n"
        "sinks:\n"
        "  - name: hook\n"
        "    type: webhook\n"
        f"    url: http://127.0.0.1:{port}/hook\n"
        f"    secret: {SECRET}\n"
    )
    return load_config(path, env={})


def _commit(store: Store, feed_id: int, count: int) -> list[tuple[int, float]]:
    """`count` alerts with one pending delivery each, committed in one poll's transaction;
    returns (alert id, commit time) pairs."""
    now = datetime.now(UTC)
    items = []
    for _ in range(count):
        guid = uuid.uuid4().hex
        match = Match("khanaqin", "Khanaqin", "Khanaqin", "title", 0, 8)
        items.append(
            NewItem(
                Item(
                    guid,
                    f"https://news.example.org/{guid}",
                    f"Checkpoint attacked near Khanaqin {guid[:6]}",
                    "Security forces said the attack took place at dawn.",
                    now,
                    f"story:{guid}",
                ),
                Analysis("en", 0.99, (match,)),
                (AlertPlan("khanaqin", "high", (match,), ("hook",)),),
            )
        )
    write = PollWrite(
        feed_id, 200, None, None, None, "Desk", now + timedelta(minutes=10), tuple(items)
    )
    store.record_poll(write, now)
    committed = time.time()
    rows = store.db.execute("SELECT id FROM alerts ORDER BY id DESC LIMIT ?", [count]).fetchall()
    return [(int(row[0]), committed) for row in rows]


def _feed(store: Store) -> int:
    from monitor.config import FeedConfig

    return store.sync_feeds([FeedConfig(name="Desk", url="https://feeds.example.org/desk")])[
        "Desk"
    ].id


# Measurements -------------------------------------------------------------------------------


def throughput(directory: Path, alerts: int) -> dict[str, float]:
    receiver = Receiver.start()
    try:
        config = _config(directory, receiver.port)
        store = Store.open(config.database)
        _commit(store, _feed(store), alerts)
        store.close()

        async def main() -> float:
            thread = StoreThread(Store.open(config.database))
            dispatcher = Dispatcher(config, thread)
            started = time.time()
            report = await dispatcher.drain(600)
            await dispatcher.aclose()
            thread.close()
            if report.sent != alerts:
                raise SystemExit(f"only {report.sent} of {alerts} were sent: {report}")
            return started

        started = asyncio.run(main())
        arrived = receiver.arrivals()
    finally:
        receiver.stop()
    elapsed = max(arrived.values()) - started
    return {"alerts": alerts, "seconds": elapsed, "alerts_per_s": alerts / elapsed}


def latency(directory: Path, alerts: int, rate: float, wake: bool) -> dict[str, float]:
    receiver = Receiver.start()
    try:
        config = _config(directory, receiver.port)
        writer_store = Store.open(config.database)
        feed_id = _feed(writer_store)
        committed: dict[int, float] = {}

        async def main() -> None:
            thread = StoreThread(Store.open(config.database))
            dispatcher = Dispatcher(config, thread)
            stopping = asyncio.Event()
            loop = asyncio.get_running_loop()
            runner = asyncio.create_task(dispatcher.run(stopping))
            await asyncio.sleep(0.3)

            def write() -> None:
                for _ in range(alerts):
                    for alert, at in _commit(writer_store, feed_id, 1):
                        committed[alert] = at
                    if wake:
                        loop.call_soon_threadsafe(dispatcher.wake)
                    time.sleep(1 / rate)

            writer = threading.Thread(target=write)
            writer.start()
            await asyncio.to_thread(writer.join)
            deadline = time.monotonic() + 30
            while len(receiver.arrivals()) < alerts and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            stopping.set()
            await runner
            await dispatcher.aclose()
            thread.close()

        asyncio.run(main())
        writer_store.close()
        arrived = receiver.arrivals()
    finally:
        receiver.stop()
    waits = sorted((arrived[a] - committed[a]) * 1000 for a in committed if a in arrived)
    if len(waits) != alerts:
        raise SystemExit(f"only {len(waits)} of {alerts} alerts arrived")
    return {
        "alerts": alerts,
        "p50_ms": statistics.median(waits),
        "p95_ms": waits[int(0.95 * (len(waits) - 1))],
        "max_ms": waits[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=2000, help="for the throughput run")
    parser.add_argument("--latency-alerts", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="alerts/s in the latency run")
    parser.add_argument("--keep", type=Path, help="keep the databases in this directory")
    args = parser.parse_args()
    # One log line per delivery would measure the terminal; warnings (failures) still show.
    configure_logging("warning")
    with tempfile.TemporaryDirectory() as temporary:
        base = args.keep or Path(temporary)
        runs = {
            "throughput": throughput(_fresh(base, "throughput"), args.alerts),
            "latency_wake": latency(_fresh(base, "wake"), args.latency_alerts, args.rate, True),
            "latency_idle": latency(
                _fresh(base, "idle"), max(20, args.latency_alerts // 5), args.rate / 2, False
            ),
        }
    t, w, i = runs["throughput"], runs["latency_wake"], runs["latency_idle"]
    table = "\n".join(
        [
            "| measure | result |",
            "|---|---|",
            f"| throughput, {t['alerts']:.0f} pending alerts, signed webhook "
            f"| {t['alerts_per_s']:,.0f} alerts/s ({t['seconds']:.2f} s) |",
            f"| commit → arrival with wake(), {w['alerts']:.0f} alerts at {args.rate:g}/s "
            f"| p50 {w['p50_ms']:.1f} ms, p95 {w['p95_ms']:.1f} ms, max {w['max_ms']:.1f} ms |",
            f"| commit → arrival without wake() (the idle re-read alone), {i['alerts']:.0f} "
            f"alerts | p50 {i['p50_ms']:.0f} ms, p95 {i['p95_ms']:.0f} ms, "
            f"max {i['max_ms']:.0f} ms |",
        ]
    )
    print(table)
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = results / f"deliver-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "runs": runs,
                "table": table,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": multiprocessing.cpu_count(),
            },
            indent=2,
        )
    )
    print(f"\nwritten to {out.relative_to(BENCH.parent)}")


def _fresh(base: Path, name: str) -> Path:
    directory = base / name
    directory.mkdir(parents=True, exist_ok=True)
    return directory


if __name__ == "__main__":
    main()
