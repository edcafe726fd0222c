"""Model cards from benchmark results: disaggregated metrics, Markdown and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aicity.core.errors import UserError
from aicity.governance.modelcard import build_model_card, load_results

META = {"name": "maxpressure", "version": "1.0", "type": "max-pressure signal control",
        "intended_use": "Choosing green phases at signalised junctions from detector queues.",
        "inputs": ["detector queue per lane", "current phase"],
        "limitations": "Assumes detectors on every approach.",
        "failure_conditions": ["frozen detectors", "spillback beyond the detector"]}
RESULTS = [
    {"scenario": "grid", "controller": "maxpressure", "seed": s, "delay_s": 20.0 + s,
     "groups": {"district": {"north": {"delay_s": 18.0 + s}, "south": {"delay_s": 25.0 + s}},
                "time_of_day": {"peak": {"delay_s": 30.0}, "off-peak": {"delay_s": 12.0}}}}
    for s in (1, 2, 3)
] + [{"scenario": "grid", "controller": "fixed", "seed": s, "delay_s": 45.0} for s in (1, 2)]


def test_card_from_results(tmp_path: Path) -> None:
    card = build_model_card(META, RESULTS, select={"controller": "maxpressure"}, metrics=["delay_s"],
                            factors=["district", "time_of_day", "seed"], baseline={"controller": "fixed"})
    qa = card.to_dict()["quantitative_analyses"]
    assert qa["n_runs"] == 3 and qa["overall"]["delay_s"] == pytest.approx(22.0)
    assert qa["disaggregated"]["district"] == {"north": {"delay_s": 20.0}, "south": {"delay_s": 27.0}}
    assert qa["disaggregated"]["time_of_day"]["peak"]["delay_s"] == 30.0
    assert qa["baseline"]["overall"]["delay_s"] == 45.0
    j, m = card.write(tmp_path)
    assert json.loads(j.read_text())["caveats_and_recommendations"]["known failure conditions"][0] == "frozen detectors"
    md = m.read_text()
    assert "| north | 20 |" in md and "## Intended use" in md and "Baseline" in md


def test_missing_meta_or_results_are_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="limitations"):
        build_model_card({**META, "limitations": ""}, RESULTS, select={}, metrics=["delay_s"])
    with pytest.raises(UserError, match="no results match"):
        build_model_card(META, RESULTS, select={"controller": "rl"}, metrics=["delay_s"])
    (tmp_path / "r.json").write_text('{"results": 3}')
    with pytest.raises(UserError, match="list of records"):
        load_results(tmp_path / "r.json")
    (tmp_path / "ok.json").write_text(json.dumps(RESULTS))
    assert len(load_results(tmp_path / "ok.json")) == 5
