"""A fast feed server for the benchmark: documents from memory over HTTP/1.1 keep-alive.

It runs in its own process(es), so its CPU time is not charged to the process being measured,
and answers with responses built once up front: 200 with `ETag` and `Last-Modified`, 304 to
`If-None-Match` / `If-Modified-Since` that still hold, 404 otherwise. The HTTP parser is the
minimum a client such as httpx needs: GET/HEAD, headers, optional request body, pipelining,
`Connection: close`, HTTP/1.0.

    with FeedServer({"/a.xml": Document(body, "application/rss+xml", when)}) as server:
        server.base_url  # http://127.0.0.1:PORT

    .venv/bin/python bench/server.py --selftest --connections 1500   # 1,500 connections at once
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import hashlib
import multiprocessing
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from multiprocessing.sharedctypes import RawArray
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["Document", "FeedServer", "die_with_parent", "raise_fd_limit"]

_STATS = ("requests", "ok", "not_modified", "not_found", "connections")


@dataclass(frozen=True, slots=True)
class Document:
    body: bytes
    content_type: str
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class _Prepared:
    etag: bytes
    last_modified: datetime
    last_modified_text: bytes
    ok: bytes
    """Status line and headers of the 200, without the blank line that ends them."""
    body: bytes
    not_modified: bytes


def _prepare(document: Document, cache_control: str = "max-age=60") -> _Prepared:
    etag = '"' + hashlib.sha256(document.body).hexdigest()[:20] + '"'
    when = document.last_modified.astimezone(UTC).replace(microsecond=0)
    last_modified = format_datetime(when, usegmt=True)
    common = f"ETag: {etag}\r\nLast-Modified: {last_modified}\r\n"
    if cache_control:
        common += f"Cache-Control: {cache_control}\r\n"
    ok = (
        "HTTP/1.1 200 OK\r\n"
        f"Content-Type: {document.content_type}\r\n"
        f"Content-Length: {len(document.body)}\r\n" + common
    )
    not_modified = "HTTP/1.1 304 Not Modified\r\n" + common
    return _Prepared(
        etag.encode(),
        when,
        last_modified.encode(),
        ok.encode("latin-1"),
        document.body,
        not_modified.encode("latin-1"),
    )


_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n"
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _not_modified(prepared: _Prepared, headers: dict[bytes, bytes]) -> bool:
    """RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since when both are sent."""
    none_match = headers.get(b"if-none-match")
    if none_match is not None:
        tags = {tag.strip().removeprefix(b"W/") for tag in none_match.split(b",")}
        return prepared.etag in tags or b"*" in tags
    since = headers.get(b"if-modified-since")
    if since is None:
        return False
    if since.strip() == prepared.last_modified_text:
        return True
    try:
        when = parsedate_to_datetime(since.decode("latin-1"))
    except (TypeError, ValueError):
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return prepared.last_modified <= when


class _Handler:
    def __init__(self, table: Mapping[str, _Prepared], stats: Any, slot: int) -> None:
        self._table = {path.encode(): prepared for path, prepared in table.items()}
        self._stats = stats
        self._base = slot * len(_STATS)

    def _count(self, index: int) -> None:
        self._stats[self._base + index] += 1

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._count(4)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is to be closed."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                writer.write(_BAD_REQUEST)
            return False
        lines = head[:-4].split(b"\r\n")
        request = lines[0].split(b" ")
        if len(request) != 3:
            writer.write(_BAD_REQUEST)
            return False
        method, target, version = request
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        length = headers.get(b"content-length")
        if length:
            await reader.readexactly(int(length))
        connection = headers.get(b"connection", b"").lower()
        keep_alive = connection != b"close" and (
            version == b"HTTP/1.1" or connection == b"keep-alive"
        )
        self._count(0)
        path = target.split(b"?", 1)[0]
        prepared = self._table.get(path)
        tail = b"\r\n" if keep_alive else b"Connection: close\r\n\r\n"
        if prepared is None:
            self._count(3)
            writer.write(_NOT_FOUND + tail + (b"" if method == b"HEAD" else b"not found\n"))
        elif _not_modified(prepared, headers):
            self._count(2)
            writer.write(prepared.not_modified + tail)
        else:
            self._count(1)
            if method == b"HEAD":
                writer.write(prepared.ok + tail)
            else:
                writer.writelines((prepared.ok, tail, prepared.body))
        if writer.transport.get_write_buffer_size() > 256_000:
            await writer.drain()
        return keep_alive


def raise_fd_limit() -> int:
    """Raise this process's open-file soft limit to the hard limit; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
    return soft


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies, however the parent ends."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _serve(
    socks: list[socket.socket], table: Mapping[str, _Prepared], stats: Any, slot: int
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    raise_fd_limit()
    handler = _Handler(table, stats, slot)

    async def main() -> None:
        servers = [await asyncio.start_server(handler, sock=sock, limit=65_536) for sock in socks]
        await asyncio.gather(*(server.serve_forever() for server in servers))

    asyncio.run(main())


_MAX_HOSTS = 250


def _host(number: int) -> str:
    return f"127.0.0.{1 + number}"


class FeedServer:
    """Serves `documents` (URL path → Document) on 127.0.0.1 from `processes` processes.

    With `hosts` > 1 the same documents are also served on 127.0.0.2, 127.0.0.3, … (the whole
    of 127.0.0.0/8 is loopback on Linux), same port: feed i can then be given its own host,
    `url(i, path)`, as feeds are spread over many sites in real life, and a client's per-host
    connection pools and limits work as they would there.

    The processes share the listening sockets (created here, inherited through fork); the
    documents reach them by fork too, so nothing large is pickled. `replace()` swaps some
    documents between benchmark cycles by forking new processes onto the same socket, so the
    port stays the same.

    `cache_control` is the `Cache-Control` sent with every 200 and 304. The default lets a
    client with an HTTP cache (feed2exec's CacheControl) skip the request for a minute;
    "no-cache" makes every client ask, conditionally, every time.
    """

    def __init__(
        self,
        documents: Mapping[str, Document],
        processes: int = 1,
        cache_control: str = "max-age=60",
        hosts: int = 1,
    ) -> None:
        if not 1 <= hosts <= _MAX_HOSTS:
            raise ValueError(f"hosts must be 1 to {_MAX_HOSTS}")
        self.hosts = hosts
        self._cache_control = cache_control
        self._table = {path: _prepare(doc, cache_control) for path, doc in documents.items()}
        self._processes = max(1, processes)
        self._stats = RawArray("q", len(_STATS) * self._processes)
        self._workers: list[multiprocessing.process.BaseProcess] = []
        self._socks: list[socket.socket] = []
        self._stopped_cpu = 0.0
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, index: int, path: str) -> str:
        """The URL of `path` for feed number `index`: on host index % hosts."""
        return f"http://{_host(index % self.hosts)}:{self.port}{path}"

    @property
    def pids(self) -> list[int]:
        return [worker.pid for worker in self._workers if worker.pid is not None]

    def start(self) -> FeedServer:
        for _attempt in range(20):
            try:
                self._socks = self._listen()
                break
            except OSError:  # the port was free on 127.0.0.1 but not on another address
                continue
        else:
            raise RuntimeError("no port free on every benchmark host address")
        self.port = self._socks[0].getsockname()[1]
        self._start_workers()
        return self

    def _listen(self) -> list[socket.socket]:
        socks: list[socket.socket] = []
        try:
            for number in range(self.hosts):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                port = socks[0].getsockname()[1] if number else 0
                sock.bind((_host(number), port))
                sock.listen(4096)
                sock.setblocking(False)
        except OSError:
            for sock in socks:
                sock.close()
            raise
        return socks

    def _start_workers(self) -> None:
        assert self._socks
        context = multiprocessing.get_context("fork")
        for slot in range(self._processes):
            worker = context.Process(
                target=_serve,
                args=(self._socks, self._table, self._stats, slot),
                name=f"bench-feed-server-{slot}",
                daemon=True,
            )
            worker.start()
            self._workers.append(worker)
        self._wait_ready()

    def replace(self, documents: Mapping[str, Document]) -> None:
        """Serve these documents (URL path → Document) instead, from now on.

        The serving processes are replaced, so open keep-alive connections close: call this
        between measured commands, not during one.
        """
        for path, document in documents.items():
            self._table[path] = _prepare(document, self._cache_control)
        self._stop_workers()
        self._start_workers()

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        waiting = {_host(0), _host(self.hosts - 1)}
        while True:
            for host in list(waiting):
                try:
                    with socket.create_connection((host, self.port), timeout=1) as probe:
                        probe.sendall(
                            b"GET /-ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                        )
                        if probe.recv(64).startswith(b"HTTP/1.1 404"):
                            waiting.discard(host)
                except OSError:
                    pass
            if not waiting:
                return
            if time.monotonic() > deadline or not all(w.is_alive() for w in self._workers):
                raise RuntimeError("the benchmark feed server did not start")
            time.sleep(0.02)

    def cpu_seconds(self) -> float:
        """User + system CPU time the server processes have used so far (from /proc)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = self._stopped_cpu
        for pid in self.pids:
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks
        return total

    def stats(self) -> dict[str, int]:
        totals = dict.fromkeys(_STATS, 0)
        for slot in range(self._processes):
            for index, name in enumerate(_STATS):
                totals[name] += self._stats[slot * len(_STATS) + index]
        return totals

    def _stop_workers(self) -> None:
        self._stopped_cpu = self.cpu_seconds()
        for worker in self._workers:
            if worker.is_alive():
                worker.terminate()
        for worker in self._workers:
            worker.join(timeout=5)
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGKILL)
                worker.join()
        self._workers.clear()

    def stop(self) -> None:
        self._stop_workers()
        for sock in self._socks:
            sock.close()
        self._socks = []

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# Self-test: many keep-alive connections at once, each making conditional requests. ----------


async def _client(port: int, paths: list[str], etags: dict[str, str], rounds: int) -> list[int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    statuses = []
    try:
        for number in range(rounds):
            path = paths[number % len(paths)]
            extra = ""
            if number % 3 == 1:
                extra = f"If-None-Match: {etags[path]}\r\n"
            elif number % 3 == 2:
                extra = "If-Modified-Since: Wed, 15 Jan 2025 12:00:00 GMT\r\n"
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if status != 304 and length:
                await reader.readexactly(length)
            statuses.append(status)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return statuses


async def _selftest(port: int, etags: dict[str, str], connections: int, rounds: int) -> None:
    paths = sorted(etags)
    started = time.perf_counter()
    results = await asyncio.gather(
        *(_client(port, paths[i % len(paths) :] + paths, etags, rounds) for i in range(connections))
    )
    seconds = time.perf_counter() - started
    flat = [status for statuses in results for status in statuses]
    counts = {status: flat.count(status) for status in sorted(set(flat))}
    print(
        f"{connections} connections × {rounds} requests: {len(flat)} responses in {seconds:.2f}s "
        f"({len(flat) / seconds:,.0f}/s); statuses {counts}"
    )
    expected = {200, 304}
    if set(counts) - expected or len(flat) != connections * rounds:
        raise SystemExit("self-test FAILED")


def main() -> None:
    parser = argparse.ArgumentParser(description="Self-test of the benchmark feed server.")
    parser.add_argument("--selftest", action="store_true", required=True)
    parser.add_argument("--connections", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    raise_fd_limit()
    when = datetime(2025, 1, 15, 11, 0, tzinfo=UTC)
    documents = {
        f"/feeds/{n:05d}.xml": Document(
            (b"<rss><channel>" + b"x" * (n * 97 % 4000) + b"</channel></rss>"),
            "application/rss+xml",
            when,
        )
        for n in range(200)
    }
    with FeedServer(documents, args.processes) as server:
        etags = {path: prepared.etag.decode() for path, prepared in server._table.items()}
        asyncio.run(_selftest(server.port, etags, args.connections, args.rounds))
        print(f"server counters: {server.stats()}")
        if server.stats()["connections"] < args.connections:
            sys.exit("self-test FAILED: fewer connections than opened")
    print("self-test OK")


if __name__ == "__main__":
    main()
