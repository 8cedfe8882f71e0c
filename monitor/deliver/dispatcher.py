"""The dispatcher: drains the `deliveries` outbox into the configured sinks.

One worker per sink, each with its own HTTP client, rate limit and backoff, so a sink that is
down, slow or rate-limited never delays another. A worker reads what is due through the store
thread, claims it (a lease in the row, so a second process does not send it too), renders it at
that moment (a translation that landed meanwhile is in the message) and records the outcome:
`sent`, a retry time, or `dead`. After a failure that is worth retrying the whole sink waits
(exponential backoff with jitter, or the service's `Retry-After`): when an endpoint is down,
hammering it with every pending alert helps nobody.

Everything the worker knows is in the database, so a restart, a crash or SIGKILL loses nothing:
a claimed row whose send was cut short is due again when its lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from monitor.config import Config, SinkConfig
from monitor.deliver.retry import Outcome, RetryPolicy, snippet
from monitor.errors import DeliveryError
from monitor.models import Incident
from monitor.redact import Redactor
from monitor.store import shown, utcnow
from monitor.store.outbox import DeliveryRecord, DueDelivery
from monitor.store.thread import StoreThread

# httpx, the sink modules (Apprise among them), rendering, messages and flood control load
# with the first sink that has something to send, so a poll with nothing to deliver imports
# none of them (issue 14).
if TYPE_CHECKING:
    import httpx

    from monitor.deliver.message import Digest, Message
    from monitor.deliver.render import Outgoing, RemoteRef

__all__ = ["DispatchReport", "Dispatcher", "SinkAnswer", "SinkReport", "send_test"]

log = structlog.get_logger("monitor.deliver")

_BATCH = 100
_IDLE_POLL = 2.0
"""A worker re-reads the outbox at least this often: `deliveries retry` in another process, or
a poll that did not call `wake()`, is picked up within this many seconds."""
_LEASE_MARGIN = 5.0
"""A claim lasts the sink's timeout plus this; then a row cut short by a crash is due again."""
_SHUTDOWN_GRACE = 5.0
"""Seconds in-flight sends get to finish when the daemon stops; the rest stay pending."""
_ANSWER_CAP = 64 * 1024
_ANSWER_WAIT = 2.0
"""Seconds an answer's body gets once its status and headers are in (at most the sink's
timeout). A 2xx whose body does not come in time counts as sent: the service had the request,
and sending it again would post it twice."""
_SEVERITY_ORDER = ("info", "low", "medium", "high", "critical")
_WAIT_FOR_FIRST = timedelta(seconds=1)
"""An incident's update waits at least this long for its first message to go out."""


@dataclass(frozen=True, slots=True)
class SinkReport:
    sink: str
    sent: int = 0
    """Alerts delivered, alone or in a digest."""
    digests: int = 0
    """Digest messages among what was sent."""
    retrying: int = 0
    dead: int = 0
    held: int = 0
    """Alerts held by flood control for a later digest."""


@dataclass(frozen=True, slots=True)
class DispatchReport:
    sent: int
    digests: int
    retrying: int
    dead: int
    held: int
    timed_out: bool
    """Whether `drain` hit its timeout with work left; what was left stays pending."""
    sinks: tuple[SinkReport, ...]
    pending: int = 0
    """Deliveries of these sinks still pending afterwards: cut off by the timeout, waiting to
    be retried, or held for a digest."""


@dataclass(frozen=True, slots=True)
class SinkAnswer:
    """What a service answered to `test-sink`."""

    sink: str
    ok: bool
    status: int | None
    answer: str
    error: str | None
    seconds: float


# Sending ---------------------------------------------------------------------------------


class _Sender:
    """Renders and sends to one sink over its own HTTP client; what it reports is redacted."""

    def __init__(self, sink: SinkConfig, redact: Redactor | None = None) -> None:
        """`redact`: the secrets of every configured sink; by default, this sink's."""
        import httpx

        from monitor.deliver.render import USER_AGENT
        from monitor.deliver.sinks import sink_type

        self.sink = sink
        self.type = sink_type(sink)
        self.capability = self.type.capability(sink)
        self._redact = redact or Redactor.for_sinks([sink])
        seconds = sink.timeout.total_seconds()
        self._timeout = seconds
        # Apprise does its own HTTP; every other sink sends over this client.
        self._client = (
            None
            if self.type.direct
            else httpx.AsyncClient(
                timeout=httpx.Timeout(seconds, connect=min(seconds, 10.0)),
                limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
            )
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def render(
        self, message: Message | Digest, now: datetime, root: RemoteRef | None = None
    ) -> Outgoing:
        return self.type.render(self.sink, message, root, now)

    async def send(
        self, message: Message | Digest, root: RemoteRef | None = None
    ) -> tuple[Outcome, RemoteRef | None]:
        """The outcome, and the id of the message the service made, where the type uses one."""
        ref = None
        try:
            if self.type.direct:
                await self.type.send(self.sink, message, root)
                outcome = Outcome("sent", answer=f"{self.type.name.capitalize()}: sent")
            else:
                outcome, ref = await self._http(self.render(message, utcnow(), root))
        except DeliveryError as exc:
            outcome = Outcome("dead" if exc.permanent else "retry", error=str(exc))
        # Services echo requests in their errors, and exceptions quote URLs: no secret in
        # what is stored, logged or printed.
        outcome = dataclasses.replace(
            outcome,
            error=self._redact(outcome.error) if outcome.error else outcome.error,
            answer=self._redact(outcome.answer),
        )
        return outcome, ref

    async def _http(self, outgoing: Outgoing) -> tuple[Outcome, RemoteRef | None]:
        import httpx

        from monitor.deliver.render import HttpSink

        if self._client is None:
            raise DeliveryError(f"sink {self.sink.name!r} sends through Apprise", permanent=True)
        request = self._client.build_request(
            outgoing.method, outgoing.url, content=outgoing.body, headers=dict(outgoing.headers)
        )
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.send(request, stream=True)
        except TimeoutError:
            return Outcome("retry", error=f"timed out after {self._timeout:g}s"), None
        except httpx.TransportError as exc:
            return Outcome("retry", error=_transport_error(exc)), None
        status = response.status_code
        try:
            # Read even where any 2xx will do: an unread body closes the connection, and the
            # next send would pay for a new one (and a TLS handshake).
            body, complete = await _read_answer(response, min(_ANSWER_WAIT, self._timeout))
        finally:
            await response.aclose()
        # Redacted before anything is cut from it, so no part of a secret is left either.
        text = self._redact(body.decode(response.encoding or "utf-8", "replace"))
        reads_body = not isinstance(self.type, HttpSink) or self.type.success is not None
        if 200 <= status < 300 and not complete and reads_body:
            log.warning(
                "delivery.answer_cut", sink=self.sink.name, status=status, read_bytes=len(body)
            )
        outcome = self.type.classify(status, response.headers, text, complete=complete)
        ref = self.type.remote_ref(text) if outcome.kind == "sent" and complete else None
        return outcome, ref


async def _read_answer(response: httpx.Response, seconds: float) -> tuple[bytes, bool]:
    """At most `_ANSWER_CAP` bytes of the body within `seconds`; and whether that was all
    that was wanted (the whole body, or the cap's worth)."""
    import httpx

    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= _ANSWER_CAP:  # the start of an answer is all anyone reads
                    break
    except (TimeoutError, httpx.HTTPError):
        return b"".join(chunks)[:_ANSWER_CAP], False
    return b"".join(chunks)[:_ANSWER_CAP], True


def _transport_error(exc: httpx.TransportError) -> str:
    import httpx

    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {text}"
    return f"{type(exc).__name__}: {text}"


# One sink's worker -----------------------------------------------------------------------


class _Worker:
    def __init__(self, dispatcher: Dispatcher, sink: SinkConfig) -> None:
        from monitor.deliver.limits import TokenBucket, sink_rate

        self._dispatcher = dispatcher
        self.sink = sink
        self._sender = _Sender(sink, dispatcher.redactor)
        rate = sink_rate(sink)
        self._bucket = TokenBucket(rate) if rate else None
        self.wakeup = asyncio.Event()
        """Set by `wake()` and `stop()`: ends an idle wait."""
        self._stopped = asyncio.Event()
        self.stopping = False
        self.flush = False
        """Send what flood control would hold as a digest now (`drain`, for poll-once)."""
        self.task: asyncio.Task[None] | None = None
        self._failures = 0
        self._paused_until = 0.0
        self.counts: Counter[str] = Counter()

    @property
    def report(self) -> SinkReport:
        return SinkReport(
            self.sink.name,
            sent=self.counts["sent"],
            digests=self.counts["digests"],
            retrying=self.counts["retrying"],
            dead=self.counts["dead"],
            held=self.counts["held"],
        )

    def stop(self) -> None:
        self.stopping = True
        self._stopped.set()
        self.wakeup.set()

    def _paused(self) -> bool:
        return time.monotonic() < self._paused_until

    async def run(self, previous: asyncio.Task[None] | None = None) -> None:
        """The daemon loop; `previous` is the task of the worker this one replaces."""
        if previous is not None:
            # One sender per sink at a time: the replaced worker finishes its send first.
            await asyncio.wait([previous])
        try:
            with structlog.contextvars.bound_contextvars(sink=self.sink.name):
                while not self.stopping:
                    self.wakeup.clear()
                    try:
                        await self.drain()
                        delay = await self._idle_delay()
                    except Exception as exc:
                        # A bug or a store hiccup must not end delivery for good. The
                        # traceback is redacted as a text: its messages may quote a URL.
                        redact = self._dispatcher.redactor
                        log.error(
                            "sink.crashed",
                            error=redact(repr(exc)),
                            traceback=redact("".join(traceback.format_exception(exc))),
                        )
                        delay = _IDLE_POLL
                    await self._sleep(delay)
        finally:
            await self._sender.aclose()

    async def drain(self) -> None:
        """Send what is due now until nothing is, the sink pauses after a failure, or stop."""
        from monitor.deliver.limits import Hold, Send, SendDigest, chunked, plan
        from monitor.deliver.render import DIGEST_MAX

        dispatcher = self._dispatcher
        store = dispatcher.store
        capability = self._sender.capability
        digest_size = self._sender.type.digest_size
        while not self.stopping and not self._paused():
            delivery = dispatcher.config.delivery
            now = dispatcher.clock()
            batch = await store.call(
                store.store.outbox_batch, self.sink.name, now, now - delivery.digest_window, _BATCH
            )
            if not batch.due:
                return
            # An incident's first report goes out as a message of its own (flood control
            # counts these); its later ones are updates, as the sink type allows.
            updates: dict[str, list[DueDelivery]] = {}
            for due in batch.due:
                if due.kind == "updated" and due.incident and capability != "each":
                    updates.setdefault(due.incident, []).append(due)
            firsts = tuple(d for d in batch.due if d.incident not in updates or d.kind != "updated")
            actions = plan(
                dataclasses.replace(batch, due=firsts),
                now,
                digest_after=delivery.digest_after,
                window=delivery.digest_window,
                digests=digest_size is not None,
                flush=self.flush,
            )
            for action in actions:
                if self.stopping or self._paused():
                    return
                if isinstance(action, Hold):
                    await store.call(store.store.hold_deliveries, action.ids, action.until, now)
                    self.counts["held"] += len(action.ids)
                    log.info(
                        "delivery.held",
                        deliveries=len(action.ids),
                        until=action.until.isoformat(timespec="seconds"),
                    )
                elif isinstance(action, Send):
                    await self._send([action.id], None)
                elif isinstance(action, SendDigest):
                    chunks = chunked(action.ids, digest_size or DIGEST_MAX)
                    for part, ids in enumerate(chunks, 1):
                        if self.stopping or self._paused():
                            return
                        await self._send(list(ids), (action.watchlist, part, len(chunks)))
            for incident, rows in updates.items():
                if self.stopping or self._paused():
                    return
                await self._update(incident, [row.id for row in rows])

    async def _update(self, incident: str, ids: list[int]) -> None:
        """Later reports of `incident`: a reply under its first message, an edit of it, or
        (at most once per `incidents.update_every`) one message listing them."""
        dispatcher = self._dispatcher
        store = dispatcher.store
        now = dispatcher.clock()
        first = await store.call(store.store.first_delivery, incident, self.sink.name)
        if first is not None and first[0] == "pending":
            # A reply needs the first message's id, and an update must not come before it.
            until = max(datetime.fromisoformat(first[1]), now + _WAIT_FOR_FIRST)
            await store.call(store.store.defer_deliveries, ids, until)
            return
        known = await store.call(store.store.incident_message, incident, self.sink.name)
        from monitor.deliver.render import RemoteRef

        root = (
            RemoteRef(known.message_id, known.thread_id)
            if known is not None and known.message_id
            else None
        )
        capability = self._sender.capability
        if capability == "coalesce" and not self.flush and known and known.updated_at:
            due = (
                datetime.fromisoformat(known.updated_at) + dispatcher.config.incidents.update_every
            )
            if due > now:
                await store.call(store.store.defer_deliveries, ids, due)
                return
        if capability == "thread":
            for one in ids:
                if self.stopping or self._paused():
                    return
                await self._send([one], None, root=root)
        else:
            listing = "all" if capability == "edit" else "new"
            await self._send(ids, None, root=root, listing=listing)

    async def _send(
        self,
        ids: Sequence[int],
        digest: tuple[str, int, int] | None,
        *,
        root: RemoteRef | None = None,
        listing: str | None = None,
    ) -> None:
        """Send `ids` as one message: a report, a digest (`digest`), or an incident update
        listing the reports (`listing`: "new", those of `ids`; "all", every report so far)."""
        from monitor.deliver.message import Digest, digest_key

        if not await self._take_token():
            return
        dispatcher = self._dispatcher
        store = dispatcher.store
        now = dispatcher.clock()
        lease = now + timedelta(seconds=self.sink.timeout.total_seconds() + _LEASE_MARGIN)
        records = await store.call(store.store.claim_deliveries, ids, now, lease)
        if not records:
            return
        claimed = [record.id for record in records]
        try:
            incidents = await store.call(
                _incident_rows, store, {r.incident_id for r in records if r.incident_id}
            )
            messages = tuple(self._message(record, incidents) for record in records)
            payload: Message | Digest
            if digest is not None:
                watchlist, part, parts = digest
                payload = Digest(
                    digest_key([m.key for m in messages]),
                    watchlist,
                    max((m.severity for m in messages), key=_severity_rank),
                    messages,
                    part,
                    parts,
                )
            elif listing is not None:
                listed = messages
                if listing == "all" and records[0].incident_id:
                    every = await store.call(
                        store.store.incident_records, records[0].incident_id, self.sink.name
                    )
                    listed = tuple(self._message(record, incidents) for record in every)
                payload = dataclasses.replace(messages[-1], new_reports=listed)
            else:
                payload = messages[0]
            started = time.perf_counter()
            outcome, ref = await self._sender.send(payload, root)
            seconds = round(time.perf_counter() - started, 3)
        except asyncio.CancelledError:
            # Stopped mid-send: the rows go back to pending at once instead of after the lease.
            release = store.call(store.store.release_deliveries, claimed, dispatcher.clock())
            await asyncio.shield(release)
            raise
        await self._record(records, payload, outcome, seconds)
        incident = records[0].incident_id
        if outcome.kind == "sent" and incident and digest is None:
            # The first message's id (for replies and edits), and when this sink last heard
            # of the incident (for coalesced updates).
            await store.call(
                store.store.record_incident_message,
                incident,
                self.sink.name,
                dispatcher.clock(),
                ref.message_id if ref and records[0].kind == "created" else None,
                ref.thread_id if ref and records[0].kind == "created" else None,
            )

    def _message(self, record: DeliveryRecord, incidents: dict[str, Incident]) -> Message:
        """The report as a message for this sink: with its incident, and every watchlist of
        the item (and of the incident) that routes to this sink."""
        from monitor.deliver.message import IncidentSummary, MatchedForm, message_from

        message = message_from(record)
        untranslated = self._dispatcher.untranslated
        if untranslated is not None and not message.title_en and message.language != "en":
            message = dataclasses.replace(message, translation_note=untranslated(message.language))
        incident = incidents.get(record.incident_id or "")
        if incident is None:
            return message
        routed = self._dispatcher.routes(self.sink.name)
        watchlists = tuple(w for w in incident.watchlists if w in routed) or incident.watchlists
        matches = tuple(
            MatchedForm(
                str(m.get("term", "")),
                str(m.get("form", "")),
                str(m.get("field", "")),
                int(m.get("start", 0)),
                int(m.get("end", 0)),
            )
            for watchlist, found in record.item_alerts
            if watchlist in routed
            for m in found
        )
        summary = IncidentSummary(
            id=incident.id,
            title=incident.title,
            severity=incident.severity,
            breaking=incident.breaking,
            watchlists=watchlists,
            places=incident.places,
            terms=incident.terms,
            languages=incident.languages,
            outlets=incident.outlets,
            reports=len(incident.reports),
            first_seen=shown(incident.first_seen),
            last_seen=shown(incident.last_seen),
        )
        return dataclasses.replace(
            message,
            watchlist=watchlists[0],
            severity=incident.severity,
            matches=tuple(dict.fromkeys(matches)) or message.matches,
            incident=summary,
            kind="updated" if record.kind == "updated" else "created",
        )

    async def _record(
        self,
        records: Sequence[DeliveryRecord],
        payload: Message | Digest,
        outcome: Outcome,
        seconds: float,
    ) -> None:
        dispatcher = self._dispatcher
        store = dispatcher.store
        ids = [record.id for record in records]
        now = dispatcher.clock()
        from monitor.deliver.message import Digest

        digest = payload.key if isinstance(payload, Digest) else None
        if outcome.kind == "sent":
            self._failures = 0
            await store.call(store.store.mark_sent, ids, now, outcome.status, digest)
            self.counts["sent"] += len(ids)
            for record in records:
                lag = (now - datetime.fromisoformat(record.since)).total_seconds()
                dispatcher.observe(self.sink.name, "sent", lag)
            if digest is not None:
                self.counts["digests"] += 1
                log.info(
                    "digest.sent",
                    deliveries=ids,
                    digest=digest,
                    status=outcome.status,
                    seconds=seconds,
                )
            else:
                log.info(
                    "delivery.sent",
                    delivery=ids[0],
                    alert=records[0].alert_id,
                    status=outcome.status,
                    attempt=records[0].attempts + 1,
                    seconds=seconds,
                )
            return
        error = outcome.error or "failed"
        if outcome.kind == "dead":
            await store.call(store.store.mark_dead, ids, error, outcome.status)
            self.counts["dead"] += len(ids)
            for _ in ids:
                dispatcher.observe(self.sink.name, "dead", None)
            log.warning("delivery.dead", deliveries=ids, status=outcome.status, error=error)
            return
        self._failures += 1
        failures = max(self._failures, max(record.attempts for record in records) + 1)
        delay = dispatcher.retry.delay(failures, outcome.retry_after, dispatcher.rng)
        retry_for = dispatcher.config.delivery.retry_for
        expired = [r.id for r in records if now >= datetime.fromisoformat(r.since) + retry_for]
        retrying = [i for i in ids if i not in expired]
        if expired:
            given_up = f"gave up after {_duration(retry_for)}: {error}"
            await store.call(store.store.mark_dead, expired, given_up, outcome.status)
            self.counts["dead"] += len(expired)
            for _ in expired:
                dispatcher.observe(self.sink.name, "dead", None)
            log.warning("delivery.dead", deliveries=expired, status=outcome.status, error=given_up)
        if retrying:
            at = now + timedelta(seconds=delay)
            await store.call(store.store.schedule_retry, retrying, at, error, outcome.status)
            self.counts["retrying"] += len(retrying)
            for _ in retrying:
                dispatcher.observe(self.sink.name, "retry", None)
            log.warning(
                "delivery.retry_scheduled",
                deliveries=retrying,
                status=outcome.status,
                error=error,
                retry_in=round(delay, 3),
                failures=self._failures,
            )
        self._paused_until = time.monotonic() + delay

    async def _take_token(self) -> bool:
        """Wait for the rate limit; False when stopping first."""
        if self._bucket is None:
            return not self.stopping
        while (wait := self._bucket.delay()) > 0:
            if self.stopping:
                return False
            await self._sleep(wait, wakeable=False)
        if self.stopping:
            return False
        self._bucket.take()
        return True

    async def _idle_delay(self) -> float:
        store = self._dispatcher.store
        due = await store.call(store.store.next_due, self.sink.name)
        delay = _IDLE_POLL
        if due is not None:
            delay = min(delay, max(0.0, (due - self._dispatcher.clock()).total_seconds()))
        return max(delay, self._paused_until - time.monotonic(), 0.0)

    async def _sleep(self, seconds: float, *, wakeable: bool = True) -> None:
        """Sleep, cut short by `stop()`, and by `wake()` unless `wakeable` is False."""
        if seconds <= 0:
            return
        event = self.wakeup if wakeable else self._stopped
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()


def _incident_rows(store: StoreThread, ids: set[str]) -> dict[str, Incident]:
    """On the store's thread: the incidents of the rows being sent."""
    rows = {ident: store.store.incident(ident) for ident in ids}
    return {ident: row for ident, row in rows.items() if row is not None}


def _severity_rank(severity: str) -> int:
    return _SEVERITY_ORDER.index(severity) if severity in _SEVERITY_ORDER else 2


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# The dispatcher --------------------------------------------------------------------------


DeliveryObserver = Callable[[str, str, float | None], None]
"""Called per delivery attempt with (sink, "sent" | "retry" | "dead", lag in seconds from the
alert to its arrival, for "sent"): the daemon's metrics."""


def _ignore(sink: str, outcome: str, lag_seconds: float | None) -> None:
    del sink, outcome, lag_seconds


class Dispatcher:
    """Delivers the outbox to every configured sink: `run()` in the daemon, `drain()` once."""

    def __init__(
        self,
        config: Config,
        store: StoreThread,
        *,
        rng: random.Random | None = None,
        retry: RetryPolicy | None = None,
        observe: DeliveryObserver | None = None,
        clock: Callable[[], datetime] = utcnow,
        untranslated: Callable[[str | None], str | None] | None = None,
    ) -> None:
        """`clock`: the time rows are due by and updates are spaced with (tests set it).
        `untranslated`: why an item in a language gets no English (`no model for ckb`)."""
        self.clock = clock
        self.untranslated = untranslated
        self.config = config
        self.redactor = Redactor.for_sinks(config.sinks)
        self.store = store
        self.rng = rng or random.Random()
        self.retry = retry or RetryPolicy()
        self.observe: DeliveryObserver = observe or _ignore
        self._workers: dict[str, _Worker] = {}
        self._running = False

    def reconfigure(self, config: Config) -> None:
        """Swap in a reloaded config: new sinks start, removed ones stop after their send,
        changed ones restart with the new settings; delivery settings apply on the next pass.
        """
        self.config = config
        self.redactor = Redactor.for_sinks(config.sinks)
        if self._running:
            self._sync_workers()

    def routes(self, sink: str) -> frozenset[str]:
        """The watchlists that notify `sink`."""
        return frozenset(w.name for w in self.config.watchlists if sink in self.config.sinks_for(w))

    def wake(self) -> None:
        """New deliveries were committed: look now rather than at the next idle re-read.

        Call it from the event loop's thread (from another: `loop.call_soon_threadsafe`).
        """
        for worker in self._workers.values():
            worker.wakeup.set()

    def _sync_workers(self) -> None:
        wanted = {sink.name: sink for sink in self.config.sinks}
        for name in list(self._workers):
            worker = self._workers[name]
            if wanted.get(name) != worker.sink:
                worker.stop()
                del self._workers[name]
                if name in wanted:
                    self._start(wanted[name], worker.task)
                log.info("sink.stopped", sink=name, replaced=name in wanted)
        for name, sink in wanted.items():
            if name not in self._workers:
                self._start(sink, None)

    def _start(self, sink: SinkConfig, previous: asyncio.Task[None] | None) -> None:
        worker = _Worker(self, sink)
        worker.task = asyncio.get_running_loop().create_task(
            worker.run(previous), name=f"deliver:{sink.name}"
        )
        self._workers[sink.name] = worker

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until `stopping` is set; in-flight sends get a short grace, then the rest
        are left pending for the next start."""
        if self._running:
            raise RuntimeError("the dispatcher is already running")
        self._running = True
        self._sync_workers()
        log.info("dispatcher.started", sinks=len(self._workers))
        try:
            await stopping.wait()
        finally:
            self._running = False
            await self._stop_workers(_SHUTDOWN_GRACE)

    async def _stop_workers(self, grace: float) -> None:
        workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.stop()
        tasks = [worker.task for worker in workers if worker.task is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("dispatcher.cancelled", sinks=[t.get_name() for t in pending])
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self, timeout: float, *, flush_digests: bool = True) -> DispatchReport:
        """Send what is due now, each delivery at most once; failures stay pending for later.

        For `poll-once`. Flood control applies as in the daemon, except that what it would
        hold goes out at once as a digest (`flush_digests`): a cron job may not run again for
        hours. Work left at `timeout` stays pending.
        """
        if self._running:
            raise RuntimeError("drain() while run() is delivering")
        before = await self.store.call(self.store.store.delivery_counts)
        # A sink with nothing pending gets no worker, so a poll with nothing to send never
        # loads httpx or the sink modules (issue 14).
        busy = [s for s in self.config.sinks if before.get(s.name, {}).get("pending", 0)]
        workers = [_Worker(self, sink) for sink in busy]
        for worker in workers:
            worker.flush = flush_digests
        tasks = [asyncio.create_task(self._drain_one(worker)) for worker in workers]
        timed_out = False
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            timed_out = bool(pending)
            for worker in workers:
                worker.stop()
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        done = {worker.sink.name: worker.report for worker in workers}
        reports = tuple(done.get(sink.name) or SinkReport(sink.name) for sink in self.config.sinks)
        counts = await self.store.call(self.store.store.delivery_counts)
        left = sum(counts.get(sink.name, {}).get("pending", 0) for sink in self.config.sinks)
        return DispatchReport(
            sent=sum(r.sent for r in reports),
            digests=sum(r.digests for r in reports),
            retrying=sum(r.retrying for r in reports),
            dead=sum(r.dead for r in reports),
            held=sum(r.held for r in reports),
            timed_out=timed_out,
            sinks=reports,
            pending=left,
        )

    async def _drain_one(self, worker: _Worker) -> None:
        try:
            with structlog.contextvars.bound_contextvars(sink=worker.sink.name):
                await worker.drain()
        finally:
            await worker._sender.aclose()

    async def aclose(self) -> None:
        """Stop every worker at once (no grace) and close their clients."""
        self._running = False
        await self._stop_workers(0.0)


async def send_test(sink: SinkConfig, now: datetime | None = None) -> SinkAnswer:
    """Send one clearly marked test alert to `sink`, outside the outbox; report the answer."""
    from monitor.deliver.message import sink_test_message

    now = now or utcnow()
    message = sink_test_message(sink.name, now, f"test_{uuid.uuid4().hex}")
    sender = _Sender(sink)
    started = time.perf_counter()
    try:
        outcome, _ = await sender.send(message)
    finally:
        await sender.aclose()
    return SinkAnswer(
        sink=sink.name,
        ok=outcome.kind == "sent",
        status=outcome.status,
        answer=snippet(outcome.answer, 500),
        error=outcome.error,
        seconds=round(time.perf_counter() - started, 3),
    )
