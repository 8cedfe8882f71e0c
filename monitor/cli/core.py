"""The core commands: run, poll-once, check-config, analyze, alerts, feeds, demo."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.common import (
    ConfigFailure,
    UsageFailure,
    duration,
    echo_json,
    load,
    open_reader,
    run_async,
    watchlist_name,
)
from monitor.errors import ConfigError

# Each command imports the stages it runs inside its own body, so `--help`, `check-config` and a
# `poll-once` with nothing to send load no translation, sink, metrics or daemon code (issue 14).
if TYPE_CHECKING:
    from monitor.config import Config, FeedConfig
    from monitor.deliver import DispatchReport
    from monitor.service import PollReport


@click.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the daemon in the foreground until SIGTERM or Ctrl+C.

    SIGHUP, or an edit to the config file or an included catalog, re-reads the config; an
    invalid one is logged and the old one keeps running. A second SIGTERM/Ctrl+C exits at once.
    Under systemd it speaks sd_notify (READY, STATUS, WATCHDOG, RELOADING, STOPPING).

    Example: news-monitor --config config.yaml run
    """
    from monitor.notify import Notifier
    from monitor.ops import Operations
    from monitor.service import Monitor

    config = load(ctx, secrets=True)

    async def main() -> None:
        ops = Operations(Notifier.from_env())
        async with Monitor(config, ops=ops) as monitor, ops.serve(monitor):
            await monitor.run()
        if monitor.store_lost is not None:
            # Exit 1, for systemd to restart the daemon on whatever file is at the path now.
            raise monitor.store_lost

    run_async(main())


def _report_line(report: PollReport, config: Config) -> str:
    if report.outcome == "failed":
        return f"{report.feed}: FAILED {report.error}"
    if report.outcome == "not_modified":
        return f"{report.feed}: not modified"
    if report.outcome == "skipped":  # another daemon sharing the database polls it now
        return f"{report.feed}: skipped, {report.error}"
    line = f"{report.feed}: {report.items} items, {report.new_items} new, {report.alerts} alerts"
    return line + (f"; {_held_back(report.held_back, config)}" if report.held_back else "")


def _held_back(count: int, config: Config) -> str:
    from monitor.config import format_duration

    return (
        f"{count} matched but older than backfill ({format_duration(config.polling.backfill)}): "
        "stored, not alerted (news-monitor rescan --alert-old alerts them)"
    )


def _deliveries_line(report: DispatchReport) -> str:
    line = f"deliveries: {report.sent} sent, {report.retrying} to retry, {report.dead} dead"
    if report.digests:
        noun = "digest" if report.digests == 1 else "digests"
        line += f"; {report.digests} flood-control {noun}"
    if report.pending:
        cut = "; timed out with" if report.timed_out else ";"
        line += (
            f"{cut} {report.pending} still pending: the daemon, or the next poll-once, sends them"
        )
    return line


@click.command("poll-once")
@click.option("--feed", "feeds", multiple=True, help="Poll only this feed (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per feed.")
@click.pass_context
def poll_once(ctx: click.Context, feeds: tuple[str, ...], as_json: bool) -> None:
    """One cycle over all feeds: fetch, analyze, store, translate, deliver; then exit.

    Exits 1 when every polled feed failed.

    Example: news-monitor poll-once --feed "Kurdistan 24 (Sorani)"
    """
    from monitor.service import Monitor

    config = load(ctx, secrets=True)
    unknown = sorted(set(feeds) - {f.name for f in config.feeds})
    if unknown:
        raise UsageFailure(f"no feed named {unknown[0]!r} in {config.source.name}")

    async def main() -> tuple[list[PollReport], DispatchReport]:
        async with Monitor(config) as monitor:
            reports = await monitor.poll_once(feeds or None)
            await monitor.read_queued_articles()
            await monitor.translate_queued()
            return reports, await monitor.deliver_due()

    reports, delivered = run_async(main())
    # Everything is stored and closed: the process may end without the interpreter's teardown.
    ctx.obj["quick_exit"] = True
    for report in reports:
        if as_json:
            echo_json(
                {
                    "feed": report.feed,
                    "outcome": report.outcome,
                    "http_status": report.http_status,
                    "items": report.items,
                    "new_items": report.new_items,
                    "alerts": report.alerts,
                    "error": report.error,
                    "seconds": report.seconds,
                    "held_back": report.held_back,
                }
            )
        else:
            click.echo(_report_line(report, config))
    if delivered.sinks and not as_json:
        click.echo(_deliveries_line(delivered))
    if reports and all(r.outcome == "failed" for r in reports):
        sys.exit(1)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


@click.command("check-config")
@click.option("--json", "as_json", is_flag=True, help="The summary, or the errors, as JSON.")
@click.pass_context
def check_config(ctx: click.Context, as_json: bool) -> None:
    """Validate the config, with every sink's secrets; print a summary, or every error as
    file:line: key: message (exit 2).

    With --json: {"ok": true, ...summary} or {"ok": false, "errors": [...]}.

    Example: news-monitor --config /etc/news-monitor/config.yaml check-config
    """
    try:
        config = load(ctx, secrets=True)
    except (ConfigFailure, UsageFailure) as exc:
        if not as_json:
            raise
        errors = exc.problems if isinstance(exc, ConfigFailure) else [exc.message]
        echo_json({"ok": False, "errors": errors})
        ctx.exit(2)
    unverified = sum(not feed.verified for feed in config.feeds)
    terms = sum(len(w.terms) for w in config.watchlists)
    if as_json:
        echo_json(
            {
                "ok": True,
                "config": str(ctx.obj["config_path"]),
                "database": str(config.database),
                "feeds": len(config.feeds),
                "unverified_feeds": unverified,
                "watchlists": [
                    {
                        "name": w.name,
                        "severity": w.severity,
                        "terms": len(w.terms),
                        "sinks": list(config.sinks_for(w)),
                    }
                    for w in config.watchlists
                ],
                "sinks": [{"name": sink.name, "type": sink.type} for sink in config.sinks],
                "warnings": list(config.warnings),
            }
        )
        return
    for warning in config.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{ctx.obj['config_path']}: OK")
    click.echo(f"  database:   {config.database}")
    click.echo(
        f"  feeds:      {len(config.feeds)}"
        + (f" ({unverified} marked verified: false)" if unverified else "")
    )
    click.echo(f"  watchlists: {len(config.watchlists)} ({_plural(terms, 'term')})")
    for watchlist in config.watchlists:
        sinks = ", ".join(config.sinks_for(watchlist)) or "stored only"
        click.echo(f"    {watchlist.name} [{watchlist.severity}] → {sinks}")
    click.echo(f"  sinks:      {len(config.sinks)}")
    for sink in config.sinks:
        click.echo(f"    {sink.name} ({sink.type})")


def _records(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, 1):
        text = line.rstrip("\n")
        if not text.strip():
            continue
        if text.lstrip().startswith("{"):
            try:
                record = json.loads(text)
            except ValueError as exc:
                raise UsageFailure(f"stdin:{number}: invalid JSON: {exc}") from None
            if not isinstance(record, dict):
                raise UsageFailure(f"stdin:{number}: expected a JSON object")
            yield record
        else:
            yield {"id": number, "title": text, "summary": ""}


@click.command()
@click.pass_context
def analyze(ctx: click.Context) -> None:
    """Why did (or didn't) this alert? Analyze items read from stdin.

    Each line is JSON {"id","title","summary","content"?,"language"?} or plain text (taken
    as a title).
    Prints one JSON line per item: language, confidence, matches, translation.

    Example: echo 'Suicide bomber killed in Khanaqin' | news-monitor analyze
    """
    from monitor.analyze import Analyzer
    from monitor.service import analyze_records
    from monitor.translate import Translator

    config = load(ctx)
    analyzer = Analyzer(config.watchlists)
    translator = None if config.translation.mode == "off" else Translator.from_config(config)
    for result in analyze_records(analyzer, _records(iter(sys.stdin)), translator):
        echo_json(result)


@click.command()
@click.option("--since", default="24h", show_default=True, help="How far back, e.g. 90m, 7d.")
@click.option("--watchlist", help="Only this watchlist.")
@click.option("--limit", default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert.")
@click.pass_context
def alerts(
    ctx: click.Context, since: str, watchlist: str | None, limit: int, as_json: bool
) -> None:
    """Recent alerts, newest first.

    Example: news-monitor alerts --since 7d --watchlist khanaqin --json
    """
    from monitor.store import shown, utcnow

    config = load(ctx)
    name = watchlist_name(config, watchlist) if watchlist is not None else None
    start = utcnow() - duration(since)
    store = open_reader(config)
    try:
        rows = store.alerts(start, name, limit)
    finally:
        store.close()
    for row in rows:
        if as_json:
            echo_json(row)
            continue
        forms = ", ".join(sorted({m["form"] for m in row["matches"]}))
        item = row["item"]
        click.echo(
            f"{shown(row['created_at'])}  [{row['severity']}] {row['watchlist']}: {item['title']}\n"
            f"    {row['feed']} · {item['language']} · matched {forms}\n"
            f"    {item['url'] or '(no link)'}"
        )
    if not rows and not as_json:
        click.echo(f"no {name + ' ' if name else ''}alerts in the last {since}", err=True)


@click.group(invoke_without_command=True)
@click.pass_context
def feeds(ctx: click.Context) -> None:
    """Per-feed health (default), OPML import and export.

    Example: news-monitor feeds
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(feeds_list)


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def feeds_list(ctx: click.Context, as_json: bool) -> None:
    """Each configured feed: last success, last error, items stored, next poll.

    Example: news-monitor feeds list --json
    """
    from monitor.store import shown

    config = load(ctx)
    store = open_reader(config)
    try:
        health = {row["name"]: row for row in store.feed_health()}
    finally:
        store.close()
    for feed in config.feeds:
        row = health.get(feed.name) or {"name": feed.name, "url": feed.url, "items": 0}
        if as_json:
            echo_json({**row, "verified": feed.verified})
            continue
        state = "never polled"
        if row.get("error_count"):
            state = f"FAILING ×{row['error_count']}: {row['last_error']}"
        elif row.get("last_ok_at"):
            state = f"ok {shown(row['last_ok_at'])}"
        upcoming = row.get("next_poll_at")
        next_poll = f"next {shown(upcoming)}" if upcoming else "next: first poll pending"
        click.echo(f"{feed.name}: {state}; {row['items']} items; {next_poll}")
        if row.get("moved_to"):
            click.echo(f"    moved permanently to {row['moved_to']}: update the config")
        if row.get("held_back"):
            click.echo(f"    {_held_back(row['held_back'], config)}")


@feeds.command("import")
@click.argument("opml", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def feeds_import(opml: Path) -> None:
    """Print an OPML file's feeds as a YAML catalog for `feeds: - include:`.

    Folders become each feed's `group`. An outline without an xmlUrl is skipped with a
    warning; two outlines with one xmlUrl are an error (exit 2).

    Example: news-monitor feeds import subscriptions.opml > feeds/mine.yaml
    """
    import yaml

    from monitor.config import read_catalog

    try:
        catalog = read_catalog(opml)
    except ConfigError as exc:
        raise ConfigFailure(exc) from None
    for warning in catalog.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(yaml.safe_dump(catalog.feeds, allow_unicode=True, sort_keys=False), nl=False)


_Folder = tuple[str, list["_Folder | FeedConfig"]]


def _folders(feeds: tuple[FeedConfig, ...]) -> list[_Folder | FeedConfig]:
    """Feeds nested in their groups' folders (`Kurdish / Sorani` is Sorani inside Kurdish),
    each folder where its first feed stands."""
    top: list[_Folder | FeedConfig] = []
    folders: dict[tuple[str, ...], list[_Folder | FeedConfig]] = {(): top}
    for feed in feeds:
        parts = tuple(p.strip() for p in (feed.group or "").split(" / ") if p.strip())
        for depth in range(1, len(parts) + 1):
            if parts[:depth] not in folders:
                folders[parts[:depth]] = []
                folders[parts[: depth - 1]].append((parts[depth - 1], folders[parts[:depth]]))
        folders[parts].append(feed)
    return top


def _outlines(entries: list[_Folder | FeedConfig], depth: int) -> Iterator[str]:
    from xml.sax.saxutils import quoteattr as quote

    pad = "  " * depth
    for entry in entries:
        if isinstance(entry, tuple):
            name, inside = entry
            yield f"{pad}<outline text={quote(name)} title={quote(name)}>"
            yield from _outlines(inside, depth + 1)
            yield f"{pad}</outline>"
            continue
        language = f" language={quote(entry.language)}" if entry.language else ""
        yield (
            f'{pad}<outline type="rss" text={quote(entry.name)} title={quote(entry.name)}'
            f" xmlUrl={quote(entry.url)}{language}/>"
        )


@feeds.command("export")
@click.pass_context
def feeds_export(ctx: click.Context) -> None:
    """Print the configured feeds as OPML 2.0; groups become folders.

    Example: news-monitor feeds export > news-monitor.opml
    """
    config = load(ctx)
    click.echo('<?xml version="1.0" encoding="UTF-8"?>')
    click.echo('<opml version="2.0">\n  <head><title>news-monitor feeds</title></head>\n  <body>')
    for line in _outlines(_folders(config.feeds), 2):
        click.echo(line)
    click.echo("  </body>\n</opml>")


@click.command()
@click.option(
    "--keep", type=click.Path(path_type=Path, file_okay=False), help="Keep the demo's files here."
)
def demo(keep: Path | None) -> None:
    """The whole pipeline on bundled sample feeds served on 127.0.0.1; no internet needed.

    Example: news-monitor demo
    """
    from monitor.demo import run_demo

    run_async(run_demo(keep, click.echo))
