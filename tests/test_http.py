"""`monitor._http.Client` on a real socket: keep-alive, its pool's bounds, framing, limits.

Each test runs a scripted asyncio server on 127.0.0.1 in the test's own loop: `answer(head)`
returns the bytes to send for one request head (None closes the connection), so a test can
say exactly what a misbehaving server does.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from monitor._http import (
    HEAD_LIMIT,
    KEEPALIVE,
    BrokenConnection,
    BrokenResponse,
    CannotConnect,
    Client,
    InvalidURL,
)

T = TypeVar("T")
Answer = Callable[[bytes], bytes | None]


class Server:
    """Answers each request head with `answer(head)`; records heads and connections."""

    def __init__(self, answer: Answer, *, close_after: bool = False) -> None:
        self.answer = answer
        self.close_after = close_after
        self.heads: list[bytes] = []
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self.writers:
            writer.close()

    def url(self, path: str = "/feed.xml") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                reply = self.answer(head)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


def client(per_host: int = 2, clock: Callable[[], float] = time.monotonic) -> Client:
    return Client(
        per_host=per_host,
        connect_timeout=2.0,
        headers=[("User-Agent", "test")],
        ssl_context=ssl.create_default_context,
        clock=clock,
    )


def run(work: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(work(), 10))


async def body_of(http: Client, url: str, headers: list[tuple[str, str]] | None = None) -> bytes:
    response = await http.get(url, headers or [])
    try:
        chunks = []
        while chunk := await response.read():
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        response.release()


def ok(body: bytes = b"hello", *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body),
        b"".join(line + b"\r\n" for line in extra),
        body,
    )


def test_a_kept_alive_connection_is_reused() -> None:
    async def main() -> int:
        async with Server(lambda head: ok()) as server:
            http = client()
            for _ in range(3):
                assert await body_of(http, server.url()) == b"hello"
            await http.aclose()
            return server.connections

    assert run(main) == 1


def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error() -> None:
    """The server answers with `Connection: close` but leaves the close to later: the next
    request goes out on the dead connection and is retried once on a new one."""
    answered = 0

    def answer(head: bytes) -> bytes | None:
        nonlocal answered
        answered += 1
        return ok() if answered % 2 else None  # every second request finds the socket closing

    async def main() -> tuple[list[bytes], int]:
        async with Server(answer) as server:
            http = client()
            bodies = [await body_of(http, server.url()) for _ in range(3)]
            await http.aclose()
            return bodies, server.connections

    bodies, connections = run(main)
    assert bodies == [b"hello"] * 3
    assert connections == 3


def test_a_connection_idle_past_the_keepalive_time_is_not_reused() -> None:
    now = [0.0]

    async def main() -> int:
        async with Server(lambda head: ok()) as server:
            http = client(clock=lambda: now[0])
            await body_of(http, server.url())
            now[0] += KEEPALIVE + 1
            await body_of(http, server.url())
            await http.aclose()
            return server.connections

    assert run(main) == 2


def test_at_most_per_host_connections_are_open_to_a_host() -> None:
    async def main() -> tuple[int, list[bytes]]:
        release = asyncio.Event()
        heads = 0

        async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal heads
            try:
                while True:
                    await reader.readuntil(b"\r\n\r\n")
                    heads += 1
                    await release.wait()
                    writer.write(ok())
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(slow, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"
        http = client(per_host=2)
        tasks = [asyncio.create_task(body_of(http, url)) for _ in range(5)]
        while heads < 2:
            await asyncio.sleep(0)  # until both connections carry a request
        for _ in range(20):
            await asyncio.sleep(0)
        in_flight = heads
        release.set()
        bodies = await asyncio.gather(*tasks)
        await http.aclose()
        server.close()
        return in_flight, bodies

    in_flight, bodies = run(main)
    assert in_flight == 2
    assert bodies == [b"hello"] * 5


def test_a_chunked_body_is_read_whole_and_its_connection_reused() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )

    async def main() -> tuple[list[bytes], int]:
        async with Server(lambda head: chunked) as server:
            http = client()
            bodies = [await body_of(http, server.url()) for _ in range(2)]
            await http.aclose()
            return bodies, server.connections

    assert run(main) == ([b"abcde", b"abcde"], 1)


def test_a_body_delimited_by_the_close_is_read_whole_and_not_reused() -> None:
    async def main() -> tuple[list[bytes], int]:
        answer = b"HTTP/1.1 200 OK\r\n\r\nuntil the close"
        async with Server(lambda head: answer, close_after=True) as server:
            http = client()
            bodies = [await body_of(http, server.url()) for _ in range(2)]
            await http.aclose()
            return bodies, server.connections

    assert run(main) == ([b"until the close"] * 2, 2)


def test_a_head_that_never_ends_is_cut_at_the_limit() -> None:
    endless = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: abcdefgh\r\n" * (HEAD_LIMIT // 10)

    async def main() -> None:
        async with Server(lambda head: endless) as server:
            http = client()
            try:
                await http.get(server.url())
            finally:
                await http.aclose()

    with pytest.raises(BrokenResponse, match="a response head over 65,536 bytes"):
        run(main)


@pytest.mark.parametrize("chunk", [b"a", b"0123456789abcdef" * 64], ids=["1-byte", "1-KiB"])
def test_chunked_bodies_of_small_and_large_chunks_are_not_mistaken_for_framing(
    chunk: bytes,
) -> None:
    """Chunk framing is allowed per chunk: 100 KiB of 1-byte chunks is a body, not a head."""
    count = 100 * 1024 // len(chunk)
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed * count + b"0\r\n\r\n"
    )

    async def main() -> bytes:
        async with Server(lambda head: answer) as server:
            http = client()
            body = await body_of(http, server.url())
            await http.aclose()
            return body

    assert run(main) == chunk * count


def test_endless_trailers_after_a_chunked_body_are_cut_at_the_limit() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
        + b"X-Trailer: "
        + b"t" * (2 * HEAD_LIMIT)
    )

    async def main() -> bytes:
        async with Server(lambda head: answer) as server:
            http = client()
            try:
                return await body_of(http, server.url())
            finally:
                await http.aclose()

    with pytest.raises(BrokenResponse, match="a response head over 65,536 bytes"):
        run(main)


def test_a_reset_before_the_answer_on_a_new_connection_is_a_broken_connection() -> None:
    async def main() -> None:
        async with Server(lambda head: None) as server:
            http = client()
            try:
                await http.get(server.url())
            finally:
                await http.aclose()

    with pytest.raises(BrokenConnection, match=r"^the server broke the connection: "):
        run(main)


def test_bytes_sent_after_the_answer_make_the_connection_unusable() -> None:
    async def main() -> int:
        async with Server(lambda head: ok() + b"HTTP/1.1 200 OK\r\n") as server:
            http = client()
            await body_of(http, server.url())
            await body_of(http, server.url())
            await http.aclose()
            return server.connections

    assert run(main) == 2


def test_the_request_is_well_formed_for_odd_urls_and_values() -> None:
    async def main() -> list[bytes]:
        async with Server(lambda head: ok()) as server:
            http = client()
            base = f"http://127.0.0.1:{server.port}"
            await body_of(http, base + "/خبر feed.xml?q=a b#frag")
            await body_of(http, base, [("If-None-Match", '"x"\r\nX-Injected: 1')])
            await http.aclose()
            return server.heads

    first, second = run(main)
    assert first.startswith(b"GET /%D8%AE%D8%A8%D8%B1%20feed.xml?q=a%20b HTTP/1.1\r\n")
    assert b"Host: 127.0.0.1:" in first
    assert second.startswith(b"GET / HTTP/1.1\r\n")
    assert b"X-Injected" not in second and b"If-None-Match" not in second


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.org/feed.xml", "ftp scheme (only http and https)"),
        ("http://exa mple.org/feed", "host name 'exa mple.org' is not valid"),
        ("http://example.org:99999/feed", "Port out of range 0-65535"),
    ],
)
def test_an_invalid_url_is_refused_before_connecting(url: str, why: str) -> None:
    async def main() -> None:
        await client().get(url)

    with pytest.raises(InvalidURL) as caught:
        run(main)
    assert str(caught.value) == f"invalid URL: {why}"


def test_a_refused_connection_names_the_host_and_port() -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        await client().get(f"http://127.0.0.1:{port}/")

    with pytest.raises(CannotConnect, match=r"^cannot connect to 127\.0\.0\.1:\d+: "):
        run(main)


def test_an_http_proxy_gets_the_absolute_url_and_the_credentials() -> None:
    async def main() -> bytes:
        async with Server(lambda head: ok()) as proxy:
            http = Client(
                per_host=2,
                connect_timeout=2.0,
                headers=[],
                ssl_context=ssl.create_default_context,
                proxies={"http": f"http://desk%40nm:s%3Acret@127.0.0.1:{proxy.port}"},
            )
            await body_of(http, "http://feeds.example.org/feed.xml")
            await http.aclose()
            return proxy.heads[0]

    head = run(main)
    assert head.startswith(b"GET http://feeds.example.org/feed.xml HTTP/1.1\r\n")
    assert b"Host: feeds.example.org\r\n" in head
    token = base64.b64encode(b"desk@nm:s:cret")
    assert b"Proxy-Authorization: Basic " + token + b"\r\n" in head
