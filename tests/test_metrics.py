"""Metrics: what the service observes, and gauges read from a real database summary."""

from __future__ import annotations

import platform
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from monitor import __version__
from monitor.config import FeedConfig
from monitor.metrics import Metrics
from monitor.models import Analysis, Item, Match
from monitor.store import AlertPlan, NewItem, PollWrite, Store
from monitor.store.housekeeping import StoreSummary

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode("utf-8"))
        for sample in family.samples
    }


def test_polls_statuses_items_and_durations_are_counted() -> None:
    metrics = Metrics(process=False)
    metrics.observe_poll("new", 200, 3, 0.2)
    metrics.observe_poll("not_modified", 304, 0, 0.03)
    metrics.observe_poll("failed", 503, 0, 1.5)
    metrics.observe_poll("failed", None, 0, 20.0)
    samples = _samples(metrics)
    assert samples[("news_monitor_polls_total", (("outcome", "new"),))] == 1
    assert samples[("news_monitor_polls_total", (("outcome", "failed"),))] == 2
    assert samples[("news_monitor_http_responses_total", (("code", "503"),))] == 1
    assert samples[("news_monitor_http_responses_total", (("code", "304"),))] == 1
    assert samples[("news_monitor_items_new_total", ())] == 3
    assert samples[("news_monitor_poll_duration_seconds_count", ())] == 4
    assert samples[("news_monitor_poll_duration_seconds_bucket", (("le", "0.05"),))] == 1
    assert samples[("news_monitor_poll_duration_seconds_bucket", (("le", "2.5"),))] == 3


def test_deliveries_translation_and_reloads_are_counted() -> None:
    metrics = Metrics(process=False)
    metrics.observe_delivery("chat", "sent", 4.0)
    metrics.observe_delivery("chat", "retry")
    metrics.observe_delivery("siem", "dead")
    metrics.observe_translation(32, 0.4)
    metrics.set_translation_queue(7)
    metrics.observe_reload(False)
    samples = _samples(metrics)
    attempts = "news_monitor_delivery_attempts_total"
    assert samples[(attempts, (("outcome", "sent"), ("sink", "chat")))] == 1
    assert samples[(attempts, (("outcome", "retry"), ("sink", "chat")))] == 1
    assert samples[(attempts, (("outcome", "dead"), ("sink", "siem")))] == 1
    assert samples[("news_monitor_delivery_lag_seconds_bucket", (("le", "5.0"), ("sink", "chat")))]
    assert samples[("news_monitor_delivery_lag_seconds_count", (("sink", "chat"),))] == 1
    assert samples[("news_monitor_translated_items_total", ())] == 32
    assert samples[("news_monitor_translation_seconds_count", ())] == 1
    assert samples[("news_monitor_translation_queue_depth", ())] == 7
    assert samples[("news_monitor_config_reloads_total", (("result", "invalid"),))] == 1
    assert samples[("news_monitor_config_invalid", ())] == 1
    metrics.observe_reload(True)
    assert _samples(metrics)[("news_monitor_config_invalid", ())] == 0


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(process=False), Metrics(process=False)
    first.observe_poll("new", 200, 1, 0.1)
    assert _samples(second)[("news_monitor_polls_total", (("outcome", "new"),))] == 0


def test_database_gauges_come_from_the_latest_summary(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "monitor.db")
    states = store.sync_feeds(
        [FeedConfig(name=n, url=f"https://{n}.example/rss") for n in ("a", "b", "c")]
    )
    match = Match("khanaqin", "Khanaqin", "Khanaqin", "title", 0, 8)
    item = NewItem(
        Item("g1", "https://example.org/1", "Khanaqin", "", NOW, "url:https://example.org/1"),
        Analysis("en", 0.9, (match,)),
        (AlertPlan("khanaqin", "high", (match,), ("chat", "siem")),),
    )
    store.record_poll(
        PollWrite(states["a"].id, 200, None, None, None, "A", NOW, (item,)),
        NOW - timedelta(minutes=10),
    )
    store.record_failure(states["b"].id, "HTTP 500", 500, NOW, NOW)
    latest: list[StoreSummary] = []
    metrics = Metrics(lambda: latest[-1] if latest else None, process=False)

    # Before the first read of the database there is nothing to say, rather than zeros.
    assert not any(name == "news_monitor_feeds" for name, _ in _samples(metrics))

    latest.append(store.summary(["a", "b", "c"], NOW))
    store.close()
    samples = _samples(metrics)
    assert samples[("news_monitor_feeds", (("state", "ok"),))] == 1
    assert samples[("news_monitor_feeds", (("state", "failing"),))] == 1
    assert samples[("news_monitor_feeds", (("state", "never_polled"),))] == 1
    assert samples[("news_monitor_deliveries", (("sink", "siem"), ("status", "pending")))] == 1
    assert samples[("news_monitor_delivery_oldest_pending_seconds", ())] == 600
    assert samples[("news_monitor_alerts_total", (("watchlist", "khanaqin"),))] == 1
    assert samples[("news_monitor_items_stored", ())] == 1
    assert samples[("news_monitor_last_poll_timestamp_seconds", ())] == NOW.timestamp()


def test_process_metrics_are_included_by_default() -> None:
    names = {name for name, _ in _samples(Metrics())}
    assert "process_resident_memory_bytes" in names


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it() -> None:
    metrics = Metrics(process=False)
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


def test_build_info_names_the_version_and_python() -> None:
    samples = _samples(Metrics(process=False))
    labels = (("python", platform.python_version()), ("version", __version__))
    assert samples[("news_monitor_build_info", labels)] == 1
