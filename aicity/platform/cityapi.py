"""The live city as API resources: status, map, KPIs, decisions in plain words, approvals, autonomy, stop and
resume, devices — under the run's governance, every human action ledgered with the person and the reason."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from aicity.core.errors import UserError
from aicity.platform.auth import PERMISSIONS, Principal
from aicity.platform.errors import NgsiError, bad, not_found, parse_body
from aicity.platform.service import Platform

GOVERNANCE_ACTIONS = ("approvals.decide", "city.stop", "autonomy.set")
DEVICE_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
"""A device id: one MQTT topic level, no wildcards (``+``, ``#``) or separators."""
MAX_WAIT_S = 60.0
"""The longest a command's request waits for the device's acknowledgement."""
MAX_REASON = 2000
"""The longest reason a person may give for a stop, a resume, an autonomy change or an approval (it is written to
the ledger)."""


def _json(body: Any, status: int = 200) -> Response:
    """A JSON response a browser can parse: an undefined number (NaN, infinity) as null."""
    from aicity.report.writer import strict

    return Response(json.dumps(strict(body), default=str).encode(), status_code=status,
                    media_type="application/json")


def _now() -> datetime:
    return datetime.now(UTC)


def add_city_routes(app: FastAPI, platform: Platform) -> None:
    """Add ``/city/...`` and ``/whoami`` to the app."""

    def who(request: Request, action: str) -> Principal:
        p = platform.auth.principal(request.headers.get("authorization"), request.headers.get("x-auth-token"))
        if not p.may(action):
            if action in GOVERNANCE_ACTIONS and platform.city is not None and platform.city.run is not None:
                led = platform.city.governor.ledger
                led.append({"id": f"access-refused-{led.size:07d}", "kind": "access_refused",
                            "time": _now().isoformat(), "by": p.person, "role": p.role, "action": action,
                            "path": request.url.path, "needs": PERMISSIONS[action]})
            platform.auth.check(p, action)
        return p

    def city() -> Any:
        if platform.city is None:
            raise not_found("no live city: start aicity serve with --scenario")
        if platform.city.run is None:
            raise NgsiError("ResourceNotFound", f"the city is {platform.city.state}: {platform.city.error or ''}")
        return platform.city

    async def body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        data = parse_body(raw) if raw else {}
        if not isinstance(data, dict):
            raise bad("the body must be a JSON object")
        return data

    def reason_of(data: Mapping[str, Any]) -> str:
        reason = data.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise bad("a reason is required (\"reason\": \"...\")")
        if len(reason) > MAX_REASON:
            raise bad(f"the reason is {len(reason):,} characters: at most {MAX_REASON:,} go into the ledger")
        return reason.strip()

    def domain_of(data: Mapping[str, Any]) -> str | None:
        domain = data.get("domain")
        if domain is not None and not isinstance(domain, str):
            raise bad("domain must be a domain's name (or left out: every domain)")
        return domain

    def human(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise NgsiError("Conflict", str(exc), status=409) from None

    @app.get("/whoami")
    async def whoami(request: Request) -> Response:
        p = platform.auth.principal(request.headers.get("authorization"), request.headers.get("x-auth-token"))
        return _json({"person": p.person, "role": p.role,
                      "may": sorted(a for a in PERMISSIONS if p.may(a))})

    @app.get("/city/status")
    async def status(request: Request) -> Response:
        who(request, "city.read")
        if platform.city is None:
            raise not_found("no live city: start aicity serve with --scenario")
        out = platform.city.status()
        if platform.mqtt is not None:
            out["mqtt"] = platform.mqtt.counts()
        return _json(out)

    @app.get("/city/map")
    async def city_map(request: Request) -> Response:
        who(request, "city.read")
        return _json(city().geometry())

    @app.get("/city/kpis")
    async def kpis(request: Request) -> Response:
        who(request, "city.read")
        c = city()
        stats = c.run.loop.stats.to_dict()
        gov = c.governor.summary()
        tiles = {"mode": c.mode, "sim_s": round(c.sim_s, 1), "steps": stats.get("steps"),
                 "by_domain": stats.get("by_domain"), "verdicts": gov["counts"],
                 "dead_letters": c.store.dead_letter_count, "ledger_size": gov["ledger_size"]}
        if platform.compare is not None:
            tiles["smart_vs_ai"] = platform.compare
        return _json(tiles)

    @app.get("/city/decisions")
    async def decisions(request: Request) -> Response:
        who(request, "city.read")
        from aicity.governance.explain import explain

        c = city()
        try:
            limit = max(1, min(200, int(request.query_params.get("limit", "20"))))
        except ValueError:
            raise bad("limit must be a whole number") from None
        store = c.store
        size = store.ledger_size()
        out: list[dict[str, Any]] = []
        start = size
        while start > 0 and len(out) < limit:
            lo = max(0, start - 200)
            rows = list(store.ledger_rows(lo, start))
            for row in reversed(rows):
                if row.kind != "decision" or row.record is None:
                    continue
                rec = json.loads(row.record)
                out.append({"id": rec.get("id"), "time": rec.get("time"), "domain": rec.get("domain"),
                            "verdict": rec.get("verdict"), "target": (rec.get("proposal") or {}).get("target")
                            if isinstance(rec.get("proposal"), dict) else rec.get("target"),
                            "text": explain(rec).text})
                if len(out) >= limit:
                    break
            start = lo
        return _json(out)

    @app.get("/city/approvals")
    async def approvals(request: Request) -> Response:
        who(request, "city.read")
        status_ = request.query_params.get("status", "pending")
        items = city().governor.queue.entries(None if status_ == "all" else status_)
        return _json([{"id": a.id, "record_id": a.record_id, "domain": a.domain, "created": a.created,
                       "status": a.status, "target": a.proposal.target, "action_type": a.proposal.action_type,
                       "action": a.proposal.action, "params": dict(a.proposal.params), "by": a.by,
                       "reason": a.reason, "decided": a.decided}
                      for a in items])

    async def decide(request: Request, approval_id: int, approve: bool) -> Response:
        p = who(request, "approvals.decide")
        data = await body(request)
        c = city()
        try:
            c.governor.queue.get(approval_id)
        except UserError as exc:
            raise not_found(str(exc)) from None
        item = human(c.governor.queue.decide, approval_id, approve, reason=reason_of(data), by=p.person,
                     now=_now())
        return _json({"id": item.id, "status": item.status, "by": item.by, "reason": item.reason})

    @app.post("/city/approvals/{approval_id}/approve")
    async def approve(request: Request, approval_id: int) -> Response:
        return await decide(request, approval_id, True)

    @app.post("/city/approvals/{approval_id}/reject")
    async def reject(request: Request, approval_id: int) -> Response:
        return await decide(request, approval_id, False)

    @app.post("/city/stop")
    async def stop(request: Request) -> Response:
        p = who(request, "city.stop")
        data = await body(request)
        c = city()
        domain = domain_of(data)
        human(c.governor.stop, domain, reason=reason_of(data), by=p.person, now=_now(), known=c.domains())
        return _json({"stopped": domain or "*", "by": p.person}, 202)

    @app.post("/city/resume")
    async def resume(request: Request) -> Response:
        p = who(request, "city.stop")
        data = await body(request)
        c = city()
        domain = domain_of(data)
        human(c.governor.resume, domain, reason=reason_of(data), by=p.person, now=_now())
        return _json({"resumed": domain or "*", "by": p.person})

    @app.get("/city/stops")
    async def stops(request: Request) -> Response:
        who(request, "city.read")
        which = request.query_params.get("active", "true")
        if which not in ("true", "false", "all"):
            raise bad(f"active {which[:40]!r} is not true, false or all")
        return _json(city().governor.stops(active=None if which == "all" else which == "true"))

    @app.get("/city/autonomy")
    async def autonomy(request: Request) -> Response:
        who(request, "city.read")
        c = city()
        out = []
        for d, meta in c.run.governance.domains.items():
            for action_type in meta.action_types:
                level, rule = c.governor.autonomy(d, action_type)
                out.append({"domain": d, "action_type": action_type, "level": level.value,
                            "owner_role": rule.owner_role})
        return _json(out)

    @app.put("/city/autonomy")
    async def set_autonomy(request: Request) -> Response:
        p = who(request, "autonomy.set")
        data = await body(request)
        c = city()
        if data.get("domain") not in c.domains():
            raise bad(f"domain {data.get('domain')!r} is not one of {', '.join(c.domains())}")
        human(c.governor.set_autonomy, data["domain"], str(data.get("level")), reason=reason_of(data),
              by=p.person, now=_now(), action_type=str(data.get("action_type") or "*"))
        return _json({"domain": data["domain"], "action_type": data.get("action_type") or "*",
                      "level": data.get("level"), "by": p.person})

    @app.get("/city/ledger")
    async def ledger(request: Request) -> Response:
        who(request, "city.read")
        c = city()
        kind = request.query_params.get("kind")
        led = c.governor.ledger
        recs = list(led.records(kind)) if kind else []
        return _json({"size": led.size, "root": led.root().hex(), "records": recs[-50:]})

    @app.get("/city/dead-letters")
    async def dead_letters(request: Request) -> Response:
        who(request, "city.read")
        store = platform.tenants.get("", create=False)
        rows = store.dead_letters()
        return _json({"count": store.dead_letter_count,
                      "latest": [{"seq": d.seq, "time": d.time, "source": d.source, "error": d.error,
                                  "reason": d.reason} for d in rows[-50:]]})

    @app.post("/city/whatif")
    async def whatif(request: Request) -> Response:
        from aicity.whatif import Response as Candidate
        from aicity.whatif import WhatIf, what_if

        who(request, "whatif.run")
        data = await body(request)
        c = city()
        raw = data.get("responses")
        if not isinstance(raw, dict) or not raw:
            raise bad('"responses" must be an object {name: [actions]} with at least one response')
        try:
            horizon = float(data.get("horizon_s", 900.0))
            at = float(data.get("at_s", c.sim_s))
        except (TypeError, ValueError):
            raise bad("at_s and horizon_s must be numbers of seconds") from None
        q = WhatIf(c.scenario, dict(c.options), c.seed, c.mode, at, horizon)
        cands = [human(Candidate.parse, str(n), v) for n, v in raw.items()]
        out = await asyncio.to_thread(human, what_if, q, cands)
        out["copy"] = ("a replay of the city's scenario, options, seed and mode to at_s, each response in its own "
                       "process; inputs from outside the loop since the start (approvals, stops, devices) are not "
                       "replayed")
        return _json(out)

    @app.post("/city/commands")
    async def command(request: Request) -> Response:
        p = who(request, "devices.command")
        data = await body(request)
        if platform.mqtt is None:
            raise NgsiError("OperationNotSupported", "no MQTT bridge: start aicity serve with --mqtt")
        device, cmd = data.get("device"), data.get("command")
        if not isinstance(device, str) or not isinstance(cmd, dict):
            raise bad("a command needs \"device\" (an id) and \"command\" (an object)")
        if not DEVICE_RE.match(device):
            raise bad(f"device {device[:80]!r} is not a device id (1-128 letters, digits, '_', '-', '.' or ':'; an "
                      "MQTT topic level without wildcards)")
        timeout = data.get("timeout_s", 5.0)
        if not (isinstance(timeout, int | float) and not isinstance(timeout, bool) and 0 < timeout <= MAX_WAIT_S):
            raise bad(f"timeout_s must be a number of seconds above 0 and at most {MAX_WAIT_S:g}")
        # the wait for the device's acknowledgement blocks: in a worker thread, never the server's event loop
        ack = await asyncio.to_thread(human, platform.mqtt.command, device, cmd, by=p.person,
                                      timeout_s=float(timeout))
        return _json(ack, 200 if ack.get("status") == "acknowledged" else 504)
