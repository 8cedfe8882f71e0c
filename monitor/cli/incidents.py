"""The incident commands: `incidents` (list), `incidents show`, `merge` and `split`."""

from __future__ import annotations

from typing import Any

import click

from monitor.cli.common import (
    duration,
    echo_json,
    load,
    open_reader,
    open_store,
    watchlist_name,
)
from monitor.errors import MonitorError

__all__ = ["incidents"]


def _when(text: str | None) -> str:
    return (text or "")[:16].replace("T", " ")


def _line(row: dict[str, Any]) -> str:
    flags = " BREAKING" if row["breaking"] else ""
    closed = "  (closed)" if row["closed_at"] else ""
    about = " · ".join([*row["places"], *row["terms"]])
    return (
        f"{row['id']}  [{row['severity'].upper()}]{flags} {', '.join(row['watchlists'])}: "
        f"{row['title']}{closed}\n"
        f"    {row['reports']} report{'s' if row['reports'] != 1 else ''} in "
        f"{', '.join(row['languages'])} from {len(row['outlets'])} outlet"
        f"{'s' if len(row['outlets']) != 1 else ''} · {_when(row['first_seen'])} to "
        f"{_when(row['last_seen'])} UTC" + (f"\n    {about}" if about else "")
    )


@click.group(invoke_without_command=True)
@click.option("--since", default="24h", show_default=True, help="Active within, e.g. 90m, 7d.")
@click.option("--watchlist", help="Only incidents this watchlist matched.")
@click.option("--limit", default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per incident.")
@click.pass_context
def incidents(
    ctx: click.Context, since: str, watchlist: str | None, limit: int, as_json: bool
) -> None:
    """Incidents (reports of one event, across feeds and languages), latest activity first.

    `incidents show ID` gives one incident's timeline; `merge` and `split` correct them.

    Example: news-monitor incidents --since 7d --watchlist khanaqin
    """
    from monitor.store import utcnow

    if ctx.invoked_subcommand is not None:
        return
    config = load(ctx)
    name = watchlist_name(config, watchlist) if watchlist is not None else None
    start = utcnow() - duration(since)
    store = open_reader(config)
    try:
        rows = store.list_incidents(start, name, limit)
    finally:
        store.close()
    for row in rows:
        if as_json:
            echo_json(row)
        else:
            click.echo(_line(row))
    if not rows and not as_json:
        click.echo(f"no {name + ' ' if name else ''}incidents in the last {since}", err=True)


@incidents.command("show")
@click.argument("ident", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="The incident as one JSON object.")
@click.pass_context
def incidents_show(ctx: click.Context, ident: str, as_json: bool) -> None:
    """One incident and its timeline: time, outlet, language, title and link of each report.

    Example: news-monitor incidents show inc-d7a430f19f15dc1f
    """
    config = load(ctx)
    store = open_reader(config)
    try:
        found = store.incident_timeline(ident)
    finally:
        store.close()
    if found is None:
        raise click.ClickException(f"no incident {ident} (see `news-monitor incidents`)")
    if as_json:
        echo_json(found)
        return
    click.echo(_line(found))
    if found["merged"]:
        click.echo(f"    merged into it: {', '.join(found['merged'])}")
    for report in found["timeline"]:
        english = f"\n        {report['title_en']}" if report["title_en"] else ""
        click.echo(
            f"  {_when(report['at'])}  {report['outlet']} · {report['language']} · "
            f"item {report['item_id']}\n"
            f"        {report['title']}{english}\n"
            f"        {report['url'] or '(no link)'}"
        )


@incidents.command("merge")
@click.argument("keep", metavar="A")
@click.argument("other", metavar="B")
@click.pass_context
def incidents_merge(ctx: click.Context, keep: str, other: str) -> None:
    """Merge incident B into A: B's reports become A's, and later reports of either join A.

    A running daemon picks the correction up before it places its next report.

    Example: news-monitor incidents merge inc-d7a430f19f15dc1f inc-96933c58cab6142b
    """
    from monitor.incident_desk import incident_settings, merge_incidents

    config = load(ctx)
    store = open_store(config, create=False)
    try:
        merged = merge_incidents(store, keep, other, incident_settings(config.incidents))
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    click.echo(f"{other} merged into {keep}: {len(merged.reports)} reports")


@incidents.command("split")
@click.argument("ident", metavar="ID")
@click.argument("item", type=int)
@click.pass_context
def incidents_split(ctx: click.Context, ident: str, item: int) -> None:
    """Split the report of ITEM (an item id from `incidents show`) out of incident ID into an
    incident of its own; later reports join whichever they match.

    Example: news-monitor incidents split inc-d7a430f19f15dc1f 17
    """
    from monitor.incident_desk import incident_settings, split_incident

    config = load(ctx)
    store = open_store(config, create=False)
    try:
        remaining, alone = split_incident(store, ident, item, incident_settings(config.incidents))
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    click.echo(
        f"item {item} is now {alone.id}; {remaining.id} keeps {len(remaining.reports)} reports"
    )
