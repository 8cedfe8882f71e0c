"""The deliveries outbox: what is due, sent, retried or dead (DESIGN §7).

A poll writes one `pending` row per alert and sink (`record_poll`); the dispatcher reads what is
due, claims it, and records the outcome here. Times are `schema.iso` text, with milliseconds:
retries and rate limits work below a second.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from monitor.store.base import StoreBase
from monitor.store.dialect import Engine, json_array_agg, json_pair
from monitor.store.schema import iso, migrations

__all__ = [
    "DeliveryRecord",
    "DueDelivery",
    "IncidentMessage",
    "OutboxBatch",
    "OutboxQueries",
]


@migrations(name="0002_outbox")
def _outbox(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- The HTTP status of the last attempt, for `deliveries` and for operators.
        ALTER TABLE deliveries ADD COLUMN last_status INTEGER;
        -- Flood control: set while a row waits to go out in its watchlist's next digest
        -- (`next_attempt_at` is then when that digest is due).
        ALTER TABLE deliveries ADD COLUMN held_at TEXT;
        -- The digest message that delivered the row, when it went out in one.
        ALTER TABLE deliveries ADD COLUMN digest TEXT;
        -- Set by `deliveries retry`: `delivery.retry_for` counts from here instead.
        ALTER TABLE deliveries ADD COLUMN retried_at TEXT;
        CREATE INDEX deliveries_sink_due ON deliveries(sink, status, next_attempt_at);
        CREATE INDEX deliveries_sink_sent ON deliveries(sink, sent_at) WHERE status = 'sent';
        """
    )


@dataclass(frozen=True, slots=True)
class DueDelivery:
    id: int
    watchlist: str
    held: bool
    """Held by flood control: it goes out in a digest, never on its own."""
    kind: str = "created"
    """`created`: the incident's first report to reach the sink; `updated`: a later one."""
    incident: str | None = None


@dataclass(frozen=True, slots=True)
class IncidentMessage:
    """A sink's message of an incident: the service's id of the first one, and when the
    last message about it (the first, or an update) went out."""

    message_id: str | None
    thread_id: str | None
    updated_at: str | None


@dataclass(frozen=True, slots=True)
class OutboxBatch:
    """What one sink has due now, with what flood control needs to decide about it."""

    due: tuple[DueDelivery, ...]
    recent: Mapping[str, tuple[int, str]]
    """Per watchlist: deliveries sent within the digest window, and the oldest one's sent_at."""
    collecting: Mapping[str, str]
    """Per watchlist with held rows: when their digest is due."""


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A claimed delivery with its alert, item (translation included) and feed."""

    id: int
    sink: str
    attempts: int
    since: str
    """When `delivery.retry_for` started counting: created, or last retried by hand."""
    alert_id: int
    watchlist: str
    severity: str
    matches: tuple[Mapping[str, Any], ...]
    alert_created_at: str
    story_key: str
    item_id: int
    guid: str
    title: str
    summary: str
    url: str | None
    published_at: str | None
    language: str | None
    language_confidence: float | None
    title_en: str | None
    summary_en: str | None
    feed_name: str
    feed_url: str
    incident_id: str | None = None
    kind: str = "created"
    item_alerts: tuple[tuple[str, tuple[Mapping[str, Any], ...]], ...] = ()
    """Every alert of the item, (watchlist, matches): a message shows all that route to
    its sink."""


@functools.cache
def _record_select(engine: Engine) -> str:
    item_alerts = json_array_agg(engine, json_pair(engine, "x.watchlist", "x.matches"))
    return f"""
    SELECT d.id, d.sink, d.attempts, COALESCE(d.retried_at, d.created_at), a.id, a.watchlist,
           a.severity, a.matches, a.created_at, a.story_key, i.id, i.guid, i.title, i.summary,
           i.url, i.published_at, i.language, i.language_confidence, i.title_en, i.summary_en,
           f.name, f.url, d.incident_id, d.kind,
           (SELECT {item_alerts} FROM alerts x WHERE x.item_id = i.id)
    FROM deliveries d
    JOIN alerts a ON a.id = d.alert_id
    JOIN items i ON i.id = a.item_id
    JOIN feeds f ON f.id = i.feed_id
"""


def _record(row: Sequence[Any]) -> DeliveryRecord:
    values = list(row)
    values[7] = tuple(json.loads(values[7]))
    values[24] = tuple(
        (str(watchlist), tuple(matches)) for watchlist, matches in json.loads(values[24] or "[]")
    )
    return DeliveryRecord(*values)


def _marks(ids: Sequence[int]) -> str:
    return ",".join("?" * len(ids))


def _chunks(ids: Iterable[int], size: int = 500) -> Iterable[list[int]]:
    batch: list[int] = []
    for value in ids:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class OutboxQueries(StoreBase):
    """The outbox's reads and state changes; `Store` combines them."""

    # The dispatcher ----------------------------------------------------------------------

    def outbox_batch(
        self, sink: str, now: datetime, window_start: datetime, limit: int = 100
    ) -> OutboxBatch:
        """Up to `limit` deliveries due for `sink`, oldest first, and the flood state."""
        due = self.db.execute(
            """SELECT d.id, a.watchlist, d.held_at IS NOT NULL, d.kind, d.incident_id
               FROM deliveries d JOIN alerts a ON a.id = d.alert_id
               WHERE d.sink = ? AND d.status = 'pending' AND d.next_attempt_at <= ?
               ORDER BY d.id LIMIT ?""",
            [sink, iso(now), limit],
        ).fetchall()
        # Flood control counts incidents: an incident's later reports are updates.
        recent = self.db.execute(
            """SELECT a.watchlist, COUNT(*), MIN(d.sent_at)
               FROM deliveries d JOIN alerts a ON a.id = d.alert_id
               WHERE d.sink = ? AND d.status = 'sent' AND d.sent_at > ? AND d.kind = 'created'
               GROUP BY a.watchlist""",
            [sink, iso(window_start)],
        ).fetchall()
        collecting = self.db.execute(
            """SELECT a.watchlist, MIN(d.next_attempt_at)
               FROM deliveries d JOIN alerts a ON a.id = d.alert_id
               WHERE d.sink = ? AND d.status = 'pending' AND d.held_at IS NOT NULL
               GROUP BY a.watchlist""",
            [sink],
        ).fetchall()
        return OutboxBatch(
            tuple(DueDelivery(row[0], row[1], bool(row[2]), row[3], row[4]) for row in due),
            {row[0]: (int(row[1]), row[2]) for row in recent},
            {row[0]: row[1] for row in collecting},
        )

    def claim_deliveries(
        self, ids: Sequence[int], now: datetime, lease_until: datetime
    ) -> list[DeliveryRecord]:
        """Claim those of `ids` still pending and due, until `lease_until`; read them to send.

        The lease keeps a second process (`poll-once` beside the daemon) from sending the same
        row at once; a crash mid-send leaves the row due again when the lease ends.
        """
        claimed: list[int] = []
        with self.write():
            for chunk in _chunks(ids):
                claimed += [
                    row[0]
                    for row in self.db.execute(
                        f"""UPDATE deliveries SET next_attempt_at = ?
                            WHERE id IN ({_marks(chunk)}) AND status = 'pending'
                              AND next_attempt_at <= ? RETURNING id""",
                        [iso(lease_until), *chunk, iso(now)],
                    )
                ]
            records: list[DeliveryRecord] = []
            for chunk in _chunks(sorted(claimed)):
                records += [
                    _record(row)
                    for row in self.db.execute(
                        f"""{_record_select(self.engine)} WHERE d.id IN ({_marks(chunk)})
                            ORDER BY d.id""",
                        chunk,
                    )
                ]
        return records

    def mark_sent(
        self,
        ids: Sequence[int],
        now: datetime,
        status: int | None,
        digest: str | None = None,
    ) -> None:
        with self.write():
            for chunk in _chunks(ids):
                self.db.execute(
                    f"""UPDATE deliveries SET status = 'sent', sent_at = ?, attempts = attempts + 1,
                            last_status = ?, last_error = NULL, digest = ?
                        WHERE id IN ({_marks(chunk)})""",
                    [iso(now), status, digest, *chunk],
                )

    def schedule_retry(
        self, ids: Sequence[int], at: datetime, error: str, status: int | None
    ) -> None:
        with self.write():
            for chunk in _chunks(ids):
                self.db.execute(
                    f"""UPDATE deliveries SET next_attempt_at = ?, attempts = attempts + 1,
                            last_error = ?, last_status = ?
                        WHERE id IN ({_marks(chunk)}) AND status = 'pending'""",
                    [iso(at), error, status, *chunk],
                )

    def mark_dead(
        self, ids: Sequence[int], error: str, status: int | None, now: datetime | None = None
    ) -> None:
        with self.write():
            for chunk in _chunks(ids):
                self.db.execute(
                    f"""UPDATE deliveries SET status = 'dead', attempts = attempts + 1,
                            last_error = ?, last_status = ?, dead_at = ?
                        WHERE id IN ({_marks(chunk)}) AND status = 'pending'""",
                    [error, status, iso(now or datetime.now(UTC)), *chunk],
                )

    def hold_deliveries(self, ids: Sequence[int], until: datetime, now: datetime) -> None:
        """Flood control: these go out in their watchlist's digest at `until`."""
        with self.write():
            for chunk in _chunks(ids):
                self.db.execute(
                    f"""UPDATE deliveries SET held_at = COALESCE(held_at, ?), next_attempt_at = ?
                        WHERE id IN ({_marks(chunk)}) AND status = 'pending'""",
                    [iso(now), iso(until), *chunk],
                )

    def release_deliveries(self, ids: Sequence[int], now: datetime) -> None:
        """Give claimed but unsent deliveries back: due again at once."""
        with self.write():
            for chunk in _chunks(ids):
                self.db.execute(
                    f"""UPDATE deliveries SET next_attempt_at = ?
                        WHERE id IN ({_marks(chunk)}) AND status = 'pending'""",
                    [iso(now), *chunk],
                )

    def defer_deliveries(self, ids: Sequence[int], until: datetime) -> None:
        """An incident's updates wait: for its first message, or for `update_every`."""
        with self.write():
            for chunk in _chunks(ids):
                self.db.execute(
                    f"""UPDATE deliveries SET next_attempt_at = ?
                        WHERE id IN ({_marks(chunk)}) AND status = 'pending'""",
                    [iso(until), *chunk],
                )

    def incident_message(self, incident: str, sink: str) -> IncidentMessage | None:
        row = self.db.execute(
            """SELECT message_id, thread_id, updated_at FROM incident_messages
               WHERE incident_id = ? AND sink = ?""",
            [incident, sink],
        ).fetchone()
        return IncidentMessage(row[0], row[1], row[2]) if row else None

    def record_incident_message(
        self,
        incident: str,
        sink: str,
        now: datetime,
        message_id: str | None = None,
        thread_id: str | None = None,
    ) -> None:
        """A message about `incident` went out to `sink`; the first one's id, if it has one."""
        with self.write():
            self.db.execute(
                """INSERT INTO incident_messages (incident_id, sink, message_id, thread_id,
                       created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (incident_id, sink) DO UPDATE SET updated_at = excluded.updated_at,
                       message_id = COALESCE(incident_messages.message_id, excluded.message_id),
                       thread_id = COALESCE(incident_messages.thread_id, excluded.thread_id)""",
                [incident, sink, message_id, thread_id, iso(now), iso(now)],
            )

    def first_delivery(self, incident: str, sink: str) -> tuple[str, str] | None:
        """The incident's `created` delivery to `sink`: its status and when it is next due."""
        row = self.db.execute(
            """SELECT status, next_attempt_at FROM deliveries
               WHERE incident_id = ? AND sink = ? AND kind = 'created' ORDER BY id LIMIT 1""",
            [incident, sink],
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def incident_records(self, incident: str, sink: str) -> list[DeliveryRecord]:
        """Every report of `incident` that went or goes to `sink`, oldest first (an edit)."""
        return [
            _record(row)
            for row in self.db.execute(
                f"""{_record_select(self.engine)} WHERE d.incident_id = ? AND d.sink = ?
                    AND d.status != 'dead' AND d.item_id IS NOT NULL ORDER BY d.id""",
                [incident, sink],
            )
        ]

    def next_due(self, sink: str) -> datetime | None:
        """When the earliest pending delivery of `sink` is due."""
        row = self.db.execute(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE sink = ? AND status = 'pending'",
            [sink],
        ).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    # The `deliveries` command ------------------------------------------------------------

    def list_deliveries(
        self, statuses: Sequence[str] = ("pending", "dead"), limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Deliveries in `statuses`, oldest first, with their alert's title and feed."""
        rows = self.db.execute(
            f"""SELECT d.id, d.sink, d.status, d.attempts, d.next_attempt_at, d.last_error,
                       d.last_status, d.created_at, d.held_at IS NOT NULL, a.id, a.watchlist,
                       a.severity, i.title, i.url, f.name
                FROM deliveries d
                JOIN alerts a ON a.id = d.alert_id
                JOIN items i ON i.id = a.item_id
                JOIN feeds f ON f.id = i.feed_id
                WHERE d.status IN ({_marks(list(range(len(statuses))))})
                ORDER BY d.id LIMIT ?""",
            [*statuses, limit],
        ).fetchall()
        keys = (
            "id",
            "sink",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "last_status",
            "created_at",
            "held",
            "alert_id",
            "watchlist",
            "severity",
            "title",
            "url",
            "feed",
        )
        return [{**dict(zip(keys, row, strict=True)), "held": bool(row[8])} for row in rows]

    def delivery_status(self, delivery_id: int) -> str | None:
        row = self.db.execute(
            "SELECT status FROM deliveries WHERE id = ?", [delivery_id]
        ).fetchone()
        return str(row[0]) if row else None

    def retry_deliveries(
        self, now: datetime, ids: Sequence[int] = (), *, all_dead: bool = False
    ) -> int:
        """Make dead (or waiting) deliveries due now, as if new; returns how many changed.

        Sent deliveries are left alone: sending one again is not a retry.
        """
        reset = """UPDATE deliveries SET status = 'pending', next_attempt_at = ?, attempts = 0,
                       held_at = NULL, dead_at = NULL, retried_at = ?"""
        changed = 0
        with self.write():
            if all_dead:
                cursor = self.db.execute(f"{reset} WHERE status = 'dead'", [iso(now)] * 2)
                changed += cursor.rowcount
            for chunk in _chunks(ids):
                cursor = self.db.execute(
                    f"{reset} WHERE id IN ({_marks(chunk)}) AND status IN ('dead', 'pending')",
                    [iso(now), iso(now), *chunk],
                )
                changed += cursor.rowcount
        return changed

    def delivery_counts(self) -> dict[str, dict[str, int]]:
        """Per sink: how many deliveries are pending, sent and dead."""
        counts: dict[str, dict[str, int]] = {}
        for sink, status, count in self.db.execute(
            "SELECT sink, status, COUNT(*) FROM deliveries GROUP BY sink, status"
        ):
            counts.setdefault(sink, {"pending": 0, "sent": 0, "dead": 0})[status] = int(count)
        return counts
