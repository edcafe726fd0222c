"""The city-wide governance layer the runner gets from ``for_run``, driven by toy domains' metadata (no SUMO)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicity.core.domain import DomainResult, ProposedAction
from aicity.core.errors import UserError
from aicity.core.event import EventType
from aicity.core.meta import KPI, Better, DomainMeta, EquityGroup
from aicity.core.store import SqliteStore
from aicity.governance.ledger import HEAD_FILE, read_head, verify_jsonl
from aicity.governance.oversight import AutonomyLevel, Policy, Verdict
from aicity.governance.runtime import for_run

from .conftest import T0
from .fakes import POLICY, TankTwin
from .fakes import run as run_loop

SITE = b"""
version = "site-7"
[default]
autonomy = "advise"
owner_role = "city duty officer"

[[rules]]
domain = "water"
action_type = "flush"
autonomy = "act-then-notify"
owner_role = "site water officer"
"""

WATER_POLICY = """
version = "water-1"
[default]
owner_role = "water network engineer"

[[rules]]
action_type = "valve"
autonomy = "autonomous-within-envelope"

[[rules]]
action_type = "flush"
autonomy = "approve-then-act"

[[envelope]]
name = "valve_opening"
param = "opening"
min = 0
max = 90
"""


@dataclass(frozen=True)
class Toy:
    """A domain plug-in as governance sees it: a name and its metadata."""

    name: str
    meta: DomainMeta


def water(tmp_path: Path, *, action_types: tuple[str, ...] = ("valve", "flush"), policy: bool = True,
          plausibility: dict[str, object] | None = None) -> Toy:
    path = tmp_path / "water-policy.toml"
    path.write_text(WATER_POLICY)
    meta = DomainMeta(
        kpis=(KPI("level_m", "m", Better.LOWER, headline=True), KPI("served", "%", Better.HIGHER)),
        equity=(EquityGroup("district", "level_m"), EquityGroup("zone", "served")),
        action_types=action_types, policy=path if policy else None, plausibility=plausibility)
    return Toy("water", meta)


def test_for_run_summary_equity_and_published_head(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    store = SqliteStore(tmp_path / "city.db")
    rt = for_run(store=store, domains=[water(tmp_path)], mode="ai", out=tmp_path, key=key,
                 policy=Policy.parse(POLICY.encode(), "t"))
    twin = TankTwin(levels=[20.0, 95.0])
    run_loop(rt.governor, twin, 4)
    result = DomainResult({}, groups={"district": {"n": 10.0, "s": 30.0}, "zone": {"a": 90.0, "b": 60.0},
                                      "other": {"x": 1.0, "y": 100.0}})
    eq = rt.equity("water", result, now=T0)
    assert set(eq) == {"district", "zone"}  # only the declared groups, never a default KPI
    assert eq["district"]["flag"] and eq["district"]["worst"] == "s" and eq["district"]["better"] == "lower"
    assert eq["zone"]["worst"] == "b" and eq["zone"]["better"] == "higher"  # higher is better: the lower one
    assert len(rt.alerts) == 2 and rt.alerts[0].type == EventType.ALERT
    with pytest.raises(UserError, match="unknown domain"):
        rt.equity("energy", result, now=T0)
    s = rt.summary()
    assert s["ledger_records"] == 8 and s["ledger_verified"] and s["equity_alerts"] == 2
    assert s["counts"]["verdict_act"] == 8 and s["policy_notices"] == []
    assert verify_jsonl(tmp_path / "audit.jsonl").ok
    assert s["samples"] and "Counterfactual" in s["samples"][0]
    head = read_head(tmp_path / HEAD_FILE)
    assert head.size == 8 and head.verify() and s["ledger_head"]["root"] == head.root.hex()


def test_equity_group_naming_an_undeclared_kpi_is_refused(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    meta = DomainMeta(kpis=(KPI("a", "s", Better.LOWER),), equity=(EquityGroup("district", "nope"),))
    rt = for_run(store=SqliteStore(), domains=[Toy("toy", meta)], mode="ai", out=tmp_path, key=key)
    with pytest.raises(UserError, match="'nope'"):
        rt.equity("toy", DomainResult({}, groups={"district": {"a": 1.0, "b": 2.0}}), now=T0)
    ok = DomainMeta(kpis=(KPI("a", "s", Better.LOWER),), equity=(EquityGroup("district", "a"),))
    rt = for_run(store=SqliteStore(), domains=[Toy("toy", ok)], mode="ai", out=tmp_path, key=key)
    one = rt.equity("toy", DomainResult({}, groups={"district": {"a": 1.0, "b": float("nan")}}), now=T0)
    assert one["district"]["audited"] is False and one["district"]["n"] == 1  # said, never a crash


def test_domain_policy_defaults_govern_and_the_site_overrides_rule_by_rule(tmp_path: Path,
                                                                           key: Ed25519PrivateKey) -> None:
    rt = for_run(store=SqliteStore(), domains=[water(tmp_path)], mode="ai", out=tmp_path, key=key,
                 policy=Policy.parse(SITE, "site.toml"))
    twin = TankTwin()
    snap = twin.snapshot()
    valve = ProposedAction("v0", "set_opening", {"opening": 30}, action_type="valve")
    review = rt.review(valve, snap, domain="water", now=twin.now)
    assert review.verdict is Verdict.ACT and review.autonomy is AutonomyLevel.AUTONOMOUS  # the domain's rule
    assert "valve_opening" in review.limits_evaluated  # the domain's envelope
    rec = rt.record(valve, review, twin.actuate(valve), domain="water", now=twin.now)
    assert rec.policy["rule"]["source"] == "domain defaults" and rec.policy["rule"]["version"] == "water-1"
    assert rec.policy["rule"]["file"].endswith("water-policy.toml") and len(rec.policy["rule"]["sha256"]) == 64
    assert rec.policy["version"] == "site-7" and rec.policy["domains"]["water"]["version"] == "water-1"
    flush = ProposedAction("v1", "flush", {"opening": 60}, action_type="flush")
    review = rt.review(flush, snap, domain="water", now=twin.now)
    assert review.autonomy is AutonomyLevel.NOTIFY and review.owner_role == "site water officer"  # site wins
    assert review.rule["source"] == "site policy" and review.rule["file"] == "site.toml"
    too_wide = ProposedAction("v0", "set_opening", {"opening": 95}, action_type="valve")
    assert rt.review(too_wide, snap, domain="water", now=twin.now).verdict is Verdict.REFUSE
    assert rt.summary()["policy"].startswith("site-7") and "water defaults water-1" in rt.summary()["policy"]


def test_an_action_type_without_any_rule_gets_the_site_default_with_a_ledgered_notice(
        tmp_path: Path, key: Ed25519PrivateKey) -> None:
    toy = water(tmp_path, action_types=("valve", "flush", "drain"))
    rt = for_run(store=SqliteStore(), domains=[toy], mode="ai", out=tmp_path, key=key,
                 policy=Policy.parse(SITE, "site.toml"))
    notices = list(rt.ledger.records("policy_notice"))
    assert [n["action_type"] for n in notices] == ["drain"]  # declared, no rule anywhere: said at the start
    assert notices[0]["rule"]["source"] == "site [default]" and notices[0]["declared"]
    twin = TankTwin()
    drain = ProposedAction("v0", "drain", {}, action_type="drain")
    review = rt.review(drain, twin.snapshot(), domain="water", now=twin.now)
    assert review.verdict is Verdict.ADVISE and review.rule["source"] == "site [default]"
    survey = ProposedAction("v0", "survey", {}, action_type="survey")  # not even declared
    rt.review(survey, twin.snapshot(), domain="water", now=twin.now)
    rt.review(survey, twin.snapshot(), domain="water", now=twin.now)
    s = rt.summary()
    assert s["counts"]["policy_default_fallbacks"] == 2 and len(s["policy_notices"]) == 2
    assert "water/survey (undeclared" in s["policy_notices"][1] and "site [default]" in s["policy_notices"][1]


def test_a_domain_policy_may_not_set_rules_for_another_domain(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    toy = water(tmp_path)
    assert toy.meta.policy is not None
    toy.meta.policy.write_text(WATER_POLICY + '\n[[rules]]\ndomain = "mobility"\naction_type = "*"\n'
                                              'autonomy = "autonomous-within-envelope"\n')
    with pytest.raises(UserError, match="may only set its own rules"):
        for_run(store=SqliteStore(), domains=[toy], mode="ai", out=tmp_path, key=key)


def test_plausibility_comes_from_each_domains_meta(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    rules = {"rules": [{"entity_type": "Tank", "attribute": "level", "min": 0, "max": 100, "max_age_s": 120}],
             "required": ["urn:ngsi-ld:Tank:*"]}
    rt = for_run(store=SqliteStore(), domains=[water(tmp_path, plausibility=rules)], mode="ai", out=tmp_path,
                 key=key)
    twin = TankTwin(frozen={1})
    twin.advance(600)
    snap = twin.snapshot()
    p = ProposedAction("v1", "set_opening", {"opening": 30}, inputs={"urn:ngsi-ld:Tank:t1#level": 1.0},
                       action_type="valve")
    assert rt.review(p, snap, domain="water", now=twin.now).degraded
    assert rt.summary()["plausibility"]["stale"] >= 1


def test_for_run_refuses_a_missing_key_file_instead_of_making_one(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AICITY_LEDGER_KEY", str(tmp_path / "k.pem"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(UserError, match="does not exist"):
        for_run(store=SqliteStore(), domains=[water(tmp_path)], mode="smart", out=tmp_path / "run")
    assert not (tmp_path / "k.pem").exists() and not list(tmp_path.rglob("*.pem"))
    (tmp_path / "k.pem").write_text("garbage")
    with pytest.raises(UserError, match="not a PEM"):
        for_run(store=SqliteStore(), domains=[water(tmp_path)], mode="smart", out=tmp_path)
    monkeypatch.setenv("AICITY_LEDGER_KEY", str(tmp_path))  # a folder: unreadable as a key
    with pytest.raises(UserError, match="cannot be read"):
        for_run(store=SqliteStore(), domains=[water(tmp_path)], mode="smart", out=tmp_path)
    monkeypatch.setenv("AICITY_LEDGER_KEY", "")
    with pytest.raises(UserError, match="empty"):
        for_run(store=SqliteStore(), domains=[water(tmp_path)], mode="smart", out=tmp_path)


def test_first_use_creates_the_key_only_in_the_deployment_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AICITY_LEDGER_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    out = tmp_path / "runs" / "x" / "ai"
    out.mkdir(parents=True)
    rt = for_run(store=SqliteStore(), domains=[water(tmp_path)], mode="ai", out=out)
    key = tmp_path / "home" / ".aicity" / "ledger-ed25519.pem"
    assert key.is_file() and "first use" in capsys.readouterr().err
    assert rt.summary()["ledger_key_created"] == str(key)
    assert [p for p in tmp_path.rglob("*.pem") if p != key] == []  # nothing inside or next to the run
    again = for_run(store=SqliteStore(), domains=[water(tmp_path)], mode="ai", out=tmp_path / "other")
    assert again.key_created is None and capsys.readouterr().err == ""
