"""The connection: one SQLite file in WAL mode, migrated on open."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import sqlite_utils

from monitor.errors import StoreError
from monitor.store.schema import migrations

__all__ = ["StoreBase"]


class StoreBase:
    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(cls, path: Path | str) -> Self:
        """Open (creating if needed) and migrate the database at `path`.

        Raises:
            StoreError: the file cannot be opened, is not a database, or cannot be migrated.
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path, check_same_thread=False, timeout=30)
            db = sqlite_utils.Database(connection)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            migrations.apply(db)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{path}: cannot open the database: {exc}") from exc
        return cls(db, path)

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """A write transaction, its lock taken at once (BEGIN IMMEDIATE).

        While another process holds the write lock, this waits under the busy timeout; a
        transaction that read first and wrote later would fail at once with "database is
        locked" instead, since SQLite cannot upgrade a reader that may have seen stale data.
        Nested, it is a savepoint of the outer transaction.
        """
        connection = self.db.conn
        if connection.in_transaction:
            with self.db.atomic():
                yield
            return
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            connection.rollback()
            raise
        connection.commit()

    def close(self) -> None:
        self.db.close()

    def applied_migrations(self) -> list[str]:
        return [m.name for m in migrations.applied(self.db)]
