"""Translation as one queue shared by the nodes (issue 13): claims in the store, pulls from it.

Real stores on both engines (a SQLite file, a PostgreSQL server the test suite starts), real
tiny CTranslate2 models (tests/tiny_models.py), two workers each with its own connection and
store thread, as two daemons have. The claims' clock is the workers' `clock`, not the wall.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tiny_models import ARGOS_ENGLISH, TinyModels, session_models

from monitor.config import (
    ClusterConfig,
    Config,
    FeedConfig,
    SinkConfig,
    Term,
    TranslationConfig,
    WatchlistConfig,
)
from monitor.match import Matcher
from monitor.models import Analysis, Item
from monitor.service import alert_plans
from monitor.store import AlertPlan, NewItem, PollWrite, Store
from monitor.store.thread import StoreThread
from monitor.store.translations import TranslatedItem, UntranslatedItem
from monitor.translate import Translation, TranslationJob, TranslationWorker, Translator, install

T = TypeVar("T")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
UNTRANSLATED = "SELECT COUNT(*) FROM items WHERE translated_at IS NULL AND language = 'ar'"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return session_models(tmp_path_factory)


def make_config(tmp_path: Path, database: Path | str, **translation: Any) -> Config:
    return Config(
        source=tmp_path / "config.yaml",
        database=database,
        state_dir=tmp_path / "state",
        translation=TranslationConfig(**translation),
        cluster=ClusterConfig(lease=LEASE),
        watchlists=(
            WatchlistConfig(
                name="bomber", severity="high", terms=(Term(term="suicide bomber", expand=False),)
            ),
            WatchlistConfig(name="market", terms=(Term(term="السوق", expand=False),)),
        ),
        sinks=(SinkConfig(name="chat", type="webhook", url="https://chat.example/hook"),),
    )


@pytest.fixture
def config(tmp_path: Path, store_target: Path | str, tiny: TinyModels) -> Config:
    # Four items a round (batch_size / 4): rounds of two nodes interleave.
    config = make_config(tmp_path, store_target, batch_size=16)
    install(tiny.argos_ar, config)
    return config


class CountingTranslator(Translator):
    """A real translator that counts the items handed to it, by title, in `seen`."""

    seen: Counter[str]

    def translate_items(
        self, items: Sequence[tuple[str, str, str]], cache: Any = None
    ) -> list[Translation | None]:
        self.seen.update(title for title, _, _ in items)
        return super().translate_items(items, cache)


def counting(config: Config, seen: Counter[str]) -> Translator:
    translator = CountingTranslator.from_config(config)
    assert isinstance(translator, CountingTranslator)
    translator.seen = seen
    return translator


def store_items(store: Store, titles: Sequence[str], fetched: datetime = NOW) -> dict[str, int]:
    """Arabic items as a poll stores them (no alerts on the original text); title → id."""
    feed = store.sync_feeds([FeedConfig(name="desk", url="https://desk.example/rss")])["desk"]
    new = [
        NewItem(
            Item(title, f"https://desk.example/{n}", title, "", fetched, f"story:{title}"),
            Analysis("ar", 0.9, ()),
            (),
        )
        for n, title in enumerate(titles)
    ]
    write = PollWrite(
        feed.id, 200, None, None, None, "desk", fetched + timedelta(minutes=10), tuple(new)
    )
    store.record_poll(write, fetched)
    rows = store.db.execute("SELECT title, id FROM items").fetchall()
    return {title: item_id for title, item_id in rows}


def jobs_of(ids: dict[str, int], titles: Sequence[str]) -> list[TranslationJob]:
    return [TranslationJob(ids[t], f"story:{t}", t, "", "ar", matched=False) for t in titles]


def jobs_for(config: Config) -> Callable[[Sequence[UntranslatedItem]], Awaitable[Any]]:
    """What the service does with pulled items: match the original text again."""
    matcher = Matcher(config.watchlists)

    async def jobs(rows: Sequence[UntranslatedItem]) -> list[TranslationJob]:
        return [
            TranslationJob(
                row.item_id,
                row.story_key,
                row.title,
                row.summary,
                row.language,
                matched=bool(matcher.match({"title": row.title, "summary": row.summary})),
                alertable=row.alertable,
            )
            for row in rows
        ]

    return jobs


def second_pass(config: Config) -> Callable[[TranslationJob, Translation], tuple[AlertPlan, ...]]:
    matcher = Matcher(config.watchlists)

    def plans(job: TranslationJob, translation: Translation) -> tuple[AlertPlan, ...]:
        return alert_plans(
            config, matcher.match({"title": translation.title, "summary": translation.summary})
        )

    return plans


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def worker(
    config: Config,
    store: Store,
    node: str,
    seen: Counter[str],
    clock: Callable[[], datetime] = lambda: NOW + timedelta(minutes=1),
    *,
    pull: bool = True,
) -> TranslationWorker:
    return TranslationWorker(
        config,
        StoreThread(store),
        counting(config, seen),
        second_pass(config),
        lambda: None,
        node=node,
        jobs_for=jobs_for(config) if pull else None,
        clock=clock,
    )


def run(body: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(body())


async def until_translated(reader: Store, workers: Sequence[TranslationWorker]) -> None:
    """Run the workers until no Arabic item is left untranslated, then stop them."""
    stopping = asyncio.Event()
    running = [asyncio.create_task(w.run(stopping)) for w in workers]

    async def done() -> None:
        while reader.db.execute(UNTRANSLATED).fetchone()[0]:
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(done(), 60)
    finally:
        stopping.set()
        await asyncio.gather(*running)


def claims(store: Store) -> dict[int, tuple[str | None, str | None]]:
    rows = store.db.execute("SELECT id, translating_by, translating_until FROM items").fetchall()
    return {item_id: (by, until) for item_id, by, until in rows}


# The store's claims --------------------------------------------------------------------------


def test_a_claim_is_taken_once_renewed_by_its_node_and_free_when_it_runs_out(
    store_target: Path | str,
) -> None:
    store = Store.open(store_target)
    ids = store_items(store, ["a", "b", "c"])
    a, b, c = ids["a"], ids["b"], ids["c"]
    assert store.claim_translations("n1", [a, b], NOW, NOW + LEASE) == {a, b}
    # Another node gets only what nobody holds; the holder renews its own.
    assert store.claim_translations("n2", [a, b, c], NOW, NOW + LEASE) == {c}
    assert store.claim_translations("n1", [a], NOW, NOW + 2 * LEASE) == {a}
    # n1's claim on b ran out: n2 takes it; a is still n1's.
    later = NOW + LEASE + timedelta(seconds=1)
    assert store.claim_translations("n2", [a, b], later, later + LEASE) == {b}
    assert {i: by for i, (by, _) in claims(store).items()} == {a: "n1", b: "n2", c: "n2"}
    # Storing a translation clears its claim, and a translated item is never claimed again.
    done = TranslatedItem(a, "story:a", "A", "", "argos", "m", ())
    assert store.record_translations([done], {}, later).items == 1
    assert claims(store)[a] == (None, None)
    assert store.claim_translations("n2", [a], later, later + LEASE) == set()
    store.release_translations("n1", [c])  # not n1's: stays n2's
    assert claims(store)[c][0] == "n2"
    store.release_translations("n2", [c])
    assert claims(store)[c] == (None, None)
    store.close()


def test_the_first_translation_stored_stays_when_two_nodes_translated_an_item(
    store_target: Path | str,
) -> None:
    store = Store.open(store_target)
    item = store_items(store, ["a"])["a"]
    first = TranslatedItem(item, "story:a", "first", "", "argos", "m", ())
    second = TranslatedItem(item, "story:a", "second", "", "nllb", "m", ())
    assert store.record_translations([first], {}, NOW).items == 1
    assert store.record_translations([second], {}, NOW).items == 0
    assert store.db.execute("SELECT title_en FROM items").fetchone() == ("first",)
    store.close()


def test_pulled_items_leave_out_live_claims_other_languages_and_page_on(
    store_target: Path | str,
) -> None:
    store = Store.open(store_target)
    ids = store_items(store, ["a", "b", "c", "d"])
    store.claim_translations("n1", [ids["b"]], NOW, NOW + LEASE)

    def pulled(now: datetime, **kw: Any) -> list[str]:
        rows = store.untranslated_items(now - timedelta(days=1), timedelta(days=1), now=now, **kw)
        return [row.title for row in rows]

    assert pulled(NOW) == ["d", "c", "a"]
    assert pulled(NOW + LEASE + timedelta(seconds=1)) == ["d", "c", "b", "a"]
    assert pulled(NOW, languages=["fa"]) == []
    [first] = store.untranslated_items(NOW - timedelta(days=1), timedelta(days=1), limit=1)
    assert pulled(NOW, before=(first.fetched_at, first.item_id)) == ["c", "a"]
    store.close()


# Workers sharing one database ---------------------------------------------------------------


def test_two_workers_on_one_database_never_translate_an_item_twice(
    config: Config, store_target: Path | str
) -> None:
    titles = [f"عنوان رقم {n}" for n in range(40)]
    first, second, reader = (Store.open(store_target) for _ in range(3))
    ids = store_items(first, titles)
    seen: Counter[str] = Counter()
    one = worker(config, first, "n1", seen)
    two = worker(config, second, "n2", seen)
    # Both have every item queued (as if both had polled them) and pull the same backlog.
    assert one.submit(jobs_of(ids, titles)) == 40
    assert two.submit(jobs_of(ids, titles[::-1])) == 40
    try:
        run(lambda: until_translated(reader, [one, two]))
    finally:
        one.close()
        two.close()
    assert set(seen) == set(titles)
    assert max(seen.values()) == 1, [t for t, n in seen.items() if n > 1]
    rows = reader.db.execute("SELECT title_en, translating_by FROM items ORDER BY id").fetchall()
    assert rows == [(ARGOS_ENGLISH, None)] * 40
    # One alert per story: the translation matched "bomber" for each.
    assert reader.counts()["alerts"] == 40
    for store in (first, second, reader):
        store.close()


def test_a_worker_with_nothing_queued_translates_another_nodes_backlog(
    config: Config, store_target: Path | str
) -> None:
    titles = [f"خبر {n}" for n in range(10)]
    busy, spare, reader = (Store.open(store_target) for _ in range(3))
    ids = store_items(busy, titles)
    busy_seen: Counter[str] = Counter()
    spare_seen: Counter[str] = Counter()
    # The busy node polled the items and queued them, but its thread is taken.
    loaded = worker(config, busy, "busy", busy_seen)
    assert loaded.submit(jobs_of(ids, titles)) == 10
    idle = worker(config, spare, "spare", spare_seen)
    assert idle.queued == 0

    async def body() -> None:
        await until_translated(reader, [idle])
        # The busy node's turn comes: its jobs were taken elsewhere, it drops them.
        await loaded.flush()

    try:
        run(body)
    finally:
        loaded.close()
        idle.close()
    assert spare_seen == Counter(titles)
    assert busy_seen == Counter()
    assert loaded.queued == 0
    assert reader.db.execute(UNTRANSLATED).fetchone() == (0,)
    for store in (busy, spare, reader):
        store.close()


def test_an_item_claimed_by_a_live_node_is_skipped_and_taken_when_the_claim_runs_out(
    config: Config, store_target: Path | str
) -> None:
    titles = [f"نبأ {n}" for n in range(6)]
    store, reader = Store.open(store_target), Store.open(store_target)
    ids = store_items(store, titles)
    # A node claimed them, then died (or is translating them now).
    claimed = store.claim_translations("dead", list(ids.values()), NOW, NOW + LEASE)
    assert claimed == set(ids.values())
    clock = Clock(NOW + LEASE / 2)
    seen: Counter[str] = Counter()
    taker = worker(config, store, "taker", seen, clock)

    async def body() -> tuple[int, int, int]:
        # Live claims: the pull finds nothing, and queued jobs are dropped, not translated.
        early = await taker.pull()
        taker.submit(jobs_of(ids, titles))
        await taker.flush()
        still = reader.db.execute(UNTRANSLATED).fetchone()[0]
        clock.now = NOW + LEASE + timedelta(seconds=1)
        late = await taker.pull()
        await taker.flush()
        return early, still, late

    try:
        early, still, late = run(body)
    finally:
        taker.close()
    assert (early, still) == (0, 6)
    assert late == 6
    assert seen == Counter(titles)
    assert reader.db.execute(UNTRANSLATED).fetchone() == (0,)
    assert set(claims(reader).values()) == {(None, None)}
    store.close()
    reader.close()


def test_the_pull_keeps_translation_mode_matched(
    tmp_path: Path, store_target: Path | str, tiny: TinyModels
) -> None:
    config = make_config(tmp_path, store_target, mode="matched", batch_size=4)
    install(tiny.argos_ar, config)
    # Many unmatched items newer than the matched ones: the pull pages past them.
    unmatched = [f"طقس {n}" for n in range(1100)]
    matched = ["انفجار في السوق", "حريق في السوق"]
    store = Store.open(store_target)
    store_items(store, matched, NOW)
    store_items(store, unmatched, NOW + timedelta(seconds=1))
    seen: Counter[str] = Counter()
    pulling = worker(config, store, "n1", seen, lambda: NOW + timedelta(minutes=1))

    async def body() -> list[int]:
        pulled = []
        for _ in range(3):
            pulled.append(await pulling.pull())
            await pulling.flush()
        return pulled

    try:
        pulled = run(body)
    finally:
        pulling.close()
    # 1,100 unmatched rows are more than one pull reads (4 pages of 256): the second pull
    # goes on where the first stopped and finds the matched ones; the third starts over.
    assert pulled == [0, 2, 0]
    assert seen == Counter(matched)
    store.close()
