"""The sd_notify protocol: `KEY=value` lines in one datagram to `$NOTIFY_SOCKET`.

These are the few lines the protocol takes (sd_notify(3)), so there is no libsystemd to build or
load. Outside systemd `NOTIFY_SOCKET` is unset and every call does nothing. A notification that
cannot be sent is logged once and dropped: losing a STATUS= line must never stop the daemon, and
if the manager is gone the watchdog no longer matters either.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

__all__ = ["Notifier"]

log = structlog.get_logger("monitor.notify")


class Notifier:
    """Sends service state to the service manager.

    Args:
        address: the socket path; a leading `@` names an abstract socket. None: do nothing.
        watchdog_usec: the manager's watchdog timeout in microseconds, if it set one for us.
    """

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self._watchdog_usec = watchdog_usec
        self._socket: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        """The notifier systemd asked for through `NOTIFY_SOCKET` and `WATCHDOG_USEC`."""
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET") or None
        watchdog: int | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process the watchdog is meant for; a child that inherited the
        # environment must not ping on its parent's behalf.
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog = int(usec)
        return cls(address, watchdog)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def watchdog_interval(self) -> float | None:
        """The watchdog timeout in seconds, or None when there is none; ping at half of it."""
        if self._watchdog_usec is None or not self.enabled:
            return None
        return self._watchdog_usec / 1_000_000

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *_status(status))

    def reloading(self, status: str | None = None) -> bool:
        # systemd 253+ (Type=notify-reload) wants the monotonic time of the reload request to
        # tell this reload from an earlier one; older managers ignore the field.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", *_status(status))

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *_status(status))

    def status(self, text: str) -> bool:
        return self.send(*_status(text))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def send(self, *fields: str) -> bool:
        """Send one notification; True when the manager got it (False when disabled or lost)."""
        if self.address is None or not fields:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        message = "\n".join(fields).encode("utf-8")
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
                # Never block the event loop on a manager that is not reading.
                self._socket.setblocking(False)
            self._socket.sendto(message, target)
        except OSError as exc:
            if not self._failed:
                log.warning("notify.failed", socket=self.address, error=str(exc))
            self._failed = True
            return False
        if self._failed:
            log.info("notify.recovered", socket=self.address)
            self._failed = False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _status(text: str | None) -> tuple[str, ...]:
    # A newline would end the field and start a bogus one.
    return () if text is None else ("STATUS=" + " ".join(text.split()),)
