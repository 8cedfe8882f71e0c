"""The core commands: run, poll-once, check-config, analyze, alerts, feeds, demo."""

from __future__ import annotations

import json
import sys
import xml.sax.saxutils
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import yaml

from monitor.analyze import Analyzer
from monitor.cli.common import (
    UsageFailure,
    duration,
    echo_json,
    load,
    open_store,
    run_async,
)
from monitor.deliver import DispatchReport
from monitor.notify import Notifier
from monitor.ops import Operations
from monitor.service import Monitor, PollReport, analyze_records
from monitor.store import utcnow
from monitor.translate import Translator


@click.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the daemon in the foreground until SIGTERM or Ctrl+C.

    SIGHUP, or an edit to the config file or an included catalog, re-reads the config; an
    invalid one is logged and the old one keeps running. A second SIGTERM/Ctrl+C exits at once.
    Under systemd it speaks sd_notify (READY, STATUS, WATCHDOG, RELOADING, STOPPING).

    Example: news-monitor --config config.yaml run
    """
    config = load(ctx)

    async def main() -> None:
        ops = Operations(Notifier.from_env())
        async with Monitor(config, ops=ops) as monitor, ops.serve(monitor):
            await monitor.run()

    run_async(main())


def _report_line(report: PollReport) -> str:
    if report.outcome == "failed":
        return f"{report.feed}: FAILED {report.error}"
    if report.outcome == "not_modified":
        return f"{report.feed}: not modified"
    return f"{report.feed}: {report.items} items, {report.new_items} new, {report.alerts} alerts"


@click.command("poll-once")
@click.option("--feed", "feeds", multiple=True, help="Poll only this feed (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per feed.")
@click.pass_context
def poll_once(ctx: click.Context, feeds: tuple[str, ...], as_json: bool) -> None:
    """One cycle over all feeds: fetch, analyze, store, translate, deliver; then exit.

    Exits 1 when every polled feed failed.

    Example: news-monitor poll-once --feed "Kurdistan 24 (Sorani)"
    """
    config = load(ctx)
    unknown = sorted(set(feeds) - {f.name for f in config.feeds})
    if unknown:
        raise UsageFailure(f"no feed named {unknown[0]!r} in {config.source.name}")

    async def main() -> tuple[list[PollReport], DispatchReport]:
        async with Monitor(config) as monitor:
            reports = await monitor.poll_once(feeds or None)
            await monitor.translate_queued()
            return reports, await monitor.deliver_due()

    reports, delivered = run_async(main())
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
                }
            )
        else:
            click.echo(_report_line(report))
    if delivered.sinks and not as_json:
        click.echo(
            f"deliveries: {delivered.sent} sent, {delivered.retrying} to retry, "
            f"{delivered.dead} dead, {delivered.held} held for a digest"
        )
    if reports and all(r.outcome == "failed" for r in reports):
        sys.exit(1)


@click.command("check-config")
@click.pass_context
def check_config(ctx: click.Context) -> None:
    """Validate the config; print a summary, or every error as file:line: key: message.

    Example: news-monitor --config /etc/news-monitor/config.yaml check-config
    """
    config = load(ctx)
    unverified = sum(not feed.verified for feed in config.feeds)
    terms = sum(len(w.terms) for w in config.watchlists)
    click.echo(f"{ctx.obj['config_path']}: OK")
    click.echo(f"  database:   {config.database}")
    click.echo(
        f"  feeds:      {len(config.feeds)}"
        + (f" ({unverified} marked verified: false)" if unverified else "")
    )
    click.echo(f"  watchlists: {len(config.watchlists)} ({terms} terms)")
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

    Each line is JSON {"id","title","summary","language"?} or plain text (taken as a title).
    Prints one JSON line per item: language, confidence, matches, translation.

    Example: echo 'Suicide bomber killed in Khanaqin' | news-monitor analyze
    """
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
    config = load(ctx)
    store = open_store(config)
    try:
        rows = store.alerts(utcnow() - duration(since), watchlist, limit)
    finally:
        store.close()
    for row in rows:
        if as_json:
            echo_json(row)
            continue
        forms = ", ".join(sorted({m["form"] for m in row["matches"]}))
        item = row["item"]
        click.echo(
            f"{row['created_at']}  [{row['severity']}] {row['watchlist']}: {item['title']}\n"
            f"    {row['feed']} · {item['language']} · matched {forms}\n"
            f"    {item['url'] or '(no link)'}"
        )
    if not rows and not as_json:
        click.echo(f"no alerts in the last {since}", err=True)


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
    config = load(ctx)
    store = open_store(config)
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
            state = f"ok {row['last_ok_at']}"
        click.echo(f"{feed.name}: {state}; {row['items']} items; next {row.get('next_poll_at')}")
        if row.get("moved_to"):
            click.echo(f"    moved permanently to {row['moved_to']}: update the config")


@feeds.command("import")
@click.argument("opml", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def feeds_import(opml: Path) -> None:
    """Print an OPML file's feeds as a YAML catalog for `feeds: - include:`.

    Example: news-monitor feeds import subscriptions.opml > feeds/mine.yaml
    """
    from monitor._source import read_opml

    source = read_opml(opml, ("feeds",))
    if source.problems:
        raise UsageFailure(source.problems[0])
    click.echo(yaml.safe_dump(source.data, allow_unicode=True, sort_keys=False), nl=False)


@feeds.command("export")
@click.pass_context
def feeds_export(ctx: click.Context) -> None:
    """Print the configured feeds as OPML 2.0.

    Example: news-monitor feeds export > news-monitor.opml
    """
    config = load(ctx)
    quote = xml.sax.saxutils.quoteattr
    click.echo('<?xml version="1.0" encoding="UTF-8"?>')
    click.echo('<opml version="2.0">\n  <head><title>news-monitor feeds</title></head>\n  <body>')
    for feed in config.feeds:
        language = f" language={quote(feed.language)}" if feed.language else ""
        click.echo(
            f'    <outline type="rss" text={quote(feed.name)} title={quote(feed.name)}'
            f" xmlUrl={quote(feed.url)}{language}/>"
        )
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
