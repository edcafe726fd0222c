"""Responses to an event on their own: the choice by predicted outcome, and the stage that acts on it."""

from __future__ import annotations

from datetime import UTC, datetime

from aicity.core.domain import ProposedAction, Snapshot
from aicity.orchestrate.costs import OutageCosts
from aicity.orchestrate.respond import Occasion, Responder, ResponseOption, choose, explain
from aicity.orchestrate.stage import Candidate, Precedence, PriorityOrchestrator, PriorityPolicy

POLICY = PriorityPolicy(("life_safety", "grid_stability", "mobility", "energy_cost"), "test-1", "0" * 64, 300.0)
RANKING = (("ems", True), ("delay", True))
ACT = ProposedAction("urn:ngsi-ld:Road:R1", "close", {"lanes": 1}, planner="toy", action_type="close_road")


def option(name: str, ems: float, delay: float, act: bool = True) -> ResponseOption:
    return ResponseOption(name, (("toy", ACT),) if act else (), {"ems": ems, "delay": delay}, f"{name} model")


def snap() -> Snapshot:
    return Snapshot(datetime(2024, 1, 1, tzinfo=UTC), 0.0, {})


def test_the_first_kpi_of_the_ranking_decides_before_any_later_one() -> None:
    occ = Occasion("e", (option("nothing", 50.0, 1.0, act=False), option("close", 10.0, 900.0)), RANKING)
    assert choose(occ) is occ.options[1]
    text = explain(occ, occ.options[1])
    assert "took 'close'" in text and "beats 'nothing' on ems" in text and "ems > delay" in text


def test_on_a_tie_the_earlier_option_doing_nothing_wins() -> None:
    occ = Occasion("e", (option("nothing", 0.0, 5.0, act=False), option("close", 0.0, 5.0)), RANKING)
    assert choose(occ) is occ.options[0]
    assert choose(Occasion("e", (), RANKING)) is None


def test_a_missing_or_non_finite_prediction_ranks_last() -> None:
    bad = ResponseOption("bad", (), {"ems": float("nan"), "delay": 0.0})
    occ = Occasion("e", (bad, option("close", 100.0, 100.0)), RANKING)
    assert choose(occ) is occ.options[1]


class Toy:
    """A responder that offers one occasion each step."""

    def __init__(self, options: tuple[ResponseOption, ...]) -> None:
        self.options = options
        self.seen = 0

    def update(self, snapshot: Snapshot) -> None:
        self.seen += 1

    def cost_s(self, entity_id: str) -> float | None:
        return None

    def occasions(self, snapshot: Snapshot) -> list[Occasion]:
        return [Occasion("road R1 blocked", self.options, RANKING)]


def test_the_ai_stage_sends_the_chosen_response_on_with_what_was_weighed() -> None:
    toy = Toy((option("nothing", 50.0, 1.0, act=False), option("close", 10.0, 900.0)))
    assert isinstance(toy, Responder)
    orch = PriorityOrchestrator(POLICY, {"toy": {"close_road": "mobility"}}, OutageCosts([toy]))
    settled = orch.settle([], snap())
    (kept,) = settled.kept
    assert kept.domain == "toy" and kept.proposal.action == "close" and kept.priority == "mobility"
    assert "took 'close'" in str(kept.proposal.inputs["orchestration"])
    (res,) = settled.resolutions
    assert res.kind == "responded" and res.winner is None and "road R1 blocked" in res.reason


def test_doing_nothing_sends_nothing_and_a_taken_target_is_not_overridden() -> None:
    idle = PriorityOrchestrator(POLICY, {}, OutageCosts([Toy((option("nothing", 0.0, 0.0, act=False),
                                                                option("close", 10.0, 0.0)))]))
    assert idle.settle([], snap()).kept == []
    busy = PriorityOrchestrator(POLICY, {}, OutageCosts([Toy((option("close", 0.0, 0.0),))]))
    own = Candidate("toy", ProposedAction(ACT.target, "open", {}, planner="other", action_type="close_road"))
    settled = busy.settle([own], snap())
    assert [c.proposal.action for c in settled.kept] == ["open"] and settled.resolutions == []


def test_the_uncoordinated_stage_asks_no_responder() -> None:
    settled = Precedence().settle([], snap())
    assert settled.kept == [] and settled.resolutions == []
