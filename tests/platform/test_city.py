"""The live city behind the API: the governed loop in real time × a factor, governance as resources, RBAC."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aicity.core.store import open_store
from aicity.platform.app import create_app
from aicity.platform.auth import Auth
from aicity.platform.city import LiveCity
from aicity.platform.server import ServerThread
from aicity.platform.service import Platform
from tests.platform.conftest import ACCESS, headers

pytest.importorskip("libsumo")


def wait_for(what: Callable[[], Any], timeout_s: float = 20.0, every_s: float = 0.1) -> Any:
    """Poll until ``what()`` is truthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what}")


class Live:
    """A served platform with a live grid3x3 city."""

    def __init__(self, folder: Path) -> None:
        self.store = open_store(folder / "city.db")
        self.platform = Platform(self.store, Auth.from_dict(ACCESS), location=folder / "city.db")
        self.platform.city = LiveCity("grid3x3", store=self.store, out=folder, speed=40.0, duration_s=1800)
        self.platform.start()
        self.platform.city.start()
        self.server = ServerThread(create_app(self.platform)).start()
        self.url = self.server.url

    def as_(self, role: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers(role), timeout=10)

    def close(self) -> None:
        self.server.stop()
        assert self.platform.city is not None
        self.platform.city.close()
        self.platform.stop()
        self.store.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """A live city on a real server."""
    city = Live(tmp_path)
    yield city
    city.close()


def test_live_city_governed_through_the_api(live: Live) -> None:
    viewer, operator, engineer = live.as_("viewer"), live.as_("operator"), live.as_("engineer")
    # the API shows the city as it runs
    signals = wait_for(lambda: viewer.get("/ngsi-ld/v1/entities", params={"type": "TrafficSignal"}).json())
    assert len(signals) == 9
    first = viewer.get("/city/status").json()
    assert first["state"] == "running" and first["domains"] == ["mobility"]
    wait_for(lambda: viewer.get("/city/status").json()["sim_s"] > first["sim_s"])
    geo = viewer.get("/city/map").json()
    kinds = {f["properties"]["kind"] for f in geo["features"]}
    assert kinds == {"road", "signal"} and sum(f["properties"]["kind"] == "signal" for f in geo["features"]) == 9
    assert viewer.get("/city/decisions").json()[0]["text"]
    # autonomy: an operator may not change it (refused and ledgered), an engineer may
    body = {"domain": "mobility", "action_type": "signal_phase", "level": "approve-then-act",
            "reason": "night shift: a person confirms each phase"}
    assert operator.put("/city/autonomy", json=body).status_code == 403
    assert engineer.put("/city/autonomy", json=body).status_code == 200
    levels = {a["action_type"]: a["level"] for a in viewer.get("/city/autonomy").json()}
    assert levels["signal_phase"] == "approve-then-act"
    pending = wait_for(lambda: viewer.get("/city/approvals").json())
    aid = pending[0]["id"]
    assert viewer.post(f"/city/approvals/{aid}/approve", json={"reason": "ok"}).status_code == 403
    assert operator.post(f"/city/approvals/{aid}/approve", json={}).status_code == 400  # a reason is required
    r = operator.post(f"/city/approvals/{aid}/approve", json={"reason": "queue is short, phase is fine"})
    assert r.status_code == 200 and r.json()["status"] == "approved" and r.json()["by"] == "otto"
    assert operator.post(f"/city/approvals/{aid}/approve", json={"reason": "again"}).status_code == 409
    # the stop button: safe state reached, recorded with the person and reason
    assert viewer.post("/city/stop", json={"reason": "x"}).status_code == 403
    for bad_stop in ({"domain": ["mobility"], "reason": "x"}, {"reason": "r" * 2001}):  # a list was a 500
        assert operator.post("/city/stop", json=bad_stop).status_code == 400, bad_stop
    assert viewer.get("/city/stops", params={"active": "maybe"}).status_code == 400
    assert operator.post("/city/stop", json={"reason": "incident on the ring road"}).status_code == 202
    stop = wait_for(lambda: [s for s in viewer.get("/city/stops").json() if s.get("safe_state_done")])
    assert stop[0]["by"] == "otto" and stop[0]["reason"] == "incident on the ring road"
    assert viewer.get("/city/status").json()["stopped"] is True
    assert operator.post("/city/resume", json={"reason": "road cleared"}).status_code == 200
    ledger = {k: viewer.get("/city/ledger", params={"kind": k}).json()["records"]
              for k in ("stop", "resume", "approval", "autonomy", "access_refused", "safe_state")}
    assert ledger["stop"][-1]["by"] == "otto" and ledger["stop"][-1]["reason"] == "incident on the ring road"
    assert ledger["resume"][-1]["by"] == "otto"
    assert ledger["approval"][-1]["by"] == "otto" and ledger["approval"][-1]["decision"] == "approved"
    assert ledger["autonomy"][-1]["by"] == "erin"
    assert {(r["by"], r["action"]) for r in ledger["access_refused"]} >= {
        ("otto", "autonomy.set"), ("vera", "approvals.decide"), ("vera", "city.stop")}
    assert ledger["safe_state"]
    assert httpx.get(f"{live.url}/city/status").status_code == 401


def test_what_if_over_the_api_ranks_responses_on_copies(live: Live) -> None:
    wait_for(lambda: live.as_("viewer").get("/city/status").json().get("sim_s", 0) > 30)
    body = {"horizon_s": 60, "responses": {"nothing": [], "hold": [
        {"domain": "mobility", "target": "urn:ngsi-ld:TrafficSignal:nosuchsignal", "action": "set_phase",
         "params": {"phase": 0}}]}}
    assert live.as_("viewer").post("/city/whatif", json=body).status_code == 403
    with httpx.Client(base_url=live.url, headers=headers("operator"), timeout=120) as op:
        r = op.post("/city/whatif", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert [x["rank"] for x in out["responses"]] == [1, 2]
        hold = next(x for x in out["responses"] if x["response"] == "hold")
        assert hold["actions"][0]["status"] == "refused"  # an unknown signal: the copy's edge refuses it
        assert "replay" in out["copy"]
        bad = op.post("/city/whatif", json={"responses": []})
        assert bad.status_code == 400
