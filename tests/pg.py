"""A real PostgreSQL server for the tests, from Debian's `postgresql` package.

`postgres_server` (session) runs `initdb` and `pg_ctl` in a temporary directory on a free
127.0.0.1 port, as the `postgres` system user when the tests run as root (initdb refuses root),
with trust authentication on loopback and fsync off (a test database need not survive a power
cut). `pg_url` (per test) is a fresh database on it as a postgresql:// URL. The system's own
cluster is never started or touched. Without the package the tests fail with how to install it:
the PostgreSQL store is a core feature, not an optional one.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["ENGINES", "PostgresServer", "pg_url", "postgres_server", "store_target"]

ENGINES = ("sqlite", "postgresql")

_USER = "postgres"
_names = itertools.count(1)


def _bin_dir() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if not found:
        pytest.fail(
            "PostgreSQL is not installed: apt-get install postgresql (the tests start their own"
            " server from its binaries)",
            pytrace=False,
        )
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    port: int
    directory: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)


def _as_postgres(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", _USER, "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="news-monitor-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, _USER)
    port = _free_port()
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                _USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root}"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    log = root / "server.log"
    started = subprocess.run(
        _as_postgres(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]
        ),
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        detail = log.read_text(errors="replace") if log.exists() else started.stderr
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {detail.strip()[-2000:]}", pytrace=False)
    try:
        yield PostgresServer(port, root)
    finally:
        subprocess.run(
            _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database for this test, as a postgresql:// URL."""
    return postgres_server.create_database()


@pytest.fixture(params=ENGINES)
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a store test opens its database: one suite, run on both engines (issue 13). A
    SQLite file under `tmp_path`, or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return tmp_path / "monitor.db"
    return str(request.getfixturevalue("pg_url"))


def integrity_errors() -> tuple[type[Exception], ...]:
    """What a constraint violation raises, on either engine."""
    import sqlite3

    import psycopg

    return (sqlite3.IntegrityError, psycopg.IntegrityError)
