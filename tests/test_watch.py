"""The config watcher on real files: edits in place, replace-by-rename, includes."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from monitor.watch import ConfigWatcher, config_files

CATALOG = "- {name: A, url: 'https://a.example/rss'}\n"


def _config(directory: Path, *includes: str) -> Path:
    feeds = "".join(f"  - include: {name}\n" for name in includes) or "  []\n"
    path = directory / "config.yaml"
    path.write_text(f"database: monitor.db\nfeeds:\n{feeds}", encoding="utf-8")
    return path


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def _settle(watcher: ConfigWatcher, ticks: int = 3) -> None:
    for _ in range(ticks):
        watcher.check()


def _touch_later(path: Path, text: str) -> None:
    """Write `text`; make sure the mtime moves even on a filesystem with coarse timestamps."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def test_config_files_follow_includes_through_yaml_catalogs(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "ckb.yaml").write_text(
        "feeds:\n  - include: nested.yaml\n  - include: ../mine.opml\n", encoding="utf-8"
    )
    (tmp_path / "feeds" / "nested.yaml").write_text(CATALOG, encoding="utf-8")
    (tmp_path / "mine.opml").write_text("<opml/>", encoding="utf-8")
    config = _config(tmp_path, "feeds/ckb.yaml", "missing.yaml")

    assert config_files(config, env={}) == (
        config.resolve(),
        (tmp_path / "feeds" / "ckb.yaml").resolve(),
        (tmp_path / "feeds" / "nested.yaml").resolve(),
        (tmp_path / "mine.opml").resolve(),
        # Not there yet: watched, so that creating it is noticed.
        (tmp_path / "missing.yaml").resolve(),
    )


def test_config_files_of_an_invalid_or_self_including_config_still_lists_it(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "config.yaml"
    broken.write_text("feeds: [\n", encoding="utf-8")
    assert config_files(broken, env={}) == (broken.resolve(),)
    loop = _config(tmp_path, "config.yaml")
    assert config_files(loop, env={}) == (loop.resolve(),)


def test_an_edit_in_place_fires_once_after_it_settles(tmp_path: Path) -> None:
    config = _config(tmp_path)
    changes = Counter()
    watcher = ConfigWatcher([config], changes)
    _settle(watcher)
    assert changes.calls == 0

    _touch_later(config, config.read_text() + "# edited\n")
    watcher.check()
    assert changes.calls == 0  # seen, but the file may still be being written
    watcher.check()
    assert changes.calls == 1
    _settle(watcher)
    assert changes.calls == 1


def test_a_save_in_several_writes_fires_once(tmp_path: Path) -> None:
    config = _config(tmp_path)
    changes = Counter()
    watcher = ConfigWatcher([config], changes)
    with config.open("a", encoding="utf-8") as out:
        for n in range(3):
            out.write(f"# part {n}\n")
            out.flush()
            watcher.check()
    _settle(watcher)
    assert changes.calls == 1


def test_replace_by_rename_fires_like_vim_and_sed_do(tmp_path: Path) -> None:
    config = _config(tmp_path)
    changes = Counter()
    watcher = ConfigWatcher([config], changes)

    # What vim (backupcopy=no) and most editors do: write a new file, rename it over the old.
    replacement = tmp_path / ".config.yaml.swp"
    replacement.write_text(config.read_text(), encoding="utf-8")  # even with the same size
    replacement.replace(config)
    _settle(watcher)
    assert changes.calls == 1

    subprocess.run(["sed", "-i", "s/monitor.db/other.db/", str(config)], check=True)
    _settle(watcher)
    assert changes.calls == 2
    assert "other.db" in config.read_text()


def test_a_file_deleted_then_recreated_fires(tmp_path: Path) -> None:
    config = _config(tmp_path)
    changes = Counter()
    watcher = ConfigWatcher([config], changes)
    text = config.read_text()
    config.unlink()
    watcher.check()
    config.write_text(text, encoding="utf-8")
    _settle(watcher)
    assert changes.calls == 1


def test_an_included_catalog_is_watched_and_set_paths_follows_new_includes(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.yaml").write_text(CATALOG, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(CATALOG, encoding="utf-8")
    config = _config(tmp_path, "a.yaml")
    changes = Counter()
    watcher = ConfigWatcher(config_files(config, env={}), changes)

    _touch_later(tmp_path / "a.yaml", CATALOG + "- {name: A2, url: 'https://a2.example/rss'}\n")
    _settle(watcher)
    assert changes.calls == 1

    # b.yaml is not included yet: its edits do not matter.
    _touch_later(tmp_path / "b.yaml", CATALOG + "# b\n")
    _settle(watcher)
    assert changes.calls == 1

    _touch_later(config, config.read_text() + "  - include: b.yaml\n")
    _settle(watcher)
    assert changes.calls == 2
    watcher.set_paths(config_files(config, env={}))
    assert (tmp_path / "b.yaml").resolve() in watcher.paths
    _settle(watcher)
    assert changes.calls == 2  # adding a path is not a change

    _touch_later(tmp_path / "b.yaml", CATALOG)
    _settle(watcher)
    assert changes.calls == 3


def test_run_polls_on_the_event_loop_until_stopping(tmp_path: Path) -> None:
    config = _config(tmp_path)

    async def main() -> None:
        stopping = asyncio.Event()
        changed = asyncio.Event()
        watcher = ConfigWatcher([config], changed.set, interval=0.05)
        task = asyncio.create_task(watcher.run(stopping))
        await asyncio.sleep(0.12)
        _touch_later(config, config.read_text() + "# edited\n")
        await asyncio.wait_for(changed.wait(), 2)
        stopping.set()
        await asyncio.wait_for(task, 1)

    asyncio.run(main())
