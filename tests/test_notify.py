"""sd_notify: datagrams on a real AF_UNIX socket the test owns, as systemd would read them."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.notify import Notifier


class Receiver:
    """A notify socket like systemd's: one datagram per notification."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        bind = "\0" + address[1:] if address.startswith("@") else address
        self.socket.bind(bind)
        self.socket.settimeout(2.0)

    def fields(self) -> dict[str, str]:
        data = self.socket.recv(4096).decode("utf-8")
        return dict(line.split("=", 1) for line in data.split("\n"))

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = Receiver(str(tmp_path / "notify.sock"))
    yield server
    server.close()


def test_ready_status_and_stopping_arrive_as_key_value_datagrams(receiver: Receiver) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": receiver.address})
    assert notifier.ready("polling 3 feeds, 0 failing, 0 pending deliveries")
    assert receiver.fields() == {
        "READY": "1",
        "STATUS": "polling 3 feeds, 0 failing, 0 pending deliveries",
    }
    assert notifier.status("2 failing")
    assert receiver.fields() == {"STATUS": "2 failing"}
    assert notifier.stopping("stopping: finishing in-flight polls")
    assert receiver.fields() == {"STOPPING": "1", "STATUS": "stopping: finishing in-flight polls"}
    notifier.close()


def test_stopping_without_status_is_one_field(receiver: Receiver) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": receiver.address})
    notifier.stopping()
    assert receiver.fields() == {"STOPPING": "1"}
    notifier.close()


def test_reloading_carries_the_monotonic_time_systemd_253_wants(receiver: Receiver) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": receiver.address})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    fields = receiver.fields()
    assert fields["RELOADING"] == "1"
    assert before <= int(fields["MONOTONIC_USEC"]) <= after
    notifier.close()


def test_a_newline_in_status_text_cannot_forge_another_field(receiver: Receiver) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": receiver.address})
    notifier.status("config invalid:\nREADY=1")
    assert receiver.fields() == {"STATUS": "config invalid: READY=1"}
    notifier.close()


def test_abstract_socket_addresses_start_with_at() -> None:
    receiver = Receiver(f"@news-monitor-test-{uuid.uuid4().hex}")
    try:
        notifier = Notifier.from_env({"NOTIFY_SOCKET": receiver.address})
        assert notifier.watchdog()
        assert receiver.fields() == {"WATCHDOG": "1"}
        notifier.close()
    finally:
        receiver.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert not notifier.ready("x")
    assert not notifier.watchdog()
    assert notifier.watchdog_interval() is None


def test_watchdog_interval_comes_from_watchdog_usec_for_this_process_only(
    receiver: Receiver,
) -> None:
    env = {"NOTIFY_SOCKET": receiver.address, "WATCHDOG_USEC": "30000000"}
    assert Notifier.from_env(env).watchdog_interval() == 30.0
    mine = {**env, "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_env(mine).watchdog_interval() == 30.0
    # A child that inherited its parent's environment must not ping for the parent.
    parents = {**env, "WATCHDOG_PID": str(os.getpid() + 1)}
    assert Notifier.from_env(parents).watchdog_interval() is None
    assert Notifier.from_env({**env, "WATCHDOG_USEC": "0"}).watchdog_interval() is None
    assert Notifier.from_env({**env, "WATCHDOG_USEC": "soon"}).watchdog_interval() is None


def test_a_socket_that_is_gone_loses_the_message_but_never_raises(tmp_path: Path) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    assert not notifier.ready()
    assert not notifier.status("still running")
    notifier.close()


def test_a_manager_that_stops_reading_never_blocks_the_sender(receiver: Receiver) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": receiver.address})
    started = time.monotonic()
    sent = [notifier.status("x" * 1000) for _ in range(2000)]
    assert time.monotonic() - started < 2
    # The queue filled up and later messages were dropped rather than waited for.
    assert sent[0] and not sent[-1]
    notifier.close()
