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


GUARDED_POLICY = b"""
version = "test-1"
[default]
autonomy = "advise"
owner_role = "duty officer"
[[rules]]
domain = "toy"
action_type = "*"
autonomy = "autonomous-within-envelope"
owner_role = "tank operator"
[[accuracy]]
name = "toy-forecast-accuracy"
domain = "toy"
model = "toy-*"
max_error_ratio = 1.2
min_samples = 5
"""


class FlakyForecaster:
    """A provider whose live accuracy turns worse than persistence at ``bad_from`` seconds."""

    name = "toy-forecaster"

    def __init__(self, bad_from, good_again=None):
        self.bad_from, self.good_again, self.t = bad_from, good_again, 0.0

    def learn(self, snapshot):
        self.t = snapshot.elapsed_s

    def forecast(self, snapshot):
        return {}

    def accuracy(self):
        bad = self.t >= self.bad_from and (self.good_again is None or self.t < self.good_again)
        return {"n": 10.0, "mae": 2.0 if bad else 0.5, "naive_mae": 1.0, "ratio": 2.0 if bad else 0.5}


class ResumableTwin(ToyTwin):
    def __init__(self):
        super().__init__()
        self.resumes = 0

    def resume(self):
        self.resumes += 1


def _guarded_loop(tmp_path, forecaster):
    from aicity.governance.oversight import Policy
    from aicity.governance.runtime import for_run

    store = SqliteStore(tmp_path / "city.db")
    gov = for_run(store=store, domain="toy", mode="ai", out=tmp_path, policy=Policy.parse(GUARDED_POLICY, "t"))
    twin = ResumableTwin()
    loop = CityLoop(ToyDomain(), ToyDomain().scenarios()[0], mode="ai", seed=1, store=store, governance=gov,
                    twin=twin, forecasters=[forecaster])
    return loop, gov, twin, store


def test_forecast_accuracy_below_declared_demotes_to_advise_and_safe_state(tmp_path):
    loop, gov, twin, store = _guarded_loop(tmp_path, FlakyForecaster(bad_from=30))
    loop.run()
    assert loop.stats.demotions == 1 and loop.stats.demoted_steps == 3
    assert twin.safe_calls == 1, "demotion returns the actuators to the safe state once"
    assert twin.applied == [1, 1], "acted before the demotion (t=0, 10; t=20 was refused), never after"
    assert loop.stats.verdicts["advise"] == 3, "planners keep proposing; decisions are recorded, not acted"
    drift = store.events(type="drift")
    assert len(drift) == 1 and drift[0].data["model"] == "toy-forecaster" and drift[0].data["ratio"] == 2.0
    assert drift[0].actor == "policy:governance.accuracy-guard"
    changes = list(gov.ledger.records("autonomy"))
    assert [(c["level"], c["by"]) for c in changes] == [("advise", "governance.accuracy-guard")]
    assert "below the declared level" in changes[0]["reason"]


def test_a_person_restores_autonomy_and_control_resumes(tmp_path):
    loop, gov, twin, _store = _guarded_loop(tmp_path, FlakyForecaster(bad_from=10, good_again=30))
    restored = []

    def progress(done, total):
        if done == 30:
            gov.governor.set_autonomy("toy", "autonomous-within-envelope", reason="model retrained and checked",
                                      by="tank operator", now=loop.clock.now())
            restored.append(done)

    loop.run(progress)
    assert restored and twin.safe_calls == 1 and twin.resumes == 1
    assert loop.stats.demotions == 1 and loop.stats.demoted_steps == 2
    assert twin.applied == [1, 1, 1, 1], "acted at t=0, advised at 10 and 20, acting again from 30 on"
    levels = [(c["level"], c["by"]) for c in gov.ledger.records("autonomy")]
    assert levels == [("advise", "governance.accuracy-guard"), ("autonomous-within-envelope", "tank operator")]
