"""The run-level governance layer the runner gets from ``for_run``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicity.core.domain import DomainResult
from aicity.core.event import EventType
from aicity.governance.ledger import verify_jsonl
from aicity.governance.oversight import Policy
from aicity.governance.runtime import for_run

from .conftest import T0
from .fakes import POLICY, TankTwin
from .test_oversight import run as run_loop


class Store:
    """The one thing for_run needs from SqliteStore."""

    def __init__(self) -> None:
        self.connection = sqlite3.connect(":memory:")


def test_for_run_summary_and_equity(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    rt = for_run(store=Store(), domain="water", mode="ai", out=tmp_path, key=key,
                 policy=Policy.parse(POLICY.encode(), "t"))
    twin = TankTwin(levels=[20.0, 95.0])
    run_loop(rt.governor, twin, 4)
    eq = rt.equity(DomainResult({}, groups={"district": {"n": 10.0, "s": 30.0}, "tank": {"a": 1.0, "b": 1.1}}),
                   now=T0)
    assert eq["district"]["flag"] and eq["district"]["worst"] == "s" and not eq["tank"]["flag"]
    assert len(rt.alerts) == 1 and rt.alerts[0].type == EventType.ALERT
    s = rt.summary()
    assert s["ledger_records"] == 8 and s["ledger_verified"] and s["equity_alerts"] == 1
    assert s["counts"]["verdict_act"] == 8
    assert verify_jsonl(tmp_path / "audit.jsonl").ok
    assert s["samples"] and "Counterfactual" in s["samples"][0]


def test_for_run_uses_the_key_file_from_the_environment(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AICITY_LEDGER_KEY", str(tmp_path / "k.pem"))
    rt = for_run(store=Store(), domain="water", mode="smart", out=tmp_path)
    assert (tmp_path / "k.pem").exists() and rt.ledger.public_key
    assert rt.summary()["ledger_records"] == 0
