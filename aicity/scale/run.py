"""``aicity run --districts N``: one mode of a city run as districts, in the shape the report reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aicity.scale.coordinator import CHECKPOINT_EVERY, DistrictCity, merge_governance
from aicity.scale.executors import executor


def run_mode_districts(scenario: str | None, mode: str, seed: int, out: str, options: dict[str, Any] | None,
                       duration_s: float | None, districts: int, executor_name: str = "ray",
                       address: str | None = None, cpus: int | None = None, progress_q: Any = None,
                       key: bytes | None = None, checkpoint_every: int = CHECKPOINT_EVERY) -> dict[str, Any]:
    """Run ``mode`` of the city as ``districts`` districts on ``executor_name``, each checkpointed every
    ``checkpoint_every`` steps (0: never); a JSON-ready dict like :func:`aicity.runner.run_mode`'s, with a
    ``scale`` section (step times, bytes moved, crossings, checkpoints, recoveries)."""
    from aicity.core.store import SqliteStore
    from aicity.runner import domain_entries, load_city, orchestration_summary, queue_progress

    city = load_city(scenario, options, duration_s)
    mode_dir = Path(out) / mode
    mode_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(mode_dir / "city.db", series=False)
    try:
        run = DistrictCity(city, districts=districts, mode=mode, seed=seed, store=store, out=mode_dir,
                           executor=executor(executor_name, address, cpus), key=key,
                           checkpoint_every=checkpoint_every)
        ep = run.run(queue_progress(progress_q, mode))
        stats = dict(ep.stats)
        return {
            "mode": mode, "city": city.name, "seed": seed,
            "domains": domain_entries(city, ep.results, ep.governance, ep.now),
            "loop": stats, "dead_letters": store.dead_letter_count + sum(int(c["dead_letters"])
                                                                        for c in ep.districts),
            "governance": merge_governance(ep.governance.summary(), ep.districts), "consent": {},
            "options": dict(options or {}), "db": str(mode_dir / "city.db"),
            "orchestration": orchestration_summary(store), "scale": ep.scale.to_dict(),
        }
    finally:
        store.close()
