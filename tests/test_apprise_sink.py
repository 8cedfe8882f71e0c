"""The `apprise` sink: what Apprise logged about a failure is in the delivery's error."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from receivers import Answer, Receiver, receiver_fixture  # noqa: F401
from test_render import message

from monitor.deliver.apprise_sink import send_apprise
from monitor.errors import DeliveryError

APPRISE_IMGHDR = pytest.mark.filterwarnings(
    # Apprise's e-mail plugin imports `imghdr` when Apprise loads its plugins, and Python 3.11
    # warns that it goes away in 3.13. Not ours to fix; nothing else is silenced.
    "ignore:'imghdr' is deprecated and slated for removal:DeprecationWarning"
)


@APPRISE_IMGHDR
def test_a_failed_send_says_what_apprise_logged(
    make_config: Any, receiver: Callable[..., Receiver]
) -> None:
    target = receiver("webhook")
    target.script(Answer(500))
    url = f"json://desk:hunter2-password@127.0.0.1:{target.port}/apprise"
    config = make_config(sinks=[{"name": "other", "type": "apprise", "url": url}])
    with pytest.raises(DeliveryError) as failed:
        asyncio.run(send_apprise(config.sinks[0], message()))
    error = str(failed.value)
    assert error.startswith("Apprise reported a failure: Failed to send JSON POST notification")
    assert "error=500" in error
    assert "hunter2-password" not in error
    assert not failed.value.permanent
    assert len(target.arrivals) == 1
