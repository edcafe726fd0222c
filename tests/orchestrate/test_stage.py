"""The orchestration stage on its own: conflicts between domains settled by the priority policy."""

from __future__ import annotations

from datetime import UTC, datetime

from aicity.core.domain import ProposedAction, Snapshot
from aicity.core.entity import Entity, Property
from aicity.orchestrate.costs import OutageCosts
from aicity.orchestrate.stage import Candidate, Precedence, PriorityOrchestrator, PriorityPolicy, violations

POLICY = PriorityPolicy(("life_safety", "grid_stability", "mobility", "energy_cost"), "test-1", "0" * 64, 300.0)
CLASSES = {"mobility": {"signal_preemption": "life_safety", "signal_phase": "mobility"},
           "energy": {"restore": "grid_stability", "ev_charging": "energy_cost"},
           "safety": {"dispatch": "life_safety"}}
SIG = "urn:ngsi-ld:TrafficSignal:J1"
TIE = "urn:ngsi-ld:Tie:R-C"
TRAFO = "urn:ngsi-ld:Transformer:R"


def snap(elapsed: float = 0.0, headroom: float = 100.0) -> Snapshot:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    trafo = Entity(TRAFO, "Transformer", {"headroom": Property(headroom, t, "KWT")})
    return Snapshot(t, elapsed, {TRAFO: trafo})


def restore(first: list[str], dark: tuple[str, ...], alts: list[dict[str, object]]) -> Candidate:
    return Candidate("energy", ProposedAction(TIE, "restore", {"buses": first}, score=10.0, candidates=alts,
                                              planner="restoration", action_type="restore", affects=dark))


def test_life_safety_need_makes_the_grid_take_its_alternative() -> None:
    orch = PriorityOrchestrator(POLICY, CLASSES)
    amb = Candidate("safety", ProposedAction("urn:ngsi-ld:Ambulance:A1", "dispatch", {"to": "I1"}, planner="mexclp",
                                             action_type="dispatch", needs=(SIG,)))
    alt = {"params": {"buses": ["C12"]}, "affects": [], "score": 8.0}
    worse = {"params": {"buses": ["C13"]}, "affects": [SIG], "score": 9.0}
    settled = orch.settle([restore(["C1"], (SIG,), [worse, alt]), amb], snap())
    kept = {c.domain: c.proposal for c in settled.kept}
    assert kept["energy"].params == {"buses": ["C12"]}  # the best alternative that keeps the signal lit
    assert kept["energy"].affects == ()
    (res,) = settled.resolutions
    assert res.kind == "substituted" and res.winner is not None and res.winner.domain == "safety"
    assert "TrafficSignal:J1" in res.reason and "life safety before grid stability" in res.reason
    assert violations(settled.kept, snap(), POLICY, CLASSES) == []


def test_a_need_is_held_after_the_step_that_declared_it() -> None:
    orch = PriorityOrchestrator(POLICY, CLASSES)
    pre = Candidate("mobility", ProposedAction(SIG, "preempt", {}, planner="preemption",
                                               action_type="signal_preemption"))
    orch.settle([pre], snap(0.0))
    lit = {"params": {"buses": ["C12"]}, "affects": [], "score": 1.0}
    later = orch.settle([restore(["C1"], (SIG,), [lit])], snap(120.0))
    assert later.kept[0].proposal.params == {"buses": ["C12"]} and later.resolutions[0].kind == "substituted"
    after_hold = orch.settle([restore(["C1"], (SIG,), [lit])], snap(400.0))
    assert after_hold.kept[0].proposal.params == {"buses": ["C1"]} and after_hold.resolutions == []


def test_with_no_better_option_the_least_harm_is_kept_not_set_aside() -> None:
    orch = PriorityOrchestrator(POLICY, CLASSES)
    amb = Candidate("safety", ProposedAction("urn:ngsi-ld:Ambulance:A1", "dispatch", {}, action_type="dispatch",
                                             needs=(SIG, "urn:ngsi-ld:TrafficSignal:J2")))
    both = {"params": {"buses": ["C9"]}, "affects": [SIG, "urn:ngsi-ld:TrafficSignal:J2"], "score": 9.0}
    one = {"params": {"buses": ["C12"]}, "affects": [SIG], "score": 5.0}
    settled = orch.settle([restore(["C1"], (SIG, "urn:ngsi-ld:TrafficSignal:J2"), [both, one]), amb], snap())
    energy = next(c for c in settled.kept if c.domain == "energy")
    assert energy.proposal.params == {"buses": ["C12"]}  # harms one need instead of two
    lone = PriorityOrchestrator(POLICY, CLASSES).settle([restore(["C1"], (SIG,), []), amb], snap())
    assert any(c.domain == "energy" for c in lone.kept) and lone.resolutions[0].kind == "kept"


def test_same_class_or_same_domain_is_not_a_needs_conflict() -> None:
    orch = PriorityOrchestrator(POLICY, CLASSES)
    phase = Candidate("mobility", ProposedAction(SIG, "set_phase", {"phase": 1}, action_type="signal_phase"))
    settled = orch.settle([phase, restore(["C1"], (SIG,), [])], snap())
    assert len(settled.kept) == 2  # grid stability outranks mobility: the signal may go dark
    assert violations(settled.kept, snap(), POLICY, CLASSES) == []


def test_capacity_goes_to_the_higher_class_first() -> None:
    orch = PriorityOrchestrator(POLICY, CLASSES)
    key = f"{TRAFO}#headroom"
    chargers = [Candidate("energy", ProposedAction(f"urn:ngsi-ld:EVChargingStation:{i}", "set_power", {"kw": 11.0},
                                                   action_type="ev_charging", uses={key: 11.0},
                                                   candidates=[{"params": {"kw": 0.0}, "uses": {key: 0.0},
                                                                "score": 0.0}]))
                for i in range(3)]
    tie = Candidate("energy", ProposedAction(TIE, "restore", {"buses": ["C1"]}, action_type="restore",
                                             uses={key: 25.0}))
    settled = orch.settle([*chargers, tie], snap(headroom=40.0))
    kw = sorted(c.proposal.params.get("kw", -1) for c in settled.kept if c.proposal.action_type == "ev_charging")
    assert kw == [0.0, 0.0, 11.0]  # 25 kW to the tie first, then one charger fits
    assert sum(1 for r in settled.resolutions if r.kind == "substituted") == 2
    assert violations(settled.kept, snap(headroom=40.0), POLICY, CLASSES) == []
    uncoordinated = Precedence().settle([*chargers, tie], snap(headroom=40.0))
    assert len(violations(uncoordinated.kept, snap(headroom=40.0), POLICY, CLASSES)) >= 1


def test_same_target_goes_to_the_higher_class_and_precedence_keeps_the_first() -> None:
    phase = Candidate("mobility", ProposedAction(SIG, "set_phase", {"phase": 1}, action_type="signal_phase"))
    pre = Candidate("mobility", ProposedAction(SIG, "preempt", {"phase": 2}, action_type="signal_preemption"))
    settled = PriorityOrchestrator(POLICY, CLASSES).settle([phase, pre], snap())
    assert [c.proposal.action for c in settled.kept] == ["preempt"]
    assert [c.proposal.action for c in Precedence().settle([phase, pre], snap()).kept] == ["set_phase"]


def test_undeclared_classes_rank_last_and_unpublished_capacity_is_not_a_limit() -> None:
    orch = PriorityOrchestrator(POLICY, CLASSES)
    odd = Candidate("lighting", ProposedAction("urn:ngsi-ld:Lamp:1", "dim", {"level": 0.5}, action_type="dim",
                                               uses={"urn:ngsi-ld:Nowhere:1#headroom": 1e9}))
    settled = orch.settle([odd], snap())
    assert len(settled.kept) == 1 and settled.kept[0].priority == ""
    assert POLICY.rank("") == len(POLICY.order)


class _Costs:
    """A fixed outage cost per entity (seconds per user), as a domain's model would answer."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.updates = 0

    def update(self, snapshot: Snapshot) -> None:
        self.updates += 1

    def cost_s(self, entity_id: str) -> float | None:
        return self.table.get(entity_id)


def _network(weights: dict[str, float]) -> Entity:
    return Entity("urn:ngsi-ld:EmergencyRouteNetwork:ems", "EmergencyRouteNetwork", {
        "needs": Property(list(weights)), "needWeights": Property(dict(weights)),
        "priorityClass": Property("life_safety"), "domain": Property("safety")})


def _with(snapshot: Snapshot, *ents: Entity) -> Snapshot:
    return Snapshot(snapshot.time, snapshot.elapsed_s, {**snapshot.entities, **{e.id: e for e in ents}})


def test_outage_costs_weigh_needs_so_a_junction_that_gridlocks_outweighs_several_quiet_ones() -> None:
    big, small1, small2 = (f"urn:ngsi-ld:TrafficSignal:{n}" for n in ("BIG", "S1", "S2"))
    s = _with(snap(), _network({big: 0.2, small1: 0.4, small2: 0.4}))
    keep_small = {"params": {"buses": ["C10"]}, "affects": [big], "score": 9.0}
    keep_big = {"params": {"buses": ["C1"]}, "affects": [small1, small2], "score": 2.0}

    def settle(costs: OutageCosts | None) -> ProposedAction:
        orch = PriorityOrchestrator(POLICY, CLASSES, costs)
        return orch.settle([restore(["C10"], (big,), [keep_small, keep_big])], s).kept[0].proposal

    assert settle(None).params == {"buses": ["C10"]}  # weights alone: 0.2 dark beats 0.8 dark
    model = _Costs({big: 600.0, small1: 8.0, small2: 8.0})  # gridlock when BIG is dark, a stop at the others
    chosen = settle(OutageCosts([model]))
    assert chosen.params == {"buses": ["C1"]} and model.updates == 1
    cand = Candidate("energy", chosen, "grid_stability")
    first = Candidate("energy", restore(["C10"], (big,), [keep_small, keep_big]).proposal, "grid_stability")
    assert violations([cand], s, POLICY, CLASSES, OutageCosts([_Costs(model.table)])) == []
    found = violations([first], s, POLICY, CLASSES, OutageCosts([_Costs(model.table)]))
    assert len(found) == 1 and "TrafficSignal:BIG" in found[0]


def test_outage_costs_ignore_what_no_model_knows_and_update_once_per_step() -> None:
    model = _Costs({"urn:a": 5.0, "urn:bad": float("nan")})
    costs = OutageCosts([model])
    costs.update(snap(10.0))
    costs.update(snap(10.0))
    assert model.updates == 1
    assert costs.cost("urn:a") == 5.0 and costs.cost("urn:other") == 1.0 and costs.cost("urn:bad") == 1.0
    costs.update(snap(20.0))
    assert model.updates == 2


def test_a_least_harm_choice_says_what_it_weighed_in_plain_words() -> None:
    big, small = "urn:ngsi-ld:TrafficSignal:BIG", "urn:ngsi-ld:TrafficSignal:S1"
    s = _with(snap(), _network({big: 0.2, small: 0.5}))
    keep_small = {"params": {"buses": ["C10"]}, "affects": [big], "score": 9.0}
    keep_big = {"params": {"buses": ["C1"]}, "affects": [small], "score": 2.0}
    orch = PriorityOrchestrator(POLICY, CLASSES, OutageCosts([_Costs({big: 600.0, small: 8.0})]))
    settled = orch.settle([restore(["C10"], (big,), [keep_small, keep_big])], s)
    (res,) = settled.resolutions
    assert res.kind == "substituted" and settled.kept[0].proposal.params == {"buses": ["C1"]}
    assert "the first choice harms 120" in res.reason and "TrafficSignal:BIG (relied on 0.2" in res.reason
    assert "costing 600 s per user" in res.reason and "the option kept 4" in res.reason
