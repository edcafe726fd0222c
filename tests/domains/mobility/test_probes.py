"""Connected-vehicle probe data through the consent layer on real SUMO: consented vehicles only, withdrawal
mid-run stops all further use and is ledgered."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, cast

import pytest

from aicity.core.city import single
from aicity.core.errors import UserError
from aicity.core.store import SqliteStore
from aicity.domains.mobility import domain
from aicity.domains.mobility.probes import ARRIVING_KEY, COUNT_KEY, PURPOSE, SPEED_KEY, ProbeConfig, ProbeFeatures
from aicity.domains.mobility.scenarios import require
from aicity.domains.mobility.twin import SumoTwin
from aicity.governance.consent import ConsentRefused
from aicity.runner import prepare_run

pytest.importorskip("libsumo")
pytestmark = pytest.mark.sumo
WITHDRAW_AT = 150.0


def test_withdrawn_vehicle_is_no_longer_used(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    scen = dataclasses.replace(require("grid3x3"), end_s=require("grid3x3").begin_s + 300,
                               params={"probes": {"fraction": 0.2}})
    store = SqliteStore(tmp_path / "city.db")
    run = prepare_run(single(domain, scen), mode="ai", seed=2, store=store, out=tmp_path,
                      key=Ed25519PrivateKey.generate())
    loop, gov, registry = run.loop, run.governance, run.consent
    twin = cast(SumoTwin, run.twins["mobility"])
    provider = next(f for f in loop.parts[0].forecasters if isinstance(f, ProbeFeatures))
    feed = twin.probes
    outputs: list[dict[str, Any]] = []
    forecast = provider.forecast

    def logged(snapshot: Any) -> dict[str, Any]:
        out = forecast(snapshot)
        outputs.append(out)
        return out

    provider.forecast = logged  # type: ignore[method-assign]
    used: list[tuple[float, set[str]]] = []
    victim: list[str] = []
    still_driving: list[bool] = []

    def progress(done: float, total: float) -> None:
        if len(used) == len(outputs):
            return  # no step since the last call (the loop reports progress once before its first step)
        used.append((done, set(provider.last_used)))
        if victim:
            vid = next(v for v, s in feed._connected.items() if s == victim[0])
            still_driving.append(vid in twin._sumo.vehicle.getIDList())
        if done == WITHDRAW_AT:
            victim.append(sorted(provider.last_used)[0])
            now = loop.clock.now()
            registry.withdraw(victim[0], now=now)
            with pytest.raises(ConsentRefused, match="consent withdrawn"):
                feed.read(victim[0], PURPOSE, now)

    run.run(progress)
    assert victim, "no probe vehicle was reporting at the withdrawal time"
    who = victim[0]
    before = [u for t, u in used if t <= WITHDRAW_AT]
    after = [u for t, u in used if t > WITHDRAW_AT]
    assert any(who in u for u in before) and after
    assert not any(who in u for u in after)
    assert any(u for u in after), "other consented vehicles keep being used"
    assert still_driving and still_driving[0], "the withdrawn vehicle was still on the network after withdrawal"
    assert who not in feed.subjects() and who not in feed._data
    with pytest.raises(ConsentRefused):
        feed.read(who, PURPOSE, loop.clock.now())
    assert feed.access.refused[PURPOSE] >= 2 and feed.access.reads[PURPOSE] > 0
    # only a share of the vehicles is connected, and each one consented once (ledgered)
    given = list(gov.ledger.records("consent_given"))
    withdrawn = list(gov.ledger.records("consent_withdrawn"))
    assert [r["subject_id"] for r in withdrawn] == [who]
    assert who in {r["subject_id"] for r in given}
    n_vehicles = len(feed._connected)
    assert 0.1 * n_vehicles < len(given) < 0.3 * n_vehicles
    # features: per incoming detector group, aggregates only
    keys = {k for out in outputs for k in out}
    assert any(k.endswith(f"#{SPEED_KEY}") for k in keys) and any(k.endswith(f"#{COUNT_KEY}") for k in keys)
    assert all(k.startswith("urn:ngsi-ld:TrafficFlowObserved:in:") for k in keys)
    for out in outputs:
        for k, v in out.items():
            if k.endswith(SPEED_KEY):
                assert 0 <= v["mean"] <= 70 and v["n"] == out[k.replace(SPEED_KEY, COUNT_KEY)]["mean"]
            if k.endswith(ARRIVING_KEY):  # share of the moving probes reaching the stop line within the horizon
                assert 0.0 <= v["mean"] <= 1.0 and 1 <= v["n"] <= out[k.replace(ARRIVING_KEY, COUNT_KEY)]["mean"]
    assert any(k.endswith(f"#{ARRIVING_KEY}") for k in keys)
    assert any(v["mean"] > 0 for out in outputs for k, v in out.items() if k.endswith(ARRIVING_KEY))
    assert all(sum(v["n"] for k, v in out.items() if k.endswith(SPEED_KEY)) <= len(u)
               for out, (_, u) in zip(outputs, used, strict=True))
    # no pseudonym reaches the observations or the decision records
    decisions = json.dumps(list(gov.ledger.records("decision")))
    assert "veh-" not in decisions
    assert store.query(type="Vehicle") == []


def test_probes_are_off_by_default_and_checked() -> None:
    from aicity.core.domain import RunServices

    scen = require("grid3x3")
    assert cast(SumoTwin, domain.open_twin(scen, seed=1, mode="ai", services=RunServices())).feed_providers() == []
    on = dataclasses.replace(scen, params={**scen.params, "probes": 0.3})
    twin = cast(SumoTwin, domain.open_twin(on, seed=1, mode="ai", services=RunServices()))
    assert [type(f) for f in twin.feed_providers()] == [ProbeFeatures]
    smart = cast(SumoTwin, domain.open_twin(on, seed=1, mode="smart", services=RunServices()))
    assert smart.feed_providers() == [], "Smart City mode reads no probe data"
    assert ProbeConfig.parse(True) == ProbeConfig(0.2) and ProbeConfig.parse(None) is None
    assert ProbeConfig.parse({"fraction": 0.5}) == ProbeConfig(0.5)
    for bad in (0, 1.5, "x", {"share": 0.2}):
        with pytest.raises(UserError, match="probes"):
            ProbeConfig.parse(bad)  # type: ignore[arg-type]
    assert ProbeFeatures(None).forecast(None) == {}  # type: ignore[arg-type]
