"""What-if: candidate responses on copies of the city from one moment, ranked; the live run is never touched."""

from __future__ import annotations

from typing import Any

import pytest

from aicity.core.errors import UserError
from aicity.domains.city.scenarios import event_options
from aicity.runner import bench_run, load_city
from aicity.whatif import Response, WhatIf, rank, what_if

CITY = "cologne8-city-calm"
RESTORE_SIGNALS = [{"domain": "energy", "target": "urn:ngsi-ld:Tie:R-C", "action": "restore",
               "params": {"buses": ["Bus C15", "Bus C16"]}, "action_type": "restore"}]


def test_what_if_ranks_responses_and_never_changes_the_live_twin() -> None:
    opts = event_options("outage")
    q = WhatIf(CITY, opts, 1, "smart", 700.0, 300.0)
    answers: list[dict[str, Any]] = []

    def ask(loop: Any) -> None:
        answers.append(what_if(q, [Response.parse("wait for the crew", []), Response.parse("restore the signals", RESTORE_SIGNALS)],
                               jobs=2))

    live = bench_run(load_city(CITY, opts, 1200.0), mode="smart", seed=1, at_s=700.0, hook=ask)
    alone = bench_run(load_city(CITY, opts, 1200.0), mode="smart", seed=1)
    for dom, res in alone.results.items():
        assert live.results[dom].kpis == res.kpis, f"what-if changed the live run's {dom}"
    (answer,) = answers
    rows = answer["responses"]
    assert [r["rank"] for r in rows] == [1, 2] and {r["response"] for r in rows} == {"wait for the crew",
                                                                                    "restore the signals"}
    restore = next(r for r in rows if r["response"] == "restore the signals")
    assert restore["actions"][0]["status"] in ("applied", "clamped")  # through the tie's edge
    wait = next(r for r in rows if r["response"] == "wait for the crew")
    assert restore["kpis"]["city.dark_signal_s"] < wait["kpis"]["city.dark_signal_s"]
    assert answer["ranked_by"][0] == "city.ems_p90_s"


def test_rank_orders_lexicographically_and_puts_missing_values_last() -> None:
    rows = [{"response": "a", "kpis": {"x": 2.0, "y": 1.0}}, {"response": "b", "kpis": {"x": 1.0, "y": 5.0}},
            {"response": "c", "kpis": {"x": 1.0, "y": 3.0}}, {"response": "d", "kpis": {}}]
    ranked = rank(rows, [("x", True), ("y", False)])
    assert [r["response"] for r in ranked] == ["b", "c", "a", "d"]


def test_bad_responses_are_refused_in_one_line() -> None:
    with pytest.raises(UserError, match="needs string domain"):
        Response.parse("x", [{"target": "t"}])
    with pytest.raises(UserError, match="a list of actions"):
        Response.parse("x", {"domain": "energy"})
    with pytest.raises(UserError, match="must differ"):
        what_if(WhatIf(CITY, {}, 1, "smart", 10.0, 10.0), [Response("a"), Response("a")])
    with pytest.raises(UserError, match="--at"):
        what_if(WhatIf(CITY, {}, 1, "smart", float("nan"), 10.0), [Response("a")])
    with pytest.raises(UserError, match=r"--at 3500 s plus --horizon 900 s runs past the end of .*'s window"):
        what_if(WhatIf(CITY, {}, 1, "smart", 3500.0, 900.0), [Response("a")])
