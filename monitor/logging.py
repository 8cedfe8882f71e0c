"""structlog, configured once from the CLI: JSON lines off a terminal, readable on one.

Logs go to stderr so that a command's own output on stdout (`alerts --json`) stays clean;
systemd's journal takes both streams. Every line, ours and the libraries' (httpx, APScheduler,
Apprise, argostranslate log through the standard library), is written by one handler with
structlog's `ProcessorFormatter`, so all of them have the same shape: `event`, `level`,
`timestamp`, plus `logger` for a library's line. When stderr is the journal, each line starts
with its syslog priority (`<4>` for a warning, sd-daemon(3)), so `journalctl -p warning`
filters.

Our own events are rendered by structlog and written straight to the handler's stream, under
the handler's lock: the same line as through the standard library, without a `LogRecord`, the
handler chain and a second processor pass per event (a third of a 304 poll's cost, issue 14).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

from monitor.redact import redact, shown_url


@contextmanager
def _without_twisted() -> Iterator[None]:
    """structlog's package imports its Twisted module whenever Twisted is installed (a
    development environment has it, for the Matrix test server): 30 ms of every command's
    start (issue 14), and we never log through Twisted. Hidden while structlog loads first;
    `import structlog.twisted` still works afterwards."""
    if "structlog" in sys.modules or "structlog.twisted" in sys.modules:
        yield
        return
    sys.modules["structlog.twisted"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        del sys.modules["structlog.twisted"]


with _without_twisted():
    import structlog

__all__ = ["configure_logging"]

_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}
"""Syslog priority (`<N>` at the start of a journal line) of each stdlib level."""
_QUIET = ("apscheduler", "httpx", "httpcore", "apprise", "argostranslate", "trafilatura")
"""Libraries whose INFO lines (a job run, a request, a send) our own events say better: only
their warnings and errors are written, unless the level is debug."""


class _Quiet(logging.Filter):
    def __init__(self, floor: int) -> None:
        super().__init__()
        self.floor = floor

    def filter(self, record: logging.LogRecord) -> bool:
        # A filter on the handler, not a level on their loggers: argostranslate sets its own
        # logger's level when it is imported, after this.
        return record.levelno >= self.floor or record.name.split(".")[0] not in _QUIET


class _JournalFormatter(structlog.stdlib.ProcessorFormatter):
    """Prefixes every line with its record's syslog priority, for the journal to read."""

    def format(self, record: logging.LogRecord) -> str:
        priority = f"<{_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(priority + line for line in super().format(record).split("\n"))


def _to_journal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether `stream` is the journal: systemd names the journal's stream in JOURNAL_STREAM
    as `device:inode` (systemd.exec(5)); a pipe or file of the same process is not it."""
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        stat = os.fstat(stream.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (OSError, ValueError):  # no file descriptor, or no such variable
        return False


_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)


def _redact_library_line(
    _logger: Any, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """A library's line (httpx logs every request URL) shows URLs as scheme and host, and
    nothing secret-shaped: a sink's URL path or a bot token is a secret. Our own events are
    redacted where they are made, with the configured secrets at hand."""
    if event_dict.get("_from_structlog"):
        return event_dict
    for key, value in event_dict.items():
        if isinstance(value, str) and not key.startswith("_"):
            event_dict[key] = redact(_URL.sub(lambda m: shown_url(m.group()), value))
    return event_dict


class _LineWriter:
    """structlog's logger for our own events: writes each rendered line to `handler`'s stream.

    The handler's lock keeps lines from several threads whole, and interleaved correctly with
    the libraries' lines, which go through the handler itself.
    """

    def __init__(self, handler: logging.StreamHandler[TextIO], journal: bool) -> None:
        self._handler = handler
        self._journal = journal

    def _write(self, priority: int, line: str) -> None:
        if self._journal:
            line = "\n".join(f"<{priority}>{part}" for part in line.split("\n"))
        handler = self._handler
        handler.acquire()
        try:
            stream = handler.stream
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass  # stderr closed or gone: as the handler, never fail the caller over a log line
        finally:
            handler.release()

    def debug(self, line: str) -> None:
        self._write(7, line)

    def info(self, line: str) -> None:
        self._write(6, line)

    msg = info

    def warning(self, line: str) -> None:
        self._write(4, line)

    warn = warning

    def error(self, line: str) -> None:
        self._write(3, line)

    def critical(self, line: str) -> None:
        self._write(2, line)

    fatal = critical


def configure_logging(
    level: str = "info",
    json: bool | None = None,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Sends our events and the libraries' through one handler on `stream` (stderr).

    Called again, it replaces the handler it installed before.
    """
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    threshold = logging.getLevelNamesMapping()[level.upper()]
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    journal = _to_journal(stream, os.environ if environ is None else environ)
    formatter_class = _JournalFormatter if journal else structlog.stdlib.ProcessorFormatter
    handler = logging.StreamHandler(stream)
    writer = _LineWriter(handler, journal)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        # Not cached on first use: `structlog.testing.capture_logs` and a second
        # `configure_logging` must reach loggers already used.
        logger_factory=lambda *_args: writer,
        cache_logger_on_first_use=False,
    )
    handler.set_name("news-monitor")
    handler.addFilter(_Quiet(logging.WARNING if threshold > logging.DEBUG else logging.DEBUG))
    handler.setFormatter(
        formatter_class(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.stdlib.add_logger_name,
                timestamper,
            ],
            processors=[
                structlog.processors.format_exc_info,
                _redact_library_line,
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "news-monitor"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
