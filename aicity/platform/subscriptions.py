"""Subscriptions with HTTP notifications through a durable outbox.

A matching change writes its notification to the tenant's store (collection ``ngsild.outbox``) before the API
answers; one notifier thread delivers the outbox oldest first, retries with backoff, and after the last attempt
moves the notification to the dead letters. Delivery status is kept per subscription. Whatever is in the outbox
when aicity stops is delivered after it starts again.

On a bus (``aicity serve --nats URL``: NATS JetStream) every entity change is published instead, once committed,
as a ``state_changed`` event (old and new state, changed attributes, reason, tenant); each subscription is then a
durable JetStream consumer that matches the changes and writes their notifications to the outbox before it
acknowledges them. A consumer keeps its place on the server: after a restart of aicity (or of NATS) it resumes
after the last change it acknowledged, so changes published meanwhile — by another aicity process, or before a
crash — are still notified.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aicity.core.context import Actor, ActorKind
from aicity.core.context import Context as EventContext
from aicity.core.entity import MAX_ID_BYTES, Entity, id_too_long
from aicity.core.event import Event, EventType
from aicity.core.store import StateStore
from aicity.platform.errors import NgsiError, bad, not_found
from aicity.platform.jsonld import Context, link_header, process
from aicity.platform.ngsi import Codec
from aicity.platform.patterns import Pattern, compile_pattern
from aicity.platform.query import Predicate, parse_geo, parse_q
from aicity.platform.terms import TermRegistry

log = logging.getLogger(__name__)
SUBS = "ngsild.subscriptions"
OUTBOX = "ngsild.outbox"
DEAD = "ngsild.outbox.dead"
BUS_DISTRICT = "ngsild"
"""The subject district of entity changes on the bus (``ngsild.ngsild.state_changed.<entity type>``)."""
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Waits before the 2nd, 3rd, ... attempt; after the last the notification is dead-lettered."""


def now_iso() -> str:
    """The current UTC time in ISO 8601 with a Z."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Matcher:
    """What a subscription watches, in stored names, ready to test a change."""

    types: set[str] | None
    ids: set[str] | None
    pattern: Pattern | None
    watched: set[str] | None
    q: Predicate | None
    geo: Predicate | None
    attrs: list[str] | None
    fmt: str
    active: bool
    ctx: Context = field(repr=False, default_factory=lambda: process(None))
    expires_at: float | None = None
    """Epoch seconds of the subscription's ``expiresAt``: from then on nothing is notified."""
    throttle_s: float = 0.0
    """``throttling``: a change within this many seconds of the last one notified is not notified."""

    def matches(self, old: Entity | None, new: Entity, changed: set[str]) -> bool:
        """True when the change of ``new`` must be notified."""
        if not self.active or (self.expires_at is not None and time.time() >= self.expires_at):
            return False
        if self.types is not None and new.type not in self.types:
            return False
        if self.ids is not None and new.id not in self.ids and not (
                self.pattern is not None and self.pattern.fullmatch(new.id)):
            return False
        if self.ids is None and self.pattern is not None and not self.pattern.fullmatch(new.id):
            return False
        if self.watched is not None and not (self.watched & changed):
            return False
        if self.q is not None and not self.q(new):
            return False
        return self.geo is None or self.geo(new)


def change_event(tenant: str, old: Entity | None, new: Entity, changed: set[str], reason: str) -> Event:
    """An entity change as a bus event (what :class:`Subscriptions` publishes and its consumers match)."""
    return Event(EventType.STATE_CHANGED, {"tenant": tenant, "old": None if old is None else old.to_ngsi(),
                                           "new": new.to_ngsi(), "changed": sorted(changed), "reason": reason},
                 EventContext(Actor(ActorKind.SYSTEM, "aicity.platform")), datetime.now(UTC),
                 entity_type=new.type, entity_id=new.id)


def durable_name(tenant: str, sid: str) -> str:
    """The JetStream consumer of a subscription (stable across restarts; no characters NATS reserves)."""
    digest = hashlib.sha1((tenant + "\0" + sid).encode()).hexdigest()[:20]
    return f"ngsild-{digest}"


class Subscriptions:
    """Subscriptions of one tenant: create, read, update, delete; match changes into the outbox (at once, or
    through durable consumers of a bus)."""

    def __init__(self, tenant: str, store: StateStore, terms: TermRegistry, wake: Callable[[], None],
                 bus: Any = None) -> None:
        self.tenant = tenant
        self.store = store
        self.terms = terms
        self.wake = wake
        self.bus = bus
        self._lock = threading.Lock()
        self._matchers: dict[str, Matcher] = {}
        self._consumers: dict[str, Any] = {}
        self._notified: dict[str, float] = {}
        """Per throttled subscription, when (monotonic s) its last notification was queued."""
        for key, doc in store.doc_query(SUBS):
            try:
                self._matchers[key] = self._matcher(doc)
            except NgsiError as exc:  # a stored subscription that no longer parses is kept, not matched
                log.warning("subscription %s cannot be matched: %s", key, exc)
                continue
            self._consume(key)

    # ---- the bus --------------------------------------------------------------------------------
    def _consume(self, sid: str) -> None:
        """Attach the durable consumer of a subscription (it resumes where it left off)."""
        if self.bus is None or sid in self._consumers:
            return
        m = self._matchers[sid]
        etype = next(iter(m.types)) if m.types is not None and len(m.types) == 1 else "*"
        self._consumers[sid] = self.bus.subscribe(
            EventType.STATE_CHANGED, lambda event: self._on_change(sid, event), entity_type=etype,
            district=BUS_DISTRICT, durable=durable_name(self.tenant, sid))

    def _on_change(self, sid: str, event: Event) -> None:
        """A change from the bus: its notification goes to the outbox before the consumer acknowledges it."""
        data = event.data
        m = self._matchers.get(sid)
        if m is None or data.get("tenant") != self.tenant:
            return
        old = None if data.get("old") is None else Entity.from_ngsi(data["old"])
        new = Entity.from_ngsi(data["new"])
        changed = set(data.get("changed") or [])
        if m.matches(old, new, changed) and self._unthrottled(sid, m):
            self._queue(sid, m, new, str(data.get("reason") or "updated"))
            self.wake()

    def detach(self) -> None:
        """Stop this tenant's consumers (they stay on the server, where they resume from)."""
        for sub in self._consumers.values():
            self.bus.unsubscribe(sub)
        self._consumers.clear()

    # ---- the resource ---------------------------------------------------------------------------
    def _matcher(self, doc: Mapping[str, Any]) -> Matcher:
        ctx = process(doc.get("@context"))
        codec = Codec(self.terms, ctx)

        def name(term: str) -> str | None:
            return codec.attr_name(term)
        types: set[str] | None = None
        ids: set[str] | None = None
        pattern = None
        for sel in doc.get("entities") or []:
            if not isinstance(sel, Mapping) or not isinstance(sel.get("type"), str):
                raise bad("each entities item of a subscription needs a type")
            types = (types or set()) | {str(name(sel["type"]))}
            if isinstance(sel.get("id"), str):
                ids = (ids or set()) | {sel["id"]}
            if isinstance(sel.get("idPattern"), str):
                pattern = compile_pattern(sel["idPattern"], "idPattern")
        watched = doc.get("watchedAttributes")
        q = doc.get("q")
        geo = doc.get("geoQ")
        notification = doc.get("notification") or {}
        attrs = notification.get("attributes")
        return Matcher(
            types, ids, pattern,
            None if not watched else {str(name(a)) for a in watched},
            parse_q(q, name) if isinstance(q, str) else None,
            parse_geo(str(geo.get("georel")), geo.get("geometry"),
                      _coords(geo.get("coordinates")), geo.get("geoproperty"), name)
            if isinstance(geo, Mapping) else None,
            None if not attrs else [str(name(a)) for a in attrs],
            str(notification.get("format") or "normalized"), bool(doc.get("isActive", True)), ctx,
            _expiry(doc.get("expiresAt")), float(doc.get("throttling") or 0.0))

    def create(self, body: Any, ctx_value: Any) -> str:
        """Store a new subscription; returns its id."""
        doc = self._validate(body, ctx_value)
        sid = str(doc.get("id") or f"urn:ngsi-ld:Subscription:{uuid.uuid4()}")
        with self._lock:
            if self.store.doc_get(SUBS, sid) is not None:
                raise NgsiError("AlreadyExists", f"subscription {sid} already exists")
            doc["id"] = sid
            matcher = self._matcher(doc)
            self.store.doc_put(SUBS, sid, doc)
            self._matchers[sid] = matcher
            self._consume(sid)
        return sid

    @staticmethod
    def _validate(body: Any, ctx_value: Any) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise bad("a subscription must be a JSON object")
        if body.get("type") != "Subscription":
            raise bad("a subscription needs \"type\": \"Subscription\"")
        sid = body.get("id")
        if sid is not None and (not isinstance(sid, str) or ":" not in sid):
            raise bad(f"subscription id {sid!r} is not a URI")
        if isinstance(sid, str) and id_too_long(sid):
            raise bad(f"subscription id {sid[:80]!r}… is longer than {MAX_ID_BYTES} bytes")
        if not body.get("entities") and not body.get("watchedAttributes"):
            raise bad("a subscription needs entities or watchedAttributes")
        if body.get("entities") is not None and not isinstance(body.get("entities"), list):
            raise bad("entities must be an array")
        if body.get("watchedAttributes") is not None and (
                not isinstance(body["watchedAttributes"], list) or not body["watchedAttributes"]):
            raise bad("watchedAttributes must be a non-empty array")
        notification = body.get("notification")
        if not isinstance(notification, Mapping):
            raise bad("a subscription needs a notification object")
        endpoint = notification.get("endpoint")
        if not isinstance(endpoint, Mapping) or not isinstance(endpoint.get("uri"), str) or \
                not re.match(r"^https?://", endpoint["uri"]):
            raise bad("notification.endpoint.uri must be an http(s) URL")
        fmt = notification.get("format", "normalized")
        if fmt not in ("normalized", "concise", "keyValues"):
            raise bad(f"notification.format {fmt!r} is not normalized, concise or keyValues")
        for member, value in (("watchedAttributes", body.get("watchedAttributes")),
                              ("notification.attributes", notification.get("attributes"))):
            if value is not None and (not isinstance(value, list) or not all(isinstance(a, str) for a in value)):
                raise bad(f"{member} must be an array of attribute names")
        if "timeInterval" in body:
            raise NgsiError("OperationNotSupported", "timeInterval (periodic notification) is not supported by "
                            "this broker: its subscriptions notify on change")
        throttling = body.get("throttling")
        if throttling is not None and not (isinstance(throttling, int | float) and not isinstance(throttling, bool)
                                           and 0 <= throttling < math.inf):
            raise bad(f"throttling {throttling!r} must be a number of seconds >= 0")
        if body.get("expiresAt") is not None:
            _expiry(body["expiresAt"])
        doc = {k: v for k, v in body.items() if k != "@context"}
        doc["@context"] = ctx_value
        doc.setdefault("isActive", True)
        doc["status"] = "active" if doc["isActive"] else "paused"
        doc["notification"] = {**notification, "status": "ok", "timesSent": 0, "timesFailed": 0}
        return doc

    def get(self, sid: str) -> dict[str, Any]:
        """One subscription with its delivery status."""
        doc = self.store.doc_get(SUBS, sid)
        if doc is None:
            raise not_found(f"subscription {sid} not found")
        return _with_status(doc)

    def all(self) -> list[dict[str, Any]]:
        """Every subscription."""
        return [_with_status(d) for _, d in self.store.doc_query(SUBS)]

    def update(self, sid: str, patch: Any) -> None:
        """Change fields of a subscription (PATCH)."""
        if not isinstance(patch, Mapping):
            raise bad("a subscription update must be a JSON object")
        with self._lock:
            doc = self.get(sid)
            new = {**doc, **{k: v for k, v in patch.items() if k not in ("id", "type", "@context")}}
            if "notification" in patch:
                keep = {k: doc["notification"].get(k) for k in ("status", "timesSent", "timesFailed",
                                                                 "lastNotification", "lastSuccess", "lastFailure")}
                new["notification"] = {**doc["notification"], **patch["notification"], **keep}
            new["status"] = "active" if new.get("isActive", True) else "paused"
            self._validate({**new, "type": "Subscription"}, doc.get("@context"))
            matcher = self._matcher(new)
            self.store.doc_put(SUBS, sid, new)
            self._matchers[sid] = matcher

    def delete(self, sid: str) -> None:
        """Remove a subscription (its pending notifications are still delivered)."""
        with self._lock:
            if not self.store.doc_delete(SUBS, sid):
                raise not_found(f"subscription {sid} not found")
            self._matchers.pop(sid, None)
            consumer = self._consumers.pop(sid, None)
            if consumer is not None:
                self.bus.unsubscribe(consumer, forget=True)

    # ---- matching -------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """True when changes must be looked at: some subscription may match one, or they go on a bus."""
        return self.bus is not None or bool(self._matchers)

    def changed(self, old: Entity | None, new: Entity, changed: set[str], reason: str) -> int:
        """Queue a notification for every subscription the change matches (on a bus: publish the change for
        the subscriptions' consumers); returns how many were queued here."""
        if not changed:
            return 0
        if self.bus is not None:
            self.bus.publish(change_event(self.tenant, old, new, changed, reason))
            return 0
        if not self._matchers:
            return 0
        n = 0
        for sid, m in list(self._matchers.items()):
            if m.matches(old, new, changed) and self._unthrottled(sid, m):
                self._queue(sid, m, new, reason)
                n += 1
        if n:
            self.wake()
        return n

    def _unthrottled(self, sid: str, m: Matcher) -> bool:
        """Whether a notification may go now (``throttling`` seconds since the last one); if so, it is the last."""
        if m.throttle_s <= 0:
            return True
        now = time.monotonic()
        last = self._notified.get(sid)
        if last is not None and now - last < m.throttle_s:
            return False
        self._notified[sid] = now
        return True

    def _queue(self, sid: str, m: Matcher, new: Entity, reason: str) -> None:
        """Write one notification of ``new`` for subscription ``sid`` to the outbox."""
        doc = self.store.doc_get(SUBS, sid) or {}
        endpoint = (doc.get("notification") or {}).get("endpoint") or {}
        codec = Codec(self.terms, m.ctx)
        data = codec.render(new, fmt=m.fmt, attrs=m.attrs)
        payload: dict[str, Any] = {"id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}", "type": "Notification",
                                   "subscriptionId": sid, "notifiedAt": now_iso(), "data": [data],
                                   "triggerReason": reason}
        ld = endpoint.get("accept") == "application/ld+json"
        headers = {"Content-Type": "application/ld+json" if ld else "application/json"}
        if ld:
            payload["@context"] = m.ctx.body()
        else:
            headers["Link"] = link_header(m.ctx)
        for info in endpoint.get("receiverInfo") or []:
            if isinstance(info, Mapping) and isinstance(info.get("key"), str):
                headers[info["key"]] = str(info.get("value", ""))
        self.store.doc_add(OUTBOX, {"tenant": self.tenant, "sub": sid, "uri": endpoint.get("uri"),
                                    "headers": headers, "payload": payload, "attempts": 0, "next": 0.0,
                                    "queued": time.time()})

    def mark(self, sid: str, ok: bool, when: str, error: str | None = None) -> None:
        """Record one delivery attempt's result in the subscription's status."""
        with self._lock:
            doc = self.store.doc_get(SUBS, sid)
            if doc is None:
                return
            note = dict(doc.get("notification") or {})
            note["lastNotification"] = when
            if ok:
                note["lastSuccess"] = when
                note["timesSent"] = int(note.get("timesSent", 0)) + 1
                note["status"] = "ok"
            else:
                note["lastFailure"] = when
                note["timesFailed"] = int(note.get("timesFailed", 0)) + 1
                note["status"] = "failed"
                note["lastFailureReason"] = error
            self.store.doc_put(SUBS, sid, {**doc, "notification": note})


def _expiry(value: Any) -> float | None:
    """``expiresAt`` (an ISO 8601 date-time) in epoch seconds; None when absent."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise bad(f"expiresAt {str(value)[:40]!r} must be an ISO 8601 date-time with a time zone")
    return t.timestamp()


def _with_status(doc: dict[str, Any]) -> dict[str, Any]:
    """A subscription as read: ``status`` expired once its ``expiresAt`` has passed."""
    expires = doc.get("expiresAt")
    try:
        passed = expires is not None and (_expiry(expires) or math.inf) <= time.time()
    except NgsiError:
        passed = False
    return {**doc, "status": "expired"} if passed and doc.get("status") != "expired" else doc


def _coords(value: Any) -> str | None:
    if value is None:
        return None
    import json
    return value if isinstance(value, str) else json.dumps(value)


Sender = Callable[[str, Mapping[str, str], Mapping[str, Any]], None]


class Notifier:
    """One thread delivering every tenant's outbox, oldest first, with retries and a dead letter."""

    def __init__(self, outboxes: Callable[[], Mapping[str, tuple[StateStore, Subscriptions]]],
                 send: Sender | None = None, backoff: tuple[float, ...] = BACKOFF_S, timeout_s: float = 5.0) -> None:
        self.outboxes = outboxes
        self.backoff = backoff
        self.timeout_s = timeout_s
        self._send = send
        self._event = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.dead = 0
        self._client: Any = None

    def wake(self) -> None:
        """Deliver soon (called when a notification was queued)."""
        self._event.set()

    def start(self) -> None:
        """Start delivering in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="aicity-notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop delivering (what is left stays in the outbox)."""
        self._stop.set()
        self._event.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._client is not None:
            self._client.close()

    def send(self, uri: str, headers: Mapping[str, str], payload: Mapping[str, Any]) -> None:
        """POST one notification; raises on anything but a 2xx answer."""
        if self._send is not None:
            self._send(uri, headers, payload)
            return
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_s)
        resp = self._client.post(uri, json=payload, headers=dict(headers))
        if resp.status_code // 100 != 2:
            raise RuntimeError(f"HTTP {resp.status_code} from {uri}")

    def _run(self) -> None:
        try:  # after a restart, what the outbox holds is tried at once, whatever its backoff said
            self.deliver_once(ignore_wait=True)
        except Exception:
            log.exception("notification delivery failed")
        while not self._stop.is_set():
            try:
                busy = self.deliver_once()
            except Exception:  # a notifier must outlive any single failure
                log.exception("notification delivery failed")
                busy = False
            if not busy:
                self._event.wait(0.05)
                self._event.clear()

    def deliver_once(self, batch: int = 200, *, ignore_wait: bool = False) -> bool:
        """One pass over every outbox; True when something was attempted."""
        attempted = False
        now = time.time()
        for store, subs in self.outboxes().values():
            for key, doc in store.doc_query(OUTBOX, limit=batch):
                if self._stop.is_set():
                    return attempted
                if not ignore_wait and float(doc.get("next", 0.0)) > now:
                    continue
                attempted = True
                self._attempt(store, subs, key, doc)
        return attempted

    def _attempt(self, store: StateStore, subs: Subscriptions, key: str, doc: dict[str, Any]) -> None:
        sid = str(doc.get("sub"))
        try:
            self.send(str(doc["uri"]), doc.get("headers") or {}, doc["payload"])
        except Exception as exc:
            attempts = int(doc.get("attempts", 0)) + 1
            subs.mark(sid, False, now_iso(), f"{type(exc).__name__}: {exc}")
            if attempts > len(self.backoff):
                store.dead_letter(f"notification:{sid}", exc, doc, now=datetime.now(UTC))
                store.doc_add(DEAD, {**doc, "attempts": attempts, "error": f"{type(exc).__name__}: {exc}"})
                store.doc_delete(OUTBOX, key)
                self.dead += 1
            else:
                store.doc_put(OUTBOX, key, {**doc, "attempts": attempts,
                                            "next": time.time() + self.backoff[attempts - 1]})
            return
        store.doc_delete(OUTBOX, key)
        subs.mark(sid, True, now_iso())
        self.delivered += 1
