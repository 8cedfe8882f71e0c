"""HTTP/1.1 GETs over asyncio for `monitor.fetch`: a pool of kept-alive connections per host.

Only what polling feeds needs: GET with a few headers, keep-alive, Content-Length, chunked and
read-until-close bodies, TLS, and a proxy from the environment (absolute-form requests for
http, a CONNECT tunnel for https). llhttp (via httptools, as in uvicorn) parses responses. The
policy (deadline, size cap, decompression, redirects, per-host turns) stays in `monitor.fetch`;
this module bounds only what it reads itself: a response head of at most 64 KiB, a header line
of at most 8 KiB, at most 256 KiB of body buffered ahead of the reader.

Why not a general client: per request, aiohttp's session costs about 4x the socket's own CPU
and httpx's 20x (bench/fetch_bench.py), and a feed daemon makes thousands of small
conditional requests a minute, most answered 304.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import functools
import os
import re
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast
from urllib.parse import quote, unquote, urlsplit

import httptools

__all__ = [
    "BrokenConnection",
    "BrokenResponse",
    "CannotConnect",
    "Client",
    "HTTPError",
    "InvalidURL",
    "Response",
    "off_loop",
]

T = TypeVar("T")

HEAD_LIMIT = 64 * 1024
"""Bytes of status line, headers and trailers read before a response counts as broken."""
CHUNK_FRAMING = 64
"""Bytes of framing (size line, extensions) allowed per chunk of a chunked body."""
LINE_LIMIT = 8 * 1024
"""Bytes in one header's name and value."""
BUFFER_LIMIT = 256 * 1024
"""Body bytes buffered ahead of the reader before the socket stops being read."""
KEEPALIVE = 30.0
"""Seconds an idle connection is kept for reuse (servers close theirs after 5-75 s)."""
DNS_TTL = 10.0
"""Seconds a host name's addresses are reused for new connections (aiohttp's default)."""
_REASON_LIMIT = 80
_HOST_CHARS = re.compile(r"[a-z0-9._~!$&'()*+,;=:%-]+")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


class HTTPError(Exception):
    """A request that got no usable HTTP response; `str()` is one line for the feed's error."""


class InvalidURL(HTTPError):
    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"invalid URL: {why}")
        self.url = url


class CannotConnect(HTTPError):
    pass


class BrokenConnection(HTTPError):
    """The connection closed or failed before the response was whole."""

    def __init__(self, detail: str, *, before_response: bool = False) -> None:
        super().__init__(f"the server broke the connection: {detail}")
        self.before_response = before_response


class BrokenResponse(HTTPError):
    """Bytes that are not an HTTP/1.x response, or one over this module's bounds."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"the server sent a broken response: {detail}")


async def off_loop(work: Callable[[str], T], arg: str) -> T:
    """`work(arg)` in a daemon thread: a DNS lookup that hangs cannot delay the exit, as a
    worker of the default executor (joined at shutdown) would."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(work(arg))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="resolve", daemon=True).start()
    return await asyncio.wrap_future(future)


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a URL's request goes, and what it says."""

    scheme: str
    host: str
    """Lower-case, IDNA-encoded; an IPv6 address without brackets."""
    port: int
    host_header: str
    path: str
    """The request target: path and query, percent-encoded."""


@functools.lru_cache(maxsize=8192)  # the same few thousand feed URLs, every cycle
def _target(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname or ""
    except ValueError as exc:
        raise InvalidURL(url, str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidURL(url, f"{scheme or 'no'} scheme (only http and https)")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise InvalidURL(url, f"host name {host!r} cannot be encoded") from None
    if not host or not _HOST_CHARS.fullmatch(host):
        raise InvalidURL(url, f"host name {host!r} is not valid")
    default = 443 if scheme == "https" else 80
    port = default if port is None else port
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default else f"{shown}:{port}"
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_QUERY_SAFE)
    return _Target(scheme, host, port, host_header, path)


def _clean(value: str) -> bool:
    return "\r" not in value and "\n" not in value and "\0" not in value


class _Connection(asyncio.Protocol):
    """One socket, one exchange at a time. The parser's callbacks fill in the response."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._paused = False
        self._active = False
        self._tunnel: bytearray | None = None
        self._tunnel_waiter: asyncio.Future[bytes] | None = None
        self._begin()

    # The exchange ----------------------------------------------------------------------------

    def _begin(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._head_waiter: asyncio.Future[None] | None = None
        self._body_waiter: asyncio.Future[None] | None = None
        self._head_done = False
        self._wire = 0
        self._body_bytes = 0
        self._chunk_count = 0
        self._received = False
        self.status = 0
        self._reason = b""
        self.headers: dict[str, str] = {}
        self._chunks: list[bytes] = []
        self._buffered = 0
        self.complete = False
        self.keep_alive = False
        self._until_close = False
        self._error: HTTPError | None = None

    def send(self, request: bytes) -> None:
        if self._active:
            self._begin()
        self._active = True
        assert self.transport is not None
        self.transport.write(request)

    @property
    def reason(self) -> str:
        return self._reason[:_REASON_LIMIT].decode("latin-1")

    async def head(self) -> None:
        """Wait for the status line and headers."""
        if not self._head_done and self._error is None:
            self._head_waiter = self._loop.create_future()
            await self._head_waiter
        if self._error is not None:
            raise self._error

    async def read(self) -> bytes:
        """The next bytes of the body, or b"" once it is whole."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            self._body_waiter = self._loop.create_future()
            await self._body_waiter
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self._error is None

    def close(self, *, abort: bool = False) -> None:
        self.closed = True
        if self.transport is not None:
            # abort(): no TLS close_notify exchange, which could outlive the event loop.
            (self.transport.abort if abort else self.transport.close)()

    def _wake(self) -> None:
        for waiter in (self._head_waiter, self._body_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _fail(self, error: HTTPError) -> None:
        if self._error is None and not self.complete:
            self._error = error
        self.close()
        self._wake()

    # asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel_received(data)
            return
        if not self._active or self.complete:
            self.close()  # bytes nobody asked for: the connection's framing cannot be trusted
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            context = exc.__context__
            self._fail(context if isinstance(context, HTTPError) else BrokenResponse(str(exc)))
            return
        except httptools.HttpParserError as exc:
            self._fail(BrokenResponse(str(exc) or type(exc).__name__))
            return
        # What is not body (the head, chunk framing, trailers) is bounded: llhttp hands over a
        # header only once it is whole, so an endless one would otherwise grow unseen.
        self._wire += len(data)
        framing = self._wire - self._body_bytes - CHUNK_FRAMING * self._chunk_count
        if framing > HEAD_LIMIT:
            self._fail(BrokenResponse(f"a response head over {HEAD_LIMIT:,} bytes"))

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost ends the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._tunnel_waiter is not None and not self._tunnel_waiter.done():
            self._tunnel_waiter.set_exception(BrokenConnection("the proxy closed the tunnel"))
        if not self._active or self.complete:
            return
        if exc is None and self._head_done and self._until_close:
            self.complete = True  # the body was delimited by the close
            self._wake()
            return
        detail = " ".join(str(exc).split()) if exc else "closed before the response was whole"
        self._fail(
            BrokenConnection(detail or type(exc).__name__, before_response=not self._received)
        )

    # httptools callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            self.keep_alive = False  # a second response to one request

    def on_status(self, status: bytes) -> None:
        if len(self._reason) < _REASON_LIMIT:
            self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) > LINE_LIMIT:
            raise BrokenResponse(f"a header line over {LINE_LIMIT:,} bytes")
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        old = self.headers.get(key)
        self.headers[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            if status == 101:
                raise BrokenResponse("101 Switching Protocols to a GET")
            self.headers = {}  # an interim response: the real one follows
            self._reason = b""
            return
        self.status = status
        self._head_done = True
        headers = self.headers
        self._until_close = (
            status not in (204, 304)
            and "content-length" not in headers
            and "transfer-encoding" not in headers
        )
        waiter = self._head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_chunk_header(self) -> None:
        self._chunk_count += 1

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._body_bytes += len(body)
        self._buffered += len(body)
        if self._buffered > BUFFER_LIMIT and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        waiter = self._body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_message_complete(self) -> None:
        if not self._head_done:
            return  # the end of an interim (1xx) response
        self.complete = True
        self.keep_alive = self._parser.should_keep_alive() and not self._until_close
        self._wake()

    # A CONNECT tunnel, before TLS ------------------------------------------------------------

    async def tunnel(self, request: bytes) -> bytes:
        """Send `request` (a CONNECT) and return the proxy's response head."""
        self._tunnel = bytearray()
        self._tunnel_waiter = self._loop.create_future()
        assert self.transport is not None
        self.transport.write(request)
        try:
            return await self._tunnel_waiter
        finally:
            self._tunnel = None
            self._tunnel_waiter = None

    def _tunnel_received(self, data: bytes) -> None:
        assert self._tunnel is not None and self._tunnel_waiter is not None
        self._tunnel += data
        end = self._tunnel.find(b"\r\n\r\n")
        if self._tunnel_waiter.done():
            return
        if end >= 0:
            if end + 4 != len(self._tunnel):  # the server spoke first inside the tunnel
                self._tunnel_waiter.set_exception(BrokenResponse("bytes after the proxy's answer"))
            else:
                self._tunnel_waiter.set_result(bytes(self._tunnel[:end]))
        elif len(self._tunnel) > HEAD_LIMIT:
            self._tunnel_waiter.set_exception(BrokenResponse("the proxy's answer is too long"))


class Response:
    """A response whose head has arrived. `release()` it: the connection goes back to the pool
    when the body was read whole and the server keeps it alive, and is closed otherwise."""

    __slots__ = ("_client", "_connection", "_key")

    def __init__(self, client: Client, key: _Key, connection: _Connection) -> None:
        self._client = client
        self._key = key
        self._connection = connection

    @property
    def status(self) -> int:
        return self._connection.status

    @property
    def reason(self) -> str:
        return self._connection.reason

    @property
    def headers(self) -> dict[str, str]:
        """Lower-case names; a repeated header's values joined with ", "."""
        return self._connection.headers

    async def read(self) -> bytes:
        return await self._connection.read()

    def release(self) -> None:
        self._client._release(self._key, self._connection)


_Key = tuple[str, str, int, str]
"""scheme, host, port, and the proxy's URL or ""."""


class _Slot:
    """One key's connections: the idle ones (newest last), how many exist, who waits."""

    __slots__ = ("idle", "open", "waiters")

    def __init__(self) -> None:
        self.idle: list[_Connection] = []
        self.open = 0
        self.waiters: deque[asyncio.Future[None]] = deque()


class Client:
    """GETs over at most `per_host` connections to each host (and to each proxy), kept alive.

    Args:
        per_host: connections to one scheme, host and port at once; a request waits for one.
        connect_timeout: seconds for the TCP connect, TLS handshake and proxy tunnel.
        headers: sent with every request, after Host.
        ssl_context: called for the context of the first https connection.
        proxies: proxy URL by scheme, and `bypass(host_port)` for hosts reached directly.
        clock: monotonic seconds, for idle connections and the DNS cache.
    """

    def __init__(
        self,
        *,
        per_host: int,
        connect_timeout: float,
        headers: Sequence[tuple[str, str]],
        ssl_context: Callable[[], ssl.SSLContext],
        proxies: dict[str, str] | None = None,
        bypass: Callable[[str], bool] = lambda host: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_host = per_host
        self._connect_timeout = connect_timeout
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in headers)
        self._make_ssl = ssl_context
        self._ssl: ssl.SSLContext | None = None
        self._proxies = proxies or {}
        self._bypass = bypass
        self._clock = clock
        self._slots: dict[_Key, _Slot] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._swept = clock()
        self._closed = False

    async def get(self, url: str, headers: Sequence[tuple[str, str]] = ()) -> Response:
        """Send a GET for `url` and wait for the response's head.

        A kept-alive connection that turns out to have been closed by the server before it
        answered is retried once on a new connection.

        Raises:
            HTTPError: one of its kinds, with a one-line message.
        """
        target = _target(url)
        proxy = self._proxy_for(target)
        key: _Key = (target.scheme, target.host, target.port, proxy)
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers if _clean(value))
        path = target.path
        if proxy and target.scheme == "http":
            path = f"http://{target.host_header}{target.path}"
            extra += _proxy_authorization(proxy)
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {target.host_header}\r\n{self._fixed}{extra}\r\n"
        ).encode("latin-1", "replace")
        for attempt in (1, 2):
            connection, reused = await self._acquire(key, target)
            try:
                connection.send(request)
                await connection.head()
            except BrokenConnection as exc:
                self._release(key, connection)
                if reused and exc.before_response and attempt == 1:
                    continue
                raise
            except BaseException:
                self._release(key, connection)
                raise
            return Response(self, key, connection)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        self._closed = True
        for slot in self._slots.values():
            for connection in slot.idle:
                connection.close(abort=True)
            slot.idle.clear()
        self._slots.clear()

    # The pool --------------------------------------------------------------------------------

    async def _acquire(self, key: _Key, target: _Target) -> tuple[_Connection, bool]:
        now = self._clock()
        if now - self._swept > KEEPALIVE:
            self._sweep(now)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        while True:
            while slot.idle:
                connection = slot.idle.pop()
                if connection.closed or now - connection.idle_since > KEEPALIVE:
                    connection.close()
                    slot.open -= 1
                    continue
                return connection, True
            if slot.open < self._per_host:
                slot.open += 1
                try:
                    return await self._connect(key, target), False
                except BaseException:
                    slot.open -= 1
                    self._wake(slot)
                    raise
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            slot.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake(slot)  # pass the turn on
                else:
                    slot.waiters.remove(waiter)
                raise
            now = self._clock()

    def _release(self, key: _Key, connection: _Connection) -> None:
        slot = self._slots.get(key)
        if slot is None:  # closed meanwhile
            connection.close()
            return
        if connection.reusable and not self._closed:
            connection.idle_since = self._clock()
            slot.idle.append(connection)
        else:
            connection.close()
            slot.open -= 1
        self._wake(slot)

    @staticmethod
    def _wake(slot: _Slot) -> None:
        while slot.waiters:
            waiter = slot.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _sweep(self, now: float) -> None:
        """Close connections idle past KEEPALIVE, on hosts not polled since."""
        self._swept = now
        for slot in self._slots.values():
            kept = [c for c in slot.idle if not c.closed and now - c.idle_since <= KEEPALIVE]
            for connection in slot.idle:
                if connection not in kept:
                    connection.close()
                    slot.open -= 1
            slot.idle = kept
        self._dns = {k: v for k, v in self._dns.items() if v[0] > now}

    # Connecting ------------------------------------------------------------------------------

    def _proxy_for(self, target: _Target) -> str:
        proxy = self._proxies.get(target.scheme)
        if not proxy or self._bypass(target.host_header):
            return ""
        return proxy

    async def _connect(self, key: _Key, target: _Target) -> _Connection:
        scheme, host, port, proxy = key
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._connect_timeout):
            if not proxy:
                context = self._context() if scheme == "https" else None
                return await self._open(loop, host, port, context, host)
            hop = _target(proxy)
            if hop.scheme != "http":
                raise CannotConnect(f"cannot connect through the {hop.scheme} proxy: http only")
            connection = await self._open(loop, hop.host, hop.port, None, None)
            if scheme == "http":
                return connection
            try:
                return await self._tunnel(loop, connection, target, proxy)
            except BaseException:
                connection.close()
                raise

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = self._make_ssl()
        return self._ssl

    async def _open(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        context: ssl.SSLContext | None,
        server_hostname: str | None,
    ) -> _Connection:
        last: OSError | None = None
        for address in await self._addresses(host, port):
            try:
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop),
                    address,
                    port,
                    ssl=context,
                    server_hostname=server_hostname if context else None,
                )
            except ssl.SSLCertVerificationError as exc:
                raise CannotConnect(
                    f"cannot connect: TLS certificate of {host}:{port}: {exc}"
                ) from None
            except OSError as exc:
                last = exc
                continue
            return connection
        # asyncio's own message ("Connect call failed (...)") repeats the address.
        reason = (os.strerror(last.errno) if last.errno else str(last)) if last else "no address"
        raise CannotConnect(f"cannot connect to {host}:{port}: {reason}")

    async def _addresses(self, host: str, port: int) -> list[str]:
        if _is_ip(host):
            return [host]
        now = self._clock()
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            infos = await off_loop(
                lambda name: socket.getaddrinfo(
                    name, port, 0, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG
                ),
                host,
            )
        except (OSError, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise CannotConnect(f"cannot connect to {host}:{port}: {reason}") from None
        addresses: list[str] = []
        for family, _, _, _, address in infos:
            if family == socket.AF_INET6 and len(address) > 3 and address[3]:
                # A link-local address needs its scope; numeric, so no lookup.
                ip, _ = socket.getnameinfo(address, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
            else:
                ip = str(address[0])
            if ip not in addresses:
                addresses.append(ip)
        self._dns[(host, port)] = (now + DNS_TTL, addresses)
        return addresses

    async def _tunnel(
        self, loop: asyncio.AbstractEventLoop, connection: _Connection, target: _Target, proxy: str
    ) -> _Connection:
        host = f"[{target.host}]" if ":" in target.host else target.host
        authority = f"{host}:{target.port}"
        answer = await connection.tunnel(
            (
                f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
                f"{_proxy_authorization(proxy)}\r\n"
            ).encode("latin-1")
        )
        status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
        fields = status_line.split(" ", 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/1.") or fields[1] != "200":
            shown = status_line[:_REASON_LIMIT]
            raise CannotConnect(f"cannot connect through the proxy: it answered {shown!r}")
        assert connection.transport is not None
        try:
            transport = await loop.start_tls(
                connection.transport, connection, self._context(), server_hostname=target.host
            )
        except ssl.SSLCertVerificationError as exc:
            raise CannotConnect(
                f"cannot connect: TLS certificate of {target.host}:{target.port}: {exc}"
            ) from None
        except OSError as exc:
            raise CannotConnect(
                f"cannot connect to {target.host}:{target.port}: {exc.strerror or exc}"
            ) from None
        connection.transport = cast(asyncio.Transport, transport)
        return connection


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host.split("%", 1)[0])
    except OSError:
        return False
    return True


def _proxy_authorization(proxy: str) -> str:
    parts = urlsplit(proxy)
    if parts.username is None:
        return ""
    credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    token = base64.b64encode(credentials.encode()).decode("ascii")
    return f"Proxy-Authorization: Basic {token}\r\n"
