"""Charging guidance on real SUMO: the coupler's edge sends consenting drivers, and only them, to the exchanged
chargers; in a whole run only the AI City guides."""

from __future__ import annotations

from typing import Any

import pytest

from aicity.domains.city.guidance import swap_action
from aicity.domains.city.scenarios import event_options
from aicity.runner import bench_run, load_city

CALM = "cologne8-city-calm"


class SwapRecorder:
    """The city's grid port with the exchange of chargers recorded (the energy twin's side is tested there)."""

    def __init__(self, grid: Any) -> None:
        self.grid = grid
        self.swaps: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.grid, name)

    def swap_chargers(self, a: str, b: str) -> str | None:
        self.swaps.append((a, b))
        return None


def test_guidance_moves_the_two_consenting_drivers_to_each_others_charger_and_nobody_else() -> None:
    seen: dict[str, Any] = {}

    def hook(loop: Any) -> None:
        coupler = {p.name: p.twin for p in loop.parts}["city"]
        api = coupler.host.api
        coupler.grid = recorder = SwapRecorder(coupler.grid)
        reports = [e for e in coupler.observe() if e.get("status") == "driving"]
        consenting = [str(e.get("sessionId")) for e in reports]
        cars = [v for v in api.vehicle.getIDList() if v.startswith("ev:")]
        others = [v.removeprefix("ev:") for v in cars if v.removeprefix("ev:") not in consenting]
        assert len(consenting) >= 2 and others, (consenting, cars)
        ends = {v: api.vehicle.getRoute(v)[-1] for v in cars}
        seen["booked"] = {str(e.get("sessionId")): e.get("charger") for e in reports}
        a, b = consenting[:2]
        seen["refused"] = coupler.actuate(swap_action(a, others[0]))
        seen["applied"] = coupler.actuate(swap_action(a, b))
        after = {v: api.vehicle.getRoute(v)[-1] for v in cars}
        seen["moved"] = {v for v in cars if after[v] != ends[v]}
        seen["swapped"] = (after[f"ev:{a}"] == ends[f"ev:{b}"], after[f"ev:{b}"] == ends[f"ev:{a}"])
        seen["pair"], seen["recorder"] = (a, b), recorder
        seen["reports"] = {str(e.get("sessionId")): e for e in coupler.observe()}

    options = {**event_options("surge"), "city.guidance_consent": 0.5}
    ep = bench_run(load_city(CALM, options, 1500.0), mode="smart", seed=1, at_s=1000.0, hook=hook)
    a, b = seen["pair"]
    assert seen["refused"].refused and seen["refused"].bound_by == ("consent",)
    assert seen["applied"].status == "applied" and seen["recorder"].swaps == [(a, b)]
    assert seen["moved"] == {f"ev:{a}", f"ev:{b}"} and seen["swapped"] == (True, True)
    after, booked = seen["reports"], seen["booked"]
    assert (after[a].get("charger"), after[b].get("charger")) == (booked[b], booked[a])  # what they now report
    assert after[a].get("guided") is True and after[b].get("guided") is True  # never asked again
    arrived = {sid for sid, _, _ in ep.results["city"].extra["ev_arrivals"]}
    assert {a, b} <= arrived  # both drove on to the exchanged chargers and plugged in


def test_without_a_grid_that_can_exchange_chargers_nobody_reports_and_nothing_is_guided() -> None:
    from aicity.domains.city.guide_edge import ChargerSwap

    seen: dict[str, Any] = {}

    def hook(loop: Any) -> None:
        coupler = {p.name: p.twin for p in loop.parts}["city"]
        seen["capable"] = isinstance(coupler.grid, ChargerSwap)
        seen["reports"] = coupler.observe()

    bench_run(load_city(CALM, event_options("surge"), 1000.0), mode="ai", seed=1, at_s=990.0, hook=hook)
    assert bool(seen["reports"]) == seen["capable"]


def test_only_the_ai_city_guides_and_its_record_says_what_was_weighed() -> None:
    from aicity.domains.energy.city_twin import CityEnergyTwin

    if not hasattr(CityEnergyTwin, "swap_chargers"):
        pytest.skip("the city energy twin cannot exchange chargers yet (grid port swap_chargers)")
    said: list[str] = []

    def hook(loop: Any) -> None:
        said.extend(str(e.data.get("reason", "")) for e in loop.store.events(type="orchestration"))

    options = {**event_options("surge"), "city.guidance_consent": 1.0}
    eps = {m: bench_run(load_city(CALM, options, 1500.0), mode=m, seed=1, at_s=1490.0,
                        hook=hook if m == "ai" else None) for m in ("ablation", "ai")}
    assert eps["ai"].results["city"].extra["ev_guided"] >= 2
    assert eps["ablation"].results["city"].extra["ev_guided"] == 0
    assert eps["ai"].stats.refused_by_edge == 0
    assert any("took 'swap the chargers of" in s and "beats 'nothing' on violations" in s for s in said)
