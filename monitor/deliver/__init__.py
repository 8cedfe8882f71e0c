"""Alert delivery (DESIGN §7): the outbox dispatcher and one renderer per sink format.

`Dispatcher` drains the `deliveries` table into the configured sinks, durably: retries with
backoff, `dead` after permanent failures or `delivery.retry_for`, per-sink rate limits and
flood-control digests. Rendering is pure (`monitor.deliver.<format>`), and feed text is made
inert for each format by `monitor.deliver.safety`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from monitor.deliver.dispatcher import (
    Dispatcher,
    DispatchReport,
    SinkAnswer,
    SinkReport,
    send_test,
)
from monitor.deliver.retry import RetryPolicy

# Messages load with the first delivery to send (issue 14).
if TYPE_CHECKING:
    from monitor.deliver.message import Digest, MatchedForm, Message

__all__ = [
    "Digest",
    "DispatchReport",
    "Dispatcher",
    "MatchedForm",
    "Message",
    "RetryPolicy",
    "SinkAnswer",
    "SinkReport",
    "send_test",
]


def __getattr__(name: str) -> Any:
    if name in ("Digest", "MatchedForm", "Message"):
        from monitor.deliver import message

        return getattr(message, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
