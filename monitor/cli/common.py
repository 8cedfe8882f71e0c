"""What every command shares: loading the config, exit codes, JSON output."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from monitor.errors import ConfigError, MonitorError

# The config schema (pydantic) and the store (sqlite-utils) load when a command first needs
# them, not when `--help` is asked for (issue 14).
if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.store import Store

__all__ = [
    "ConfigFailure",
    "UsageFailure",
    "duration",
    "echo_json",
    "load",
    "open_reader",
    "open_store",
    "run_async",
    "watchlist_name",
]

T = TypeVar("T")


class UsageFailure(click.ClickException):
    exit_code = 2


class ConfigFailure(click.ClickException):
    """Prints each `file:line: key: message` on its own line and exits 2."""

    exit_code = 2

    def __init__(self, error: ConfigError) -> None:
        super().__init__(str(error))
        self.problems = error.problems

    def show(self, file: Any = None) -> None:
        for line in self.problems:
            click.echo(f"error: {line}", err=True)


def load(ctx: click.Context, *, secrets: bool | str = False) -> Config:
    """The config; `secrets` says which sinks' `${NAME}`s must be set: none (commands that
    send nothing), all (`True`) or the one sink named."""
    from monitor.config import load_config

    path: Path = ctx.obj["config_path"]
    if not path.exists():
        raise UsageFailure(
            f"{path}: no such config file (pass --config PATH or set NEWS_MONITOR_CONFIG)"
        )
    try:
        if secrets is True:
            return load_config(path)
        config = load_config(path, secrets=False)
        if secrets:
            config.require_secrets([secrets])
        return config
    except ConfigError as exc:
        raise ConfigFailure(exc) from None


def run_async(coro: Awaitable[T]) -> T:
    """Run a command's coroutine on uvloop, as uvicorn does: its loop and transports are C, a
    tenth of the daemon's CPU per poll (issue 14). The loop is this call's only, not a global
    policy: code that makes its own loop (tests, libraries) keeps asyncio's."""
    import asyncio

    import uvloop

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)  # type: ignore[arg-type]
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from None


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, default=str))


def duration(value: str) -> timedelta:
    from monitor.config import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageFailure(str(exc)) from None


def open_store(config: Config, *, create: bool = True) -> Store:
    """The database for a command that writes; `create=False` when nothing is there to change."""
    from monitor.store import Store

    try:
        return Store.open(config.database, create=create)
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from None


def open_reader(config: Config) -> Store:
    """The database for a command that only reads: never created, opened read-only (exit 1).

    A read-only connection cannot disturb a running daemon: it never creates a file where the
    daemon's was deleted, nor checkpoints or removes the daemon's WAL when it closes. On
    PostgreSQL its every transaction is read-only, and it creates no tables.
    """
    from monitor.store import Store

    try:
        return Store.open_readonly(config.database)
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from None


def watchlist_name(config: Config, name: str) -> str:
    """The configured watchlist a user means, case-insensitively; a usage error names them all."""
    names = {w.name.casefold(): w.name for w in config.watchlists}
    found = names.get(name.casefold())
    if found is None:
        known = ", ".join(w.name for w in config.watchlists) or "none configured"
        raise UsageFailure(f"no watchlist named {name!r} in {config.source.name} ({known})")
    return found
