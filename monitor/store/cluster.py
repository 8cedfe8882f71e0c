"""Several daemons on one database: feed leases, the schedule, and the nodes' heartbeats.

The schedule lives in the `feeds` table (`next_poll_at`), not in a daemon's memory: a node
leases the feeds that are due (`leased_by`, `lease_until`), polls them, and the poll's write
sets the next `next_poll_at` and clears the lease in one statement (`monitor.store.feeds`).
A node that dies keeps its leases only until `lease_until`; then any node takes the feeds.
On SQLite, BEGIN IMMEDIATE serializes the lease of processes on one file; on PostgreSQL the
lease runs without the store's advisory lock, with `FOR UPDATE SKIP LOCKED`, so nodes lease
side by side without waiting for each other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from monitor.store.base import StoreBase
from monitor.store.feeds import FeedState
from monitor.store.schema import iso

__all__ = ["ClusterQueries", "Leased", "NodeRow", "migrate"]

_STATE = "id, name, url, etag, last_modified, last_ok_at, error_count, next_poll_at, moved_to"
"""The columns of a `FeedState`, in its order."""
_CHUNK = 500
_LAST = "9999"
"""Later than any stored time (ISO 8601 text sorts as time)."""


def migrate(db: sqlite_utils.Database) -> None:
    """0010: the nodes sharing the database, and each feed's lease and whether it is configured."""
    for statement in (
        """CREATE TABLE nodes (
            name TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            heartbeat_at TEXT NOT NULL
        )""",
        "ALTER TABLE feeds ADD COLUMN leased_by TEXT",
        "ALTER TABLE feeds ADD COLUMN lease_until TEXT",
        "ALTER TABLE feeds ADD COLUMN active INTEGER NOT NULL DEFAULT 1",
        "CREATE INDEX feeds_due ON feeds(active, next_poll_at)",
    ):
        db.execute(statement)


@dataclass(frozen=True, slots=True)
class NodeRow:
    name: str
    host: str
    pid: int
    started_at: str
    heartbeat_at: str
    leases: int
    """Feeds whose lease this node holds now."""


@dataclass(frozen=True, slots=True)
class Leased:
    """What one lease query returns: the feeds to poll now, and when the next one is due."""

    feeds: tuple[FeedState, ...]
    next_due: str | None
    """When the next feed is due: the earliest `next_poll_at` of a feed nobody holds ('' when
    one was never scheduled), or the end of a lease that would free a due feed; None when
    there is no feed, or when the lease took `limit` feeds (more may be due now)."""


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


class ClusterQueries(StoreBase):
    """Leases, the schedule and the nodes (module docstring)."""

    def _lease_transaction(self) -> contextlib.AbstractContextManager[None]:
        # PostgreSQL: rows are locked one by one (SKIP LOCKED), so the store-wide advisory lock
        # of a serial write is not needed, and other nodes' leases need not wait for it.
        return self.write(serial=self.engine != "postgresql")

    def lease_due(
        self,
        node: str,
        now: datetime,
        until: datetime,
        limit: int,
        busy: Sequence[int] = (),
    ) -> Leased:
        """Lease up to `limit` configured feeds that are due and that no other node holds.

        `busy` are feeds this node polls already: left out even if their lease lapsed, so a
        poll still running is not started twice. A lease held under this node's own name is
        not taken either: only its end frees a feed (a restart under a fixed `cluster.node`
        gives back its old leases first, `release_leases`).
        """
        now_text = iso(now)
        feeds: list[FeedState] = []
        with self._lease_transaction():
            if limit > 0:
                due, params = self._due_ids(now_text, limit, busy)
                rows = self.db.execute(
                    f"""UPDATE feeds SET leased_by = ?, lease_until = ?
                        WHERE id IN ({due}) RETURNING {_STATE}""",
                    [node, iso(until), *params],
                ).fetchall()
                feeds = sorted((FeedState(*row) for row in rows), key=_due_order)
            if len(feeds) >= limit:
                return Leased(tuple(feeds), None)  # full: more may be due, no need to look
            next_due = self._next_due(now_text)
        return Leased(tuple(feeds), next_due)

    def _due_ids(self, now_text: str, limit: int, busy: Sequence[int]) -> tuple[str, list[Any]]:
        """The query of the ids to lease (never-scheduled feeds first, then the earliest due),
        and its parameters."""
        skip = f" AND id NOT IN ({_marks(busy)})" if busy else ""
        free = f"(leased_by IS NULL OR lease_until <= ?){skip}"
        if self.engine == "postgresql":
            # Rows locked one by one, skipping other nodes' (FOR UPDATE takes no UNION).
            return (
                f"""SELECT id FROM feeds
                    WHERE active = 1 AND (next_poll_at IS NULL OR next_poll_at <= ?) AND {free}
                    ORDER BY next_poll_at NULLS FIRST, id
                    LIMIT ? FOR UPDATE SKIP LOCKED""",
                [now_text, now_text, *busy, limit],
            )
        # Two ranges of `feeds_due` (the unscheduled, then the due up to now), so a round
        # reads the due feeds only: one condition with OR made SQLite read every feed and
        # sort them, the lease round's dearest part at 5,000 feeds (issue 14).
        return (
            f"""SELECT id FROM (
                    SELECT id, '' AS due FROM feeds
                    WHERE active = 1 AND next_poll_at IS NULL AND {free}
                    UNION ALL
                    SELECT * FROM (
                        SELECT id, next_poll_at FROM feeds
                        WHERE active = 1 AND next_poll_at <= ? AND {free}
                        ORDER BY next_poll_at, id LIMIT ?)
                ) AS due ORDER BY due, id LIMIT ?""",
            [now_text, *busy, now_text, now_text, *busy, limit, limit],
        )

    def _next_due(self, now_text: str) -> str | None:
        """`Leased.next_due`: the earliest `next_poll_at` of a feed nobody holds, or the end of
        a held lease that would free a feed due before it.

        Two walks of `feeds_due` in time order rather than one scan of every feed, which was
        the lease round's dearest part (issue 14): the first free feed, then the held ones
        due before it (the polls in flight, a few dozen).
        """
        row = self.db.execute(
            """SELECT COALESCE(next_poll_at, '') FROM feeds
               WHERE active = 1 AND (leased_by IS NULL OR lease_until <= ?)
               ORDER BY next_poll_at NULLS FIRST LIMIT 1""",
            [now_text],
        ).fetchone()
        free: str | None = row[0] if row else None
        if free == "":
            return free  # never scheduled: due now
        # A held feed is due again when its lease ends (should its node die), or at its next
        # turn if that is later.
        held = self.db.execute(
            """SELECT MIN(due) FROM (
                   SELECT lease_until AS due FROM feeds
                   WHERE active = 1 AND next_poll_at IS NULL
                     AND leased_by IS NOT NULL AND lease_until > ?
                   UNION ALL
                   SELECT CASE WHEN next_poll_at < lease_until THEN lease_until
                               ELSE next_poll_at END FROM feeds
                   WHERE active = 1 AND next_poll_at < ?
                     AND leased_by IS NOT NULL AND lease_until > ?
               ) AS held""",
            [now_text, free or _LAST, now_text],
        ).fetchone()[0]
        if held is None or (free is not None and free <= held):
            return free
        return str(held)

    def lease_named(
        self, node: str, names: Sequence[str], now: datetime, until: datetime
    ) -> tuple[dict[str, FeedState], dict[str, tuple[str, str]]]:
        """`poll-once`: lease these feeds whoever has them scheduled, unless a live node polls
        them now. Returns the leased feeds' states, and for the others who holds them, until
        when."""
        now_text = iso(now)
        leased: dict[str, FeedState] = {}
        held: dict[str, tuple[str, str]] = {}
        with self._lease_transaction():
            for start in range(0, len(names), _CHUNK):
                chunk = list(names[start : start + _CHUNK])
                for row in self.db.execute(
                    f"""UPDATE feeds SET leased_by = ?, lease_until = ?
                        WHERE name IN ({_marks(chunk)})
                          AND (leased_by IS NULL OR lease_until <= ?)
                        RETURNING {_STATE}""",
                    [node, iso(until), *chunk, now_text],
                ).fetchall():
                    leased[row[1]] = FeedState(*row)
                missing = [name for name in chunk if name not in leased]
                if missing:
                    for name, holder, lease_until in self.db.execute(
                        f"""SELECT name, leased_by, lease_until FROM feeds
                            WHERE name IN ({_marks(missing)})""",
                        missing,
                    ).fetchall():
                        held[name] = (holder, lease_until)
        return leased, held

    def release_leases(self, node: str, feed_ids: Sequence[int] | None = None) -> None:
        """Give back this node's leases (all, or of these feeds): others may poll them now."""
        with self.write():
            if feed_ids is None:
                self.db.execute(
                    "UPDATE feeds SET leased_by = NULL, lease_until = NULL WHERE leased_by = ?",
                    [node],
                )
                return
            for start in range(0, len(feed_ids), _CHUNK):
                chunk = list(feed_ids[start : start + _CHUNK])
                self.db.execute(
                    f"""UPDATE feeds SET leased_by = NULL, lease_until = NULL
                        WHERE leased_by = ? AND id IN ({_marks(chunk)})""",
                    [node, *chunk],
                )

    def schedule_feeds(self, names: Sequence[str], first_polls: Mapping[str, datetime]) -> None:
        """Mark exactly these feeds as configured (the others are never leased), and give each
        feed that has no next poll yet its first one (the first node to get here decides)."""
        with self.write():
            self.db.execute("UPDATE feeds SET active = 0 WHERE active = 1")
            for start in range(0, len(names), _CHUNK):
                chunk = list(names[start : start + _CHUNK])
                self.db.execute(
                    f"UPDATE feeds SET active = 1 WHERE name IN ({_marks(chunk)})", chunk
                )
            self.db.conn.executemany(
                "UPDATE feeds SET next_poll_at = ? WHERE name = ? AND next_poll_at IS NULL",
                [(iso(when), name) for name, when in first_polls.items()],
            )

    def heartbeat(
        self,
        node: str,
        host: str,
        pid: int,
        started_at: datetime,
        now: datetime,
        renew: Sequence[int] = (),
        until: datetime | None = None,
    ) -> None:
        """This node is alive: its row, and the leases of the feeds it still polls renewed."""
        with self.write():
            self.db.execute(
                """INSERT INTO nodes (name, host, pid, started_at, heartbeat_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid,
                       started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at""",
                [node, host, pid, iso(started_at), iso(now)],
            )
            if until is None:
                return
            for start in range(0, len(renew), _CHUNK):
                chunk = list(renew[start : start + _CHUNK])
                self.db.execute(
                    f"""UPDATE feeds SET lease_until = ?
                        WHERE leased_by = ? AND id IN ({_marks(chunk)})""",
                    [iso(until), node, *chunk],
                )

    def leave(self, node: str) -> None:
        """A clean stop: the node's leases go back at once and its row goes."""
        with self.write():
            self.db.execute(
                "UPDATE feeds SET leased_by = NULL, lease_until = NULL WHERE leased_by = ?",
                [node],
            )
            self.db.execute("DELETE FROM nodes WHERE name = ?", [node])

    def forget_nodes(self, silent_since: datetime) -> int:
        """Remove the rows of nodes silent since then (long dead: their leases ended long
        ago), so that `status` does not list every daemon that ever ran."""
        with self.write():
            cursor = self.db.execute(
                "DELETE FROM nodes WHERE heartbeat_at < ?", [iso(silent_since)]
            )
            return int(cursor.rowcount or 0)

    def nodes(self, now: datetime) -> list[NodeRow]:
        """The nodes that have a heartbeat row, by name, with the leases they hold now."""
        rows = self.db.execute(
            """SELECT n.name, n.host, n.pid, n.started_at, n.heartbeat_at,
                      (SELECT COUNT(*) FROM feeds f
                       WHERE f.leased_by = n.name AND f.lease_until > ?)
               FROM nodes n ORDER BY n.name""",
            [iso(now)],
        ).fetchall()
        return [NodeRow(r[0], r[1], int(r[2]), r[3], r[4], int(r[5])) for r in rows]


def _due_order(state: FeedState) -> tuple[bool, str]:
    # RETURNING gives no order: earliest due first, never-scheduled ones before all.
    return (state.next_poll_at is not None, state.next_poll_at or "")
