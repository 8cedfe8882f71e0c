"""Noticing edits to the config file and the catalogs it includes.

Each watched path is `stat`-ed once per interval and compared by (device, inode, size,
mtime_ns). That catches editing in place, and editors and tools that write a new file and
rename it over the old one (vim, `sed -i`, Ansible), which an inotify watch on the file itself
would miss after the first rename; it needs no dependency and no platform API, works through
symlinks, and costs a handful of `stat` calls a second. A change fires once the files have stayed
the same for one more interval, so a save that writes in several steps reloads once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from monitor._source import environment, read_yaml

__all__ = ["ConfigWatcher", "config_files"]

log = structlog.get_logger("monitor.watch")

_Signature = tuple[int, int, int, int] | None
"""(st_dev, st_ino, st_size, st_mtime_ns), or None for a file that is not there."""


def _signature(path: Path) -> _Signature:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def config_files(path: Path, env: dict[str, str] | None = None) -> tuple[Path, ...]:
    """The config file and every catalog it includes, directly or through other catalogs.

    Follows `feeds: - include: FILE` as `load_config` does (relative to the including file,
    YAML catalogs may include further ones, OPML catalogs cannot). Best effort: an unreadable
    or invalid file is listed but adds nothing, so fixing it is noticed too.
    """
    env = environment() if env is None else env
    found: list[Path] = []

    def visit(file: Path, is_catalog: bool) -> None:
        file = file.resolve()
        if file in found:
            return
        found.append(file)
        if file.suffix.lower() in {".opml", ".xml"} or not file.exists():
            return
        data = read_yaml(file, env).data
        if not is_catalog or isinstance(data, dict):
            data = data.get("feeds") if isinstance(data, dict) else None
        if not isinstance(data, list):
            return
        for entry in data:
            if isinstance(entry, dict) and isinstance(entry.get("include"), str):
                visit(file.parent / entry["include"], True)

    visit(Path(path), False)
    return tuple(found)


class ConfigWatcher:
    """Calls `on_change()` after any of `paths` changes (debounced by one `interval`)."""

    def __init__(
        self, paths: Sequence[Path], on_change: Callable[[], None], interval: float = 1.0
    ) -> None:
        self._on_change = on_change
        self.interval = interval
        self._seen: dict[Path, _Signature] = {}
        self._changed: dict[Path, _Signature] | None = None
        """The signatures at the first tick that saw a change, until they settle."""
        self.set_paths(paths)

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(self._seen)

    def set_paths(self, paths: Sequence[Path]) -> None:
        """Watch these paths from now on: known ones keep their state, new ones start from now.

        A path that was already changing keeps counting as changed, so an edit made while a
        reload was reading the files still fires.
        """
        self._seen = {
            path: self._seen[path] if path in self._seen else _signature(path)
            for path in map(Path, paths)
        }

    def check(self) -> None:
        """One tick: compare, and call `on_change` once a change has settled."""
        now = {path: _signature(path) for path in self._seen}
        if self._changed is None:
            if now != self._seen:
                self._changed = now
            return
        if now != self._changed:
            self._changed = now  # still being written: wait for it to settle
            return
        changed = sorted(str(p) for p in now if now[p] != self._seen[p])
        self._seen, self._changed = now, None
        if changed:  # else it changed and changed back
            log.info("config.changed", files=changed)
            self._on_change()

    async def run(self, stopping: asyncio.Event) -> None:
        """Check every `interval` until `stopping` is set."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.interval)
            if not stopping.is_set():
                self.check()
