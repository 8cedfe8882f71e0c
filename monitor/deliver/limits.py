"""Per-sink rate limits, and flood control (digests) as a pure plan over what is due.

Default rates are the services' documented limits for one webhook, bot or room:

| sink | rate | burst | source |
|---|---|---|---|
| slack | 1/s | 1 | Slack: incoming webhooks, 1 message per second |
| discord | 0.5/s | 5 | Discord: 5 requests per 2 s per webhook, 30 messages a minute per channel |
| teams | 1/s | 4 | Teams connectors: 4 requests per second before throttling |
| mattermost | 10/s | 10 | Mattermost's default `RateLimitSettings.PerSec` |
| telegram | 1/3 s | 3 | Telegram Bot FAQ: 20 messages a minute in one group |
| matrix | 0.2/s | 10 | Synapse's default `rc_message` |
| ntfy | 0.2/s | 60 | ntfy.sh: 60 requests at once, then one every 5 s |
| apprise | 1/s | 5 | unknown service: a polite default |
| webhook | none | | machines; set `rate` to protect a small receiver |

`SinkConfig.rate` replaces the rate, with a burst of one second's worth (at least one).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.config import SinkConfig
from monitor.store.outbox import OutboxBatch

__all__ = [
    "DEFAULT_RATES",
    "Action",
    "Hold",
    "Rate",
    "Send",
    "SendDigest",
    "TokenBucket",
    "chunked",
    "plan",
    "sink_rate",
]


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float
    burst: float


DEFAULT_RATES: dict[str, Rate | None] = {
    "slack": Rate(1.0, 1),
    "discord": Rate(0.5, 5),
    "teams": Rate(1.0, 4),
    "mattermost": Rate(10.0, 10),
    "telegram": Rate(1 / 3, 3),
    "matrix": Rate(0.2, 10),
    "ntfy": Rate(0.2, 60),
    "apprise": Rate(1.0, 5),
    "webhook": None,
}


def sink_rate(sink: SinkConfig) -> Rate | None:
    if sink.rate is not None:
        return Rate(sink.rate, max(1.0, math.floor(sink.rate)))
    return DEFAULT_RATES[sink.type]


class TokenBucket:
    """`delay()` says how long until a message may go; `take()` spends one."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._tokens = rate.burst
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._rate.burst, self._tokens + elapsed * self._rate.per_second)
        self._updated = now

    def delay(self) -> float:
        self._refill()
        if self._tokens >= 1:
            return 0.0
        return (1 - self._tokens) / self._rate.per_second

    def take(self) -> None:
        self._refill()
        self._tokens -= 1


# Flood control --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    id: int


@dataclass(frozen=True, slots=True)
class SendDigest:
    watchlist: str
    ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Hold:
    ids: tuple[int, ...]
    until: datetime


Action = Send | SendDigest | Hold


def plan(
    batch: OutboxBatch,
    now: datetime,
    *,
    digest_after: int,
    window: timedelta,
    digests: bool,
    flush: bool = False,
) -> list[Action]:
    """What to do with a sink's due deliveries, in order.

    Per watchlist, within any `window`: the first `digest_after` alerts go out one by one.
    Past that, the rest are held and go out together as one digest when the oldest of those
    alerts leaves the window; alerts arriving meanwhile join it. A flood that goes on thus
    gets one digest per window; once it stops, alerts go out one by one again. Held rows are
    marked in the store, so a restart keeps the plan. Nothing is dropped.

    With `flush` (`poll-once`, which may not run again for a day) nothing is held: what would
    be goes out at once as a digest, after the alerts sent one by one.
    """
    if not digests:
        return [Send(row.id) for row in batch.due]
    groups: dict[str, list[tuple[int, bool]]] = {}
    for row in batch.due:
        groups.setdefault(row.watchlist, []).append((row.id, row.held))
    holds: list[Action] = []
    flushed: list[Action] = []
    first_action: dict[int, Action] = {}
    for watchlist, rows in groups.items():
        ids = [row_id for row_id, _ in rows]
        held_due = any(held for _, held in rows)
        collecting = batch.collecting.get(watchlist)
        flush_at = datetime.fromisoformat(collecting) if collecting else None
        if held_due or (flush_at is not None and flush_at <= now):
            first_action[ids[0]] = SendDigest(watchlist, tuple(ids))
            continue
        if flush_at is not None:
            if flush:
                flushed.append(SendDigest(watchlist, tuple(ids)))
            else:
                holds.append(Hold(tuple(ids), flush_at))
            continue
        count, oldest = batch.recent.get(watchlist, (0, None))
        allowance = max(0, digest_after - count)
        for row_id in ids[:allowance]:
            first_action[row_id] = Send(row_id)
        rest = ids[allowance:]
        if rest and flush:
            flushed.append(SendDigest(watchlist, tuple(rest)))
        elif rest:
            start = datetime.fromisoformat(oldest) if oldest else now
            holds.append(Hold(tuple(rest), max(start + window, now + timedelta(seconds=1))))
    sends = [first_action[row.id] for row in batch.due if row.id in first_action]
    return holds + sends + flushed


def chunked(ids: Sequence[int], size: int) -> list[tuple[int, ...]]:
    return [tuple(ids[start : start + size]) for start in range(0, len(ids), size)]
