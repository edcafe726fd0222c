"""The feeders substation script (bench/feeders_substation.py): one real episode's record and the table."""

import importlib.util
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location("bench_feeders", Path(__file__).parents[1] / "bench" /
                                               "feeders_substation.py")
assert _SPEC is not None and _SPEC.loader is not None
feeders = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(feeders)


def test_the_evening_of_one_feeder_in_both_modes_makes_a_row_of_the_table() -> None:
    """The bench's 2 h evening: Smart City charges at full power from 17:00 and goes over the 230 kVA rating; AI
    City holds it."""
    smart = feeders.episode(1, 1, "smart", 7200.0)
    ai = feeders.episode(1, 1, "ai", 7200.0)
    for r in (smart, ai):
        assert r["window_s"] == 7200.0 and r["k"] == 1 and r["seed"] == r["draw"] == 1
        assert r["substation_peak_kva"] >= r["substation_peak_kw"] > 0
        assert r["substation_overload_min"] % 15 == 0
    assert smart["substation_overload_min"] > 0 and smart["substation_peak_kva"] > 230.0
    assert ai["substation_overload_min"] == 0 and ai["substation_peak_kva"] <= 230.0
    lines = feeders.table([smart, ai])
    assert len(lines) == 3
    assert lines[2].startswith(f"| 17:00-19:00 | 1 | 1 | {smart['substation_overload_min']:.0f} | ")
