"""The `status` command: the service's picture from the database, for a human or a script."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING

import click

from monitor.cli.common import echo_json, load, open_reader

if TYPE_CHECKING:
    from monitor.store import NodeRow
    from monitor.store.housekeeping import StoreSummary

__all__ = ["status"]


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    return f"{moment.isoformat(timespec='seconds')} ({_ago((now - moment).total_seconds())} ago)"


def _node_lines(nodes: list[NodeRow], now: datetime, lease: float) -> list[str]:
    """One line per daemon sharing the database; one silent for a lease is probably dead
    (its leases have expired: the other nodes poll its feeds)."""
    lines = [f"nodes:      {len(nodes)} running" if nodes else "nodes:      none running"]
    for node in nodes:
        beat = datetime.fromisoformat(node.heartbeat_at)
        silent = (now - beat).total_seconds()
        state = " SILENT (dead?)" if silent > lease else ""
        lines.append(
            f"  {node.name} (host {node.host}, pid {node.pid}): last heartbeat"
            f" {_ago(silent)} ago, {node.leases} feed{'' if node.leases == 1 else 's'}"
            f" leased{state}"
        )
    return lines


def _render(summary: StoreSummary, database: str) -> list[str]:
    """The human picture, one line each."""
    from monitor.store import shown

    now = summary.at
    lines = [
        f"database:   {database}",
        f"feeds:      {summary.feeds_total} configured: {summary.feeds_ok} ok,"
        f" {summary.feeds_failing} failing, {summary.feeds_never_polled} never polled",
        f"last poll:  {_when(summary.last_poll_at, now)}",
    ]
    for feed in summary.failing_feeds:
        since = f" (failing since {shown(feed.failing_since)})" if feed.failing_since else ""
        lines.append(f"  FAILING ×{feed.errors} {feed.name}: {feed.last_error}{since}")
    lines.append(f"items:      {summary.items} stored")
    lines.append(
        f"alerts:     {summary.alerts_24h()} in the last 24h, {summary.alerts_total()} in all"
    )
    for row in summary.alerts:
        lines.append(f"  {row.watchlist}: {row.last_24h} in 24h, {row.total} in all")
    pending = summary.deliveries_with("pending")
    oldest = (
        f" (oldest {_ago(summary.oldest_pending_seconds)})"
        if summary.oldest_pending_seconds is not None
        else ""
    )
    lines.append(
        f"deliveries: {pending} pending{oldest}, {summary.deliveries_with('sent')} sent,"
        f" {summary.deliveries_with('dead')} dead"
    )
    sinks = sorted({row.sink for row in summary.deliveries})
    for sink in sinks:
        counts = {row.status: row.count for row in summary.deliveries if row.sink == sink}
        parts = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("pending", "sent", "dead"))
        lines.append(f"  {sink}: {parts}")
    return lines


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Feeds, items, alerts and deliveries as the database has them.

    The same picture as the running daemon's /healthz and /metrics, read from the database, so
    it works whether or not the daemon runs. Failing feeds are listed with their last error.

    Example: news-monitor status
    """
    from monitor.store import shown, utcnow

    config = load(ctx)
    store = open_reader(config)
    try:
        now = utcnow()
        summary = store.summary([feed.name for feed in config.feeds], now)
        nodes = store.nodes(now)
    finally:
        store.close()
    lease = config.cluster.lease.total_seconds()
    if as_json:
        data = dataclasses.asdict(summary)
        for key in ("at", "last_poll_at"):
            data[key] = shown(data[key])
        data["nodes"] = [
            {
                **dataclasses.asdict(node),
                "silent": (now - datetime.fromisoformat(node.heartbeat_at)).total_seconds() > lease,
            }
            for node in nodes
        ]
        echo_json({"database": str(config.database), **data})
        return
    for line in _render(summary, str(config.database)):
        click.echo(line)
    for line in _node_lines(nodes, now, lease):
        click.echo(line)
