"""The city loop on a tiny in-memory twin (a fake at the edge; the real SUMO twin is tested in domains/)."""

from aicity.core.city import Part, single
from aicity.core.domain import DomainResult, Outcome, ProposedAction, RunServices, Scenario
from aicity.core.entity import Entity, Property, urn
from aicity.core.meta import KPI, Better, DomainMeta
from aicity.core.store import SqliteStore
from aicity.loop import CityLoop, PartRun, open_parts


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
    meta = DomainMeta(kpis=(KPI("applied", "count", Better.HIGHER, True),), action_types=("default",))

    def scenarios(self):
        return [Scenario("tank", "toy", "a tank", 0, 60)]

    def resolve(self, n):
        return self.scenarios()[0] if n == "tank" else None

    def open_twin(self, scenario, *, seed, mode, services):
        return ToyTwin()

    def planners(self, scenario, mode):
        def planner(snapshot, forecasts):
            valve = 2 if snapshot.elapsed_s == 20 else 1
            return [ProposedAction(urn("Valve", "v1"), "set", {"valve": valve}, planner="toy-planner@1")]
        return [planner]

    def forecasters(self, scenario, mode):
        return []


class StopAfter:
    """Minimal governance (a fake at the edge): stops the domain after a number of reviews."""

    def __init__(self, n):
        self.n, self.reviews, self.records, self.confirmed = n, 0, [], 0

    def review(self, proposal, snapshot, *, domain, now):
        self.reviews += 1
        return type("R", (), {"verdict": "act", "degraded": False})()

    def record(self, proposal, review, outcome, *, domain, now, context):
        self.records.append((proposal, outcome, context))

    def is_stopped(self, domain):
        return self.reviews >= self.n

    def is_demoted(self, domain):
        return False

    def check_accuracy(self, domain, model, stats, *, now):
        return []

    def confirm_safe_state(self, domain, *, now):
        self.confirmed += 1

    def take_approved(self, domain, *, now):
        return []


def make_loop(*, twin=None, forecasters=None, **kw):
    """A loop over the toy domain alone (the twin and providers may be given)."""
    dom = ToyDomain()
    scen = dom.scenarios()[0]
    part = PartRun.of(Part(dom, scen), twin or ToyTwin(), dom.planners(scen, "ai"), forecasters or [])
    return CityLoop([part], mode="ai", seed=kw.pop("seed", 1), **kw)


def test_loop_records_causal_chain_and_dead_letters():
    store = SqliteStore()
    loop = make_loop(store=store)
    result = loop.run()["toy"]
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
    loop = make_loop(store=SqliteStore(), governance=gov, twin=twin)
    loop.run()
    assert twin.safe_calls == 1 and gov.confirmed == 1
    assert loop.stats.stopped_steps == 3 and len(gov.records) == 3


def test_same_seed_same_ids():
    def ids():
        store = SqliteStore()
        make_loop(store=store, seed=5).run()
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
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from aicity.governance.oversight import Policy
    from aicity.governance.runtime import for_run

    store = SqliteStore(tmp_path / "city.db")
    gov = for_run(store=store, domains=[ToyDomain()], mode="ai", out=tmp_path,
                  policy=Policy.parse(GUARDED_POLICY, "t"), key=Ed25519PrivateKey.generate())
    twin = ResumableTwin()
    loop = make_loop(store=store, governance=gov, twin=twin, forecasters=[forecaster])
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


class Lamp(ToyDomain):
    """A second toy domain deciding every 30 s, proposing for the valve the tank domain also wants."""

    name = "lamp"

    def open_twin(self, scenario, *, seed, mode, services):
        twin = ToyTwin()
        twin.decision_interval_s = 30.0
        return twin

    def planners(self, scenario, mode):
        def planner(snapshot, forecasts):
            tanks = snapshot.of_type("Tank")  # reads what the other domain published
            return [ProposedAction(urn("Valve", "v1"), "set", {"valve": 0}, inputs={"tanks": len(tanks)},
                                   planner="lamp-planner@1"),
                    ProposedAction(urn("Valve", "lamp-own"), "set", {"valve": 0}, planner="lamp-planner@1")]
        return [planner]


def test_city_of_two_domains_one_store_precedence_and_rates():
    store = SqliteStore()
    city = single(ToyDomain(), ToyDomain().scenarios()[0])
    city = type(city)("two", "two toys", (*city.parts, Part(Lamp(), Lamp().scenarios()[0])))
    loop = CityLoop(open_parts(city, mode="ai", seed=1, services=RunServices()), mode="ai", seed=1, store=store)
    results = loop.run()
    assert set(results) == {"toy", "lamp"} and loop.step_s == 10.0
    decisions = store.events(type="decision")
    lamp = [e for e in decisions if e.data["domain"] == "lamp"]
    assert [e.data["target"] for e in lamp] == [urn("Valve", "lamp-own")] * 2  # due at 0 and 30 s only
    conflicts = store.events(type="orchestration")
    assert len(conflicts) == 2 and conflicts[0].data["kept_domain"] == "toy"
    assert conflicts[0].data["dropped_domain"] == "lamp" and loop.stats.overridden == 2


def test_a_kept_proposal_of_a_part_not_sensed_this_step_starts_its_own_chain():
    """The stage may keep a proposal for a part that was not due (a response it picked): the decision's causal chain
    starts at the orchestration stage, not at an observation; a proposal of no part of the city is one clear error."""
    import pytest

    from aicity.core.errors import UserError
    from aicity.orchestrate.stage import Candidate

    store = SqliteStore()
    loop = make_loop(store=store)
    loop.open()
    candidates, snapshot = loop.propose()
    assert candidates
    loop._contexts.clear()  # as if the part was not due this step
    loop.act([candidates[0]], snapshot)
    decision = store.events(type="decision")[-1]
    assert [e.type for e in store.trace(decision.id)] == ["decision"]
    with pytest.raises(UserError, match="not a part of this city"):
        loop.act([Candidate("ghost", candidates[0].proposal)], snapshot)
    loop.close()
