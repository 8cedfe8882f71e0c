"""A real Matrix homeserver for the tests: Synapse on 127.0.0.1, SQLite, session-scoped.

Per shared/notes/matrix-probe.md: registration only by shared secret (the admin API), rate
limits raised so a test's quick messages are not refused, `bcrypt_rounds: 4` so users are made
in milliseconds, no federation, no outbound connections. It starts once per session (about
2 s) as `python -m synapse.app.homeserver` in a subprocess; it is stopped by its PID.

Import the fixture into a test module: `from synapse import homeserver_fixture  # noqa: F401`
and ask for `homeserver`. (This
module shadows the real `synapse` package inside the test process, which never imports it.)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from conftest import free_port

__all__ = ["Homeserver", "MatrixUser", "homeserver_fixture"]

_START_TIMEOUT = 60.0
_RAISED = {"per_second": 1000, "burst_count": 1000}


@dataclass(frozen=True)
class MatrixUser:
    user_id: str
    access_token: str


@dataclass(frozen=True)
class Homeserver:
    base: str
    """`http://127.0.0.1:PORT`, the client API's base URL."""
    shared_secret: str
    directory: Path

    def api(
        self, method: str, path: str, token: str | None = None, body: Any = None, **params: Any
    ) -> Any:
        """One client-API call; returns the JSON answer, raising on an HTTP error."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.request(
            method,
            f"{self.base}{path}",
            json=body,
            params=params or None,
            headers=headers,
            timeout=10.0,
        )
        response.raise_for_status()
        return response.json()

    def register(self, localpart: str | None = None) -> MatrixUser:
        """A new user through the shared-secret admin API, logged in."""
        localpart = localpart or f"u{uuid.uuid4().hex[:10]}"
        password = secrets.token_hex(8)
        nonce = self.api("GET", "/_synapse/admin/v1/register")["nonce"]
        mac = hmac.new(
            self.shared_secret.encode(),
            b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), b"notadmin"]),
            hashlib.sha1,
        ).hexdigest()
        answer = self.api(
            "POST",
            "/_synapse/admin/v1/register",
            body={
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": False,
                "mac": mac,
            },
        )
        return MatrixUser(answer["user_id"], answer["access_token"])

    def create_room(self, owner: MatrixUser, *members: MatrixUser) -> str:
        """A private room of `owner` that `members` have joined; returns its id."""
        room_id: str = self.api(
            "POST",
            "/_matrix/client/v3/createRoom",
            owner.access_token,
            {"preset": "private_chat", "invite": [m.user_id for m in members]},
        )["room_id"]
        for member in members:
            self.api(
                "POST",
                f"/_matrix/client/v3/join/{quote(room_id, safe='')}",
                member.access_token,
                {},
            )
        return room_id

    def messages(self, room_id: str, user: MatrixUser) -> list[dict[str, Any]]:
        """The room's `m.room.message` events, oldest first, as `user` reads them."""
        answer = self.api(
            "GET",
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages",
            user.access_token,
            dir="b",
            limit=100,
        )
        events = [e for e in answer["chunk"] if e["type"] == "m.room.message"]
        return events[::-1]


def _write_config(directory: Path, port: int, shared_secret: str) -> Path:
    key = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    (directory / "signing.key").write_text(f"ed25519 a_test {key}\n")
    (directory / "log.yaml").write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "formatters": {
                    "plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}
                },
                "handlers": {
                    "file": {
                        "class": "logging.FileHandler",
                        "formatter": "plain",
                        "filename": str(directory / "homeserver.log"),
                    }
                },
                "root": {"level": "WARNING", "handlers": ["file"]},
                "disable_existing_loggers": False,
            }
        )
    )
    config = {
        "server_name": "localhost",
        "pid_file": str(directory / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(directory / "homeserver.db")}},
        "log_config": str(directory / "log.yaml"),
        "media_store_path": str(directory / "media"),
        "signing_key_path": str(directory / "signing.key"),
        "registration_shared_secret": shared_secret,
        "macaroon_secret_key": secrets.token_hex(16),
        "form_secret": secrets.token_hex(16),
        "report_stats": False,
        "enable_registration": False,
        "enable_metrics": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "url_preview_enabled": False,
        "presence": {"enabled": False},
        "bcrypt_rounds": 4,
        "rc_message": _RAISED,
        "rc_login": {"address": _RAISED, "account": _RAISED, "failed_attempts": _RAISED},
        "rc_registration": _RAISED,
        "rc_joins": {"local": _RAISED, "remote": _RAISED},
        "rc_invites": {"per_room": _RAISED, "per_user": _RAISED, "per_issuer": _RAISED},
    }
    path = directory / "homeserver.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session", name="homeserver")
def homeserver_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homeserver]:
    directory = tmp_path_factory.mktemp("synapse")
    port = free_port()
    shared_secret = secrets.token_hex(16)
    config = _write_config(directory, port, shared_secret)
    output = (directory / "stdout.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "synapse.app.homeserver", "-c", str(config)],
        cwd=directory,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    server = Homeserver(f"http://127.0.0.1:{port}", shared_secret, directory)
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if process.poll() is not None:
                log = (directory / "stdout.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"Synapse exited with {process.returncode}:\n{log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.base}/_matrix/client/versions", timeout=1.0).is_success:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"Synapse did not answer within {_START_TIMEOUT:g}s")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        output.close()
