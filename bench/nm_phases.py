"""Where a `poll-once` spends its time: `poll-once`'s own steps, each timed, in one process.

    .venv/bin/python bench/nm_phases.py --config DIR/config.yaml [--cycles 2]

Does what `news-monitor --config X poll-once` does (imports, config, logging to stderr,
`Monitor`, `poll_once()`, close) and prints one JSON object with wall and CPU seconds per
step. Later cycles reuse the process, as the daemon does: a cycle's time without the start-up.
bench/peers.py runs it after the warm runs to explain them. CPU is this process's (every
thread); a parse pool's workers are not in it.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_STEPS: dict[str, dict[str, float]] = {}


def timed(name: str, fn: Callable[[], T]) -> T:
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    _STEPS[name] = {
        "wall_s": round(time.perf_counter() - wall, 3),
        "cpu_s": round(time.process_time() - cpu, 3),
    }
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--cycles", type=int, default=2)
    args = parser.parse_args()

    def imports() -> Any:
        import asyncio

        import monitor.cli  # noqa: F401  (what the command line imports)
        from monitor.config import load_config
        from monitor.logging import configure_logging
        from monitor.service import Monitor

        return asyncio, load_config, configure_logging, Monitor

    asyncio, load_config, configure_logging, monitor_class = timed("imports", imports)
    config = timed("load config", lambda: load_config(args.config))
    timed("configure logging", lambda: configure_logging(json=True))
    cycles: list[dict[str, Any]] = []

    async def run() -> None:
        monitor = timed("Monitor() (store, analyzer)", lambda: monitor_class(config))
        wall, cpu = time.perf_counter(), time.process_time()
        await monitor.sync_feeds()
        _STEPS["sync feeds"] = {
            "wall_s": round(time.perf_counter() - wall, 3),
            "cpu_s": round(time.process_time() - cpu, 3),
        }
        try:
            for _ in range(args.cycles):
                wall, cpu = time.perf_counter(), time.process_time()
                reports = await monitor.poll_once()
                outcomes: dict[str, int] = {}
                for report in reports:
                    outcomes[report.outcome] = outcomes.get(report.outcome, 0) + 1
                cycles.append(
                    {
                        "wall_s": round(time.perf_counter() - wall, 3),
                        "cpu_s": round(time.process_time() - cpu, 3),
                        "outcomes": outcomes,
                    }
                )
        finally:
            wall, cpu = time.perf_counter(), time.process_time()
            await monitor.aclose()
            _STEPS["close"] = {
                "wall_s": round(time.perf_counter() - wall, 3),
                "cpu_s": round(time.process_time() - cpu, 3),
            }

    asyncio.run(run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    json.dump(
        {"steps": _STEPS, "cycles": cycles, "maxrss_mb": round(usage.ru_maxrss / 1024, 1)},
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
