"""The /healthz and /metrics listener: real HTTP over TCP on 127.0.0.1, real clients."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.health import HealthReport, HealthServer
from monitor.metrics import Metrics


def _serve(
    test: Callable[[HealthServer], Awaitable[Any]],
    health: Callable[[], Awaitable[HealthReport]] | None = None,
    **options: Any,
) -> Any:
    """Run `test` against a listener on a free port of 127.0.0.1."""

    async def healthy() -> HealthReport:
        return HealthReport(True, details={"feeds": {"failing": 0}})

    async def main() -> Any:
        metrics = Metrics(process=False)
        metrics.observe_poll("new", 200, 2, 0.1)
        server = HealthServer("127.0.0.1:0", health or healthy, metrics, **options)
        await server.start()
        try:
            return await test(server)
        finally:
            await server.aclose()

    return asyncio.run(main())


async def _get(server: HealthServer, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        return await client.get(path, **kwargs)


async def _raw(server: HealthServer, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send bytes as they are; return everything the server answers before closing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()
        await writer.wait_closed()


def test_healthz_is_200_with_a_json_body_when_healthy() -> None:
    response = _serve(lambda server: _get(server, "/healthz"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["connection"] == "close"
    body = response.json()
    assert body["status"] == "ok" and body["problems"] == []
    assert body["database_writable"] is True
    assert body["feeds"] == {"failing": 0}


def test_healthz_is_503_and_says_why_when_the_database_cannot_be_written() -> None:
    async def unwritable() -> HealthReport:
        return HealthReport(False, details={"config": {"error": ["config.yaml:2: bad"]}})

    response = _serve(lambda server: _get(server, "/healthz"), unwritable)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["problems"] == ["database not writable"]
    assert body["config"]["error"] == ["config.yaml:2: bad"]


def test_healthz_is_503_while_stopping() -> None:
    async def stopping() -> HealthReport:
        return HealthReport(True, stopping=True)

    response = _serve(lambda server: _get(server, "/healthz"), stopping)
    assert response.status_code == 503
    assert response.json()["problems"] == ["stopping"]


def test_a_health_check_that_hangs_answers_503_after_the_check_timeout() -> None:
    async def hangs() -> HealthReport:
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    response = _serve(lambda server: _get(server, "/healthz"), hangs, check_timeout=0.2)
    assert response.status_code == 503
    assert response.json()["error"] == "health check timed out"


def test_metrics_are_prometheus_text_refreshed_before_each_scrape() -> None:
    refreshed: list[int] = []

    async def refresh() -> None:
        refreshed.append(1)

    async def scrape_twice(server: HealthServer) -> list[httpx.Response]:
        return [await _get(server, "/metrics"), await _get(server, "/metrics")]

    responses = _serve(scrape_twice, refresh=refresh)
    assert [r.status_code for r in responses] == [200, 200]
    assert responses[0].headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(responses[0].text)}
    polls = {s.labels["outcome"]: s.value for s in families["news_monitor_polls"].samples}
    assert polls["new"] == 1
    assert len(refreshed) == 2


def test_head_query_strings_and_unknown_paths() -> None:
    async def requests(server: HealthServer) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            return [
                await client.head("/healthz"),
                await client.get("/healthz?verbose=1"),
                await client.get("/"),
                await client.post("/healthz", content=b""),
            ]

    head, query, missing, post = _serve(requests)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 0
    assert query.status_code == 200
    assert missing.status_code == 404
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"


def test_malformed_requests_get_a_4xx_and_the_connection_closes() -> None:
    async def requests(server: HealthServer) -> list[bytes]:
        return [
            await _raw(server, b"GET /healthz\r\n\r\n"),
            await _raw(server, b"GET /healthz HTTP/2.0\r\n\r\n"),
            await _raw(server, b"GET healthz HTTP/1.1\r\n\r\n"),
            await _raw(server, b"GET /healthz HTTP/1.1\r\nbroken header\r\n\r\n"),
            await _raw(server, b"GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
            await _raw(server, b"GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            await _raw(server, b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 10_000 + b"\r\n\r\n"),
            await _raw(server, b"GET /\xff HTTP/1.1\r\n\r\n"),
        ]

    answers = _serve(requests)
    statuses = [answer.split(b"\r\n", 1)[0] for answer in answers]
    assert statuses == [
        b"HTTP/1.1 400 Bad Request",
        b"HTTP/1.1 505 HTTP Version Not Supported",
        b"HTTP/1.1 400 Bad Request",
        b"HTTP/1.1 400 Bad Request",
        b"HTTP/1.1 400 Bad Request",
        b"HTTP/1.1 400 Bad Request",
        b"HTTP/1.1 431 Request Header Fields Too Large",
        b"HTTP/1.1 400 Bad Request",
    ]


def test_a_client_that_sends_nothing_gets_408_after_the_read_timeout() -> None:
    async def silent(server: HealthServer) -> tuple[bytes, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await _raw(server, b"GET /healthz HTTP/1.1\r\n", wait=5.0)
        return answer, loop.time() - started

    answer, seconds = _serve(silent, read_timeout=0.3)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout")
    assert 0.25 < seconds < 3


def test_the_listener_keeps_serving_after_a_client_hangs_up_mid_request() -> None:
    async def hang_up_then_ask(server: HealthServer) -> httpx.Response:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /heal")
        writer.close()
        await writer.wait_closed()
        return await _get(server, "/healthz")

    assert _serve(hang_up_then_ask).status_code == 200


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_an_ipv6_listen_address_is_written_in_brackets() -> None:
    async def ask(server: HealthServer) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.get(f"http://[::1]:{server.port}/healthz")

    async def main() -> httpx.Response:
        async def healthy() -> HealthReport:
            return HealthReport(True)

        server = HealthServer("[::1]:0", healthy, Metrics(process=False))
        await server.start()
        try:
            return await ask(server)
        finally:
            await server.aclose()

    assert asyncio.run(main()).status_code == 200
