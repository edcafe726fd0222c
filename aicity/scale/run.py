"""``aicity run --districts N``: one mode of a city run as districts, in the shape the report reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aicity.scale.coordinator import CHECKPOINT_EVERY, DistrictCity, merge_governance
from aicity.scale.executors import executor


def run_mode_districts(scenario: str | None, mode: str, seed: int, out: str, options: dict[str, Any] | None,
                       duration_s: float | None, districts: int, executor_name: str = "ray",
                       address: str | None = None, cpus: int | None = None, progress_q: Any = None,
                       key: bytes | None = None, checkpoint_every: int = CHECKPOINT_EVERY,
                       store: tuple[str, str] | None = None) -> dict[str, Any]:
    """Run ``mode`` of the city as ``districts`` districts on ``executor_name``, each checkpointed every
    ``checkpoint_every`` steps (0: never); a JSON-ready dict like :func:`aicity.runner.run_mode`'s, with a
    ``scale`` section (step times, bytes moved, crossings, checkpoints, recoveries). ``store`` = (a PostgreSQL
    URL, a schema name): the coordinator's state in that schema and each district's in ``<schema>_<district>``
    (a worker restarted on another machine reaches it); None: SQLite files in the output folder."""
    from aicity.core.store import SqliteStore, StateStore, open_store
    from aicity.runner import domain_entries, load_city, orchestration_summary, queue_progress

    city = load_city(scenario, options, duration_s)
    mode_dir = Path(out) / mode
    mode_dir.mkdir(parents=True, exist_ok=True)
    if store is None:
        db = str(mode_dir / "city.db")
        city_store: StateStore = SqliteStore(db, series=False)
    else:
        from aicity.core.store_pg import in_schema, where_of

        db = f"{where_of(store[0])} schema {store[1]}"
        city_store = open_store(in_schema(*store))
    try:
        run = DistrictCity(city, districts=districts, mode=mode, seed=seed, store=city_store, out=mode_dir,
                           executor=executor(executor_name, address, cpus), key=key,
                           checkpoint_every=checkpoint_every, district_store=store)
        ep = run.run(queue_progress(progress_q, mode))
        stats = dict(ep.stats)
        return {
            "mode": mode, "city": city.name, "seed": seed,
            "domains": domain_entries(city, ep.results, ep.governance, ep.now),
            "loop": stats, "dead_letters": city_store.dead_letter_count + sum(int(c["dead_letters"])
                                                                        for c in ep.districts),
            "governance": merge_governance(ep.governance.summary(), ep.districts), "consent": {},
            "options": dict(options or {}), "db": db,
            "orchestration": orchestration_summary(city_store), "scale": ep.scale.to_dict(),
        }
    finally:
        city_store.close()
