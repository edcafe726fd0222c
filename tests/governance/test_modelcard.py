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


def _mobility(scenario: str, controller: str, seed: int, scale: float) -> dict[str, object]:
    """A bench-shaped record with groups; ``scale`` multiplies every delay."""
    first = "07:00–07:15" if scenario == "cologne8" else "16:00–16:15"
    second = "07:15–07:30" if scenario == "cologne8" else "16:15–16:30"
    return {"scenario": scenario, "controller": controller, "seed": seed, "delay_s": 20.0 * scale,
            "groups": {"district": {"NE": {"delay_s": 30.0 * scale + seed, "trips": 100},
                                    "SW": {"delay_s": 12.0 * scale, "trips": 300}},
                       "time_of_day": {first: {"delay_s": 15.0 * scale, "trips": 200},
                                       second: {"delay_s": 25.0 * scale, "trips": 200}}}}


MOBILITY = [_mobility(s, c, seed, scale) for s, k in (("cologne8", 1.0), ("ingolstadt7", 2.0))
            for c, f in (("ai", 1.0), ("fixed", 3.0)) for seed in (1, 2) for scale in (k * f,)]


def test_card_disaggregates_per_map_by_district_and_time_of_day(tmp_path: Path) -> None:
    card = build_model_card(META, MOBILITY, select={"controller": "ai"}, metrics=["delay_s"],
                            factors=["scenario", "scenario/district", "scenario/time_of_day"],
                            baseline={"controller": "fixed"}, equity_threshold=0.8)
    qa = card.to_dict()["quantitative_analyses"]
    assert qa["seeds"] == [1, 2]
    assert qa["disaggregated"]["scenario/district"]["ingolstadt7 / NE"] == {"delay_s": 61.5, "trips": 100.0}
    assert qa["disaggregated"]["scenario/time_of_day"]["cologne8 / 07:15–07:30"]["delay_s"] == 25.0
    assert qa["baseline"]["disaggregated"]["scenario/district"]["cologne8 / SW"]["delay_s"] == 36.0
    _, m = card.write(tmp_path)
    md = m.read_text()
    assert "Runs evaluated: 4 (seeds 1, 2)" in md
    assert "By scenario and district:" in md and "By scenario and time_of_day:" in md
    assert "| scenario | district | delay_s | trips | delay_s (controller=fixed) |" in md
    assert "| cologne8 | NE | 31.5 | 100 | 91.5 |" in md
    assert "| ingolstadt7 | 16:15–16:30 | 50 | 200 | 150 |" in md
    worst = card.to_dict()["caveats_and_recommendations"]["worst-off groups found"]
    assert worst[0].startswith("cologne8: worst-off district NE (delay_s 31.5 vs 20 for all of cologne8; best SW 12")
    assert "below the 0.8 equity threshold" in worst[0] and "seeds 1, 2" in worst[0]
    assert worst[3].startswith("ingolstadt7: worst-off time_of_day 16:15–16:30 (delay_s 50 vs 40")
    assert len(worst) == 4 and "  - cologne8: worst-off district NE" in md


def test_worst_off_can_be_the_lowest_and_bad_specs_are_named() -> None:
    recs = [{"model": "m", "seed": 0, "mae": 2.0, "coverage90": 0.9,
             "groups": {"time_of_day": {"00–04": {"mae": 1.0, "coverage90": 0.95},
                                        "16–20": {"mae": 3.0, "coverage90": 0.80}}}}]
    card = build_model_card(META, recs, select={"model": "m"}, metrics=["mae", "coverage90"],
                            factors=["time_of_day"], worst=["mae", "coverage90:min"])
    worst = card.to_dict()["caveats_and_recommendations"]["worst-off groups found"]
    assert worst == ["worst-off time_of_day 16–20 (mae 3 vs 2 overall; best 00–04 1; seed 0)",
                     "worst-off time_of_day 16–20 (coverage90 0.8 vs 0.9 overall; best 00–04 0.95; seed 0)"]
    with pytest.raises(UserError, match="worst-off metric"):
        build_model_card(META, recs, select={}, metrics=["mae"], factors=["time_of_day"], worst=["mae:worst"])
