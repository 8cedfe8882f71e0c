"""sqlite-utils, imported without numpy.

sqlite-utils imports numpy whenever it is installed (ctranslate2 installs it) only to map numpy
scalar types to column types. The store never writes a numpy value, and numpy would cost about
0.1 s of every command's start-up (issue 14). It is hidden for that one import and stays
importable afterwards, for the translation engines.
"""

from __future__ import annotations

import sys


def _import_without_numpy() -> None:
    if "numpy" in sys.modules or "sqlite_utils" in sys.modules:
        return
    sys.modules["numpy"] = None  # type: ignore[assignment]  # makes `import numpy` fail
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["numpy"]


_import_without_numpy()
