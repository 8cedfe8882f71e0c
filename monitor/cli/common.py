"""What every command shares: loading the config, exit codes, JSON output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from monitor.config import Config, load_config, parse_duration
from monitor.errors import ConfigError, MonitorError
from monitor.store import Store

__all__ = [
    "ConfigFailure",
    "UsageFailure",
    "duration",
    "echo_json",
    "load",
    "open_store",
    "run_async",
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


def load(ctx: click.Context) -> Config:
    path: Path = ctx.obj["config_path"]
    if not path.exists():
        raise UsageFailure(
            f"{path}: no such config file (pass --config PATH or set NEWS_MONITOR_CONFIG)"
        )
    try:
        return load_config(path)
    except ConfigError as exc:
        raise ConfigFailure(exc) from None


def run_async(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from None


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, default=str))


def duration(value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageFailure(str(exc)) from None


def open_store(config: Config) -> Store:
    try:
        return Store.open(config.database)
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from None
