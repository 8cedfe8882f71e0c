"""Prometheus metrics: one `Metrics` per daemon, on its own registry (no global state).

Two kinds of series:

- counted in the process as things happen (polls, HTTP statuses, new items, poll durations,
  deliveries, delivery lag, translation): they start at zero with the process, which is what
  Prometheus' `rate()` expects;
- read from the database at scrape time through `snapshot` (feeds by state, deliveries by sink
  and status, age of the oldest pending delivery, alerts by watchlist, stored items): they tell
  the truth across restarts and whatever process wrote the rows.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.store.housekeeping import StoreSummary

__all__ = ["Metrics"]

_PREFIX = "news_monitor"
_POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
_LAG_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
_TRANSLATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _SnapshotCollector(Collector):
    """Gauges from the latest `StoreSummary`; nothing when there is none yet."""

    def __init__(self, snapshot: Callable[[], StoreSummary | None]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterator[Metric]:
        # Without describe() the registry would call collect() while registering, before the
        # daemon has read the database once.
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        summary = self._snapshot()
        if summary is None:
            return
        feeds, deliveries, oldest, alerts, items, last_poll = self._families()
        feeds.add_metric(["ok"], summary.feeds_ok)
        feeds.add_metric(["failing"], summary.feeds_failing)
        feeds.add_metric(["never_polled"], summary.feeds_never_polled)
        for row in summary.deliveries:
            deliveries.add_metric([row.sink, row.status], row.count)
        oldest.add_metric([], summary.oldest_pending_seconds or 0.0)
        for watchlist in summary.alerts:
            alerts.add_metric([watchlist.watchlist], watchlist.total)
        items.add_metric([], summary.items)
        yield from (feeds, deliveries, oldest, alerts, items)
        if summary.last_poll_at is not None:
            last_poll.add_metric([], summary.last_poll_at.timestamp())
            yield last_poll

    @staticmethod
    def _families() -> tuple[
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        CounterMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
    ]:
        return (
            GaugeMetricFamily(
                f"{_PREFIX}_feeds",
                "Configured feeds by state: ok, failing (last poll failed), never_polled.",
                labels=["state"],
            ),
            GaugeMetricFamily(
                f"{_PREFIX}_deliveries",
                "Deliveries in the outbox by sink and status (pending, sent, dead).",
                labels=["sink", "status"],
            ),
            GaugeMetricFamily(
                f"{_PREFIX}_delivery_oldest_pending_seconds",
                "Age of the oldest pending delivery; 0 when none is pending.",
            ),
            # Alerts are never pruned, so their count only grows: a counter, true across
            # restarts.
            CounterMetricFamily(
                f"{_PREFIX}_alerts",
                "Alerts stored, by watchlist.",
                labels=["watchlist"],
            ),
            GaugeMetricFamily(f"{_PREFIX}_items_stored", "Items in the database."),
            GaugeMetricFamily(
                f"{_PREFIX}_last_poll_timestamp_seconds",
                "When any feed was last polled (Unix time).",
            ),
        )


class Metrics:
    """The daemon's metrics; `render()` is the /metrics body.

    Args:
        snapshot: returns the latest database summary (or None); called on every scrape, from
            the scraping thread, so it must only hand back a value already read.
        process: also export the standard `process_*` series (memory, CPU, open files).
    """

    def __init__(
        self,
        snapshot: Callable[[], StoreSummary | None] = lambda: None,
        *,
        process: bool = True,
    ) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._polls = Counter(
            f"{_PREFIX}_polls",
            "Feed polls by outcome: new (200), not_modified (304), failed.",
            ["outcome"],
            registry=registry,
        )
        self._http = Counter(
            f"{_PREFIX}_http_responses",
            "HTTP status codes of feed responses (a transport failure has none).",
            ["code"],
            registry=registry,
        )
        self._items = Counter(
            f"{_PREFIX}_items_new", "New items stored from polls.", registry=registry
        )
        self._poll_seconds = Histogram(
            f"{_PREFIX}_poll_duration_seconds",
            "One feed poll, fetch to commit.",
            buckets=_POLL_BUCKETS,
            registry=registry,
        )
        self._deliveries = Counter(
            f"{_PREFIX}_delivery_attempts",
            "Delivery attempts by sink and outcome: sent, retry, dead.",
            ["sink", "outcome"],
            registry=registry,
        )
        self._lag = Histogram(
            f"{_PREFIX}_delivery_lag_seconds",
            "From an alert's creation to its delivery to a sink.",
            ["sink"],
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self._translation_queue = Gauge(
            f"{_PREFIX}_translation_queue_depth",
            "Items waiting for translation.",
            registry=registry,
        )
        self._translated = Counter(
            f"{_PREFIX}_translated_items", "Items translated.", registry=registry
        )
        self._translation_seconds = Histogram(
            f"{_PREFIX}_translation_seconds",
            "One translation batch.",
            buckets=_TRANSLATION_BUCKETS,
            registry=registry,
        )
        self._reloads = Counter(
            f"{_PREFIX}_config_reloads",
            "Config reloads by result: ok, invalid.",
            ["result"],
            registry=registry,
        )
        self._config_invalid = Gauge(
            f"{_PREFIX}_config_invalid",
            "1 while the config file on disk is invalid and the previous one is running.",
            registry=registry,
        )
        self._loop_lag = Gauge(
            f"{_PREFIX}_event_loop_lag_seconds",
            "How late the event loop's last heartbeat ran.",
            registry=registry,
        )
        Gauge(
            f"{_PREFIX}_build_info",
            "Always 1; its labels name the running news-monitor and Python.",
            ["version", "python"],
            registry=registry,
        ).labels(__version__, platform.python_version()).set(1)
        # Each poll's children looked up once: `labels()` takes a lock and checks its values,
        # a few microseconds per poll of the daemon's cycle (issue 14).
        self._poll_outcomes = {
            outcome: self._polls.labels(outcome) for outcome in ("new", "not_modified", "failed")
        }
        self._http_statuses: dict[int, Counter] = {}
        for result in ("ok", "invalid"):
            self._reloads.labels(result)
        registry.register(_SnapshotCollector(snapshot))
        if process:
            ProcessCollector(registry=registry)

    def observe_poll(
        self, outcome: str, http_status: int | None, new_items: int, seconds: float
    ) -> None:
        polls = self._poll_outcomes.get(outcome)
        (polls or self._polls.labels(outcome)).inc()
        if http_status is not None:
            by_status = self._http_statuses.get(http_status)
            if by_status is None:
                by_status = self._http_statuses[http_status] = self._http.labels(str(http_status))
            by_status.inc()
        if new_items:
            self._items.inc(new_items)
        self._poll_seconds.observe(seconds)

    def observe_delivery(self, sink: str, outcome: str, lag_seconds: float | None = None) -> None:
        """One attempt; `lag_seconds` (alert created → sent) for a successful one."""
        self._deliveries.labels(sink, outcome).inc()
        if lag_seconds is not None:
            self._lag.labels(sink).observe(lag_seconds)

    def observe_translation(self, items: int, seconds: float) -> None:
        self._translated.inc(items)
        self._translation_seconds.observe(seconds)

    def set_translation_queue(self, depth: int) -> None:
        self._translation_queue.set(depth)

    def observe_reload(self, ok: bool) -> None:
        self._reloads.labels("ok" if ok else "invalid").inc()
        self._config_invalid.set(0 if ok else 1)

    def set_loop_lag(self, seconds: float) -> None:
        self._loop_lag.set(seconds)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition for an `Accept` header: (body, content type).

        Prometheus' text format 0.0.4 unless the scraper asks for OpenMetrics or text 1.0.0.
        """
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
