"""Runs are safe against each other: one run per folder, earlier runs kept, no output from a refused run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aicity.cli import main
from aicity.core.errors import UserError
from aicity.runner import folder_lock, parse_options, prepare_out


def test_a_second_run_into_a_busy_folder_is_refused_in_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "busy"
    out.mkdir()
    with folder_lock(out):
        assert main(["run", "--scenario", "lamps-none", "--out", str(out)]) == 2  # unknown: refused before
        capsys.readouterr()
        assert main(["run", "--scenario", "grid3x3", "--duration", "60", "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "is in use by another run (pid" in err and err.count("\n") == 1
    with folder_lock(out):  # released when the holder is done
        pass


def test_default_folders_never_collide(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    same = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    first, second = prepare_out(None, lambda: same), prepare_out(None, lambda: same)
    assert first != second and first.name == "20261201-120000" and second.name == "20261201-120000-2"


def test_a_refused_run_leaves_no_output(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "never"
    assert main(["run", "--scenario", "grid3x3", "--set", "yellow_s=NaN", "--out", str(out)]) == 2
    assert not out.exists()


def test_options_refuse_non_finite_json() -> None:
    for text in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(UserError, match="must be a finite number"):
            parse_options([f"x={text}"])
    assert parse_options(["x=1e3", "y=abc"]) == {"x": 1000.0, "y": "abc"}
    with pytest.raises(UserError, match="nested too deeply"):  # Python's parser raises RecursionError on it
        parse_options(["x=" + "[" * 5000 + "1" + "]" * 5000])


@pytest.mark.sumo
def test_a_rerun_moves_the_earlier_run_aside_and_keeps_its_ledger(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "again"
    args = ["run", "--scenario", "grid3x3", "--mode", "ai", "--duration", "60", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert main(args) == 0
    moved = sorted(out.glob("previous-*"))
    assert len(moved) == 1 and (moved[0] / "ai" / "city.db").exists()
    assert "moved to previous-" in capsys.readouterr().err
    notes = json.loads((out / "report.json").read_text())["notes"]
    assert notes and "ledger is kept" in notes[0]
    assert main(["audit", "verify", "--db", str(moved[0] / "ai" / "city.db")]) == 0


@pytest.mark.sumo
def test_a_run_keeps_its_state_in_postgresql(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from aicity.core.store import open_store
    from aicity.runner import store_urls
    from tests.core.pgserver import shared_server

    server = shared_server(request.config)  # fails with the reason when no server can be had
    out = tmp_path / "pg-run"
    assert main(["run", "--scenario", "grid3x3", "--mode", "ai", "--duration", "60", "--out", str(out), "--quiet",
                 "--store", server.base_url]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["modes"]["ai"]["db"].startswith("postgresql://") and not (out / "ai" / "city.db").exists()
    store = open_store(store_urls(server.base_url, out, ["ai"])["ai"])
    try:
        decisions = store.events(type="decision")
        assert decisions and len(decisions) == rep["modes"]["ai"]["loop"]["proposals"] - rep["modes"]["ai"]["loop"][
            "overridden"]
        assert store.ledger_size() >= len(decisions)
    finally:
        store.close()
    with pytest.raises(UserError, match="--store takes a postgresql:// URL"):
        store_urls("sqlite:///x.db", out, ["ai"])


def test_orchestration_summary_counts_resolutions_and_keeps_their_words() -> None:
    from aicity.core.context import Actor, ActorKind, Context
    from aicity.core.event import Event, EventType
    from aicity.core.store import SqliteStore
    from aicity.runner import orchestration_summary

    store = SqliteStore(":memory:", series=False)
    now = datetime(2024, 1, 1, tzinfo=UTC)
    for i, kind in enumerate(("substituted", "kept", "substituted")):
        data = {"target": "urn:ngsi-ld:Tie:R-C", "kept_domain": "safety", "kept_planner": "p", "dropped_domain":
                "energy", "dropped_planner": "q", "rule": "priority", "resolution": kind, "reason": f"because {i}",
                "policy_version": "2026.4.0", "kept_priority": "life_safety", "dropped_priority": "grid_stability"}
        store.append_event(Event(EventType.ORCHESTRATION, data, Context(Actor(ActorKind.SYSTEM, "orchestration"),
                                                                        None, f"e{i}"), now,
                                 entity_id="urn:ngsi-ld:Tie:R-C"))
    out = orchestration_summary(store, keep=2)
    assert out["counts"] == {"substituted": 2, "kept": 1}
    assert [r["reason"] for r in out["first"]] == ["because 0", "because 1"]
    assert out["first"][0]["policy"] == "2026.4.0"
    store.close()
