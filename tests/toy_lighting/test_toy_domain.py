"""A toy domain (street lighting, not traffic) registered by entry point only: alone, in a city with mobility,
through the contract checks, the CLI and the report. Nothing outside this folder names it."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest

from aicity.cli import main
from aicity.core.checks import CHECKS
from aicity.core.domain import discover
from aicity.core.store import SqliteStore

HERE = Path(__file__).parent


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install the toy as a distribution with an ``aicity.domains`` entry point (in a temporary site folder)."""
    site = tmp_path / "site"
    dist = site / "aicity_toy_lighting-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: aicity-toy-lighting\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[aicity.domains]\nlighting = aicity_toy_lighting:domain\n")
    for path in (str(HERE), str(site)):
        monkeypatch.syspath_prepend(path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(HERE), os.environ.get("PYTHONPATH", "")]))
    importlib.invalidate_caches()
    return tmp_path


def test_discovered_by_entry_point(toy: Path) -> None:
    domains = discover()
    assert "lighting" in domains and "mobility" in domains


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_contract_checks(toy: Path, check) -> None:
    check(discover()["lighting"])


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_runs_alone_with_its_kpis_units_and_policy(toy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = toy / "alone"
    assert main(["run", "--scenario", "lamps", "--duration", "1200", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "energy_kwh" in printed and "kWh, lower is better" in printed
    assert "mean_level_pct" in printed and "%, higher is better" in printed
    rep = _report(out)
    assert rep["domains"] == ["lighting"]
    row = rep["comparison"]["lighting"]["energy_kwh"]
    assert (row["unit"], row["better"], row["headline"]) == ("kWh", "lower", True)
    assert row["ai"] < row["smart"] and row["verdict"] == "better"
    assert rep["comparison"]["lighting"]["mean_level_pct"]["verdict"] == "worse"
    ai_loop = rep["modes"]["ai"]["loop"]
    # the site policy has no lighting rule: the domain's shipped default (autonomous) governs, not [default] advise
    assert ai_loop["verdicts"].get("act", 0) > 0 and ai_loop["actuated"] > 0
    assert "district" in rep["equity"]["lighting"]["ai"]
    md = (out / "report.md").read_text()
    assert "## lighting: KPIs side by side" in md and "| **energy_kwh** | kWh | lower |" in md


def test_runs_in_a_city_with_mobility(toy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = toy / "city"
    assert main(["run", "--scenario", "lit-grid", "--duration", "300", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "mobility" in printed and "lighting" in printed and "delay_s" in printed and "energy_kwh" in printed
    rep = _report(out)
    assert rep["domains"] == ["mobility", "lighting"]
    assert set(rep["comparison"]) == {"mobility", "lighting"}
    assert rep["summary"]["all_domains"]["better"] + rep["summary"]["all_domains"]["worse"] + rep["summary"]["all_domains"]["same"] > 0
    store = SqliteStore(out / "ai" / "city.db")
    try:
        lamp = [e for e in store.events(type="decision") if e.data.get("domain") == "lighting"]
        signal = [e for e in store.events(type="decision") if e.data.get("domain") == "mobility"]
        assert lamp and signal  # one loop, one store, one ledger for both domains
        # the lamps read what the mobility domain published: traffic-aware levels, not the no-traffic 60 %
        assert any(e.data["params"]["level"] != 60.0 for e in lamp)
        assert len(lamp) < len(signal)  # lighting decides every 60 s, mobility every 10 s
    finally:
        store.close()
