"""The daemon's schedule, kept in the store so that several daemons can share it.

One loop per daemon: lease the feeds that are due (one query, which also says when the next
one is due), start a poll for each, sleep until the next is due but never more than a couple
of seconds (other nodes change the schedule too), or until woken (a reload, a poll that made
room). Each poll's write sets the feed's next turn and ends its lease (`monitor.store.cluster`).
A heartbeat every lease/3 keeps this node's row fresh and renews the leases of the feeds it
still polls, so a poll longer than half a lease keeps its feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import structlog

from monitor.errors import MonitorError, StoreFileLost
from monitor.store import FeedState, Leased, NodeRow, utcnow
from monitor.store.thread import StoreThread

__all__ = ["ClusterError", "Scheduler", "default_node_name"]

log = structlog.get_logger("monitor.scheduler")

MAX_WAIT = 2.0
"""Seconds the loop sleeps at most: another node may have changed the schedule meanwhile
(taken feeds, died and left its leases to expire)."""
ROUND_GAP = 1.0
"""Seconds between two looks at the schedule at least: times are stored to the millisecond, so
without it a cycle of N feeds would cost N lease transactions (2.8 s of CPU per 1,000 polls
instead of 0.5 s); with it, feeds due within a second are leased together, each at most this
late, never early. A second rather than half: half the lease transactions, and their 304s
commit in half as many batches (issue 14); a second is nothing beside a feed's interval."""
_IDLE_WAIT = 0.1
"""Seconds the loop waits when a feed is due but nothing could be leased (a poll of this node
whose lease lapsed): never a busy loop."""


class ClusterError(MonitorError):
    """This daemon cannot take its place among the nodes."""


_FORGET_AFTER = timedelta(days=1)
"""A node silent this long is dropped from the `nodes` table at the next start of any node."""


def default_node_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Scheduler:
    """Leases due feeds and runs `poll(state)` for each, at most `capacity()` at once.

    Args:
        store: the store's thread.
        node: this daemon's name among the nodes (`cluster.node`).
        lease: how long a lease lasts (`cluster.lease`); settable on reload.
        poll: polls one leased feed; its write ends the lease.
        capacity: how many feeds this node may hold leased at once. More than the global
            slots, so a poll can start the moment a slot frees, but bounded, so other nodes
            get their share of a burst of due feeds.
    """

    def __init__(
        self,
        store: StoreThread,
        node: str,
        lease: timedelta,
        poll: Callable[[FeedState], Coroutine[Any, Any, None]],
        capacity: Callable[[], int],
    ) -> None:
        self.store = store
        self.node = node
        self.lease = lease
        self._poll = poll
        self._capacity = capacity
        self.polling: dict[int, asyncio.Task[None]] = {}
        """The polls this node runs now, by feed id: their leases are renewed."""
        self._woken = asyncio.Event()
        self._more = False
        self._started_at = utcnow()
        self._host = socket.gethostname()

    def wake(self) -> None:
        """Look at the schedule now (a reload added feeds, a poll made room)."""
        self._woken.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Lease and start polls until `stopping` is set; the caller drains the polls."""
        beating = asyncio.create_task(self._heartbeats(stopping))
        try:
            while not stopping.is_set():
                self._woken.clear()
                delay = await self._round()
                if delay > 0:
                    await _first(stopping, self._woken, delay)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def _round(self) -> float:
        """One look at the schedule; returns how long to sleep."""
        room = self._capacity() - len(self.polling)
        if room <= 0:
            self._more = True
            return MAX_WAIT  # full: the next poll to end wakes the loop
        now = utcnow()
        try:
            leased: Leased = await self.store.call(
                self.store.store.lease_due,
                self.node,
                now,
                now + self.lease,
                room,
                list(self.polling),
            )
        except StoreFileLost:
            return MAX_WAIT  # the store thread stops the daemon
        except Exception as exc:
            # SQLite busy past its timeout, PostgreSQL unreachable: try again shortly.
            log.warning("scheduler.lease_failed", error=str(exc))
            return MAX_WAIT
        for state in leased.feeds:
            self._start(state)
        # Due feeds may be left for want of room: the next poll to end wakes the loop.
        self._more = len(leased.feeds) >= room
        if self._more:
            return MAX_WAIT
        if leased.next_due is None:
            return MAX_WAIT
        wait = MAX_WAIT
        if leased.next_due == "":
            wait = 0.0
        else:
            wait = (datetime.fromisoformat(leased.next_due) - utcnow()).total_seconds()
        if not leased.feeds:
            wait = max(wait, _IDLE_WAIT)
        return min(max(wait, ROUND_GAP), MAX_WAIT)

    def _start(self, state: FeedState) -> None:
        task = asyncio.get_running_loop().create_task(self._poll(state), name=f"poll:{state.name}")
        self.polling[state.id] = task
        task.add_done_callback(lambda _: self._ended(state.id))

    def _ended(self, feed_id: int) -> None:
        self.polling.pop(feed_id, None)
        if self._more and len(self.polling) <= self._capacity() // 2:
            # The last round left due feeds unleased for want of room: look again once half of
            # it is free, so a backlog is leased in batches, not a transaction per ended poll
            # (issue 14). Half the room still covers the global slots (capacity is 4 of them).
            self.wake()

    async def join(self) -> None:
        """Before `run`: take this node's place among the nodes.

        Raises:
            ClusterError: another live daemon runs under this node's name.
        """
        await self._reap()
        await self.heartbeat()

    async def _reap(self) -> None:
        """At start: give back at once the leases of nodes on this host whose process is gone
        (a daemon killed and restarted by systemd), and those still held under this node's
        own name (a fixed `cluster.node`), rather than wait a lease for them to end."""
        try:
            now = utcnow()
            await self.store.call(self.store.store.forget_nodes, now - _FORGET_AFTER)
            nodes = await self.store.call(self.store.store.nodes, now)
            for node in nodes:
                if node.name == self.node:
                    same = (node.host, node.pid) == (self._host, os.getpid())
                    beat = datetime.fromisoformat(node.heartbeat_at)
                    if not same and now - beat < self.lease and _alive_there(node, self._host):
                        # Two daemons under one name would poll each other's feeds.
                        raise ClusterError(
                            f"cluster.node {self.node!r} is in use by a running daemon (host"
                            f" {node.host}, pid {node.pid}): give each daemon its own name, or"
                            " leave cluster.node unset (<hostname>-<pid>)"
                        )
                    await self.store.call(self.store.store.leave, node.name)
                    continue
                if node.host != self._host or _alive(node.pid):
                    continue
                await self.store.call(self.store.store.leave, node.name)
                log.info("node.reaped", node=node.name, pid=node.pid, leases=node.leases)
        except (StoreFileLost, ClusterError):
            raise
        except Exception as exc:
            log.warning("node.reap_failed", error=str(exc))

    async def heartbeat(self) -> None:
        """This node's row, and the leases of its running polls renewed for another lease."""
        now = utcnow()
        try:
            await self.store.call(
                self.store.store.heartbeat,
                self.node,
                self._host,
                os.getpid(),
                self._started_at,
                now,
                list(self.polling),
                now + self.lease,
            )
        except StoreFileLost:
            pass
        except Exception as exc:
            log.warning("node.heartbeat_failed", error=str(exc))

    async def _heartbeats(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.lease.total_seconds() / 3)
            if not stopping.is_set():
                await self.heartbeat()

    async def leave(self) -> None:
        """A clean stop: give back every lease now, rather than at their end."""
        with contextlib.suppress(Exception):
            await self.store.call(self.store.store.leave, self.node)


def _alive_there(node: NodeRow, host: str) -> bool:
    """Whether a node's process may still run: on another host, assume so."""
    return node.host != host or _alive(node.pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process (EPERM): alive
    return True


async def _first(stopping: asyncio.Event, woken: asyncio.Event, timeout: float) -> None:
    """Return when either event is set or after `timeout` seconds."""
    waits = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(woken.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
