"""What an answer means (sent, retry, dead) and how long to wait: pure, table-testable.

4xx other than 408/429 is permanent: the request itself is wrong (a revoked webhook, a bad
token, a payload the service refuses) and sending it again cannot help. 408, 429, 5xx and
network failures are retried with exponential backoff and jitter, at least as long as the
service's `Retry-After` (header, or Discord's, Telegram's and Matrix's JSON equivalents).

A 2xx is not always a success: Slack answers `200 invalid_payload`, Telegram `200 {"ok":
false}`, old Teams connectors `200` with the real error in the text. Each sink module states its
service's success rule as a `SuccessRule` (`classify_slack`, ...), which reads the body of a
2xx; `classify` applies it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from monitor.deliver.safety import clean
from monitor.fetch import parse_retry_after

__all__ = [
    "Outcome",
    "RetryPolicy",
    "SuccessRule",
    "accepted",
    "classify",
    "json_object",
    "json_retry_after",
    "refused",
    "retryable",
    "snippet",
]

Kind = Literal["sent", "retry", "dead"]
_RETRYABLE = {408, 425, 429}


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Kind
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    answer: str = ""
    """The start of the service's reply, for `test-sink` and the logs."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff between attempts; the defaults suit real services, tests pass smaller ones."""

    base: float = 2.0
    """Seconds before the first retry; each further failure doubles it."""
    cap: float = 600.0
    """The longest wait between two attempts, unless the service asks for longer."""
    max_retry_after: float = 6 * 3600.0
    """A `Retry-After` beyond this is taken as this: a typo'd header cannot park a sink."""

    def delay(self, failures: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds until the next attempt after `failures` consecutive failures (≥ 1)."""
        ceiling = min(self.cap, self.base * 2.0 ** min(max(failures, 1) - 1, 40))
        # "Equal jitter": at least half the exponential delay, so waits still grow.
        seconds = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            seconds = max(seconds, min(retry_after, self.max_retry_after))
        return seconds


SuccessRule = Callable[[int, str], Outcome]
"""A sink's reading of a 2xx answer (status, body): sent, or the failure the body reports."""


def json_object(body: str) -> dict[str, Any] | None:
    """The answer as a JSON object, or None when it is not one."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def accepted(status: int, body: str) -> Outcome:
    return Outcome("sent", status, answer=snippet(body))


def refused(
    status: int, body: str, reason: str, *, retry: bool = False, retry_after: float | None = None
) -> Outcome:
    """A 2xx whose body reports a failure: dead, or retried when the service says it passes."""
    error = f"HTTP {status} but {reason}"
    return Outcome("retry" if retry else "dead", status, error, retry_after, snippet(body))


def retryable(status: int) -> bool:
    """Whether an HTTP status (or a service's error code of the same meaning) may pass."""
    return status in _RETRYABLE or status >= 500


def json_retry_after(body: str) -> float | None:
    """Discord's, Telegram's or Matrix's wait from a JSON answer, in seconds."""
    data = json_object(body)
    if data is None:
        return None
    for holder, key, scale in (
        (data, "retry_after", 1.0),  # Discord (seconds, a float)
        (data.get("parameters"), "retry_after", 1.0),  # Telegram
        (data, "retry_after_ms", 0.001),  # Matrix
    ):
        if isinstance(holder, dict):
            value = holder.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                return float(value) * scale
    return None


def snippet(body: str, limit: int = 300) -> str:
    text = clean(body)
    return text if len(text) <= limit else text[:limit] + "…"


def classify(
    status: int,
    headers: Mapping[str, str],
    body: str,
    now: datetime | None = None,
    *,
    success: SuccessRule | None = None,
) -> Outcome:
    """An HTTP answer as sent, retry (with the service's wish, if any) or dead.

    A 2xx is sent unless the sink's `success` rule reads a failure in its body.
    """
    answer = snippet(body)
    if 200 <= status < 300:
        return success(status, body) if success else Outcome("sent", status, answer=answer)
    error = f"HTTP {status}" + (f": {answer}" if answer else "")
    if 300 <= status < 400:
        location = headers.get("location", "")
        return Outcome(
            "dead",
            status,
            f"HTTP {status} redirect to {snippet(location, 200)!r}: update the sink's url",
            answer=answer,
        )
    if retryable(status):
        wait = parse_retry_after(headers.get("retry-after"), now)
        if wait is None:
            wait = json_retry_after(body)
        return Outcome("retry", status, error, wait, answer)
    if 400 <= status < 500:
        return Outcome("dead", status, error, answer=answer)
    return Outcome("retry", status, error, answer=answer)
