"""The outbox commands: `deliveries` (list, retry) and `test-sink`."""

from __future__ import annotations

from typing import Any

import click

from monitor.cli.common import UsageFailure, echo_json, load, open_reader, open_store, run_async

__all__ = ["deliveries", "deliveries_retry", "sink_test"]


def _line(row: dict[str, Any], sinks: set[str]) -> str:
    title = row["title"] if len(row["title"]) <= 80 else row["title"][:79] + "…"
    head = (
        f"#{row['id']}  {row['status']:<7} {row['sink']}  [{row['severity']}] "
        f"{row['watchlist']}: {title}  (attempts {row['attempts']})"
    )
    notes = []
    if row["sink"] not in sinks:
        notes.append("no sink of this name in the config: it waits until there is one")
    if row["status"] == "pending":
        waiting = "held for the flood-control digest" if row["held"] else "next try"
        notes.append(f"{waiting} at {row['next_attempt_at']}")
    if row["last_error"]:
        notes.append(f"last error: {row['last_error']}")
    return "\n".join([head, *(f"    {note}" for note in notes)])


@click.group(invoke_without_command=True)
@click.option("--pending", "only", flag_value="pending", help="Only deliveries still to send.")
@click.option("--dead", "only", flag_value="dead", help="Only deliveries given up on.")
@click.option("--limit", default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per delivery.")
@click.pass_context
def deliveries(ctx: click.Context, only: str | None, limit: int, as_json: bool) -> None:
    """The outbox: pending and dead deliveries with their last errors, oldest first.

    `deliveries retry` sends dead ones again once the sink is fixed.

    Example: news-monitor deliveries --dead
    """
    if ctx.invoked_subcommand is not None:
        return
    config = load(ctx)
    store = open_reader(config)
    try:
        rows = store.list_deliveries((only,) if only else ("pending", "dead"), limit)
    finally:
        store.close()
    sinks = {sink.name for sink in config.sinks}
    for row in rows:
        if as_json:
            echo_json(row)
        else:
            click.echo(_line(row, sinks))
    if not rows and not as_json:
        click.echo(f"no {only or 'pending or dead'} deliveries", err=True)


@deliveries.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-dead", is_flag=True, help="Every dead delivery.")
@click.pass_context
def deliveries_retry(ctx: click.Context, ids: tuple[int, ...], all_dead: bool) -> None:
    """Make dead deliveries pending again (after fixing the sink), by ID or all of them.

    Their `delivery.retry_for` starts over; the daemon sends them within seconds, or run
    `poll-once`.

    Example: news-monitor deliveries retry 42
    """
    from monitor.store import utcnow

    if bool(ids) == all_dead:
        raise UsageFailure("give delivery IDs or --all-dead (one of the two)")
    config = load(ctx)
    store = open_store(config, create=False)
    try:
        for delivery_id in ids:
            status = store.delivery_status(delivery_id)
            if status is None:
                raise click.ClickException(f"no delivery #{delivery_id}")
            if status == "sent":
                raise click.ClickException(f"delivery #{delivery_id} was already sent")
        changed = store.retry_deliveries(utcnow(), ids, all_dead=all_dead)
    finally:
        store.close()
    noun = "delivery" if changed == 1 else "deliveries"
    click.echo(f"{changed} {noun} pending again")


@click.command("test-sink")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The answer as one JSON object.")
@click.pass_context
def sink_test(ctx: click.Context, name: str, as_json: bool) -> None:
    """Send a clearly marked test alert to one sink and print what the service answered.

    The test alert is not stored and does not count towards rate limits or digests.
    Exits 1 when the service refused it or could not be reached.

    Example: news-monitor test-sink desk-chat
    """
    from monitor.deliver import send_test

    config = load(ctx, secrets=name)
    sink = next((s for s in config.sinks if s.name == name), None)
    if sink is None:
        known = ", ".join(s.name for s in config.sinks) or "none are configured"
        raise UsageFailure(f"no sink named {name!r} in {config.source.name} (sinks: {known})")
    answer = run_async(send_test(sink))
    if as_json:
        echo_json(
            {
                "sink": answer.sink,
                "type": sink.type,
                "ok": answer.ok,
                "status": answer.status,
                "answer": answer.answer,
                "error": answer.error,
                "seconds": answer.seconds,
            }
        )
    else:
        status = f"HTTP {answer.status}" if answer.status is not None else "no HTTP status"
        verdict = "delivered" if answer.ok else "FAILED"
        click.echo(f"{answer.sink} ({sink.type}): {verdict}, {status}, {answer.seconds:.2f}s")
        if answer.answer:
            click.echo(f"    answer: {answer.answer}")
        if answer.error and not answer.ok:
            click.echo(f"    error: {answer.error}")
    if not answer.ok:
        ctx.exit(1)
