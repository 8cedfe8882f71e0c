"""The connection: one SQLite file in WAL mode, migrated on open."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import sqlite_utils

from monitor.errors import StoreError, StoreFileLost, StoreMissing
from monitor.store.schema import migrations

__all__ = ["StoreBase"]


def _missing(path: Path) -> StoreMissing:
    return StoreMissing(f"no database at {path} (start the daemon or run poll-once first)")


class StoreBase:
    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self.db = db
        self.path = path
        # Which file the connection holds: a path that names another file (or none) later
        # means the database was deleted or replaced under us (`check_file`).
        stat = path.stat()
        self._identity = (stat.st_dev, stat.st_ino)
        self._lost: str | None = None

    @classmethod
    def open(cls, path: Path | str, *, create: bool = True) -> Self:
        """Open (creating if needed, unless `create` is false) and migrate the database.

        Raises:
            StoreMissing: `create` is false and there is no file at `path`.
            StoreError: the file cannot be opened, is not a database, or cannot be migrated.
        """
        path = Path(path)
        if not create and not path.exists():
            raise _missing(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path, check_same_thread=False, timeout=30)
            db = sqlite_utils.Database(connection)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            migrations.apply(db)
            return cls(db, path)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{path}: cannot open the database: {exc}") from exc

    @classmethod
    def open_readonly(cls, path: Path | str) -> Self:
        """Open an existing database for reading only (the `status`, `alerts`... commands).

        It never creates the file, so it cannot leave an empty database where the daemon's was
        deleted. While a WAL file exists (a daemon may be writing it) the connection is SQLite's
        `mode=ro`, which never checkpoints or removes the WAL on close. Without one, it is
        `mode=rw` with `query_only`: a `mode=ro` connection would leave a `-wal` and `-shm`
        behind, owned by whoever ran the command (root, say), which the daemon's own user could
        then not open; this one removes them on close, as the last connection. No migration
        runs: the daemon or `poll-once` applies them, and a database still missing one is an
        error.

        Raises:
            StoreMissing: there is no file at `path`.
            StoreError: the file is not a news-monitor database, is not migrated yet, or
                cannot be read.
        """
        path = Path(path)
        if not path.exists():
            raise _missing(path)
        mode = "ro" if path.with_name(f"{path.name}-wal").exists() else "rw"
        try:
            connection = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode={mode}",
                uri=True,
                check_same_thread=False,
                timeout=30,
            )
            connection.execute("PRAGMA query_only = ON")
            db = sqlite_utils.Database(connection)
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if "feeds" not in tables:
                connection.close()
                raise StoreError(f"{path}: not a news-monitor database (it has no feeds table)")
            pending = [migration.name for migration in migrations.pending(db)]
            if pending:
                # The queries expect the current schema, and a reader cannot migrate.
                connection.close()
                raise StoreError(
                    f"{path}: the database is from an older news-monitor (migration"
                    f" {pending[0]} not applied): restart the daemon or run poll-once to"
                    " upgrade it"
                )
            return cls(db, path)
        except sqlite3.OperationalError as exc:
            if not path.exists():  # deleted between the check and the open
                raise _missing(path) from exc
            raise StoreError(f"{path}: cannot read the database: {exc}") from exc
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{path}: cannot read the database: {exc}") from exc

    def check_file(self) -> None:
        """Raise once the path no longer names the file this store opened.

        One `stat` call, so it runs before every write transaction. The first time, the WAL is
        checkpointed into the lost file and emptied, so the WAL file left at the path holds
        nothing of it: a database created or restored there later opens as it is, without
        the lost one's pages laid over it.

        Raises:
            StoreFileLost: the file was deleted or replaced; from then on, always.
        """
        if self._lost is None:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._lost = "deleted"
            except OSError:
                return  # cannot tell (permissions, a stale mount): SQLite will say if it fails
            else:
                if (stat.st_dev, stat.st_ino) == self._identity:
                    return
                self._lost = "replaced"
            with contextlib.suppress(sqlite3.Error):
                if self.db.conn.in_transaction:
                    self.db.conn.rollback()
                # Best effort, and brief: a reader of the new file must not stall us here.
                self.db.execute("PRAGMA busy_timeout = 1000")
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raise StoreFileLost(self.path, self._lost)

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
            # Checked under the write lock: whatever is written next goes to the file at the
            # path, or nowhere.
            self.check_file()
            yield
        except BaseException:
            connection.rollback()
            raise
        connection.commit()

    def close(self) -> None:
        self.db.close()

    def applied_migrations(self) -> list[str]:
        return [m.name for m in migrations.applied(self.db)]
