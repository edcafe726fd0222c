"""Runs a city in Smart City mode and AI City mode on the same twins and seed, then writes the report.

:func:`run_city` is the one way to run a city in one mode — the governed loop with its store — and the
benchmarks call it too, so a benchmark measures the product.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicity.core.city import City
from aicity.core.domain import DomainResult, RunServices
from aicity.core.errors import UserError
from aicity.core.store import StateStore

if TYPE_CHECKING:
    from aicity.governance.rules import Policy
    from aicity.orchestrate.costs import OutageCosts
    from aicity.orchestrate.stage import Orchestrator, PriorityPolicy

MODES = ("smart", "ablation", "ai")
"""Smart City (each domain's baseline, uncoordinated); the ablation (each domain's AI, uncoordinated); AI City
(each domain's AI under the orchestration stage's priority policy)."""
MAX_SEED = 2**31 - 1
MAX_SEEDS = 10_000
"""The most seeds one benchmark command takes (a typo like ``1-100000000`` must not run for ever)."""


@dataclass(frozen=True)
class RunSpec:
    """What to run: a scenario or city (name or path; the default when None), modes, seed, output, options.

    ``options`` are scenario options, validated by the domain that declares each (``key`` or ``domain.key``);
    ``duration_s`` runs only the first seconds of the scenario's window; ``store`` is a ``postgresql://`` URL to
    keep each mode's state in (a schema per run folder and mode) instead of ``<out>/<mode>/city.db``;
    ``districts`` runs the city as that many districts on ``executor`` (``ray``: at ``ray_address``, or a local
    cluster; see :mod:`aicity.scale`).
    """

    scenario: str | None
    modes: tuple[str, ...]
    seed: int
    out: Path
    options: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float | None = None
    store: str | None = None
    districts: int | None = None
    executor: str = "ray"
    ray_address: str | None = None
    checkpoint_every: int | None = None


@dataclass
class Episode:
    """One run of a city in one mode: every part's result, the loop's counters and the governance layer."""

    results: dict[str, DomainResult]
    stats: Any
    governance: Any
    now: datetime
    consent: Any = None
    summary: dict[str, Any] | None = None


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as scenario options; a value is read as JSON when it parses (``0.2``, ``true``,
    ``{"fraction": 0.2}``), else kept as text. ``NaN`` and ``Infinity`` are refused here already."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"bad option {pair!r}: use KEY=VALUE or DOMAIN.KEY=VALUE (see aicity run --help)")
        try:
            out[key] = json.loads(text, parse_constant=_refuse_constant)
        except _Constant as exc:
            raise UserError(f"option {key} must be a finite number, got {text!r}") from exc
        except RecursionError:
            raise UserError(f"option {key}: its value is nested too deeply to read") from None
        except ValueError:
            out[key] = text
    return out


class _Constant(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _Constant(name)


def check_seed(seed: int) -> int:
    """Refuse seeds SUMO and numpy cannot take."""
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"seed {seed} is out of range: use a whole number from 0 to {MAX_SEED}")
    return seed


def prepare_out(out: Path | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Path:
    """The output folder, created and checked writable; the default ``runs/<timestamp>/`` is always a new folder
    (a second run started in the same second gets ``runs/<timestamp>-2/``)."""
    try:
        if out is None:
            base = Path("runs") / now().strftime("%Y%m%d-%H%M%S")
            base.parent.mkdir(parents=True, exist_ok=True)
            for n in range(1, 1000):
                path = base if n == 1 else base.with_name(f"{base.name}-{n}")
                try:
                    path.mkdir()
                    break
                except FileExistsError:
                    continue
            else:
                raise UserError(f"no free output folder next to {str(base)!r}: pass --out")
        else:
            path = out
            path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to output folder {str(out or 'runs')!r}: {exc.strerror or exc}") from exc
    return path


@contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """Hold ``out`` for one run: a second run into the same folder is refused with one line."""
    import fcntl

    path = out / ".aicity-run.lock"
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UserError(f"output folder {str(out)!r} is in use by another run ({holder}); "
                            "wait for it or pass another --out") from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()


def load_city(scenario: str | None, options: Mapping[str, Any] | None = None,
              duration_s: float | None = None) -> City:
    """The city to run: resolved across the installed domains, options validated, window cut."""
    from aicity.core.city import resolve_city
    from aicity.core.domain import discover, warn_plugin

    city = resolve_city(discover(on_error=warn_plugin), scenario)
    if options:
        city = city.with_options(options)
    return city.window(duration_s)


@dataclass
class CityRun:
    """A city ready to run in one mode: the loop with its governance and consent registry."""

    loop: Any
    governance: Any
    consent: Any

    @property
    def twins(self) -> dict[str, Any]:
        """Every part's twin by domain."""
        return {p.name: p.twin for p in self.loop.parts}

    def run(self, progress: Callable[[float, float], None] | None = None, total_s: float | None = None) -> Episode:
        """Run the loop to the end of the window."""
        results = self.loop.run(progress, total_s)
        return Episode(results, self.loop.stats, self.governance, self.loop.clock.now(), self.consent)


def prepare_run(city: City, *, mode: str, seed: int, store: StateStore, out: Path,
                controllers: Mapping[str, str] | None = None, key: Any = None, previous: Path | None = None,
                policy: Any = None) -> CityRun:
    """Build the governed loop for ``city`` in ``mode``: governance, consent, every part's twin and planners.

    ``controllers`` picks a named controller per domain instead of the mode's planners (benchmarks); ``key``
    signs the ledger (default: the deployment's key); ``previous`` is the database of an earlier run in the
    same folder (active stops carry over); ``policy`` replaces the site policy (tests).
    """
    from aicity.governance.consent import ConsentRegistry
    from aicity.governance.runtime import for_run
    from aicity.loop import CityLoop, open_parts

    governance = for_run(store=store, domains=city.domains, mode=mode, out=out, key=key, previous=previous,
                         policy=policy)
    consent = ConsentRegistry(store, governance.ledger)  # personal data is consented into the run's ledger
    services = RunServices(consent=consent)
    parts = open_parts(city, mode=domain_mode(mode), seed=seed, services=services, controllers=controllers)
    orchestrator, priority, costs = orchestration_for(mode, governance.governor.policy, city)
    loop = CityLoop(parts, mode=mode, seed=seed, store=store, governance=governance, orchestrator=orchestrator,
                    priority=priority, costs=costs)
    return CityRun(loop, governance, consent)


def domain_mode(mode: str) -> str:
    """The mode each domain runs in: the ablation runs every domain's AI (only the orchestration differs)."""
    return "ai" if mode == "ablation" else mode


def orchestration_for(mode: str, policy: Policy,
                      city: City) -> tuple[Orchestrator, PriorityPolicy, OutageCosts]:
    """The orchestration stage of ``mode`` (AI City: the policy's priority order; otherwise per-target
    precedence), the priority policy every mode's violations are counted against, and the domains' outage cost
    models both weigh needs by (one instance, so they learn once a step)."""
    from aicity.orchestrate.costs import OutageCosts
    from aicity.orchestrate.stage import Precedence, PriorityOrchestrator, PriorityPolicy, priority_table

    priority = PriorityPolicy(tuple(policy.priority), policy.version, policy.sha256)
    costs = OutageCosts.from_metas({d.name: d.meta for d in city.domains})
    if mode != "ai":
        return Precedence(), priority, costs
    return (PriorityOrchestrator(priority, priority_table({d.name: d.meta for d in city.domains}), costs), priority,
            costs)


def run_city(city: City, *, mode: str, seed: int, store: StateStore, out: Path,
             controllers: Mapping[str, str] | None = None, progress: Callable[[float, float], None] | None = None,
             key: Any = None, previous: Path | None = None) -> Episode:
    """Run ``city`` in ``mode`` through the governed loop (see :func:`prepare_run`)."""
    run = prepare_run(city, mode=mode, seed=seed, store=store, out=out, controllers=controllers, key=key,
                      previous=previous)
    return run.run(progress, city.duration_s)


def store_urls(store: str, out: Path, modes: Sequence[str]) -> dict[str, str]:
    """Each mode's store URL in the PostgreSQL database ``store``: a schema per run folder and mode (created)."""
    from aicity.core.store import POSTGRES_SCHEMES

    if not store.startswith(POSTGRES_SCHEMES):
        raise UserError(f"--store takes a postgresql:// URL, got {store.split('://', 1)[0]!r} (SQLite is the "
                        "default: one city.db per mode in the output folder)")
    try:
        from aicity.core.store_pg import in_schema
    except ImportError as exc:
        raise UserError("a PostgreSQL store needs psycopg: pip install 'aicity[postgres]'") from exc
    return {m: in_schema(store, store_schema(out, m)) for m in modes}


def store_schema(out: Path, mode: str) -> str:
    """The PostgreSQL schema of one mode of the run in ``out`` (its districts' schemas add ``_<district>``)."""
    run = "".join(c if c.isalnum() else "_" for c in out.resolve().name.lower())[:40]
    return f"aicity_{run}_{mode}"


def run_mode(scenario: str | None, mode: str, seed: int, out: str, options: Mapping[str, Any] | None = None,
             duration_s: float | None = None, store_url: str | None = None,
             progress_q: Any = None) -> dict[str, Any]:
    """Run one mode in this process (libsumo allows one simulation per process); returns a JSON-ready dict."""
    from aicity.core.store import SqliteStore, open_store

    city = load_city(scenario, options, duration_s)
    mode_dir = Path(out) / mode
    mode_dir.mkdir(parents=True, exist_ok=True)
    db: Path | str = mode_dir / "city.db"
    if store_url is not None:
        from aicity.core.store_pg import where_of

        db = where_of(store_url)
    # a run's file keeps history, events and the ledger; the temporal API's series index is rebuilt from history
    # if the platform ever opens it (writing it during the run would halve the loop's speed)
    store = open_store(store_url) if store_url is not None else SqliteStore(db, series=False)
    try:
        ep = run_city(city, mode=mode, seed=seed, store=store, out=mode_dir, progress=queue_progress(progress_q, mode),
                      previous=_previous_db(Path(out), mode))
        return {
            "mode": mode, "city": city.name, "seed": seed, "domains": domain_entries(city, ep.results,
                                                                                    ep.governance, ep.now),
            "loop": ep.stats.to_dict(), "dead_letters": store.dead_letter_count,
            "governance": ep.governance.summary(), "consent": ep.consent.counts() if ep.consent else {},
            "options": dict(options or {}), "db": str(db), "orchestration": orchestration_summary(store),
        }
    finally:
        store.close()


def queue_progress(progress_q: Any, mode: str) -> Callable[[float, float], None]:
    """A progress callback putting ``("progress", mode, done, total)`` on a worker's queue, every 0.5 %."""
    last = [0.0]

    def progress(done: float, total: float) -> None:
        if progress_q is not None and (done - last[0] >= total / 200 or done >= total):
            last[0] = done
            progress_q.put(("progress", mode, done, total))

    return progress


def domain_entries(city: City, results: Mapping[str, DomainResult], governance: Any,
                   now: datetime) -> dict[str, dict[str, Any]]:
    """Each part's result as the report reads it: KPIs with their declarations, groups, series, equity audit."""
    domains = {}
    for part in city:
        res = results[part.name]
        domains[part.name] = {
            "scenario": part.scenario.name, "kpis": res.kpis, "groups": res.groups, "series": res.series,
            "extra": res.extra, "equity": governance.equity(part.name, res, now=now),
            "kpi_meta": [k.to_dict() for k in part.domain.meta.kpis],
            "reference": dict(res.reference), "reference_name": res.reference_name,
            "options": dict(part.scenario.params)}
    return domains


def orchestration_summary(store: StateStore, keep: int = 10) -> dict[str, Any]:
    """How the orchestration stage settled conflicts between domains: counts by resolution and the first
    resolutions in plain words, with the policy version that decided."""
    events = store.events(type="orchestration")
    counts: dict[str, int] = {}
    for e in events:
        kind = str(e.data.get("resolution", "dropped"))
        counts[kind] = counts.get(kind, 0) + 1
    first = [{"time": e.time.isoformat(), "target": e.entity_id, "resolution": e.data.get("resolution"),
              "reason": e.data.get("reason"), "policy": e.data.get("policy_version")} for e in events[:keep]]
    return {"counts": counts, "first": first}


def _previous_db(out: Path, mode: str) -> Path | None:
    """The database of the previous run in this folder, moved aside by :func:`move_previous` (if any)."""
    found = sorted(out.glob(f"previous-*/{mode}/city.db"))
    return found[-1] if found else None


def move_previous(out: Path, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Path | None:
    """Move an earlier run's files in ``out`` aside to ``out/previous-<time>/`` (never delete a ledger)."""
    names = [p for p in out.iterdir() if not p.name.startswith(("previous-", "."))]
    if not names:
        return None
    target = out / f"previous-{now().strftime('%Y%m%d-%H%M%S-%f')}"
    target.mkdir()
    for p in names:
        p.rename(target / p.name)
    return target


def run(spec: RunSpec, *, jobs: int | None = None, show_progress: bool = True) -> dict[str, Any]:
    """Run every mode of ``spec`` (in parallel processes) and write the report; returns the report dict."""
    from aicity.report.writer import write_report

    check_seed(spec.seed)
    for mode in spec.modes:
        if mode not in MODES:
            raise UserError(f"unknown mode {mode!r}; use smart, ablation, ai, both, all or auto")
    city = load_city(spec.scenario, spec.options, spec.duration_s)  # fail fast, before any process starts
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(spec.modes)))
    if spec.districts is not None:
        jobs = 1  # the modes take turns on one cluster: each already runs a worker per district
    urls = store_urls(spec.store, spec.out, spec.modes) if spec.store else {}
    with folder_lock(spec.out):
        notes = []
        moved = move_previous(spec.out)
        if moved is not None:
            notes.append(f"the previous run in this folder was moved to {moved.name}/ (its ledger is kept)")
            print(f"aicity: {notes[-1]}", file=sys.stderr)
        started = time.perf_counter()
        results = _run_all(spec, jobs, show_progress, city.duration_s, urls)
        wall = time.perf_counter() - started
        return write_report(spec.out, city=city, seed=spec.seed, results=results, wall_s=wall, notes=notes)


def _run_all(spec: RunSpec, jobs: int, show_progress: bool, total: float,
             urls: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    from tqdm import tqdm

    from aicity.workers import run_parallel

    bars = {m: tqdm(total=round(total), desc=f"{m:>5} city", unit="sim s", disable=not show_progress,
                    leave=True, position=i) for i, m in enumerate(spec.modes)}

    def progress(mode: str, done: float, _total: float) -> None:
        bar = bars[mode]
        bar.update(max(0, round(done) - bar.n))

    def crash_log(tag: str, trace: str) -> str:
        path = spec.out / f"{tag}-crash.log"
        path.write_text(trace)
        return str(path)

    tasks: list[tuple[str, Callable[..., dict[str, Any]], tuple[Any, ...]]]
    if spec.districts is not None:
        from aicity.scale.coordinator import CHECKPOINT_EVERY
        from aicity.scale.run import run_mode_districts

        every = CHECKPOINT_EVERY if spec.checkpoint_every is None else spec.checkpoint_every
        tasks = [(m, functools.partial(run_mode_districts, checkpoint_every=every,
                                       store=(spec.store, store_schema(spec.out, m)) if spec.store else None),
                  (spec.scenario, m, spec.seed, str(spec.out), dict(spec.options), spec.duration_s, spec.districts,
                   spec.executor, spec.ray_address, None)) for m in spec.modes]
    else:
        tasks = [(m, run_mode, (spec.scenario, m, spec.seed, str(spec.out), dict(spec.options), spec.duration_s,
                                urls.get(m))) for m in spec.modes]
    try:
        return run_parallel(tasks, jobs=jobs, progress=progress, crash_log=crash_log)
    finally:
        for bar in bars.values():
            bar.close()


def bench_run(city: City, *, mode: str, seed: int, controllers: Mapping[str, str] | None = None,
              at_s: float = 0.0, hook: Callable[[Any], None] | None = None) -> Episode:
    """One benchmark episode through :func:`run_city`: an in-memory store, a throw-away ledger key and folder;
    ``hook(loop)`` is called once the loop reached ``at_s`` (what-if copies, tests)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from aicity.core.store import SqliteStore

    store = SqliteStore(":memory:", series=False)
    with tempfile.TemporaryDirectory(prefix="aicity-bench-") as tmp:
        try:
            run = prepare_run(city, mode=mode, seed=seed, store=store, out=Path(tmp), controllers=controllers,
                              key=Ed25519PrivateKey.generate())
            fired = False

            def progress(done_s: float, total_s: float) -> None:
                nonlocal fired
                if hook is not None and not fired and done_s + 1e-9 >= at_s:
                    fired = True
                    hook(run.loop)

            ep = run.run(progress if hook is not None else None, city.duration_s)
            ep.summary = ep.governance.summary()  # while its folder exists
            return ep
        finally:
            store.close()


def parse_modes(text: str, parts: int = 1) -> tuple[str, ...]:
    """``auto`` → every mode for a city of several domains, (smart, ai) for one; ``both`` → (smart, ai);
    ``all`` → (smart, ablation, ai); a comma list or one mode as named."""
    if text == "auto":
        return MODES if parts > 1 else ("smart", "ai")
    if text == "both":
        return ("smart", "ai")
    if text == "all":
        return MODES
    names = tuple(m.strip() for m in text.split(","))
    for m in names:
        if m not in MODES:
            raise UserError(f"unknown mode {m!r}; use smart, ablation, ai, both, all or auto")
    return names


def parse_seeds(text: str) -> list[int]:
    """Parse ``1,2,3`` or ``1-8`` into seeds, checking each (at most :data:`MAX_SEEDS`)."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise UserError(f"seed range {part!r} runs backwards; write it low-high, e.g. {hi}-{lo}")
                if hi - lo + 1 > MAX_SEEDS:
                    raise UserError(f"seed range {part!r} has {hi - lo + 1} seeds; at most {MAX_SEEDS}")
                seeds.extend(range(lo, hi + 1))
            elif part:
                seeds.append(int(part))
        except ValueError as exc:
            raise UserError(f"bad seed list {text!r}: {part!r} is not a whole number or range") from exc
    if not seeds:
        raise UserError("no seeds given")
    if len(seeds) > MAX_SEEDS:
        raise UserError(f"{len(seeds)} seeds given; at most {MAX_SEEDS}")
    return [check_seed(s) for s in seeds]


def parse_list(text: str, known: Sequence[str] | None = None, what: str = "item") -> list[str]:
    """Parse a comma list, checking names against ``known`` when given."""
    items = [p.strip() for p in text.split(",") if p.strip()]
    if not items:
        raise UserError(f"no {what} given")
    if known is not None:
        for item in items:
            if item not in known:
                raise UserError(f"unknown {what} {item!r}; known: {', '.join(known)}")
    return items
