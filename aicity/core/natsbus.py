"""The bus across processes, on NATS JetStream: subjects by district, event type and entity type.

An event goes to ``<prefix>.<district>.<event type>.<entity type>`` (``_`` when it concerns no entity) in one
JetStream stream kept on disk. :meth:`NatsBus.publish` returns at once: events wait in a buffer, go out with up
to ``max_in_flight`` unacknowledged, and are sent again until the server acknowledges them (while the server is
away they wait — the bus is blind, not lossy). Each carries a ``Nats-Msg-Id`` derived from its content, so a
retry, or a replay of the same event, is stored once (within the stream's duplicate window). :meth:`flush`
waits until everything published is stored.

A subscription is a JetStream pull consumer filtered by subject; with a ``durable`` name it lives on the server
and, opened again under that name (after a restart of the subscriber or of the server), resumes after the last
event it acknowledged. Handlers run on a worker thread, one batch at a time, in stream order; an event is
acknowledged after its handler ran (at-least-once). An event the server delivers again (its acknowledgement was
lost while the server restarted, or it was fetched but never arrived) is recognised by its stream sequence and
handed to the handler once (counted in ``duplicates``). A handler that raises is logged and counted, as on
:class:`aicity.core.bus.Bus`, and the event is not delivered to it again.

Import this module only when a ``nats://`` URL is given: nats-py is an optional dependency
(``pip install 'aicity[nats]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
from collections import Counter, deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from aicity.core.bus import ANY, Handler
from aicity.core.context import Context
from aicity.core.errors import UserError
from aicity.core.event import Event

log = logging.getLogger(__name__)
T = TypeVar("T")
NO_ENTITY = "_"
REJECTED_KEPT = 1000
"""Messages that are not events kept on the bus for inspection (the latest)."""
REJECTED_BYTES = 4096
"""Bytes of each such message kept."""


def token(text: str) -> str:
    """A subject token for a name (NATS reserves ``.``, ``*``, ``>`` and white space)."""
    out = "".join("_" if c in ".*> \t\r\n" else c for c in text)
    return out or NO_ENTITY


def event_to_bytes(event: Event) -> bytes:
    """The wire form of an event (its JSON form, as :meth:`Event.to_dict` gives it)."""
    return json.dumps(event.to_dict(), default=str, sort_keys=True, separators=(",", ":")).encode()


def event_from_bytes(data: bytes) -> Event:
    """An event from its wire form."""
    d = json.loads(data)
    return Event(d["type"], d["data"], Context.from_dict(d["context"]), datetime.fromisoformat(d["time"]),
                 entity_type=d.get("entity_type"), entity_id=d.get("entity_id"))


@dataclass(eq=False)
class NatsSubscription:
    """A handle returned by :meth:`NatsBus.subscribe`; pass it to :meth:`NatsBus.unsubscribe`."""

    event_type: str
    entity_type: str
    district: str
    handler: Handler
    subject: str
    durable: str | None
    delivered: int = 0
    duplicates: int = 0
    """Events the server delivered again after this subscription had handled them (not handed over twice)."""
    rejected: int = 0
    """Messages on its subjects that are not events (never handed over; kept in :attr:`NatsBus.rejected`)."""
    _seen: set[int] = field(default_factory=set, repr=False)
    _order: deque[int] = field(default_factory=deque, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _psub: Any = field(default=None, repr=False)


class NatsBus:
    """The bus on NATS JetStream (same calls as :class:`aicity.core.bus.Bus`, across processes)."""

    def __init__(self, url: str = "nats://127.0.0.1:4222", *, district: str = "city", stream: str = "AICITY",
                 prefix: str = "aicity", connect_timeout: float = 5.0, ack_timeout: float = 2.0,
                 max_in_flight: int = 512, duplicate_window_s: float = 120.0, ack_wait_s: float | None = None) -> None:
        self.url, self.district, self.stream, self.prefix = url, token(district), stream, token(prefix)
        self.ack_timeout, self.max_in_flight = ack_timeout, max_in_flight
        self.ack_wait_s = max(30.0, 5 * ack_timeout) if ack_wait_s is None else float(ack_wait_s)
        """How long the server waits for a subscriber's acknowledgement before it delivers an event again."""
        self.published: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.rejected: deque[tuple[str, str, bytes]] = deque(maxlen=REJECTED_KEPT)
        """Messages no subscription could read as an event: (subject, reason, first bytes), the latest kept."""
        self.retries = 0
        self._subs: list[NatsSubscription] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="aicity-nats", daemon=True)
        self._thread.start()
        try:
            self._call(self._connect(connect_timeout, duplicate_window_s), connect_timeout + 10)
        except Exception as exc:
            self._stop_loop()
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"cannot connect to NATS JetStream at {url}: {first}") from exc

    # ---- the event-loop thread ---------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _connect(self, timeout: float, window: float) -> None:
        try:
            self._nc = await asyncio.wait_for(nats.connect(
                servers=[self.url], name="aicity", connect_timeout=timeout, allow_reconnect=True,
                max_reconnect_attempts=-1, reconnect_time_wait=0.25, error_cb=self._on_error), timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"no answer within {timeout:g} s") from exc
        self._js = self._nc.jetstream(timeout=self.ack_timeout)
        subjects = [f"{self.prefix}.>"]
        try:
            await self._js.add_stream(StreamConfig(name=self.stream, subjects=subjects, storage=StorageType.FILE,
                                                   duplicate_window=window))
        except nats.js.errors.BadRequestError:  # it exists with another configuration: use it if it covers ours
            info = await self._js.stream_info(self.stream)
            if subjects[0] not in (info.config.subjects or []):
                raise
        self._todo: asyncio.Queue[tuple[str, bytes, str]] = asyncio.Queue()
        self._window = asyncio.Semaphore(self.max_in_flight)
        self._outstanding = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._sending: set[asyncio.Task[None]] = set()
        self._pump_task = asyncio.create_task(self._pump())

    async def _on_error(self, exc: Exception) -> None:
        log.debug("nats: %s", exc)

    async def _pump(self) -> None:
        """Send buffered events, up to ``max_in_flight`` unacknowledged at a time."""
        while True:
            item = await self._todo.get()
            await self._window.acquire()
            task = asyncio.create_task(self._send(item))
            self._sending.add(task)  # kept until done (the loop holds tasks only weakly)
            task.add_done_callback(self._sending.discard)

    async def _send(self, item: tuple[str, bytes, str]) -> None:
        subject, payload, msg_id = item
        try:
            await self._js.publish(subject, payload, timeout=self.ack_timeout, headers={"Nats-Msg-Id": msg_id})
        except Exception as exc:  # no answer, no responders, disconnected: the server may be away — again later
            log.debug("nats publish of %s not acknowledged (%s); retrying", subject, exc)
            self.retries += 1
            self._window.release()
            await asyncio.sleep(0.2)
            self._todo.put_nowait(item)
            return
        self._window.release()
        self._outstanding -= 1
        if not self._outstanding:
            self._idle.set()

    def _enqueue(self, item: tuple[str, bytes, str]) -> None:
        self._outstanding += 1
        self._idle.clear()
        self._todo.put_nowait(item)

    # ---- publishing ------------------------------------------------------------------------------
    def subject(self, event_type: str, entity_type: str | None, district: str | None = None) -> str:
        """The subject of an event of this district (by default the bus's own), type and entity type."""
        return (f"{self.prefix}.{token(district or self.district)}.{token(str(event_type))}."
                f"{token(entity_type or NO_ENTITY)}")

    def publish(self, event: Event) -> int:
        """Hand ``event`` to the bus (returns at once; it is stored once the server acknowledges it); returns 1."""
        payload = event_to_bytes(event)
        subject = self.subject(event.type, event.entity_type)
        msg_id = hashlib.sha256(subject.encode() + b"\0" + payload).hexdigest()[:32]
        self.published[str(event.type)] += 1
        self._loop.call_soon_threadsafe(self._enqueue, (subject, payload, msg_id))
        return 1

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every event published so far is stored; a :class:`UserError` if that takes over ``timeout``."""
        try:
            self._call(asyncio.wait_for(self._idle.wait(), timeout), timeout + 5)
        except TimeoutError as exc:
            raise UserError(f"NATS JetStream at {self.url} did not store {self.pending} events within "
                            f"{timeout:g} s") from exc

    @property
    def pending(self) -> int:
        """Events published but not yet acknowledged by the server."""
        return int(self._outstanding)

    def wants(self, event_type: str, entity_type: str | None = None) -> bool:
        """Always True: subscribers in other processes cannot be seen from here, and the stream keeps every event."""
        return True

    # ---- subscribing ----------------------------------------------------------------------------
    def subscribe(self, event_type: str = ANY, handler: Handler | None = None, *, entity_type: str = ANY,
                  district: str = ANY, durable: str | None = None, replay: bool = False) -> NatsSubscription:
        """Call ``handler`` for events of ``event_type`` about ``entity_type`` from ``district`` (``"*"``: any)
        published from now on (``replay``: every one the stream holds); a ``durable`` name resumes where that
        subscription left off."""
        if handler is None:
            raise TypeError("subscribe needs a handler")
        subject = (f"{self.prefix}.{'*' if district == ANY else token(district)}."
                   f"{'*' if event_type == ANY else token(str(event_type))}."
                   f"{'*' if entity_type == ANY else token(entity_type)}")
        sub = NatsSubscription(str(event_type), entity_type, district, handler, subject,
                               None if durable is None else token(durable))
        self._call(self._start(sub, DeliverPolicy.ALL if replay else DeliverPolicy.NEW), 30)
        self._subs.append(sub)
        return sub

    async def _start(self, sub: NatsSubscription, policy: DeliverPolicy) -> None:
        config = ConsumerConfig(deliver_policy=policy, ack_policy=AckPolicy.EXPLICIT,
                                ack_wait=self.ack_wait_s, max_ack_pending=10_000,
                                inactive_threshold=None if sub.durable else 300.0)
        sub._psub = await self._js.pull_subscribe(sub.subject, durable=sub.durable, stream=self.stream,
                                                  config=config)
        sub._task = asyncio.create_task(self._consume(sub))

    async def _consume(self, sub: NatsSubscription) -> None:
        while True:
            try:
                msgs = await sub._psub.fetch(batch=256, timeout=0.5)
            except nats.errors.TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server is away: wait for the reconnection
                log.debug("nats fetch for %s failed (%s)", sub.subject, exc)
                await asyncio.sleep(0.25)
                continue
            fresh = [m for m in msgs if _first_time(sub, m.metadata.sequence.stream)]
            sub.duplicates += len(msgs) - len(fresh)
            await asyncio.to_thread(self._deliver, sub, [e for m in fresh if (e := self._read(sub, m)) is not None])
            for m in msgs:
                try:
                    await m.ack()
                except Exception as exc:  # the server went away: it delivers the event again, recognised above
                    log.debug("nats ack for %s failed (%s)", sub.subject, exc)

    def _read(self, sub: NatsSubscription, msg: Any) -> Event | None:
        """The event a message carries; one that is none is counted and kept, never handed over, and (acknowledged
        with the rest) never delivered again: one bad message must not stop its subscription."""
        try:
            return event_from_bytes(msg.data)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {exc}"
            sub.rejected += 1
            self.rejected.append((str(msg.subject), f"not an event: {reason}", bytes(msg.data[:REJECTED_BYTES])))
            log.warning("nats message on %s is not an event (%s); kept and skipped", msg.subject, reason)
            return None

    def _deliver(self, sub: NatsSubscription, events: list[Event]) -> None:
        for event in events:
            try:
                sub.handler(event)
                sub.delivered += 1
            except Exception:
                name = getattr(sub.handler, "__qualname__", repr(sub.handler))
                self.failures[name] += 1
                log.exception("subscriber %s failed on %s event", name, event.type)

    def unsubscribe(self, sub: NatsSubscription, *, forget: bool = False) -> None:
        """Stop delivering to ``sub``; a durable subscription stays on the server unless ``forget``."""
        if sub in self._subs:
            self._subs.remove(sub)
            self._call(self._stop(sub, forget or sub.durable is None), 30)

    async def _stop(self, sub: NatsSubscription, delete: bool) -> None:
        if sub._task is not None:
            sub._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sub._task
        try:
            name = (await sub._psub.consumer_info()).name
            await sub._psub.unsubscribe()
            if delete:
                await self._js.delete_consumer(self.stream, name)
        except Exception as exc:  # the server is away: an ephemeral consumer goes by itself when inactive
            log.debug("nats unsubscribe of %s: %s", sub.subject, exc)

    @property
    def failure_count(self) -> int:
        """Total subscriber failures so far."""
        return sum(self.failures.values())

    # ---- closing --------------------------------------------------------------------------------
    def close(self, timeout: float = 30.0) -> None:
        """Flush what was published, stop every subscription (durable ones stay on the server) and disconnect."""
        try:
            self.flush(timeout)
        finally:
            for sub in list(self._subs):
                self.unsubscribe(sub)
            self._call(self._close(), 30)
            self._stop_loop()

    async def _close(self) -> None:
        self._pump_task.cancel()
        await self._nc.close()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


_REMEMBERED = 200_000  # stream sequences a subscription remembers to recognise a redelivery


def _first_time(sub: NatsSubscription, seq: int) -> bool:
    """Whether stream sequence ``seq`` is new to ``sub`` (remembered, the oldest forgotten past a bound)."""
    if seq in sub._seen:
        return False
    sub._seen.add(seq)
    sub._order.append(seq)
    if len(sub._order) > _REMEMBERED:
        sub._seen.discard(sub._order.popleft())
    return True


def stream_events(url: str, stream: str = "AICITY") -> int:
    """How many events the stream holds (for checks and tests)."""
    async def count() -> int:
        nc = await nats.connect(servers=[url], connect_timeout=5, max_reconnect_attempts=1)
        try:
            return int((await nc.jetstream().stream_info(stream)).state.messages)
        finally:
            await nc.close()
    return asyncio.run(count())

