"""Translation: engine choice, batching, the cache, the worker, second-pass alerts, broken models.

Real argostranslate package API, ctranslate2, sentencepiece, minisbd/onnxruntime and SQLite,
on tiny models generated for the session (tests/tiny_models.py). Every test runs with the
network refused: a socket attempt raises and fails the test.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import ctranslate2
import pytest
import structlog
from structlog.testing import capture_logs
from tiny_models import (
    ARGOS_ENGLISH,
    MADLAD_ENGLISH,
    NLLB_ENGLISH,
    NetworkBlockedError,
    NetworkGuard,
    TinyModels,
    random_transformer,
    session_models,
    write_argos_package,
)

from monitor.config import (
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
from monitor.translate import (
    Translation,
    TranslationJob,
    TranslationWorker,
    Translator,
    install,
)

T = TypeVar("T")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ARABIC = ("هجوم في السوق. قتلى وجرحى!", "قالت الشرطة إن الهجوم وقع صباحا. لا تفاصيل بعد؟")
SORANI = ("تەقینەوە لە بازاڕ", "پۆلیس ڕایگەیاند کە تەقینەوەکە بەیانی ڕوویدا.")
KURMANJI = ("Teqîn li bazarê", "Polîs got ku teqîn sibê çêbû.")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return session_models(tmp_path_factory)


@pytest.fixture(autouse=True)
def offline() -> Iterator[NetworkGuard]:
    guard = NetworkGuard()
    with guard.armed():
        yield guard
    assert guard.attempts == [], f"network access while translating: {guard.attempts}"


def make_config(tmp_path: Path, **translation: Any) -> Config:
    return Config(
        source=tmp_path / "config.yaml",
        database=tmp_path / "monitor.db",
        state_dir=tmp_path / "state",
        translation=TranslationConfig(**translation),
        watchlists=(
            WatchlistConfig(
                name="bomber",
                severity="high",
                terms=(Term(term="suicide bomber", expand=False),),
            ),
            WatchlistConfig(name="khanaqin", terms=(Term(term="Khanaqin"),)),
        ),
        sinks=(SinkConfig(name="chat", type="webhook", url="https://chat.example/hook"),),
    )


def installed(config: Config, *models: Path) -> Config:
    for model in models:
        install(model, config)
    return config


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of every `translate_batch` call made on a real ctranslate2.Translator."""
    calls: list[int] = []

    class Counting(ctranslate2.Translator):  # type: ignore[misc]
        def translate_batch(self, source: list[list[str]], *args: Any, **kwargs: Any) -> Any:
            calls.append(len(source))
            return super().translate_batch(source, *args, **kwargs)

    monkeypatch.setattr(ctranslate2, "Translator", Counting)
    return calls


def second_pass(config: Config) -> Callable[[TranslationJob, Translation], tuple[AlertPlan, ...]]:
    """What the service does: match the English text against the watchlists."""
    matcher = Matcher(config.watchlists)

    def plans(job: TranslationJob, translation: Translation) -> tuple[AlertPlan, ...]:
        matches = matcher.match({"title": translation.title, "summary": translation.summary})
        return alert_plans(config, matches)

    return plans


def store_items(
    store: Store, config: Config, rows: list[tuple[str, str, str, str]], feed: str = "desk"
) -> dict[str, int]:
    """Store items (guid, title, summary, language) as a poll would, alerting on the original
    text; returns their row ids."""
    matcher = Matcher(config.watchlists)
    states = store.sync_feeds([FeedConfig(name=feed, url=f"https://{feed}.example/rss")])
    new = []
    for guid, title, summary, language in rows:
        matches = matcher.match({"title": title, "summary": summary})
        plans = tuple(
            AlertPlan(name, "high", tuple(m for m in matches if m.watchlist == name), ("chat",))
            for name in dict.fromkeys(m.watchlist for m in matches)
        )
        item = Item(guid, f"https://{feed}.example/{guid}", title, summary, NOW, f"story:{guid}")
        new.append(NewItem(item, Analysis(language, 0.9, matches), plans))
    write = PollWrite(
        states[feed].id, 200, None, None, None, feed, NOW + timedelta(minutes=10), tuple(new)
    )
    store.record_poll(write, NOW)
    ids = store.db.execute("SELECT guid, id FROM items").fetchall()
    return {guid: item_id for guid, item_id in ids}


def job(
    ids: dict[str, int], guid: str, title: str, summary: str, language: str, **kw: Any
) -> TranslationJob:
    return TranslationJob(ids[guid], f"story:{guid}", title, summary, language, **kw)


def with_worker(
    config: Config,
    store: Store,
    body: Callable[[TranslationWorker], Awaitable[T]],
    *,
    translator: Translator | None = None,
    on_alerts: Callable[[], None] = lambda: None,
    observe: Callable[[int, float], None] | None = None,
) -> T:
    """Run `body(worker)` on an event loop, with the store on its own thread as in the daemon."""

    async def main() -> T:
        worker = TranslationWorker(
            config,
            StoreThread(store),
            translator or Translator.from_config(config),
            second_pass(config),
            on_alerts,
            observe=observe,
        )
        try:
            return await body(worker)
        finally:
            worker.close()

    return asyncio.run(main())


async def submit_and_flush(worker: TranslationWorker, jobs: list[TranslationJob]) -> int:
    queued = worker.submit(jobs)
    await worker.flush()
    return queued


# The guard itself ------------------------------------------------------------------------


def test_the_offline_guard_fails_a_socket_attempt(offline: NetworkGuard) -> None:
    import socket
    import urllib.request

    with pytest.raises(NetworkBlockedError):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    with pytest.raises(NetworkBlockedError):
        urllib.request.urlopen("https://raw.githubusercontent.com/", timeout=1)
    assert len(offline.attempts) == 2
    # The fixture would fail this test at teardown; the attempts were the point here.
    offline.attempts.clear()


# Engine choice ---------------------------------------------------------------------------


def test_each_language_gets_the_first_configured_engine_that_has_a_model(
    tmp_path: Path, tiny: TinyModels
) -> None:
    config = installed(make_config(tmp_path), tiny.argos_ar, tiny.nllb, tiny.madlad)
    plan = Translator.from_config(config).plan()
    assert {lang: (c.engine, c.model) if c else None for lang, c in plan.items()} == {
        "ar": ("argos", "translate-ar_en"),
        "ckb": ("nllb", "nllb-200-tiny"),
        "kmr": ("nllb", "nllb-200-tiny"),
    }
    reordered = make_config(tmp_path, engines=("madlad", "argos"))
    plan = Translator.from_config(reordered).plan()
    assert {lang: c.engine if c else None for lang, c in plan.items()} == {
        "ar": "madlad",
        "ckb": "madlad",
        "kmr": "madlad",
    }


def test_a_language_without_an_enabled_model_stays_untranslated(
    tmp_path: Path, tiny: TinyModels
) -> None:
    config = installed(make_config(tmp_path, engines=("argos",)), tiny.argos_ar, tiny.nllb)
    translator = Translator.from_config(config)
    plan = translator.plan()
    assert plan["ckb"] is None and plan["kmr"] is None
    assert plan["ar"] is not None
    assert translator.translate_items([(*SORANI, "ckb")]) == [None]


def test_nothing_installed_means_nothing_loaded_and_nothing_translated(tmp_path: Path) -> None:
    translator = Translator.from_config(make_config(tmp_path))
    assert translator.plan() == {"ar": None, "ckb": None, "kmr": None}
    assert translator.translate_items([(*ARABIC, "ar"), ("Attack", "", "en")]) == [None, None]


def test_each_style_translates_with_its_own_language_tokens(
    tmp_path: Path, tiny: TinyModels
) -> None:
    config = installed(make_config(tmp_path), tiny.argos_ar, tiny.nllb)
    translator = Translator.from_config(config)
    ar, ckb, kmr = translator.translate_items(
        [(*ARABIC, "ar"), (*SORANI, "ckb"), (*KURMANJI, "kmr")]
    )
    assert ar is not None and ckb is not None and kmr is not None
    # Sentence by sentence: the Arabic summary has two, so the phrase comes twice.
    assert (ar.title, ar.summary) == (f"{ARGOS_ENGLISH} {ARGOS_ENGLISH}",) * 2
    assert (ar.engine, ar.model, ar.language) == ("argos", "translate-ar_en", "ar")
    assert (ckb.title, ckb.summary, ckb.engine) == (NLLB_ENGLISH, NLLB_ENGLISH, "nllb")
    assert kmr.title == NLLB_ENGLISH
    madlad = installed(make_config(tmp_path / "m", engines=("madlad",)), tiny.madlad)
    (ckb,) = Translator.from_config(madlad).translate_items([(*SORANI, "ckb")])
    assert ckb is not None and (ckb.title, ckb.engine) == (MADLAD_ENGLISH, "madlad")


def test_analyze_gets_the_translation_as_json(tmp_path: Path, tiny: TinyModels) -> None:
    config = installed(make_config(tmp_path), tiny.argos_ar, tiny.nllb)
    translator = Translator.from_config(config)
    ar, ckb = translator.translate_items([(*ARABIC, "ar"), (*SORANI, "ckb")])
    assert ar is not None and ckb is not None
    assert ckb.as_json() == {
        "title": NLLB_ENGLISH,
        "summary": NLLB_ENGLISH,
        "engine": "nllb",
        "model": "nllb-200-tiny",
    }
    assert ar.as_json()["engine"] == "argos"


def test_english_and_undetermined_items_are_not_translated(
    tmp_path: Path, tiny: TinyModels, counting: list[int]
) -> None:
    translator = Translator.from_config(installed(make_config(tmp_path), tiny.nllb))
    assert translator.translate_items([("Attack", "Police said", "en"), ("123", "", "und")]) == [
        None,
        None,
    ]
    assert counting == []


# Text in ---------------------------------------------------------------------------------


def test_only_plain_text_capped_at_max_chars_reaches_the_model(
    tmp_path: Path, tiny: TinyModels, counting: list[int]
) -> None:
    config = installed(make_config(tmp_path, max_chars=40), tiny.argos_fa)
    translator = Translator.from_config(config)
    html = "<p>خبر <b>مهم</b> امروز.</p><p>" + "کلمه " * 50 + "</p>"
    (result,) = translator.translate_items([("<i>تیتر</i>", html, "fa")])
    assert result is not None
    # Title: one sentence; summary: "خبر مهم امروز." and the capped second paragraph.
    assert counting == [3]
    assert "<" not in result.summary


def test_sentences_are_split_offline_by_the_packaged_minisbd_model(
    tmp_path: Path, tiny: TinyModels, counting: list[int]
) -> None:
    config = installed(make_config(tmp_path), tiny.argos_ar)
    (result,) = Translator.from_config(config).translate_items(
        [("عنوان", "الأولى. الثانية! الثالثة؟ الرابعة", "ar")]
    )
    assert counting == [5]  # the title and four sentences
    assert result is not None and result.summary == " ".join([ARGOS_ENGLISH] * 4)


# Batching and the cache ------------------------------------------------------------------


def test_the_items_of_a_round_go_to_the_model_in_one_translate_batch(
    tmp_path: Path, tiny: TinyModels, counting: list[int]
) -> None:
    config = installed(make_config(tmp_path), tiny.argos_fa)
    items = [(f"تیتر {n}", f"جمله اول {n}. جمله دوم {n}.", "fa") for n in range(10)]
    results = Translator.from_config(config).translate_items(items)
    assert counting == [30]
    assert all(r is not None for r in results)


def test_batched_translations_equal_one_call_per_item(tmp_path: Path, tiny: TinyModels) -> None:
    config = installed(make_config(tmp_path), tiny.argos_fa)
    translator = Translator.from_config(config)
    items = [(f"تیتر شماره {n}", f"جمله {n}. دوم {'و' * n}.", "fa") for n in range(8)]
    batched = translator.translate_items(items)
    one_by_one = [translator.translate_items([item])[0] for item in items]
    assert batched == one_by_one
    # Random weights: the output follows the input, so the comparison is not trivial.
    assert len({(r.title, r.summary) for r in batched if r}) > 2


def test_the_same_story_in_ten_feeds_is_translated_once(
    tmp_path: Path, tiny: TinyModels, counting: list[int]
) -> None:
    config = installed(make_config(tmp_path), tiny.argos_ar)
    store = Store.open(config.database)
    translator = Translator.from_config(config)
    results = translator.translate_items([(*ARABIC, "ar")] * 10, cache=store)
    assert counting == [4]  # one title and one summary of two sentences, once
    assert len({r for r in results}) == 1 and results[0] is not None
    # Later polls: served from SQLite, no model call at all.
    fresh = Translator.from_config(config)
    again = fresh.translate_items([(*ARABIC, "ar")], cache=store)
    assert counting == [4]
    assert again == results[:1]
    assert store.db.execute("SELECT COUNT(*) FROM translations").fetchone()[0] == 2


def test_a_reinstalled_model_does_not_reuse_old_cache_entries(
    tmp_path: Path, tiny: TinyModels, counting: list[int]
) -> None:
    config = installed(make_config(tmp_path), tiny.argos_ar)
    store = Store.open(config.database)
    Translator.from_config(config).translate_items([(*ARABIC, "ar")], cache=store)
    time.sleep(0.01)  # a new modification time for the reinstalled weights
    install(tiny.argos_ar, config)
    Translator.from_config(config).translate_items([(*ARABIC, "ar")], cache=store)
    assert counting == [4, 4]


# The worker ------------------------------------------------------------------------------


def test_worker_stores_translations_and_second_pass_alerts_in_one_go(
    tmp_path: Path, tiny: TinyModels
) -> None:
    config = installed(make_config(tmp_path), tiny.argos_ar)
    store = Store.open(config.database)
    ids = store_items(store, config, [("a1", *ARABIC, "ar")])
    assert store.counts()["alerts"] == 0  # nothing on the Arabic text: the term is English only
    woken: list[bool] = []
    jobs = [job(ids, "a1", *ARABIC, "ar", matched=False)]
    queued = with_worker(
        config, store, lambda w: submit_and_flush(w, jobs), on_alerts=lambda: woken.append(True)
    )
    assert queued == 1
    row = store.db.execute(
        "SELECT title_en, summary_en, translation_engine, translation_model, translated_at "
        "FROM items WHERE id = ?",
        [ids["a1"]],
    ).fetchone()
    twice = f"{ARGOS_ENGLISH} {ARGOS_ENGLISH}"
    assert row[:4] == (twice, twice, "argos", "translate-ar_en")
    assert row[4] is not None
    (alert,) = store.alerts()
    assert (alert["watchlist"], alert["item"]["title_en"]) == ("bomber", twice)
    assert alert["matches"][0]["form"] == "suicide bomber"
    deliveries = store.db.execute("SELECT sink, status FROM deliveries").fetchall()
    assert deliveries == [("chat", "pending")]
    assert woken == [True]


def test_a_story_that_alerted_on_its_original_text_does_not_alert_twice(
    tmp_path: Path, tiny: TinyModels
) -> None:
    config = installed(make_config(tmp_path, engines=("madlad",)), tiny.madlad)
    store = Store.open(config.database)
    title = "انفجار في خانقين"  # matches khanaqin on the Arabic text already
    ids = store_items(store, config, [("k1", title, "", "ar")])
    assert [a["watchlist"] for a in store.alerts()] == ["khanaqin"]
    woken: list[bool] = []
    jobs = [job(ids, "k1", title, "", "ar", matched=True)]
    with_worker(
        config, store, lambda w: submit_and_flush(w, jobs), on_alerts=lambda: woken.append(True)
    )
    # The translation says "Khanaqin market": the second pass matches, the alert exists.
    assert store.db.execute("SELECT title_en FROM items").fetchone()[0] == MADLAD_ENGLISH
    assert [a["watchlist"] for a in store.alerts()] == ["khanaqin"]
    assert store.counts()["deliveries"] == 1
    assert woken == []


def test_backfilled_items_are_translated_but_never_alert(tmp_path: Path, tiny: TinyModels) -> None:
    config = installed(make_config(tmp_path), tiny.argos_ar)
    store = Store.open(config.database)
    ids = store_items(store, config, [("old", *ARABIC, "ar")])
    jobs = [job(ids, "old", *ARABIC, "ar", matched=False, alertable=False)]
    with_worker(config, store, lambda w: submit_and_flush(w, jobs))
    assert store.db.execute("SELECT title_en FROM items").fetchone()[0] is not None
    assert store.counts()["alerts"] == 0


@pytest.mark.parametrize(("mode", "queued"), [("all", ["a", "b"]), ("matched", ["b"]), ("off", [])])
def test_translation_mode_decides_which_items_are_queued(
    tmp_path: Path, tiny: TinyModels, mode: str, queued: list[str]
) -> None:
    config = installed(make_config(tmp_path, mode=mode), tiny.argos_ar)
    store = Store.open(config.database)
    rows = [("a", *ARABIC, "ar"), ("b", *ARABIC, "ar"), ("e", "Hi", "", "en")]
    ids = store_items(store, config, rows)
    jobs = [
        job(ids, "a", *ARABIC, "ar", matched=False),
        job(ids, "b", *ARABIC, "ar", matched=True),
        job(ids, "e", "Hi", "", "en", matched=True),
    ]
    assert with_worker(config, store, lambda w: submit_and_flush(w, jobs)) == len(queued)
    translated = store.db.execute("SELECT guid FROM items WHERE title_en IS NOT NULL ORDER BY guid")
    assert [row[0] for row in translated] == queued


def test_submit_never_waits_and_drops_what_the_queue_cannot_hold(
    tmp_path: Path, tiny: TinyModels
) -> None:
    config = installed(make_config(tmp_path, queue=3), tiny.argos_ar)
    store = Store.open(config.database)
    ids = store_items(store, config, [(f"g{n}", *ARABIC, "ar") for n in range(5)])
    jobs = [job(ids, f"g{n}", *ARABIC, "ar", matched=False) for n in range(5)]

    async def body(worker: TranslationWorker) -> None:
        with capture_logs() as logs:
            started = time.perf_counter()
            assert worker.submit(jobs) == 3
            assert worker.submit(jobs) == 0
            assert time.perf_counter() - started < 0.05
        assert [e["dropped"] for e in logs if e["event"] == "translation.queue_full"] == [2, 5]
        await worker.flush()
        assert worker.queued == 0

    with_worker(config, store, body)
    translated = "SELECT COUNT(*) FROM items WHERE title_en IS NOT NULL"
    assert store.db.execute(translated).fetchone() == (3,)


def test_a_round_translates_many_items_in_one_call(
    tmp_path: Path, tiny: TinyModels, counting: list[int]
) -> None:
    config = installed(make_config(tmp_path, batch_size=64), tiny.argos_fa)
    store = Store.open(config.database)
    rows = [(f"g{n}", f"تیتر {n}", f"جمله {n}. دوم {n}.", "fa") for n in range(10)]
    ids = store_items(store, config, rows)
    jobs = [job(ids, g, t, s, lang, matched=False) for g, t, s, lang in rows]
    rounds: list[tuple[int, float]] = []
    with_worker(
        config,
        store,
        lambda w: submit_and_flush(w, jobs),
        observe=lambda items, seconds: rounds.append((items, seconds)),
    )
    assert counting == [30]
    assert [items for items, _ in rounds] == [10]
    translated = "SELECT COUNT(*) FROM items WHERE title_en IS NOT NULL"
    assert store.db.execute(translated).fetchone() == (10,)


def test_the_worker_runs_off_the_event_loop(tmp_path: Path, tiny: TinyModels) -> None:
    # A model that never says </s>: every sentence decodes to the length limit (slow).
    slow = random_transformer(tmp_path / "slow", _vocab(tiny), eos_bias=-50.0)
    package = write_argos_package(
        tmp_path / "slow.argosmodel", "ar", "en", tiny.sentencepiece, slow, minisbd=False
    )
    config = installed(make_config(tmp_path), package)
    store = Store.open(config.database)
    reader = Store.open(config.database)
    rows = [(f"g{n}", f"عنوان {n}", f"جملة {n}. أخرى.", "ar") for n in range(12)]
    ids = store_items(store, config, rows)
    untranslated = "SELECT COUNT(*) FROM items WHERE title_en IS NULL"
    gaps: list[float] = []

    async def ticker(done: asyncio.Event) -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async def body(worker: TranslationWorker) -> float:
        stopping = asyncio.Event()
        running = asyncio.create_task(worker.run(stopping))
        ticking = asyncio.create_task(ticker(stopping))
        started = time.perf_counter()
        worker.submit([job(ids, g, t, s, lang, matched=False) for g, t, s, lang in rows])
        while reader.db.execute(untranslated).fetchone()[0]:
            await asyncio.sleep(0.01)
        spent = time.perf_counter() - started
        stopping.set()
        await asyncio.wait_for(running, 5)
        await ticking
        return spent

    spent = with_worker(config, store, body)
    assert spent > 0.2, "the model should be slow enough to show blocking"
    assert max(gaps) < spent / 3


def _vocab(tiny: TinyModels) -> list[str]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tiny.sentencepiece))
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def test_the_daemon_starts_without_models_and_says_once_what_stays_untranslated(
    tmp_path: Path,
) -> None:
    feed = FeedConfig(name="fa", url="https://fa.example/rss", language="fa")
    config = make_config(tmp_path).model_copy(update={"feeds": (feed,)})

    async def body(worker: TranslationWorker) -> int:
        stopping = asyncio.Event()
        running = asyncio.create_task(worker.run(stopping))
        queued = worker.submit([TranslationJob(1, "s", *ARABIC, "ar", matched=True)])
        await asyncio.sleep(0.05)
        stopping.set()
        await running
        return queued

    with capture_logs() as logs:
        assert with_worker(config, Store.open(config.database), body) == 0
    untranslated = [e for e in logs if e["event"] == "translation.untranslated"]
    assert len(untranslated) == 1
    assert untranslated[0]["languages"] == ["ar", "ckb", "fa", "kmr"]


def test_reconfigure_picks_up_a_model_installed_while_running(
    tmp_path: Path, tiny: TinyModels
) -> None:
    config = make_config(tmp_path)
    store = Store.open(config.database)
    ids = store_items(store, config, [("a", *ARABIC, "ar")])
    jobs = [job(ids, "a", *ARABIC, "ar", matched=False)]

    async def body(worker: TranslationWorker) -> tuple[int, int]:
        before = await submit_and_flush(worker, jobs)
        install(tiny.argos_ar, config)
        worker.reconfigure(config)
        await worker.flush()  # re-scans the models
        return before, await submit_and_flush(worker, jobs)

    assert with_worker(config, store, body) == (0, 1)
    assert store.db.execute("SELECT title_en FROM items").fetchone()[0] is not None


# Broken models ---------------------------------------------------------------------------


def _corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_corrupt_model_is_one_clear_error_and_the_item_keeps_its_original_text(
    tmp_path: Path, tiny: TinyModels
) -> None:
    config = installed(make_config(tmp_path), tiny.argos_ar)
    weights = config.state_dir / "models" / "argos" / "translate-ar_en" / "model" / "model.bin"
    _corrupt(weights)
    store = Store.open(config.database)
    title = "انتحاري في خانقين"  # matches khanaqin on the original text
    ids = store_items(store, config, [("a", title, "", "ar"), ("b", *ARABIC, "ar")])

    async def body(worker: TranslationWorker) -> None:
        await submit_and_flush(worker, [job(ids, "a", title, "", "ar", matched=True)])
        await submit_and_flush(worker, [job(ids, "b", *ARABIC, "ar", matched=False)])

    with capture_logs() as logs:
        with_worker(config, store, body)
    failures = [e for e in logs if e["event"] == "translation.model_failed"]
    assert len(failures) == 1, "logged once, not per item"
    assert failures[0]["file"] == str(weights)
    assert failures[0]["language"] == "ar"
    assert str(weights) in failures[0]["error"] and "(needed for ar)" in failures[0]["error"]
    assert "\n" not in failures[0]["error"]
    assert not [e for e in logs if e["event"] == "translation.crashed"]
    untranslated = "SELECT COUNT(*) FROM items WHERE title_en IS NULL"
    assert store.db.execute(untranslated).fetchone() == (2,)
    assert [a["watchlist"] for a in store.alerts()] == ["khanaqin"]


def test_a_broken_model_gives_way_to_the_next_configured_engine(
    tmp_path: Path, tiny: TinyModels
) -> None:
    config = installed(make_config(tmp_path), tiny.argos_ar, tiny.nllb)
    tokenizer = config.state_dir / "models" / "argos" / "translate-ar_en" / "sentencepiece.model"
    tokenizer.write_bytes(b"not a sentencepiece model")
    translator = Translator.from_config(config)
    with capture_logs() as logs:
        (result,) = translator.translate_items([(*ARABIC, "ar")])
    assert result is not None and result.engine == "nllb"
    assert result.title == f"{NLLB_ENGLISH} {NLLB_ENGLISH}"  # two sentences
    (failure,) = [e for e in logs if e["event"] == "translation.model_failed"]
    assert failure["file"] == str(tokenizer)
    plan = translator.plan()
    assert plan["ar"] is not None and plan["ar"].engine == "nllb"


def test_a_model_missing_its_weights_is_reported_at_start_naming_file_and_language(
    tmp_path: Path, tiny: TinyModels
) -> None:
    config = installed(make_config(tmp_path), tiny.argos_ar)
    package = config.state_dir / "models" / "argos" / "translate-ar_en"
    (package / "model" / "model.bin").unlink()
    translator = Translator.from_config(config)
    assert translator.plan()["ar"] is None
    (problem,) = translator.problems
    assert problem.path == package / "model" / "model.bin"
    assert problem.language == "ar"

    stopped = asyncio.Event()
    stopped.set()
    with capture_logs() as logs:
        with_worker(
            config,
            Store.open(config.database),
            lambda w: w.run(stopped),
            translator=translator,
        )
    (logged,) = [e for e in logs if e["event"] == "translation.model_invalid"]
    assert logged["file"] == str(package / "model" / "model.bin")
    assert logged["language"] == "ar"


def test_structlog_events_name_items_engine_and_seconds(tmp_path: Path, tiny: TinyModels) -> None:
    config = installed(make_config(tmp_path), tiny.argos_ar)
    structlog.reset_defaults()
    with capture_logs() as logs:
        Translator.from_config(config).translate_items([(*ARABIC, "ar")])
    (done,) = [e for e in logs if e["event"] == "translation.done"]
    assert done["items"] == 1 and done["translated"] == 1
    assert done["engines"] == ["translate-ar_en"]
    assert done["seconds"] >= 0


def test_a_copied_package_without_minisbd_splits_on_punctuation(
    tmp_path: Path, tiny: TinyModels, counting: list[int]
) -> None:
    config = installed(make_config(tmp_path), tiny.argos_ar)
    shutil.rmtree(config.state_dir / "models" / "argos" / "translate-ar_en" / "minisbd")
    (result,) = Translator.from_config(config).translate_items(
        [("عنوان", "الأولى. الثانية! الثالثة؟ الرابعة", "ar")]
    )
    assert counting == [5]
    assert result is not None
