"""The benchmark's filter and sink for the peers, loaded into *their* virtualenvs.

rss2email and feed2exec have no watchlist matching of their own, so each gets the smallest
hook its documentation describes: a case-insensitive substring filter over an item's title
and summary for the same spellings news-monitor's benchmark config uses.

- rss2email: `post-process = bench_hooks rss2email_filter` in its config. Returning None
  drops the message; kept messages go to the `sendmail` program, a shell script that appends
  them to the sink file (bench/peers.py writes it).
- feed2exec: `filter = bench_hooks` (`filter()` below sets `item['skip']`) and
  `output = bench_hooks` (`output()` appends one JSON line per item to the sink file).

The terms come from the JSON list in `$NM_BENCH_TERMS`; the feed2exec sink is
`$NM_BENCH_SINK`. This file must stay importable on a bare Python (no project imports).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

_TERMS: tuple[str, ...] = tuple(
    term.casefold()
    for term in json.loads(Path(os.environ["NM_BENCH_TERMS"]).read_text(encoding="utf-8"))
)


def matches(*texts: object) -> bool:
    text = " ".join(str(t) for t in texts if t).casefold()
    return any(term in text for term in _TERMS)


def _entry_text(entry: Any) -> tuple[object, object]:
    summary = entry.get("summary") or ""
    if not summary and entry.get("content"):
        summary = entry["content"][0].get("value", "")
    return entry.get("title") or "", summary


def rss2email_filter(
    feed: Any, parsed: Any, entry: Any, guid: str, message: Any, **kwargs: Any
) -> Any:
    """rss2email post-process hook: the message if the entry matches, else None (dropped)."""
    return message if matches(*_entry_text(entry)) else None


def filter(*args: Any, feed: Any = None, item: Any = None, **kwargs: Any) -> None:
    """feed2exec filter plugin: skip the items that match no term."""
    item["skip"] = not matches(*_entry_text(item))


def output(*args: Any, feed: Any = None, item: Any = None, lock: Any = None, **kwargs: Any) -> bool:
    """feed2exec output plugin: one JSON line per item in the sink file."""
    line = json.dumps(
        {"feed": feed.get("name"), "id": item.get("id"), "link": item.get("link")},
        ensure_ascii=False,
    )
    if lock is not None:
        lock.acquire()
    try:
        with Path(os.environ["NM_BENCH_SINK"]).open("a", encoding="utf-8") as sink:
            sink.write(line + "\n")
    finally:
        if lock is not None:
            lock.release()
    return True
