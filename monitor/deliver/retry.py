"""What an answer means (sent, retry, dead) and how long to wait: pure, table-testable.

4xx other than 408/429 is permanent: the request itself is wrong (a revoked webhook, a bad
token, a payload the service refuses) and sending it again cannot help. 408, 429, 5xx and
network failures are retried with exponential backoff and jitter, at least as long as the
service's `Retry-After` (header, or Discord's, Telegram's and Matrix's JSON equivalents).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from monitor.deliver.safety import clean
from monitor.fetch import parse_retry_after

__all__ = ["Outcome", "RetryPolicy", "classify", "snippet"]

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


def _json_retry_after(body: str) -> float | None:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
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
    status: int, headers: Mapping[str, str], body: str, now: datetime | None = None
) -> Outcome:
    """An HTTP answer as sent, retry (with the service's wish, if any) or dead."""
    answer = snippet(body)
    if 200 <= status < 300:
        return Outcome("sent", status, answer=answer)
    error = f"HTTP {status}" + (f": {answer}" if answer else "")
    if 300 <= status < 400:
        location = headers.get("location", "")
        return Outcome(
            "dead",
            status,
            f"HTTP {status} redirect to {snippet(location, 200)!r}: update the sink's url",
            answer=answer,
        )
    if status in _RETRYABLE or status >= 500:
        wait = parse_retry_after(headers.get("retry-after"), now)
        if wait is None:
            wait = _json_retry_after(body)
        return Outcome("retry", status, error, wait, answer)
    if 400 <= status < 500:
        return Outcome("dead", status, error, answer=answer)
    return Outcome("retry", status, error, answer=answer)
