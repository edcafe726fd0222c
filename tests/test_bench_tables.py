"""The benchmark tables (bench/tables.py) on records with a KPI that measured nothing."""

import importlib.util
from pathlib import Path
from typing import Any

_SPEC = importlib.util.spec_from_file_location("bench_tables", Path(__file__).parents[1] / "bench" / "tables.py")
assert _SPEC is not None and _SPEC.loader is not None
tables = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(tables)


def _rec(controller: str, seed: int, p90: float | None, violations: float) -> dict[str, Any]:
    kpis = {"mobility.delay_s": 20.0, "safety.response_p90_s": p90, "energy.peak_kw": 380.0,
            "energy.energy_cost": 20.0, "city.person_delay_s": 20.0, "city.ems_p90_s": p90, "city.energy_cost": 20.0,
            "city.peak_kw": 380.0, "city.critical_unserved_kwh": 0.0, "city.violations": violations}
    return {"event": "surge", "controller": controller, "seed": seed, **kpis, "priority_violations": 0,
            "x_real_time": 500.0}


def test_a_day_without_calls_ranks_on_the_next_kpi_and_leaves_the_ems_means_alone() -> None:
    recs = [_rec("ai", 1, 100.0, 30), _rec("ablation", 1, 120.0, 40), _rec("smart", 1, 200.0, 800),
            _rec("ai", 2, None, 30), _rec("ablation", 2, None, 50), _rec("smart", 2, None, 800)]
    text = "\n".join(tables.city_table(recs))
    assert "| surge | 2/2 | 2/2 | 1/1 | 2/2 | 2/2 | 0 | 500 |" in text  # seed 2 decided on violations
    # the event's verdict: EMS p90 over the one seed with calls (100 vs 120), seeds 2 better / 0 / 0
    assert "| surge | 2 | **better** | city.ems_p90_s | 100.00 | 120.00 | 2 / 0 / 0 |" in text
