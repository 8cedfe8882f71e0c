"""The connection: one SQLite file in WAL mode, or a PostgreSQL database; migrated on open.

`Store.open(target)` takes a path (SQLite, the embedded default) or a `postgresql://` URL
(`DatabaseURL`, issue 13; `_postgres` holds what is PostgreSQL's own). The queries are the
same for both: `self.db` offers one surface (`execute`, `executescript`, `conn`), and
`self.engine` says which it is for the few spellings `dialect` covers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import sqlite_utils

from monitor.config import DatabaseURL
from monitor.errors import StoreError, StoreFileLost, StoreMissing
from monitor.store.dialect import Engine
from monitor.store.schema import migrations

if TYPE_CHECKING:
    from monitor.store._postgres import PgDatabase

__all__ = ["StoreBase"]


@contextlib.contextmanager
def _migration_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on the database's folder while migrations run.

    Daemons started together on a fresh file would otherwise both find 0001 pending and the
    second would fail on "table feeds already exists": sqlite-utils checks and applies each
    migration in separate transactions. The folder is locked, not the file: closing any other
    descriptor of the database file would drop the POSIX locks SQLite holds on it.
    """
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _missing(path: Path) -> StoreMissing:
    return StoreMissing(f"no database at {path} (start the daemon or run poll-once first)")


Target = Path | str | DatabaseURL
"""A SQLite file's path, or a PostgreSQL database (a `DatabaseURL` or its URL as text)."""


def _database_url(target: Target) -> DatabaseURL | None:
    if isinstance(target, DatabaseURL):
        return target
    if isinstance(target, str) and target.lower().startswith(("postgresql://", "postgres://")):
        return DatabaseURL(target)
    return None


class StoreBase:
    engine: Engine = "sqlite"

    def __init__(self, db: sqlite_utils.Database | PgDatabase, target: Path | DatabaseURL) -> None:
        # Typed as sqlite-utils' for the queries: PgDatabase offers the same surface.
        self.db: Any = db
        self.location = str(target)
        """The database as it may be shown: a path, or the URL without its password."""
        self._lost: str | None = None
        if isinstance(target, DatabaseURL):
            self.engine = "postgresql"
            self.path: Path | None = None
            return
        self.path = target
        # Which file the connection holds: a path that names another file (or none) later
        # means the database was deleted or replaced under us (`check_file`).
        stat = target.stat()
        self._identity = (stat.st_dev, stat.st_ino)

    @classmethod
    def open(cls, path: Target, *, create: bool = True) -> Self:
        """Open (creating if needed, unless `create` is false) and migrate the database.

        Raises:
            StoreMissing: `create` is false and there is no file at `path` (no news-monitor
                tables in the PostgreSQL database).
            StoreError: the file cannot be opened, is not a database, or cannot be migrated;
                the PostgreSQL server cannot be reached.
        """
        url = _database_url(path)
        if url is not None:
            from monitor.store import _postgres

            pg = _postgres.connect(url.url, url.shown)
            try:
                _postgres.migrate(pg, migrations, create=create)
            except BaseException:
                pg.close()
                raise
            return cls(pg, url)
        assert not isinstance(path, DatabaseURL)  # for mypy: `_database_url` took those
        path = Path(path)
        if not create and not path.exists():
            raise _missing(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with _migration_lock(path.parent):
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
    def open_readonly(cls, path: Target) -> Self:
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
        url = _database_url(path)
        if url is not None:
            return cls._open_pg_readonly(url)
        assert not isinstance(path, DatabaseURL)  # for mypy: `_database_url` took those
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

    @classmethod
    def _open_pg_readonly(cls, url: DatabaseURL) -> Self:
        # Every transaction read-only (default_transaction_read_only): a reader cannot write.
        from monitor.store import _postgres

        pg = _postgres.connect(url.url, url.shown, readonly=True)
        try:
            if not _postgres.has_table(pg, "feeds"):
                raise StoreMissing(
                    f"no news-monitor tables in {url} (start the daemon or run poll-once first)"
                )
            done = set(_postgres.applied(pg, migrations.name))
            pending = [m.name for m in migrations._migrations if m.name not in done]
            if pending:
                raise StoreError(
                    f"{url}: the database is from an older news-monitor (migration"
                    f" {pending[0]} not applied): restart the daemon or run poll-once to"
                    " upgrade it"
                )
        except BaseException:
            pg.close()
            raise
        return cls(pg, url)

    def check_file(self) -> None:
        """Raise once the path no longer names the file this store opened.

        One `stat` call, so it runs before every write transaction. The first time, the WAL is
        checkpointed into the lost file and emptied, so the WAL file left at the path holds
        nothing of it: a database created or restored there later opens as it is, without
        the lost one's pages laid over it.

        Raises:
            StoreFileLost: the file was deleted or replaced; from then on, always.
        """
        if self.path is None:  # PostgreSQL: a lost connection raises StoreError instead
            return
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
    def write(self, *, serial: bool = True) -> Iterator[None]:
        """A write transaction, its lock taken at once (BEGIN IMMEDIATE).

        On PostgreSQL the lock is a transaction-level advisory lock, which serializes writes
        across every node as SQLite's serializes processes; `serial=False` skips it, for
        writes that need no more than row locks (leases with `FOR UPDATE SKIP LOCKED`).

        While another process holds the write lock, this waits under the busy timeout; a
        transaction that read first and wrote later would fail at once with "database is
        locked" instead, since SQLite cannot upgrade a reader that may have seen stale data.
        Nested, it is a savepoint of the outer transaction.
        """
        if self.engine == "postgresql":
            with self.db.transaction(serial=serial):
                yield
            return
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
        if self.engine == "postgresql":
            from monitor.store import _postgres

            return _postgres.applied(self.db, migrations.name)
        return [m.name for m in migrations.applied(self.db)]
