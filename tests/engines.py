"""`make_config` on both engines: a test module that imports this runs its tests twice.

    from engines import make_config_on_both_engines  # noqa: F401

replaces conftest's `make_config` in that module with one whose `database:` is `store_target`
(tests/pg.py): a SQLite file, then a fresh PostgreSQL database. One suite, both engines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import write_config

from monitor.config import Config

__all__ = ["make_config_on_both_engines"]


@pytest.fixture(name="make_config")
def make_config_on_both_engines(tmp_path: Path, store_target: Path | str) -> Any:
    def make(**overrides: Any) -> Config:
        overrides.setdefault("database", str(store_target))
        return write_config(tmp_path, **overrides)

    return make
