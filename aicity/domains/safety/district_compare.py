"""Call by call, what running ``gridcity-K-ems`` as districts changes against one process (same seed).

Both runs go through the product: ``runner.bench_run`` (one process) and the coordinator on a local Ray cluster
(``aicity.scale.bench.district_episode``, the code of ``aicity run --districts``). Each call is put in one class:
the same unit dispatched in the same decision interval and arriving within a second (``same``); the same unit
and interval, arriving later or earlier (``same_unit_other_arrival``: the traffic differs, e.g. a border
vehicle's insertion); the same unit dispatched later (``same_unit_later``: a request crossing, a decline); another
unit (``other_unit``); reached in one run only. ``python -m aicity.domains.safety.district_compare OUT.json``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any


def classify(whole: Mapping[str, Any], split: Mapping[str, Any]) -> str:
    """The class of one call (records of ``extra["incidents"]`` of each run)."""
    if (whole["arrival_s"] is None) != (split["arrival_s"] is None):
        return "reached_one_process_only" if split["arrival_s"] is None else "reached_districts_only"
    if whole["unit"] != split["unit"]:
        return "other_unit"
    if whole["dispatch_s"] != split["dispatch_s"]:
        return "same_unit_later" if (split["dispatch_s"] or 0) > (whole["dispatch_s"] or 0) else "same_unit_earlier"
    if whole["arrival_s"] is None or abs(float(whole["arrival_s"]) - float(split["arrival_s"])) <= 1.0:
        return "same"
    return "same_unit_other_arrival"


def compare(k: int, districts: int, mode: str, seed: int, duration_s: float | None) -> dict[str, Any]:
    """One comparison: KPIs of both runs, the classes of the calls, the mutual-aid counts."""
    from aicity.runner import bench_run, load_city
    from aicity.scale.bench import district_episode

    city = load_city(f"safety/gridcity-{k}-ems", None, duration_s)
    whole = bench_run(city, mode=mode, seed=seed).results["safety"]
    with district_episode(city, districts, mode, seed) as ep:
        split = ep.results["safety"]
        scale = ep.scale.to_dict()
    by_id = {r["id"]: r for r in split.extra["incidents"]}
    classes = Counter(classify(r, by_id[r["id"]]) for r in whole.extra["incidents"])
    return {"scenario": f"gridcity-{k}-ems", "districts": districts, "mode": mode, "seed": seed,
            "calls": len(whole.extra["incidents"]), "classes": dict(sorted(classes.items())),
            "aid": split.extra["aid"], "lent_calls": split.extra["lent_calls"],
            "one_process": whole.kpis, "as_districts": split.kpis,
            "crossings_by_kind": scale["crossings_by_kind"], "step_ms": scale["step_ms"]["mean"]}


def main(argv: Sequence[str]) -> int:
    """Every comparison of the study into ``argv[0]`` (JSON)."""
    records = [compare(k, d, mode, seed, None) for k, d in ((2, 2), (4, 4), (4, 2)) for mode in ("smart", "ai")
               for seed in (1, 2, 3)]
    with open(argv[0], "w") as fh:
        json.dump({"records": records}, fh, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
