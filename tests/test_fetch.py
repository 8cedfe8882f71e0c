"""`Fetcher` against a real HTTP server: validators, caps, compression, redirects, deadlines."""

from __future__ import annotations

import asyncio
import gzip
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from conftest import FeedServer, rss

from monitor.config import PollingConfig
from monitor.errors import FetchError
from monitor.fetch import (
    Fetcher,
    FetchResult,
    backoff_delay,
    check_redirect,
    parse_retry_after,
)

T = TypeVar("T")

FEED = rss([{"title": "Dam gates opened", "link": "https://n.example.org/1", "guid": "n-1"}])
LAST_MODIFIED = "Tue, 17 Nov 2026 06:00:00 GMT"


def polling(**values: Any) -> PollingConfig:
    return PollingConfig(**{"timeout": "2s", **values})


def with_fetcher(work: Callable[[Fetcher], Awaitable[T]], **values: Any) -> T:
    """Run `work(fetcher)` on a fresh loop with a Fetcher that is closed afterwards."""

    async def main() -> T:
        async with Fetcher(polling(**values)) as fetcher:
            return await work(fetcher)

    return asyncio.run(main())


def fetch(
    url: str, etag: str | None = None, last_modified: str | None = None, **values: Any
) -> FetchResult:
    return with_fetcher(lambda f: f.fetch(url, etag, last_modified), **values)


def fetch_error(url: str, **values: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, **values)
    return caught.value


# Conditional GET ---------------------------------------------------------------------------


def test_conditional_get_sends_stored_validators_and_304_is_not_modified(
    feed_server: FeedServer,
) -> None:
    url = feed_server.route("/a.xml", FEED, etag='"v1"', last_modified=LAST_MODIFIED)

    async def twice(fetcher: Fetcher) -> tuple[FetchResult, FetchResult]:
        first = await fetcher.fetch(url)
        second = await fetcher.fetch(url, first.etag, first.last_modified)
        return first, second

    first, second = with_fetcher(twice)
    assert (first.status, first.content, first.etag) == (200, FEED, '"v1"')
    assert first.last_modified == LAST_MODIFIED
    assert not first.not_modified
    assert second.not_modified and second.content == b""
    assert (second.etag, second.last_modified) == ('"v1"', LAST_MODIFIED)
    plain, conditional = feed_server.requests_for("/a.xml")
    assert "if-none-match" not in plain.headers
    assert "if-modified-since" not in plain.headers
    assert conditional.headers["if-none-match"] == '"v1"'
    assert conditional.headers["if-modified-since"] == LAST_MODIFIED


def test_last_modified_alone_gives_304(feed_server: FeedServer) -> None:
    url = feed_server.route("/a.xml", FEED, last_modified=LAST_MODIFIED)
    result = fetch(url, None, LAST_MODIFIED)
    assert result.not_modified
    assert result.last_modified == LAST_MODIFIED
    assert result.etag is None


def test_a_changed_etag_gets_the_new_document(feed_server: FeedServer) -> None:
    url = feed_server.route("/a.xml", FEED, etag='"v2"')
    result = fetch(url, '"v1"')
    assert (result.status, result.etag, result.content) == (200, '"v2"', FEED)


# Size cap ----------------------------------------------------------------------------------


def test_size_cap_aborts_on_the_declared_content_length(feed_server: FeedServer) -> None:
    url = feed_server.route("/big.xml", b"x" * 5000)
    error = fetch_error(url, max_bytes=1024)
    assert "5,000 bytes is over the 1,024-byte cap" in str(error)


def test_size_cap_aborts_a_streamed_body_without_content_length(
    feed_server: FeedServer,
) -> None:
    url = feed_server.route("/big.xml", b"x" * 50_000, chunked=True, chunk_size=512)
    error = fetch_error(url, max_bytes=2048)
    assert "over the 2,048-byte cap (polling.max_bytes)" in str(error)


def test_a_chunked_body_under_the_cap_is_read_whole(feed_server: FeedServer) -> None:
    url = feed_server.route("/a.xml", FEED, chunked=True, chunk_size=7)
    assert fetch(url).content == FEED


def test_decompressed_size_counts_against_the_cap(feed_server: FeedServer) -> None:
    bomb = b"\0" * 200_000
    assert len(gzip.compress(bomb)) < 1024  # small on the wire, large once decoded
    url = feed_server.route("/bomb.xml", bomb, gzip=True)
    error = fetch_error(url, max_bytes=4096)
    assert "4,096-byte cap" in str(error)


# Encoding, redirects, errors ---------------------------------------------------------------


def test_gzip_response_is_decoded(feed_server: FeedServer) -> None:
    url = feed_server.route("/a.xml", FEED, gzip=True)
    result = fetch(url)
    assert result.content == FEED
    assert "gzip" in feed_server.requests[0].headers["accept-encoding"]


def test_user_agent_names_news_monitor_and_accept_asks_for_feeds(
    feed_server: FeedServer,
) -> None:
    url = feed_server.route("/a.xml", FEED)
    fetch(url)
    headers = feed_server.requests[0].headers
    assert headers["user-agent"].startswith("news-monitor/")
    assert "application/rss+xml" in headers["accept"]


def test_configured_user_agent_replaces_the_default(feed_server: FeedServer) -> None:
    url = feed_server.route("/a.xml", FEED)
    fetch(url, user_agent="desk-bot/2 (ops@example.org)")
    assert feed_server.requests[0].headers["user-agent"] == "desk-bot/2 (ops@example.org)"


def test_an_http_proxy_from_the_environment_is_used(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test server is the proxy: it sees the request in absolute form.
    feed_server.route("http://feeds.example.org/a.xml", FEED)
    monkeypatch.setenv("http_proxy", feed_server.base)
    monkeypatch.delenv("no_proxy", raising=False)
    assert fetch("http://feeds.example.org/a.xml").content == FEED
    assert [r.path for r in feed_server.requests] == ["http://feeds.example.org/a.xml"]


def test_no_proxy_hosts_are_fetched_directly(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = feed_server.route("/a.xml", FEED)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert fetch(url).content == FEED
    assert [r.path for r in feed_server.requests] == ["/a.xml"]


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_records_moved_to(feed_server: FeedServer, status: int) -> None:
    feed_server.route("/new.xml", FEED)
    old = feed_server.redirect("/old.xml", "/new.xml", status=status)
    result = fetch(old)
    assert result.content == FEED
    assert result.url == feed_server.url("/new.xml")
    assert result.moved_to == feed_server.url("/new.xml")


@pytest.mark.parametrize("status", [302, 303, 307])
def test_temporary_redirect_is_followed_without_moved_to(
    feed_server: FeedServer, status: int
) -> None:
    feed_server.route("/new.xml", FEED)
    old = feed_server.redirect("/old.xml", "/new.xml", status=status)
    result = fetch(old)
    assert result.content == FEED
    assert result.url == feed_server.url("/new.xml")
    assert result.moved_to is None


def test_a_temporary_hop_in_a_chain_means_not_moved(feed_server: FeedServer) -> None:
    feed_server.route("/c.xml", FEED)
    feed_server.redirect("/b.xml", "/c.xml", status=302)
    result = fetch(feed_server.redirect("/a.xml", "/b.xml", status=301))
    assert (result.content, result.moved_to) == (FEED, None)


def test_relative_location_is_resolved(feed_server: FeedServer) -> None:
    feed_server.route("/feeds/new.xml", FEED)
    url = feed_server.route("/feeds/old.xml", status=301, headers={"Location": "new.xml"})
    result = fetch(url)
    assert result.moved_to == feed_server.url("/feeds/new.xml")


def test_conditional_headers_follow_the_redirect(feed_server: FeedServer) -> None:
    feed_server.route("/new.xml", FEED, etag='"v1"')
    result = fetch(feed_server.redirect("/old.xml", "/new.xml"), '"v1"')
    assert result.not_modified
    assert feed_server.requests_for("/new.xml")[0].headers["if-none-match"] == '"v1"'


def test_a_304_after_a_permanent_redirect_still_records_moved_to(
    feed_server: FeedServer,
) -> None:
    feed_server.route("/new.xml", FEED, etag='"v1"')
    result = fetch(feed_server.redirect("/old.xml", "/new.xml"), '"v1"')
    assert result.not_modified
    assert result.moved_to == feed_server.url("/new.xml")


def test_redirect_loop_stops(feed_server: FeedServer) -> None:
    feed_server.redirect("/a.xml", "/b.xml", status=302)
    feed_server.redirect("/b.xml", "/a.xml", status=302)
    error = fetch_error(feed_server.url("/a.xml"))
    assert "more than 5 redirects" in str(error)
    assert len(feed_server.requests) == 6


def test_redirect_without_location_is_an_error(feed_server: FeedServer) -> None:
    url = feed_server.route("/a.xml", status=301, content_type=None)
    error = fetch_error(url)
    assert error.status == 301
    assert "without a Location" in str(error)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("120", 120.0), (None, None), ("soon", None)],
)
def test_429_carries_the_servers_retry_after(
    feed_server: FeedServer, retry_after: str | None, expected: float | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    url = feed_server.route("/a.xml", b"slow down", status=429, headers=headers)
    error = fetch_error(url)
    assert error.status == 429
    assert error.retry_after == expected
    assert str(error) == "HTTP 429 Too Many Requests"


def test_429_retry_after_as_an_http_date(feed_server: FeedServer) -> None:
    when = datetime.now(UTC) + timedelta(minutes=5)
    headers = {"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")}
    url = feed_server.route("/a.xml", b"", status=429, headers=headers)
    error = fetch_error(url)
    assert error.retry_after is not None
    assert 290 <= error.retry_after <= 300


@pytest.mark.parametrize(("status", "text"), [(404, "HTTP 404 Not Found"), (500, "HTTP 500")])
def test_http_errors_carry_their_status(feed_server: FeedServer, status: int, text: str) -> None:
    url = feed_server.route("/a.xml", b"oops", status=status)
    error = fetch_error(url)
    assert error.status == status
    assert str(error).startswith(text)
    assert error.retry_after is None


def test_connection_refused_is_a_fetch_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = fetch_error(f"http://127.0.0.1:{port}/a.xml")
    assert str(error).startswith("cannot connect")
    assert error.status is None


def test_invalid_url_is_a_fetch_error() -> None:
    error = fetch_error("http://exa mple.org:99999/feed")
    assert error.status is None


# Where redirects may go ----------------------------------------------------------------------


def claimed(addresses: dict[str, list[str]]) -> Callable[[str], list[str]]:
    """A resolver that says what each name resolves to (IP literals are never asked)."""

    def resolve(host: str) -> list[str]:
        if host not in addresses:
            raise OSError(f"no address for {host}")
        return addresses[host]

    return resolve


def fetch_with(url: str, resolve: Callable[[str], list[str]], **values: Any) -> FetchResult:
    async def main() -> FetchResult:
        async with Fetcher(polling(**values), resolve=resolve) as fetcher:
            return await fetcher.fetch(url)

    return asyncio.run(main())


def test_a_public_origin_redirecting_into_loopback_is_refused(feed_server: FeedServer) -> None:
    inside = FeedServer()
    try:
        target = inside.route("/admin.xml", FEED)
        # `localhost` is where the test server is, but the resolver says it is a public host:
        # exactly what a feed on the internet redirecting to 127.0.0.1 looks like.
        feed_server.redirect("/feed.xml", target, status=301)
        origin = f"http://localhost:{feed_server.port}/feed.xml"
        with pytest.raises(FetchError) as caught:
            fetch_with(origin, claimed({"localhost": ["93.184.216.34"]}))
        assert str(caught.value) == (
            "refused a redirect to 127.0.0.1: a loopback address, and the feed is not on one"
            " (polling.allow_private)"
        )
        assert inside.requests == [], "the redirect reached the loopback server"
    finally:
        inside.close()


def test_allow_private_lets_a_public_origin_redirect_into_loopback(
    feed_server: FeedServer,
) -> None:
    inside = FeedServer()
    try:
        target = inside.route("/feed.xml", FEED)
        feed_server.redirect("/feed.xml", target, status=301)
        origin = f"http://localhost:{feed_server.port}/feed.xml"
        result = fetch_with(origin, claimed({"localhost": ["93.184.216.34"]}), allow_private=True)
        assert (result.content, result.moved_to) == (FEED, target)
    finally:
        inside.close()


def test_a_loopback_feed_may_redirect_to_another_loopback_port(feed_server: FeedServer) -> None:
    other = FeedServer()
    try:
        target = other.route("/feed.xml", FEED)
        result = fetch(feed_server.redirect("/feed.xml", target, status=301))
        assert (result.content, result.moved_to) == (FEED, target)
    finally:
        other.close()


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://10.1.2.3/feed.xml", "a private address"),
        ("http://[fe80::1]/feed.xml", "a link-local address"),
        ("http://[::ffff:169.254.169.254]/feed.xml", "a link-local address"),
        ("http://metadata.internal/feed.xml", "a link-local address"),
    ],
)
def test_a_redirect_into_another_kind_of_non_public_address_is_refused(
    feed_server: FeedServer, location: str, kind: str
) -> None:
    url = feed_server.redirect("/feed.xml", location, status=301)
    resolve = claimed({"metadata.internal": ["151.101.65.69", "169.254.169.254"]})
    with pytest.raises(FetchError) as caught:
        fetch_with(url, resolve)
    assert f": {kind}, and the feed is not on one (polling.allow_private)" in str(caught.value)
    assert len(feed_server.requests) == 1


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://ftp.example.org/feed.xml"])
def test_a_redirect_to_a_non_http_scheme_is_refused(feed_server: FeedServer, location: str) -> None:
    url = feed_server.redirect("/feed.xml", location, status=302)
    error = fetch_error(url, allow_private=True)
    scheme = location.split(":", 1)[0]
    assert str(error) == f"refused a redirect to a {scheme}: URL (only http and https)"


def test_a_redirect_to_a_name_that_does_not_resolve_fails_clearly(
    feed_server: FeedServer,
) -> None:
    url = feed_server.redirect("/feed.xml", "http://nowhere.invalid/feed.xml", status=302)
    with pytest.raises(FetchError) as caught:
        fetch_with(url, claimed({}))
    assert str(caught.value) == "refused a redirect to nowhere.invalid: cannot resolve it"


async def _check(origin: str, target: str, allow_private: bool = False) -> None:
    await check_redirect(
        origin,
        target,
        allow_private=allow_private,
        resolve=claimed({"feeds.example": ["151.101.1.69"], "lan.example": ["192.168.1.20"]}),
    )


@pytest.mark.parametrize(
    ("origin", "target"),
    [
        ("https://feeds.example/rss", "https://feeds.example/rss2"),
        ("https://feeds.example/rss", "http://93.184.216.34/rss"),
        ("http://192.168.1.5/rss", "http://lan.example/rss"),
        ("http://127.0.0.1:8000/rss", "http://[::1]:8001/rss"),
        ("http://lan.example/rss", "https://feeds.example/rss"),
    ],
)
def test_check_redirect_allows_public_targets_and_the_origins_own_kind(
    origin: str, target: str
) -> None:
    asyncio.run(_check(origin, target))


@pytest.mark.parametrize(
    ("origin", "target"),
    [
        ("https://feeds.example/rss", "http://lan.example/rss"),
        ("https://feeds.example/rss", "http://0.0.0.0:9464/healthz"),
        ("http://lan.example/rss", "http://127.0.0.1:9464/metrics"),
        ("http://127.0.0.1/rss", "http://[fc00::1]/rss"),
        ("https://feeds.example/rss", "http://100.64.0.1/rss"),
    ],
)
def test_check_redirect_refuses_a_move_into_a_non_public_kind(origin: str, target: str) -> None:
    with pytest.raises(FetchError, match=r"^refused a redirect to "):
        asyncio.run(_check(origin, target))
    asyncio.run(_check(origin, target, allow_private=True))


# Deadlines and concurrency -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["stall", "delay"])
def test_a_stalled_server_times_out_while_another_feed_completes(
    feed_server: FeedServer, mode: str
) -> None:
    stalled_reply: dict[str, Any] = {"stall": True} if mode == "stall" else {"delay": 30.0}
    stalled = feed_server.route("/stalled.xml", FEED * 3, **stalled_reply)
    good = feed_server.route("/good.xml", FEED)

    async def timed(work: Awaitable[FetchResult], started: float) -> tuple[Any, float]:
        try:
            outcome: Any = await work
        except FetchError as exc:
            outcome = exc
        return outcome, time.monotonic() - started

    async def both(fetcher: Fetcher) -> tuple[tuple[Any, float], tuple[Any, float]]:
        started = time.monotonic()
        return await asyncio.gather(
            timed(fetcher.fetch(stalled), started), timed(fetcher.fetch(good), started)
        )

    (stall_outcome, stall_seconds), (good_outcome, good_seconds) = with_fetcher(both, timeout="1s")
    assert isinstance(stall_outcome, FetchError)
    assert str(stall_outcome) == "timed out after 1s"
    assert 0.9 <= stall_seconds < 2.0
    assert isinstance(good_outcome, FetchResult)
    assert good_outcome.content == FEED
    assert good_seconds < 0.5, "the good feed waited for the stalled one"


def test_a_hung_dns_lookup_does_not_hold_up_the_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The feed fails at its deadline and the loop's exit does not wait for the lookup (a
    lookup in the loop's default executor would: `asyncio.run` joins it)."""
    release = threading.Event()
    real = socket.getaddrinfo

    def hanging(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hung.example.org":
            release.wait(60)
            raise socket.gaierror(socket.EAI_NONAME, "released")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    errors: list[str] = []

    def poll() -> None:
        try:
            fetch("http://hung.example.org/feed.xml", timeout="1s")
        except FetchError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    thread.join(timeout=30)  # a bound for a failing run only; a passing one ends at the deadline
    try:
        assert not thread.is_alive(), "the event loop's exit waited for the DNS lookup"
        assert errors == ["timed out after 1s"]
    finally:
        release.set()


def test_the_deadline_covers_the_whole_exchange_not_each_read(feed_server: FeedServer) -> None:
    # Each chunk arrives well within a per-read timeout, but the whole body takes ~3 s.
    url = feed_server.route("/drip.xml", b"x" * 10, chunked=True, chunk_size=1, chunk_delay=0.3)
    started = time.monotonic()
    error = fetch_error(url, timeout="1s")
    assert str(error) == "timed out after 1s"
    assert time.monotonic() - started < 1.6


# Pure functions ----------------------------------------------------------------------------


class _Midpoint(random.Random):
    """Jitter pinned to its middle (×1.0) so delays are exact."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("interval", "errors", "max_backoff", "retry_after", "expected"),
    [
        (10 * MINUTE, 0, 6 * HOUR, None, 10 * MINUTE),
        (10 * MINUTE, 1, 6 * HOUR, None, 10 * MINUTE),
        (10 * MINUTE, 2, 6 * HOUR, None, 20 * MINUTE),
        (10 * MINUTE, 3, 6 * HOUR, None, 40 * MINUTE),
        (10 * MINUTE, 6, 6 * HOUR, None, 320 * MINUTE),
        (10 * MINUTE, 7, 6 * HOUR, None, 6 * HOUR),
        (10 * MINUTE, 10_000, 6 * HOUR, None, 6 * HOUR),
        (10 * MINUTE, 1, 6 * HOUR, 3600.0, HOUR),
        (10 * MINUTE, 3, 6 * HOUR, 60.0, 40 * MINUTE),
        (10 * MINUTE, 1, 6 * HOUR, 86_400.0, 6 * HOUR),
        (2 * HOUR, 1, HOUR, None, HOUR),
    ],
)
def test_backoff_delay_doubles_from_the_interval_up_to_the_cap(
    interval: timedelta,
    errors: int,
    max_backoff: timedelta,
    retry_after: float | None,
    expected: timedelta,
) -> None:
    assert backoff_delay(interval, errors, max_backoff, retry_after, _Midpoint()) == expected


@pytest.mark.parametrize("errors", [1, 2, 5, 9, 40])
def test_backoff_jitter_stays_within_ten_percent_and_under_the_cap(errors: int) -> None:
    rng = random.Random(errors)
    base = timedelta(seconds=min(600 * 2 ** (errors - 1), 6 * 3600))
    for _ in range(200):
        delay = backoff_delay(timedelta(minutes=10), errors, 6 * HOUR, None, rng)
        assert base * 0.9 <= delay <= min(base * 1.1, 6 * HOUR)


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("120", 120.0),
        ("  45 ", 45.0),
        ("Tue, 24 Nov 2026 12:01:30 GMT", 90.0),
        ("Tue, 24 Nov 2026 12:01:30 +0000", 90.0),
        ("Tue, 24 Nov 2026 13:01:30 +0100", 90.0),
        ("Tue, 24 Nov 2026 12:01:30", 90.0),  # no zone: read as UTC
        ("Tue, 24 Nov 2026 11:00:00 GMT", 0.0),  # in the past: no wait
        ("-5", None),
        ("1.5", None),
        ("tomorrow", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected
