"""Several daemons on one database, the store's side: leases, the schedule, nodes (issue 13).

Each test runs on a SQLite file and on a fresh PostgreSQL database (`store_target`, tests/pg.py).
Two `Store`s on one database stand for two nodes: two connections, as two daemons have.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import FeedServer, rss, write_config

from monitor.config import FeedConfig
from monitor.service import Monitor
from monitor.store import PollWrite, Store, iso

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def _feeds(store: Store, count: int, due: datetime | None = NOW) -> dict[str, int]:
    configs = [FeedConfig(name=f"f{n}", url=f"https://example.org/{n}.xml") for n in range(count)]
    ids = {name: state.id for name, state in store.sync_feeds(configs).items()}
    store.schedule_feeds(list(ids), {name: due for name in ids} if due else {})
    return ids


def test_a_due_feed_is_leased_by_one_node_until_its_lease_ends(store_target: Path | str) -> None:
    a, b = Store.open(store_target), Store.open(store_target)
    try:
        ids = _feeds(a, 3)
        first = a.lease_due("a", NOW, NOW + LEASE, 2)
        assert [s.name for s in first.feeds] == ["f0", "f1"]
        # Another node gets only what is left; the next feed it could poll is one whose lease
        # ends (should its node die).
        second = b.lease_due("b", NOW, NOW + LEASE, 10)
        assert [s.name for s in second.feeds] == ["f2"]
        assert second.next_due == iso(NOW + LEASE)
        assert b.lease_due("c", NOW + LEASE / 2, NOW + LEASE, 10).feeds == ()
        # Node a dies: once its leases end, b takes its feeds.
        late = NOW + LEASE + timedelta(seconds=1)
        taken = b.lease_due("b", late, late + LEASE, 10, busy=[ids["f2"]])
        assert sorted(s.id for s in taken.feeds) == [ids["f0"], ids["f1"]]
        assert {n.name: n.leases for n in b.nodes(late)} == {}
    finally:
        a.close()
        b.close()


def test_a_poll_write_sets_the_next_turn_and_ends_the_lease(store_target: Path | str) -> None:
    store = Store.open(store_target)
    try:
        ids = _feeds(store, 3)
        leased = store.lease_due("a", NOW, NOW + LEASE, 10)
        assert len(leased.feeds) == 3
        later = NOW + timedelta(minutes=10)
        store.record_poll(PollWrite(ids["f0"], 200, None, None, None, "F0", later), NOW)
        store.record_unchanged([(PollWrite(ids["f1"], 304, '"e"', None, None, None, later), NOW)])
        store.record_failure(ids["f2"], "HTTP 500", 500, NOW + timedelta(minutes=20), NOW)
        rows = store.db.execute(
            "SELECT name, leased_by, lease_until, next_poll_at FROM feeds ORDER BY name"
        ).fetchall()
        assert [tuple(r) for r in rows] == [
            ("f0", None, None, iso(later)),
            ("f1", None, None, iso(later)),
            ("f2", None, None, iso(NOW + timedelta(minutes=20))),
        ]
        # Free, but not due before their next turn; the earliest is what the loop sleeps to.
        after = store.lease_due("b", NOW + timedelta(minutes=1), NOW + LEASE, 10)
        assert after.feeds == ()
        assert after.next_due == iso(later)
        assert len(store.lease_due("b", later, later + LEASE, 10).feeds) == 2
    finally:
        store.close()


def test_the_next_due_is_the_earliest_free_turn_or_held_lease_end(
    store_target: Path | str,
) -> None:
    a, b = Store.open(store_target), Store.open(store_target)
    try:
        ids = _feeds(a, 4)
        soon, later = NOW + timedelta(seconds=30), NOW + timedelta(minutes=5)
        a.lease_due("a", NOW, soon, 2)  # f0 and f1, until `soon`
        a.schedule_feeds(["f0", "f1", "f2", "f3"], {})
        a.db.execute(
            "UPDATE feeds SET next_poll_at = ? WHERE id IN (?, ?)",
            [iso(later), ids["f1"], ids["f2"]],
        )
        a.db.execute("UPDATE feeds SET next_poll_at = NULL WHERE id = ?", [ids["f3"]])
        a.db.conn.commit()
        # f3 (never scheduled) is leased; f2 is free at `later`; f0 is due again when a's lease
        # ends (should a die); f1's turn comes after that end.
        first = b.lease_due("b", NOW, NOW + LEASE, 10)
        assert [s.name for s in first.feeds] == ["f3"]
        assert first.next_due == iso(soon)
        # Past a's lease, f0 is b's; f3, held with no turn set, is due at its lease's end.
        second = b.lease_due("b", soon, soon + LEASE, 10, busy=[ids["f3"]])
        assert [s.name for s in second.feeds] == ["f0"]
        assert second.next_due == iso(NOW + LEASE)
        # A free feed never scheduled is due now, even one this node is busy with.
        b.release_leases("b", [ids["f3"]])
        third = b.lease_due("b", soon, soon + LEASE, 10, busy=[ids["f3"]])
        assert (third.feeds, third.next_due) == ((), "")
        b.schedule_feeds([], {})
        assert b.lease_due("b", soon, soon + LEASE, 10).next_due is None
    finally:
        a.close()
        b.close()


def test_busy_and_unconfigured_feeds_are_not_leased(store_target: Path | str) -> None:
    store = Store.open(store_target)
    try:
        ids = _feeds(store, 4)
        # f3 leaves the config: it is kept, never leased.
        store.schedule_feeds(["f0", "f1", "f2"], {})
        mine = store.lease_due("a", NOW, NOW + LEASE, 10, busy=[ids["f0"]])
        assert sorted(s.name for s in mine.feeds) == ["f1", "f2"]
        # Nor is a feed leased twice by one node: only the end of its lease frees it.
        assert [s.name for s in store.lease_due("a", NOW, NOW + LEASE, 10).feeds] == ["f0"]
        assert store.lease_due("a", NOW, NOW + LEASE, 10).feeds == ()
        # A restart under the same name gives its old leases back first.
        store.release_leases("a")
        again = store.lease_due("a", NOW, NOW + LEASE, 10)
        assert sorted(s.name for s in again.feeds) == ["f0", "f1", "f2"]
    finally:
        store.close()


def test_first_polls_are_set_once_by_whichever_node_comes_first(
    store_target: Path | str,
) -> None:
    a, b = Store.open(store_target), Store.open(store_target)
    try:
        _feeds(a, 2, due=None)
        a.schedule_feeds(["f0", "f1"], {"f0": NOW + timedelta(seconds=5)})
        b.schedule_feeds(["f0", "f1"], {"f0": NOW, "f1": NOW + timedelta(seconds=9)})
        states = a.feed_states()
        assert states["f0"].next_poll_at == iso(NOW + timedelta(seconds=5))
        assert states["f1"].next_poll_at == iso(NOW + timedelta(seconds=9))
    finally:
        a.close()
        b.close()


def test_heartbeats_renew_the_leases_of_running_polls_and_leave_gives_them_back(
    store_target: Path | str,
) -> None:
    a, b = Store.open(store_target), Store.open(store_target)
    try:
        ids = _feeds(a, 3)
        a.heartbeat("a", "host-a", 11, NOW, NOW)
        leased = a.lease_due("a", NOW, NOW + LEASE, 10)
        assert len(leased.feeds) == 3
        # Half a lease on, f0 still polls: its lease runs another full lease from now.
        half = NOW + LEASE / 2
        a.heartbeat("a", "host-a", 11, NOW, half, [ids["f0"]], half + LEASE)
        (node,) = b.nodes(half)
        assert (node.name, node.host, node.pid, node.heartbeat_at, node.leases) == (
            "a",
            "host-a",
            11,
            iso(half),
            3,
        )
        past = NOW + LEASE + timedelta(seconds=1)
        assert [s.name for s in b.lease_due("b", past, past + LEASE, 10).feeds] == ["f1", "f2"]
        assert {n.name: n.leases for n in b.nodes(past)} == {"a": 1}
        a.leave("a")
        assert b.nodes(past) == []
        # Rows of nodes silent for long are dropped, the others kept.
        b.heartbeat("old", "host-o", 7, NOW - timedelta(days=3), NOW - timedelta(days=2))
        b.heartbeat("b", "host-b", 8, NOW, past)
        assert b.forget_nodes(NOW - timedelta(days=1)) == 1
        assert [n.name for n in b.nodes(past)] == ["b"]
        assert [s.name for s in b.lease_due("c", past, past + LEASE, 10).feeds] == ["f0"]
    finally:
        a.close()
        b.close()


def test_poll_once_leases_what_it_polls_and_says_who_holds_the_rest(
    store_target: Path | str,
) -> None:
    a, b = Store.open(store_target), Store.open(store_target)
    try:
        ids = _feeds(a, 3)
        a.lease_due("daemon", NOW, NOW + LEASE, 1)  # f0
        leased, held = b.lease_named("cli", ["f0", "f1", "f2"], NOW, NOW + LEASE)
        assert sorted(leased) == ["f1", "f2"]
        assert held == {"f0": ("daemon", iso(NOW + LEASE))}
        # The daemon's next look finds them leased by the command.
        assert a.lease_due("daemon", NOW, NOW + LEASE, 10, busy=[ids["f0"]]).feeds == ()
    finally:
        a.close()
        b.close()


def test_nodes_leasing_at_once_never_lease_one_feed_twice(store_target: Path | str) -> None:
    """Four nodes, each on its own connection and thread, lease 200 due feeds in small bites."""
    setup = Store.open(store_target)
    _feeds(setup, 200)
    setup.close()
    got: dict[str, list[int]] = {}
    start = threading.Barrier(4)

    def node(name: str) -> None:
        store = Store.open(store_target)
        try:
            start.wait()
            mine: list[int] = []
            while True:
                leased = store.lease_due(name, NOW, NOW + LEASE, 7, busy=mine)
                if not leased.feeds:
                    break
                mine += [s.id for s in leased.feeds]
            got[name] = mine
        finally:
            store.close()

    threads = [threading.Thread(target=node, args=(f"n{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [feed for feeds in got.values() for feed in feeds]
    assert len(got) == 4
    assert sorted(every) == sorted(set(every)) and len(every) == 200


def test_poll_once_skips_a_feed_another_node_polls_now_and_says_so(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    body = rss([{"title": "Dam gates opened", "guid": "d-1"}])
    feeds = {"a": feed_server.route("/a.xml", body), "b": feed_server.route("/b.xml", body)}
    config = write_config(tmp_path, feeds=feeds, cluster={"node": "cli"})
    other = Store.open(config.database)
    try:

        async def main() -> list[tuple[str, str, str | None]]:
            async with Monitor(config, parse_workers=1) as monitor:
                now = datetime.now(UTC)
                other.lease_named("daemon-1", ["a"], now, now + LEASE)
                reports = await monitor.poll_once()
                return [(r.feed, r.outcome, r.error) for r in reports]

        (a, b) = asyncio.run(main())
        assert a[:2] == ("a", "skipped") and a[2] is not None
        assert a[2].startswith("polled by node daemon-1 now")
        assert b == ("b", "new", None)
        assert [r.path for r in feed_server.requests] == ["/b.xml"]
    finally:
        other.close()


def test_the_poll_once_command_says_which_feed_it_skipped_and_why(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from monitor.cli import cli

    body = rss([{"title": "Dam gates opened", "guid": "d-1"}])
    feeds = {"Wire": feed_server.route("/wire.xml", body)}
    config = write_config(tmp_path, feeds=feeds)
    store = Store.open(config.database)
    try:
        store.sync_feeds(config.feeds)
        now = datetime.now(UTC).replace(microsecond=0)
        store.lease_named("desk-2", ["Wire"], now, now + LEASE)
    finally:
        store.close()
    result = CliRunner().invoke(cli, ["--config", str(config.source), "poll-once"])
    assert result.exit_code == 0, result.output
    until = (now + LEASE).isoformat()
    # The log's JSON lines go to stderr, which the runner mixes in.
    lines = [line for line in result.output.splitlines() if not line.startswith("{")]
    assert lines[0] == f"Wire: skipped, polled by node desk-2 now (its lease ends {until})"
    assert feed_server.requests == []


def test_the_scheduler_leases_feeds_due_within_its_round_gap_together(tmp_path: Path) -> None:
    """Times are stored to the millisecond: feeds due a few ms apart must not cost a lease
    transaction each (a cycle of 1,000 feeds cost 2.8 s of CPU per 1,000 polls that way)."""
    from monitor.scheduler import ROUND_GAP, Scheduler
    from monitor.store.thread import StoreThread

    store = Store.open(tmp_path / "monitor.db")
    first = datetime.now(UTC) + timedelta(seconds=0.05)
    spread = ROUND_GAP * 0.8
    configs = [FeedConfig(name=f"f{n}", url=f"https://example.org/{n}.xml") for n in range(20)]
    store.sync_feeds(configs)
    store.schedule_feeds(
        [c.name for c in configs],
        {c.name: first + timedelta(seconds=spread * n / 20) for n, c in enumerate(configs)},
    )
    rounds = 0
    lease_due = store.lease_due

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal rounds
        rounds += 1
        return lease_due(*args, **kwargs)  # type: ignore[arg-type]

    store.lease_due = counted  # type: ignore[method-assign]
    thread = StoreThread(store)
    polled: list[str] = []

    async def main() -> None:
        stopping = asyncio.Event()

        async def poll(state: object) -> None:
            polled.append(state.name)  # type: ignore[attr-defined]
            if len(polled) == len(configs):
                stopping.set()

        scheduler = Scheduler(thread, "a", LEASE, poll, lambda: 100)
        await scheduler.run(stopping)

    try:
        asyncio.run(main())
    finally:
        thread.close()
    assert sorted(polled) == sorted(c.name for c in configs)
    # One look before the first is due, then at most one per gap while they come due.
    assert rounds <= 3, rounds


def test_a_full_scheduler_looks_again_once_half_its_room_is_free(tmp_path: Path) -> None:
    """More feeds due than room: a look at the schedule per ended poll would cost a lease
    transaction per poll (issue 14); the scheduler waits until half its room is free."""
    from monitor.scheduler import Scheduler
    from monitor.store.thread import StoreThread

    store = Store.open(tmp_path / "monitor.db")
    _feeds(store, 12, datetime.now(UTC) - timedelta(seconds=1))
    thread = StoreThread(store)
    woken: list[int] = []

    class Counting(Scheduler):
        def wake(self) -> None:
            woken.append(len(self.polling))
            super().wake()

    async def main() -> None:
        gates: dict[str, asyncio.Event] = {}
        started: asyncio.Queue[str] = asyncio.Queue()

        async def poll(state: object) -> None:
            name: str = state.name  # type: ignore[attr-defined]
            gates[name] = asyncio.Event()
            started.put_nowait(name)
            await gates[name].wait()

        scheduler = Counting(thread, "a", LEASE, poll, lambda: 4)
        stopping = asyncio.Event()
        running = asyncio.create_task(scheduler.run(stopping))
        names = [await started.get() for _ in range(4)]
        tasks = {task.get_name(): task for task in scheduler.polling.values()}
        # Each poll's end is seen (its done callback ran) before the next is released.
        gates[names[0]].set()
        await tasks[f"poll:{names[0]}"]
        assert woken == []  # 3 of 4 still running: not worth a lease transaction yet
        gates[names[1]].set()
        await tasks[f"poll:{names[1]}"]
        assert woken == [2]
        stopping.set()
        for gate in gates.values():
            gate.set()
        await running

    try:
        asyncio.run(main())
    finally:
        thread.close()
