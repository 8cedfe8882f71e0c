"""HTTP for feeds: conditional GET, a total deadline, a size cap, redirects, polite limits.

One `Fetcher` serves every feed, over one pool of kept-alive connections (`monitor._http`: the
HTTP stack was chosen on measurements, see bench/README.md). Failures come out
as `FetchError` with the HTTP status and the server's `Retry-After` when it sent one.
Redirects are followed only where `check_redirect` allows: http(s), and never from a public
address into loopback, link-local or private ones. A host that keeps timing out is backed off
as a whole.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import ipaddress
import os
import random
import socket
import ssl
import time
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import structlog

from monitor import __version__
from monitor._http import Client, HTTPError, Response, off_loop
from monitor.config import PollingConfig
from monitor.errors import FetchError

__all__ = [
    "FetchResult",
    "Fetcher",
    "Resolver",
    "backoff_delay",
    "check_redirect",
    "parse_retry_after",
]

log = structlog.get_logger("monitor.fetch")

Resolver = Callable[[str], Sequence[str]]
"""A host name -> its IP addresses (blocking; run off the event loop). IP literals skip it."""

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
_MAX_ERROR = 160
"""Characters of a transport error's message kept (it may quote the server's bytes)."""
_HOST_TIMEOUTS = 3
"""Timeouts in a row after which a host is backed off: its queued feeds fail at once."""


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


@functools.lru_cache(maxsize=4096)  # twice per request, for the same few thousand feeds
def _host_name(url: str) -> str:
    """`host:port` as the URL has it, never its `user:password@`."""
    return urlsplit(url).netloc.rpartition("@")[2].lower()


def _getaddrinfo(host: str) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)]


def _kind(address: str) -> str:
    """'public', or which kind of non-public address: loopback, link-local or private."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_unspecified:  # 0.0.0.0 and :: connect to this machine
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    return "public" if ip.is_global else "private"


async def _kinds(host: str, resolve: Resolver) -> set[str]:
    try:
        addresses: Sequence[str] = [str(ipaddress.ip_address(host.split("%", 1)[0]))]
    except ValueError:
        addresses = await off_loop(resolve, host)
    return {_kind(address.split("%", 1)[0]) for address in addresses}


async def check_redirect(
    origin_url: str,
    target_url: str,
    *,
    allow_private: bool,
    resolve: Resolver | None = None,
) -> None:
    """Whether a redirect from a feed at `origin_url` may be followed to `target_url`.

    Only http(s) targets are followed. Unless `allow_private`, every address the target's host
    resolves to must be public, or of a kind (loopback, link-local, private) that the origin's
    own addresses include: a feed on 127.0.0.1 may move to another port of it, a feed on the
    internet may not move into the machine or its network.

    Raises:
        FetchError: a one-line reason the redirect is refused.
    """
    target = urlsplit(target_url)
    if target.scheme not in ("http", "https"):
        raise FetchError(f"refused a redirect to a {target.scheme}: URL (only http and https)")
    host = (target.hostname or "").lower()
    origin = (urlsplit(origin_url).hostname or "").lower()
    if allow_private or host == origin:
        return
    resolve = resolve or _getaddrinfo
    try:
        kinds = await _kinds(host, resolve)
    except (OSError, UnicodeError, ValueError):
        raise FetchError(f"refused a redirect to {host}: cannot resolve it") from None
    try:
        allowed = {"public"} | await _kinds(origin, resolve)
    except (OSError, UnicodeError, ValueError):
        allowed = {"public"}
    refused = sorted(kinds - allowed)
    if refused:
        raise FetchError(
            f"refused a redirect to {host}: a {refused[0]} address, and the feed is not on one"
            " (polling.allow_private)"
        )


class _Host:
    """One host's turn-taking and its run of timeouts."""

    __slots__ = ("limit", "timeouts", "until", "until_text")

    def __init__(self, per_host: int) -> None:
        self.limit = asyncio.Semaphore(per_host)
        self.timeouts = 0
        self.until = 0.0
        self.until_text = ""


def _default_ssl_context() -> ssl.SSLContext:
    """Certificates from `SSL_CERT_FILE` or `SSL_CERT_DIR` when set, else certifi's bundle."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    import certifi  # only when a feed is on https: loading the bundle takes a while

    return ssl.create_default_context(cafile=certifi.where())


def _env_proxies() -> dict[str, str]:
    """`http_proxy` / `https_proxy` / `all_proxy` from the environment, by scheme."""
    found = urllib.request.getproxies_environment()
    return {
        scheme: found.get(scheme) or found["all"]
        for scheme in ("http", "https")
        if found.get(scheme) or found.get("all")
    }


class _HostTurn:
    """`Fetcher.host_slot`'s context: a class rather than an async generator, which costs
    several times as much on every poll (issue 14)."""

    __slots__ = ("_fetcher", "_host", "_name")

    def __init__(self, fetcher: Fetcher, name: str, host: _Host) -> None:
        self._fetcher, self._name, self._host = fetcher, name, host

    async def __aenter__(self) -> None:
        refuse = self._fetcher._refuse_if_backing_off
        refuse(self._name, self._host)
        await self._host.limit.acquire()
        try:
            # The host may have started backing off while this feed was queued.
            refuse(self._name, self._host)
        except BaseException:
            self._host.limit.release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._host.limit.release()


class Fetcher:
    """Fetches feeds under a per-host and a global concurrency limit, in that order.

    `fetch()` takes both itself. The daemon holds `host_slot()` and its own global slot around
    a whole poll and calls `get()` inside them.

    Args:
        polling: the limits, the deadline, the User-Agent and `allow_private`.
        resolve: how redirect targets' host names are resolved (default: getaddrinfo).
        clock: monotonic seconds, for how long a host is backed off.
        ssl_context: which certificates https feeds are verified against (default:
            `_default_ssl_context()`, made when the first https feed is fetched).
    """

    def __init__(
        self,
        polling: PollingConfig,
        *,
        resolve: Resolver | None = None,
        clock: Callable[[], float] = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self._polling = polling
        self._deadline = polling.timeout.total_seconds()
        self._resolve = resolve or _getaddrinfo
        self._clock = clock
        self._global = asyncio.Semaphore(polling.concurrency)
        self._hosts: dict[str, _Host] = {}
        self._client = Client(
            # Bounds hops of redirects too, which hold no host slot.
            per_host=polling.per_host,
            # The whole exchange is under `get`'s deadline; this bounds the connect alone.
            connect_timeout=min(self._deadline, 10.0),
            headers=[
                ("User-Agent", polling.user_agent or USER_AGENT),
                ("Accept", _ACCEPT),
                ("Accept-Encoding", ", ".join(_WBITS)),
            ],
            ssl_context=lambda: ssl_context or _default_ssl_context(),
            proxies=_env_proxies(),
            bypass=urllib.request.proxy_bypass,
            clock=clock,
        )

    @property
    def polling(self) -> PollingConfig:
        return self._polling

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
        await self._client.aclose()

    def _host(self, url: str) -> tuple[str, _Host]:
        name = _host_name(url)
        host = self._hosts.get(name)
        if host is None:
            host = self._hosts[name] = _Host(self._polling.per_host)
        return name, host

    def _refuse_if_backing_off(self, name: str, host: _Host) -> None:
        left = host.until - self._clock()
        if host.timeouts >= _HOST_TIMEOUTS and left > 0:
            # `retry_after`: the feed is not tried again before its host is.
            raise FetchError(
                f"host {name} timed out {host.timeouts} times in a row;"
                f" backing off until {host.until_text}",
                retry_after=left,
            )

    def host_slot(self, url: str) -> _HostTurn:
        """Wait for a turn on `url`'s host (`polling.per_host` at once), holding nothing else
        (`async with`).

        A caller takes any global slot only once inside, so feeds queued on one slow host
        never keep other hosts' feeds waiting.

        Raises:
            FetchError: at once, while the host is backed off after timing out repeatedly.
        """
        name, host = self._host(url)
        return _HostTurn(self, name, host)

    async def fetch(
        self,
        url: str,
        etag: str | None = None,
        last_modified: str | None = None,
        *,
        origin: str | None = None,
    ) -> FetchResult:
        """Take a turn on the host and a global slot, then `get` the URL."""
        async with self.host_slot(url), self._global:
            return await self.get(url, etag, last_modified, origin=origin)

    async def get(
        self,
        url: str,
        etag: str | None = None,
        last_modified: str | None = None,
        *,
        origin: str | None = None,
    ) -> FetchResult:
        """GET `url` conditionally, now: the caller holds `host_slot(url)`. The whole exchange
        is bounded by `polling.timeout`.

        `origin` is the feed's configured URL when `url` is a remembered new address of it:
        that address must pass the redirect rule from `origin` too.

        Raises:
            FetchError: with `.status` and `.retry_after` where the server gave them.
        """
        name, host = self._host(url)
        try:
            async with asyncio.timeout(self._deadline):
                result = await self._fetch(url, etag, last_modified, origin or url)
        except TimeoutError:
            self._timed_out(name, host)
            raise FetchError(f"timed out after {self._deadline:g}s") from None
        except zlib.error as exc:
            raise FetchError(f"cannot decompress the response: {exc}") from exc
        except HTTPError as exc:
            raise FetchError(_one_line(str(exc))) from exc
        except FetchError:
            host.timeouts = 0  # it answered, if not as it should
            raise
        host.timeouts = 0
        return result

    def _timed_out(self, name: str, host: _Host) -> None:
        host.timeouts += 1
        if host.timeouts < _HOST_TIMEOUTS or self._clock() < host.until:
            return  # requests already in flight when the backoff began do not lengthen it
        # Doubling from the default interval with each further timeout, capped.
        rounds = min(host.timeouts - _HOST_TIMEOUTS, 30)
        seconds = min(
            self._polling.interval.total_seconds() * 2**rounds,
            self._polling.max_backoff.total_seconds(),
        )
        host.until = self._clock() + seconds
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        host.until_text = until.strftime("%Y-%m-%dT%H:%M:%SZ")
        log.warning("host.backing_off", host=name, timeouts=host.timeouts, until=host.until_text)

    async def _fetch(
        self, url: str, etag: str | None, last_modified: str | None, origin: str
    ) -> FetchResult:
        headers = []
        if etag:
            headers.append(("If-None-Match", etag))
        if last_modified:
            headers.append(("If-Modified-Since", last_modified))
        allow_private = self._polling.allow_private
        if url != origin:
            await check_redirect(origin, url, allow_private=allow_private, resolve=self._resolve)
        current = url
        all_permanent = True
        client = self._client
        for _ in range(_MAX_REDIRECTS + 1):
            response = await client.get(current, headers)
            try:
                status = response.status
                if status in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError(
                            f"HTTP {status} redirect without a Location", status=status
                        )
                    await self._read_capped(response)  # so the connection can be reused
                    all_permanent = all_permanent and status in _PERMANENT
                    current = urljoin(current, location)
                else:
                    return await self._answer(
                        response, url, current, all_permanent, etag, last_modified
                    )
            finally:
                response.release()
            await check_redirect(
                origin, current, allow_private=allow_private, resolve=self._resolve
            )
        raise FetchError(f"more than {_MAX_REDIRECTS} redirects")

    async def _answer(
        self,
        response: Response,
        url: str,
        current: str,
        all_permanent: bool,
        etag: str | None,
        last_modified: str | None,
    ) -> FetchResult:
        status, headers = response.status, response.headers
        moved_to = current if current != url and all_permanent else None
        if status == 304:
            await self._read_capped(response)
            return FetchResult(
                304,
                b"",
                None,
                headers.get("etag", etag),
                headers.get("last-modified", last_modified),
                current,
                moved_to,
            )
        if status >= 400:
            raise FetchError(
                f"HTTP {status} {_one_line(response.reason)}".rstrip(),
                status=status,
                retry_after=parse_retry_after(headers.get("retry-after")),
            )
        content = await self._read_capped(response)
        return FetchResult(
            status,
            content,
            headers.get("content-type"),
            headers.get("etag"),
            headers.get("last-modified"),
            current,
            moved_to,
        )

    async def _read_capped(self, response: Response) -> bytes:
        cap = self._polling.max_bytes
        headers = response.headers
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FetchError(f"response of {int(declared):,} bytes is over the {cap:,}-byte cap")
        encoding = headers.get("content-encoding")
        codings = (
            [
                coding
                for coding in (c.strip().lower() for c in encoding.split(","))
                if coding and coding != "identity"
            ]
            if encoding
            else []
        )
        if len(codings) > 1 or (codings and codings[0] not in _WBITS):
            raise FetchError(f"unsupported Content-Encoding: {', '.join(codings)}")
        inflate = zlib.decompressobj(_WBITS[codings[0]]) if codings else None
        chunks: list[bytes] = []
        size = 0
        # Decompressed bytes count against the cap, and no more than the cap is ever inflated
        # (max_length), so a gzip bomb costs neither memory nor time beyond the cap.
        while raw := await response.read():
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


def _one_line(text: str) -> str:
    """At most _MAX_ERROR characters on one line: errors may quote what the server sent."""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"
