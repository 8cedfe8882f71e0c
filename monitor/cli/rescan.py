"""`rescan`: stored items matched again by the current watchlists."""

from __future__ import annotations

import click

from monitor.cli.common import duration, echo_json, load, open_store, run_async, watchlist_name


@click.command()
@click.option("--since", default="7d", show_default=True, help="Items fetched this recently.")
@click.option("--watchlist", "watchlists", multiple=True, help="Only this watchlist (repeatable).")
@click.option("--alert-old", is_flag=True, help="Alert on items older than polling.backfill too.")
@click.option("--json", "as_json", is_flag=True, help="The counts as one JSON object.")
@click.pass_context
def rescan(
    ctx: click.Context, since: str, watchlists: tuple[str, ...], alert_old: bool, as_json: bool
) -> None:
    """Match stored items against the current watchlists; alert on what they now match.

    After a term is added, items stored before it are never looked at again; this does. Each
    story alerts once per watchlist, as in polling: items that already alerted are skipped.
    Items older than polling.backfill are counted, not alerted, unless --alert-old. The new
    alerts go through the outbox and are sent before the command exits (what fails stays
    pending for the daemon).

    Example: news-monitor rescan --since 30d --watchlist kirkuk
    """
    from monitor.analyze import Analyzer
    from monitor.config import format_duration
    from monitor.deliver import DispatchReport
    from monitor.rescan import rescan as rescan_items
    from monitor.service import Monitor
    from monitor.store import utcnow

    config = load(ctx, secrets=True)
    names = {watchlist_name(config, name) for name in watchlists} or None
    now = utcnow()
    start = now - duration(since)
    store = open_store(config, create=False)
    try:
        report = rescan_items(
            store,
            Analyzer(config.watchlists),
            config,
            start,
            now,
            watchlists=names,
            alert_old=alert_old,
        )
    finally:
        store.close()

    async def deliver() -> DispatchReport:
        async with Monitor(config) as monitor:
            return await monitor.deliver_due()

    delivered = run_async(deliver()) if report.deliveries else None
    if as_json:
        echo_json(
            {
                "items": report.items,
                "matched": report.matched,
                "alerts": report.alerts,
                "too_old": report.too_old,
                "sent": delivered.sent if delivered else 0,
            }
        )
        return
    click.echo(
        f"rescanned {report.items} items since {since}: {report.alerts} new alerts"
        + (
            f"; {report.too_old} matched but older than backfill "
            f"({format_duration(config.polling.backfill)}): not alerted (--alert-old alerts them)"
            if report.too_old
            else ""
        )
    )
    if delivered is not None:
        click.echo(
            f"deliveries: {delivered.sent} sent, {delivered.retrying} to retry, "
            f"{delivered.dead} dead"
        )
