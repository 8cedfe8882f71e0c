"""HTTP for feeds: conditional GET, a total deadline, a size cap, redirects, polite limits.

One `Fetcher` (one httpx.AsyncClient) serves every feed. Failures come out as `FetchError`
with the HTTP status and the server's `Retry-After` when it sent one.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import httpx

from monitor import __version__
from monitor.config import PollingConfig
from monitor.errors import FetchError

__all__ = ["FetchResult", "Fetcher", "backoff_delay", "parse_retry_after"]

USER_AGENT = f"news-monitor/{__version__} (+https://github.com/news-monitor/news-monitor)"
_MAX_REDIRECTS = 5
_PERMANENT = {301, 308}
_REDIRECTS = {301, 302, 303, 307, 308}
_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}
"""The Content-Encodings read (and so the only ones asked for), as zlib window bits."""
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int
    """200, or 304 when the feed has not changed since the stored validators."""
    content: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None
    url: str
    """The URL the content came from, after redirects."""
    moved_to: str | None = None
    """Set when every redirect on the way was permanent: the feed's new address."""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_delay(
    interval: timedelta,
    error_count: int,
    max_backoff: timedelta,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> timedelta:
    """When to try a failing feed again: doubling from its interval, capped, with ±10% jitter.

    A server's `Retry-After` is honoured when it asks for longer (still capped), so a feed is
    never dropped: at worst it is tried every `max_backoff`.
    """
    rng = rng or random.Random()
    exponent = min(max(error_count - 1, 0), 30)
    seconds = min(interval.total_seconds() * 2**exponent, max_backoff.total_seconds())
    seconds *= rng.uniform(0.9, 1.1)
    if retry_after is not None:
        seconds = max(seconds, min(retry_after, max_backoff.total_seconds()))
    return timedelta(seconds=min(seconds, max_backoff.total_seconds()))


class Fetcher:
    """Fetches feeds under a global and a per-host concurrency limit."""

    def __init__(self, polling: PollingConfig, transport: httpx.AsyncBaseTransport | None = None):
        self._polling = polling
        self._deadline = polling.timeout.total_seconds()
        self._transport = transport
        self._ssl = httpx.create_ssl_context()
        # One small client per host: httpcore's pool does work quadratic in its size on every
        # request, so many small pools beat one large one.
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._global = asyncio.Semaphore(polling.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    def _client(self, url: str) -> httpx.AsyncClient:
        host = urlsplit(url).netloc.lower()
        client = self._clients.get(host)
        if client is None:
            polling = self._polling
            client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._deadline, connect=min(self._deadline, 10.0)),
                limits=httpx.Limits(
                    max_connections=polling.per_host, max_keepalive_connections=polling.per_host
                ),
                headers={
                    "User-Agent": polling.user_agent or USER_AGENT,
                    "Accept": _ACCEPT,
                    "Accept-Encoding": ", ".join(_WBITS),
                },
                follow_redirects=False,
                verify=self._ssl,
                transport=self._transport,
            )
            self._clients[host] = client
        return client

    def _host_limit(self, url: str) -> asyncio.Semaphore:
        host = urlsplit(url).netloc.lower()
        if host not in self._hosts:
            self._hosts[host] = asyncio.Semaphore(self._polling.per_host)
        return self._hosts[host]

    async def fetch(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """GET `url` conditionally; the whole exchange is bounded by `polling.timeout`.

        Raises:
            FetchError: with `.status` and `.retry_after` where the server gave them.
        """
        async with self._global, self._host_limit(url):
            try:
                async with asyncio.timeout(self._deadline):
                    return await self._fetch(url, etag, last_modified)
            except TimeoutError:
                raise FetchError(f"timed out after {self._deadline:g}s") from None
            except httpx.TooManyRedirects as exc:
                raise FetchError(str(exc)) from exc
            except httpx.InvalidURL as exc:
                raise FetchError(f"invalid URL: {exc}") from exc
            except httpx.TimeoutException:
                raise FetchError(f"timed out after {self._deadline:g}s") from None
            except (httpx.DecodingError, zlib.error) as exc:
                raise FetchError(f"cannot decompress the response: {exc}") from exc
            except httpx.TransportError as exc:
                raise FetchError(_describe_transport_error(exc)) from exc

    async def _fetch(self, url: str, etag: str | None, last_modified: str | None) -> FetchResult:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        all_permanent = True
        for _ in range(_MAX_REDIRECTS + 1):
            client = self._client(current)
            request = client.build_request("GET", current, headers=headers)
            response = await client.send(request, stream=True)
            try:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchError(
                            f"HTTP {response.status_code} redirect without a Location",
                            status=response.status_code,
                        )
                    await self._read_capped(response)  # so the connection can be reused
                    all_permanent = all_permanent and response.status_code in _PERMANENT
                    current = urljoin(current, location)
                    continue
                moved_to = current if current != url and all_permanent else None
                if response.status_code == 304:
                    await self._read_capped(response)
                    return FetchResult(
                        304,
                        b"",
                        None,
                        response.headers.get("ETag", etag),
                        response.headers.get("Last-Modified", last_modified),
                        current,
                        moved_to,
                    )
                if response.status_code >= 400:
                    raise FetchError(
                        f"HTTP {response.status_code} {response.reason_phrase}".rstrip(),
                        status=response.status_code,
                        retry_after=parse_retry_after(response.headers.get("Retry-After")),
                    )
                content = await self._read_capped(response)
                return FetchResult(
                    response.status_code,
                    content,
                    response.headers.get("Content-Type"),
                    response.headers.get("ETag"),
                    response.headers.get("Last-Modified"),
                    current,
                    moved_to,
                )
            finally:
                await response.aclose()
        raise FetchError(f"more than {_MAX_REDIRECTS} redirects")

    async def _read_capped(self, response: httpx.Response) -> bytes:
        cap = self._polling.max_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FetchError(f"response of {int(declared):,} bytes is over the {cap:,}-byte cap")
        codings = [
            coding
            for coding in (
                c.strip().lower() for c in response.headers.get("Content-Encoding", "").split(",")
            )
            if coding and coding != "identity"
        ]
        if len(codings) > 1 or (codings and codings[0] not in _WBITS):
            raise FetchError(f"unsupported Content-Encoding: {', '.join(codings)}")
        inflate = zlib.decompressobj(_WBITS[codings[0]]) if codings else None
        chunks: list[bytes] = []
        size = 0
        # Decompressed bytes count against the cap, and no more than the cap is ever inflated
        # (max_length), so a gzip bomb costs neither memory nor time beyond the cap.
        async for raw in response.aiter_raw():
            while raw:
                if inflate is None:
                    chunk, raw = raw, b""
                else:
                    chunk = inflate.decompress(raw, cap + 1 - size)
                    raw = inflate.unconsumed_tail
                size += len(chunk)
                if size > cap:
                    raise FetchError(f"response is over the {cap:,}-byte cap (polling.max_bytes)")
                chunks.append(chunk)
        return b"".join(chunks)


def _describe_transport_error(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {text}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server broke the connection: {text}"
    return f"{type(exc).__name__}: {text}"
