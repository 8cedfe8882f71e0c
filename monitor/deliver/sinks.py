"""The sink protocol: what the dispatcher needs of each sink type, in one place per type.

A sink type renders a message (an incident's first message, a later report, a digest) into one
HTTP request, judges the service's answer, reads the id of the first message from its answer,
and says how later reports of an incident reach the service (`Capability`):

| type                              | capability | an update is                              |
|-----------------------------------|------------|-------------------------------------------|
| matrix, telegram                  | thread     | a reply under the first message           |
| slack with `token` and `channel`  | thread     | a reply in the first message's thread     |
| discord                           | edit       | the first message, edited to list all     |
| slack webhook, teams, mattermost, |            |                                           |
| ntfy, apprise                     | coalesce   | one message listing the reports since     |
| webhook                           | each       | one signed `incident.updated` per report  |

Each sink module holds its service's rules (payload, limits, success rule, remote id) in one
class; the dispatcher only calls the protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from monitor.config import SinkConfig
from monitor.deliver.apprise_sink import AppriseSink
from monitor.deliver.discord import DiscordSink
from monitor.deliver.matrix import MatrixSink
from monitor.deliver.mattermost import MattermostSink
from monitor.deliver.message import Digest, Message
from monitor.deliver.ntfy import NtfySink
from monitor.deliver.render import Capability, Outgoing, RemoteRef
from monitor.deliver.retry import Outcome
from monitor.deliver.slack import SlackSink
from monitor.deliver.teams import TeamsSink
from monitor.deliver.telegram import TelegramSink
from monitor.deliver.webhook import WebhookSink

__all__ = ["SINK_TYPES", "Capability", "RemoteRef", "SinkType", "sink_type"]


class SinkType(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def digest_size(self) -> int | None:
        """Alerts listed in one flood-control digest message; None: no digests (webhook)."""

    @property
    def direct(self) -> bool:
        """True: the type sends by itself with `send` (Apprise), not `render` + `classify`."""

    def capability(self, sink: SinkConfig) -> Capability: ...

    def render(
        self, sink: SinkConfig, message: Message | Digest, root: RemoteRef | None, now: datetime
    ) -> Outgoing:
        """The request for `message`.

        `message.kind == "created"` (root None): the incident's first message. An update
        (`kind == "updated"`), by capability: thread, a reply under `root`; edit, `root`
        edited to list every report (`message.new_reports`); coalesce, one message listing
        `message.new_reports`; each, the webhook event. An update of a thread or edit type
        whose first message was never sent (root None) goes out as a message of its own.
        `now`: the time a signature covers.

        Raises:
            DeliveryError: permanent; the sink lacks what the type needs.
        """

    def classify(
        self, status: int, headers: Mapping[str, str], body: str, *, complete: bool = True
    ) -> Outcome:
        """The answer (body decoded and redacted) as sent, retry or dead; `complete` False:
        the body was cut short, so a 2xx is sent without reading it."""

    def remote_ref(self, body: str) -> RemoteRef | None:
        """The first message's id from a successful created answer, where the type uses one."""

    async def send(
        self, sink: SinkConfig, message: Message | Digest, root: RemoteRef | None
    ) -> None:
        """Only for a `direct` type.

        Raises:
            DeliveryError: permanent or retryable, as the failure is.
        """


SINK_TYPES: Mapping[str, SinkType] = {
    sink.name: sink
    for sink in (
        SlackSink(),
        DiscordSink(),
        TeamsSink(),
        MattermostSink(),
        TelegramSink(),
        MatrixSink(),
        NtfySink(),
        AppriseSink(),
        WebhookSink(),
    )
}
"""Every sink type, by `SinkConfig.type`."""


def sink_type(sink: SinkConfig) -> SinkType:
    return SINK_TYPES[sink.type]
