"""The city loop on a tiny in-memory twin (a fake at the edge; the real SUMO twin is tested in domains/)."""

from aicity.core.domain import DomainResult, Outcome, ProposedAction, Scenario
from aicity.core.entity import Entity, Property, urn
from aicity.core.store import SqliteStore
from aicity.loop import CityLoop


class ToyTwin:
    decision_interval_s = 10.0

    def __init__(self):
        self.t = 0.0
        self.level = 0
        self.safe_calls = 0
        self.applied = []

    def start(self):
        pass

    def elapsed_s(self):
        return self.t

    def done(self):
        return self.t >= 60

    def advance(self, seconds):
        self.t += seconds

    def observe(self):
        good = Entity(urn("Tank", "t1"), "Tank", {"level": Property(self.level)})
        return [good, {"id": "tank-2", "type": "Tank"}]  # the second is malformed

    def actuate(self, action):
        if action.params["valve"] > 1:
            return Outcome(action, "refused", bound_by=["valve_max"], reason="valve above 1")
        self.applied.append(action.params["valve"])
        return Outcome(action, "applied", {"valve": action.params["valve"]})

    def safe_state(self):
        self.safe_calls += 1

    def close(self):
        return DomainResult({"applied": float(len(self.applied))})


class ToyDomain:
    name = "toy"
    description = "toy"

    def scenarios(self):
        return [Scenario("tank", "toy", "a tank", 0, 60)]

    def resolve(self, n):
        return self.scenarios()[0] if n == "tank" else None

    def open_twin(self, scenario, *, seed, mode):
        return ToyTwin()

    def planners(self, scenario, mode):
        def planner(snapshot, forecasts):
            valve = 2 if snapshot.elapsed_s == 20 else 1
            return [ProposedAction(urn("Valve", "v1"), "set", {"valve": valve}, planner="toy-planner@1")]
        return [planner]

    def forecasters(self, scenario, mode):
        return []


class StopAfter:
    """Minimal governance: stops the domain after a number of reviews."""

    def __init__(self, n):
        self.n, self.reviews, self.records = n, 0, []

    def review(self, proposal, snapshot, *, domain, now):
        self.reviews += 1
        return type("R", (), {"verdict": "act", "degraded": False})()

    def record(self, proposal, review, outcome, *, domain, now, context):
        self.records.append((proposal, outcome, context))

    def is_stopped(self, domain):
        return self.reviews >= self.n


def test_loop_records_causal_chain_and_dead_letters():
    store = SqliteStore()
    loop = CityLoop(ToyDomain(), ToyDomain().scenarios()[0], mode="ai", seed=1, store=store)
    result = loop.run()
    assert loop.stats.steps == 6 and result.kpis["applied"] == 5
    assert loop.stats.refused == 1 and loop.stats.rejected_observations == 6
    assert store.dead_letter_count == 6 and "URN" in store.dead_letters()[0].reason
    refusal = store.events(type="refusal")[0]
    chain = store.trace(refusal.id)
    assert [e.type for e in chain] == ["refusal", "command", "decision", "observation"]
    assert chain[-1].data["entities"] == [urn("Tank", "t1")]
    assert chain[2].actor == "model:toy-planner@1"


def test_stop_returns_to_safe_state_within_one_step():
    gov = StopAfter(3)
    twin = ToyTwin()
    loop = CityLoop(ToyDomain(), ToyDomain().scenarios()[0], mode="ai", seed=1, store=SqliteStore(),
                    governance=gov, twin=twin)
    loop.run()
    assert twin.safe_calls == 1
    assert loop.stats.stopped_steps == 3 and len(gov.records) == 3


def test_same_seed_same_ids():
    def ids():
        store = SqliteStore()
        CityLoop(ToyDomain(), ToyDomain().scenarios()[0], mode="ai", seed=5, store=store).run()
        return [e.id for e in store.events()]
    assert ids() == ids()
