"""`Fetcher` over TLS, against a real HTTPS server on 127.0.0.1 with a certificate made here."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import http.server
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import rss
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from monitor.config import PollingConfig
from monitor.errors import FetchError
from monitor.fetch import Fetcher, FetchResult

FEED = rss([{"title": "Bridge reopened", "link": "https://n.example.org/1", "guid": "t-1"}])
ETAG = '"tls-1"'


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        # Valid for the address only: a name that reaches the same server is not.
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass
class HttpsServer:
    """Serves FEED (gzipped, with an ETag; 304 to it) at /feed.xml over TLS, keep-alive."""

    server: http.server.ThreadingHTTPServer
    ca_pem: bytes
    connections: list[str] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/feed.xml"

    def trusting(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate authority alone."""
        return ssl.create_default_context(cadata=self.ca_pem.decode())


@pytest.fixture
def https(tmp_path: Path) -> Iterator[HttpsServer]:
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = _certificate("news-monitor test CA", ca_key, "news-monitor test CA", ca_key, ca=True)
    leaf = _certificate("127.0.0.1", leaf_key, "news-monitor test CA", ca_key, ca=False)
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    chain.write_bytes(_pem(leaf) + _pem(ca))
    key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key)
    body = gzip.compress(FEED)
    state: HttpsServer

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            state.connections.append(self.client_address[1])

        def do_GET(self) -> None:
            state.requests.append({k.lower(): v for k, v in self.headers.items()})
            if self.headers.get("If-None-Match") == ETAG:
                self.send_response(304)
                self.send_header("ETag", ETAG)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", ETAG)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state = HttpsServer(server, _pem(ca))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def polling() -> PollingConfig:
    return PollingConfig(timeout="5s")


def test_an_https_feed_is_fetched_verified_decoded_and_then_not_modified(
    https: HttpsServer,
) -> None:
    async def twice() -> tuple[FetchResult, FetchResult]:
        async with Fetcher(polling(), ssl_context=https.trusting()) as fetcher:
            first = await fetcher.fetch(https.url)
            return first, await fetcher.fetch(https.url, first.etag)

    first, second = asyncio.run(twice())
    assert (first.status, first.content, first.etag, first.url) == (200, FEED, ETAG, https.url)
    assert second.not_modified and (second.etag, second.content) == (ETAG, b"")
    assert [r.get("if-none-match") for r in https.requests] == [None, ETAG]
    assert https.requests[0]["user-agent"].startswith("news-monitor/")
    assert len(https.connections) == 1, "the TLS connection was not reused"


def test_an_untrusted_certificate_fails_the_fetch_clearly(https: HttpsServer) -> None:
    async def once() -> FetchResult:
        async with Fetcher(polling()) as fetcher:  # certifi's authorities: not this one
            return await fetcher.fetch(https.url)

    with pytest.raises(FetchError) as caught:
        asyncio.run(once())
    assert str(caught.value).startswith("cannot connect: TLS certificate of 127.0.0.1:")
    assert "certificate verify failed" in str(caught.value)
    assert caught.value.status is None
    assert https.requests == []


def test_a_certificate_for_another_name_fails_the_fetch(https: HttpsServer) -> None:
    """The certificate is for 127.0.0.1; `localhost` reaches the same server but is not it."""
    url = https.url.replace("127.0.0.1", "localhost")

    async def once() -> FetchResult:
        async with Fetcher(polling(), ssl_context=https.trusting()) as fetcher:
            return await fetcher.fetch(url)

    with pytest.raises(FetchError) as caught:
        asyncio.run(once())
    assert str(caught.value).startswith("cannot connect: TLS certificate of localhost:")
    assert "Hostname mismatch" in str(caught.value)
    assert https.requests == []


class ConnectProxy:
    """An HTTP proxy that only tunnels (CONNECT), as corporate proxies do for https."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        self.heads.append(head)
        host, _, port = head.split(b" ")[1].decode().rpartition(":")
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(source: socket.socket, sink: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    sink.sendall(data)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
        back.start()
        pipe(client, upstream)
        back.join(timeout=5)
        upstream.close()
        client.close()

    def close(self) -> None:
        self._listener.close()


def test_an_https_feed_is_fetched_through_a_proxy_tunnel_verified_end_to_end(
    https: HttpsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = ConnectProxy()
    monkeypatch.setenv("https_proxy", f"http://desk:secret@127.0.0.1:{proxy.port}")
    monkeypatch.delenv("no_proxy", raising=False)

    async def twice() -> tuple[FetchResult, FetchResult]:
        async with Fetcher(polling(), ssl_context=https.trusting()) as fetcher:
            first = await fetcher.fetch(https.url)
            return first, await fetcher.fetch(https.url, first.etag)

    try:
        first, second = asyncio.run(twice())
    finally:
        proxy.close()
    assert (first.status, first.content) == (200, FEED)
    assert second.not_modified
    port = https.server.server_address[1]
    assert len(proxy.heads) == 1, "the tunnel was not kept alive"
    assert proxy.heads[0].startswith(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n".encode())
    assert b"Proxy-Authorization: Basic ZGVzazpzZWNyZXQ=\r\n" in proxy.heads[0]
    # The credentials go to the proxy only, never through the tunnel to the feed's server.
    assert all("proxy-authorization" not in request for request in https.requests)


def test_a_proxy_tunnel_to_an_untrusted_server_fails_the_certificate_check(
    https: HttpsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = ConnectProxy()
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("no_proxy", raising=False)

    async def once() -> FetchResult:
        async with Fetcher(polling()) as fetcher:  # certifi's authorities: not this one
            return await fetcher.fetch(https.url)

    try:
        with pytest.raises(FetchError) as caught:
            asyncio.run(once())
    finally:
        proxy.close()
    assert str(caught.value).startswith("cannot connect: TLS certificate of 127.0.0.1:")
    assert https.requests == []
