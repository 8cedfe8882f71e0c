"""The exception tree. Every error a user can cause says what to do about it.

MonitorError
├── ConfigError     config.yaml or an included catalog is invalid (exit 2)
├── FetchError      a feed could not be fetched or is not a feed
│   └── NotAFeedError
├── StoreError      the database cannot be opened, migrated or written
│   ├── StoreMissing   a command that only reads found no database file
│   └── StoreFileLost  the open database file was deleted or replaced on disk
└── DeliveryError   a sink refused or could not be reached
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error news-monitor raises on purpose."""


class ConfigError(MonitorError):
    """One or more problems in the configuration, each as `file:line: key: message`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class FetchError(MonitorError):
    """A feed could not be fetched. `retry_after` is the server's wish, in seconds."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class NotAFeedError(FetchError):
    """The response was fetched but holds no feed (an HTML page, an empty body)."""


class StoreError(MonitorError):
    """The database could not be opened, migrated or written."""


class StoreMissing(StoreError):
    """A read-only command found no database file: it never creates one."""


class StoreFileLost(StoreError):
    """The path no longer names the file the store opened: `deleted` or `replaced`.

    Nothing more is written through that connection; the daemon exits so that its service
    manager restarts it on whatever file is at the path now.
    """

    def __init__(self, path: object, how: str) -> None:
        self.how = how
        advice = (
            "restart news-monitor to start a new one (restore a backup first to keep the data)"
            if how == "deleted"
            else "restart news-monitor to use the file now there"
        )
        super().__init__(
            f"{path}: the database file was {how} while news-monitor had it open; "
            f"nothing more is written to it: {advice}"
        )


class DeliveryError(MonitorError):
    """A delivery failed; `permanent` failures are not retried."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(message)
