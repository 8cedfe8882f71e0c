"""The fetcher alone: one cycle over N local feeds through `Fetcher`, for two implementations.

    .venv/bin/python bench/fetch_bench.py                      # 1,000 feeds, 5 rounds
    .venv/bin/python bench/fetch_bench.py --impl old=git:HEAD --impl new=monitor/fetch.py

Each `--impl NAME=SOURCE` is a version of `monitor/fetch.py`: a file, or `git:REV` for the
file at a git revision. The default compares httpx (the last httpx fetcher, `git:c9678a7`)
with the working tree's. Every version is loaded as its own module in this process.

The feeds come from `feedgen.py` and are served by `server.py` in its own process, so the
server's CPU is not this process's. Per round, each version in turn (the order alternates
between rounds, so drift on a shared machine hits both alike):

- **cold**: a fresh `Fetcher`, every feed fetched at once without validators (all 200),
  closed afterwards;
- **warm**: a fresh `Fetcher`, every feed with its validators (all 304): what a `poll-once`
  does after start-up, opening its connections as it goes;
- **again**: the same `Fetcher` a second time, on the connections the warm cycle left open.

Wall is `perf_counter`; CPU is `time.process_time()` of this process (every thread: the event
loop and the resolver threads), the steadier of the two on a shared machine. It prints a
markdown table (median, min and max over the rounds) and the ratio of the medians, and
writes the rounds to `bench/results/fetch-<feeds>-<UTC time>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from feedgen import generate_feed  # noqa: E402
from server import Document, FeedServer, raise_fd_limit  # noqa: E402

from monitor.config import PollingConfig  # noqa: E402

_HTTPX_FETCHER = "git:c9678a7"
"""The last commit whose `monitor/fetch.py` is the httpx fetcher."""
_PHASES = ("cold", "warm", "again")


def load(name: str, source: str, scratch: Path) -> ModuleType:
    """`monitor/fetch.py` as it is in `source` (a path, or `git:REV`), as module `name`."""
    if source.startswith("git:"):
        text = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{source[4:]}:monitor/fetch.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        path = scratch / f"{name}.py"
        path.write_text(text)
    else:
        path = Path(source)
    spec = importlib.util.spec_from_file_location(f"_fetch_bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def cycle(fetcher: Any, urls: list[str], validators: dict[str, tuple[Any, Any]]) -> list[Any]:
    async def one(url: str) -> Any:
        etag, last_modified = validators.get(url, (None, None))
        return await fetcher.fetch(url, etag, last_modified)

    return await asyncio.gather(*(one(url) for url in urls))


class Meter:
    """Wall, CPU and the server's new connections from `start()` to `stop()`."""

    def __init__(self, server: FeedServer) -> None:
        self._server = server
        self._wall = self._cpu = 0.0
        self._connections = 0

    def start(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        self._connections = self._server.stats()["connections"]

    def stop(self) -> dict[str, float]:
        return {
            "wall_s": time.perf_counter() - self._wall,
            "cpu_s": time.process_time() - self._cpu,
            "connections": self._server.stats()["connections"] - self._connections,
        }


def one_round(
    module: ModuleType,
    polling: PollingConfig,
    urls: list[str],
    server: FeedServer,
    validators: dict[str, tuple[Any, Any]],
) -> dict[str, dict[str, float]]:
    times: dict[str, dict[str, float]] = {}
    meter = Meter(server)

    async def cold() -> list[Any]:
        async with module.Fetcher(polling) as fetcher:
            return await cycle(fetcher, urls, {})

    meter.start()
    results = asyncio.run(cold())
    times["cold"] = meter.stop()
    assert all(r.status == 200 for r in results), "the cold cycle did not get every feed"
    validators.update(
        {url: (r.etag, r.last_modified) for url, r in zip(urls, results, strict=True)}
    )

    async def warm() -> None:
        async with module.Fetcher(polling) as fetcher:
            for phase in ("warm", "again"):
                meter.start()
                results = await cycle(fetcher, urls, validators)
                times[phase] = meter.stop()
                assert all(r.status == 304 for r in results), f"the {phase} cycle was not all 304"

    asyncio.run(warm())
    return times


# Floors: the same warm cycle straight on each stack, `per_host` keep-alive connections each
# making its share of the requests one after another. No Fetcher rules, no semaphores.


def _conditional(validators: dict[str, tuple[Any, Any]], url: str) -> dict[str, str]:
    etag, last_modified = validators[url]
    return {"If-None-Match": etag, "If-Modified-Since": last_modified}


async def _socket_floor(urls: list[str], validators: dict[str, Any], connections: int) -> None:
    async def worker(chunk: list[str]) -> None:
        parts = urlsplit(chunk[0])
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            for url in chunk:
                headers = "".join(f"{k}: {v}\r\n" for k, v in _conditional(validators, url).items())
                path = urlsplit(url).path
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{headers}\r\n".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")  # a 304 has no body
                assert head.startswith(b"HTTP/1.1 304"), head[:40]
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(worker(urls[i::connections]) for i in range(connections)))


async def _httpcore_floor(urls: list[str], validators: dict[str, Any], connections: int) -> None:
    import httpcore

    async with httpcore.AsyncConnectionPool(max_connections=connections) as pool:

        async def worker(chunk: list[str]) -> None:
            for url in chunk:
                response = await pool.request("GET", url, headers=_conditional(validators, url))
                assert response.status == 304

        await asyncio.gather(*(worker(urls[i::connections]) for i in range(connections)))


async def _aiohttp_floor(urls: list[str], validators: dict[str, Any], connections: int) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0, limit_per_host=connections)
    async with aiohttp.ClientSession(
        connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:

        async def worker(chunk: list[str]) -> None:
            for url in chunk:
                async with session.get(url, headers=_conditional(validators, url)) as response:
                    await response.read()
                    assert response.status == 304

        await asyncio.gather(*(worker(urls[i::connections]) for i in range(connections)))


_FLOORS = {"socket": _socket_floor, "httpcore": _httpcore_floor, "aiohttp": _aiohttp_floor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hosts", type=int, default=1, help="server addresses to spread over")
    parser.add_argument("--per-host", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--impl",
        action="append",
        metavar="NAME=SOURCE",
        help=f"a version of monitor/fetch.py (default: httpx={_HTTPX_FETCHER} and "
        "current=monitor/fetch.py)",
    )
    parser.add_argument(
        "--no-floors", action="store_true", help="skip the stacks' floors (run with --hosts 1)"
    )
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    raise_fd_limit()

    impls = args.impl or [f"httpx={_HTTPX_FETCHER}", f"current={ROOT / 'monitor/fetch.py'}"]
    scratch = Path(tempfile.mkdtemp(prefix="fetch-bench-"))
    modules = {}
    for spec in impls:
        name, _, source = spec.partition("=")
        modules[name] = load(name, source, scratch)

    feeds = [generate_feed(index, args.items) for index in range(args.feeds)]
    documents = {f.path: Document(f.body, f.content_type, f.last_modified) for f in feeds}
    polling = PollingConfig(concurrency=args.concurrency, per_host=args.per_host)
    rounds: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in modules}
    floors: dict[str, list[dict[str, float]]] = {name: [] for name in _FLOORS}
    validators: dict[str, tuple[Any, Any]] = {}
    with FeedServer(documents, cache_control="no-cache", hosts=args.hosts) as server:
        urls = [server.url(f.index, f.path) for f in feeds]
        meter = Meter(server)
        for number in range(args.rounds):
            order = list(modules) if number % 2 == 0 else list(reversed(modules))
            for name in order:
                rounds[name].append(one_round(modules[name], polling, urls, server, validators))
                warm = rounds[name][-1]["warm"]
                print(
                    f"round {number + 1} {name}: warm {warm['wall_s']:.3f} s wall,"
                    f" {warm['cpu_s']:.3f} s CPU, {warm['connections']:.0f} new connections",
                    file=sys.stderr,
                )
            if args.hosts == 1 and not args.no_floors:
                for name, floor in _FLOORS.items():
                    meter.start()
                    asyncio.run(floor(urls, validators, args.per_host))
                    floors[name].append(meter.stop())

    def stat(name: str, phase: str, key: str) -> tuple[float, float, float]:
        values = [r[phase][key] for r in rounds[name]]
        return statistics.median(values), min(values), max(values)

    print(
        f"\n{args.feeds} feeds on {args.hosts} host(s), per_host {args.per_host},"
        f" concurrency {args.concurrency}, {args.rounds} rounds; median (min–max)\n"
    )
    heads = (f"{name} wall s | {name} CPU s | {name} new conns" for name in modules)
    print("| cycle | " + " | ".join(heads) + " |")
    print("|---|" + "---|---|---|" * len(modules))
    for phase in _PHASES:
        cells = []
        for name in modules:
            for key in ("wall_s", "cpu_s"):
                median, low, high = stat(name, phase, key)
                cells.append(f"{median:.3f} ({low:.3f}–{high:.3f})")
            cells.append(f"{stat(name, phase, 'connections')[0]:.0f}")
        print(f"| {phase} | " + " | ".join(cells) + " |")
    if any(floors.values()):
        print("\nFloors: the warm cycle straight on each stack, per_host connections, no rules\n")
        print("| stack | wall s | CPU s | new conns |")
        print("|---|---|---|---|")
        for name, values in floors.items():
            cells = []
            for key in ("wall_s", "cpu_s"):
                column = [v[key] for v in values]
                cells.append(
                    f"{statistics.median(column):.3f} ({min(column):.3f}–{max(column):.3f})"
                )
            cells.append(f"{statistics.median(v['connections'] for v in values):.0f}")
            print(f"| {name} | " + " | ".join(cells) + " |")
    if len(modules) == 2:
        first, second = modules
        print(f"\n{first} ÷ {second}, medians:")
        for phase in _PHASES:
            ratios = [
                stat(first, phase, key)[0] / stat(second, phase, key)[0]
                for key in ("wall_s", "cpu_s")
            ]
            print(f"- {phase}: wall {ratios[0]:.2f}×, CPU {ratios[1]:.2f}×")

    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results / f"fetch-{args.feeds}-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "args": {**vars(args), "results": str(args.results)},
                "impls": impls,
                "rounds": rounds,
                "floors": floors,
            },
            indent=1,
        )
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
