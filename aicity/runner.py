"""Runs a scenario in Smart City mode and AI City mode on the same twin and seed, then writes the report."""

from __future__ import annotations

import dataclasses
import inspect
import json
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError

MODES = ("smart", "ai")
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class RunSpec:
    """What to run: a scenario (name or path), the modes, a seed, where to write, and scenario options.

    ``options`` override the scenario's parameters in both modes (e.g. mobility's ``probes``, ``ev_per_hour``,
    ``decision_interval_s``); the domain validates them when it opens the twin.
    """

    scenario: str
    modes: tuple[str, ...]
    seed: int
    out: Path
    options: Mapping[str, Any] = field(default_factory=dict)


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as scenario options; a value is read as JSON when it parses (``0.2``, ``true``,
    ``{"fraction": 0.2}``), else kept as text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"bad option {pair!r}: use KEY=VALUE, e.g. --set ev_per_hour=20")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


def check_seed(seed: int) -> int:
    """Refuse seeds SUMO and numpy cannot take."""
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"seed {seed} is out of range: use a whole number from 0 to {MAX_SEED}")
    return seed


def prepare_out(out: Path | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Path:
    """The output folder (default ``runs/<timestamp>/``), created and checked writable."""
    path = out if out is not None else Path("runs") / now().strftime("%Y%m%d-%H%M%S")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to output folder {str(path)!r}: {exc.strerror or exc}") from exc
    return path


def resolve(scenario: str | None) -> tuple[Any, Any]:
    """Find the domain and scenario for a name or path (the default scenario when None)."""
    from aicity.core.domain import discover, find_scenario

    domains = discover()
    if not domains:
        raise UserError("no domain is installed (reinstall aicity)")
    if scenario is None:
        for domain in domains.values():
            default = getattr(domain, "default_scenario", None)
            if default:
                scenario = default
                break
        else:
            scenario = next(iter(domains.values())).scenarios()[0].name
    return find_scenario(domains, scenario)


def run_mode(scenario: str, mode: str, seed: int, out: str, progress_q: Any = None,
             options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run one mode in this process (libsumo allows one simulation per process); returns a JSON-ready dict."""
    from aicity.core.store import SqliteStore
    from aicity.loop import CityLoop

    domain, scen = resolve(scenario)
    if options:
        scen = dataclasses.replace(scen, params={**scen.params, **options})
    mode_dir = Path(out) / mode
    mode_dir.mkdir(parents=True, exist_ok=True)
    db = mode_dir / "city.db"
    if db.exists():
        db.unlink()
    store = SqliteStore(db)
    governance = _governance(store, domain.name, mode, mode_dir)
    consent = _consent_registry(store, governance)
    twin_kw: dict[str, Any] = {}
    if consent is not None and "consent" in inspect.signature(domain.open_twin).parameters:
        twin_kw["consent"] = consent  # personal data (e.g. probe vehicles) is consented into the run's ledger
    twin = domain.open_twin(scen, seed=seed, mode=mode, **twin_kw)
    loop = CityLoop(domain, scen, mode=mode, seed=seed, store=store, governance=governance, twin=twin)
    last = [0.0]

    def progress(done: float, total: float) -> None:
        if progress_q is not None and (done - last[0] >= total / 200 or done >= total):
            last[0] = done
            progress_q.put((mode, done, total))

    result = loop.run(progress)
    equity = governance.equity(result, now=loop.clock.now()) if governance is not None else {}
    summary = getattr(governance, "summary", None)
    out_dict = {
        "mode": mode, "domain": domain.name, "scenario": scen.name, "seed": seed,
        "kpis": result.kpis, "groups": result.groups, "series": result.series, "extra": result.extra,
        "loop": loop.stats.to_dict(), "dead_letters": store.dead_letter_count, "equity": equity,
        "governance": summary() if callable(summary) else {},
        "consent": _consent_summary(consent),
        "options": dict(options or {}),
        "db": str(db),
    }
    store.close()
    return out_dict


def _consent_registry(store: Any, governance: Any) -> Any:
    """The run's consent registry (in the run's store, consent events in its ledger), when governance is on."""
    if governance is None:
        return None
    from aicity.governance.consent import ConsentRegistry

    return ConsentRegistry(store.connection, governance.ledger)


def _consent_summary(registry: Any) -> dict[str, Any]:
    """Consents given and withdrawn during the run (counts only: no subject ids leave the store)."""
    if registry is None:
        return {}
    return registry.counts() if hasattr(registry, "counts") else {}


def _governance(store: Any, domain: str, mode: str, out: Path) -> Any:
    """The governance layer for a run, when it is installed."""
    try:
        from aicity.governance.runtime import for_run
    except ImportError:
        return None
    return for_run(store=store, domain=domain, mode=mode, out=out)


def run(spec: RunSpec, *, jobs: int | None = None, show_progress: bool = True) -> dict[str, Any]:
    """Run every mode of ``spec`` (in parallel processes) and write the report; returns the report dict."""
    from aicity.report.writer import write_report

    check_seed(spec.seed)
    domain, scen = resolve(spec.scenario)
    check = getattr(domain, "check_params", None)
    if spec.options and callable(check):
        check({**scen.params, **spec.options})  # fail fast, before any process starts
    for mode in spec.modes:
        if mode not in MODES:
            raise UserError(f"unknown mode {mode!r}; use ai, smart or both")
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(spec.modes)))
    started = time.perf_counter()
    results = _run_all(spec, jobs, show_progress, scen.duration_s)
    wall = time.perf_counter() - started
    return write_report(spec.out, scenario=scen, domain=domain.name, seed=spec.seed, results=results,
                        wall_s=wall)


def _run_all(spec: RunSpec, jobs: int, show_progress: bool, total: float) -> dict[str, dict[str, Any]]:
    from tqdm import tqdm

    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    progress_q = manager.Queue()
    bars = {m: tqdm(total=round(total), desc=f"{m:>5} city", unit="sim s", disable=not show_progress,
                    leave=True, position=i) for i, m in enumerate(spec.modes)}
    results: dict[str, dict[str, Any]] = {}
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures: dict[str, Future[dict[str, Any]]] = {
                m: pool.submit(run_mode, spec.scenario, m, spec.seed, str(spec.out), progress_q,
                               dict(spec.options))
                for m in spec.modes}
            while not all(f.done() for f in futures.values()):
                _drain(progress_q, bars, timeout=0.2)
            _drain(progress_q, bars, timeout=0.0)
            for mode, fut in futures.items():
                results[mode] = fut.result()
    finally:
        for bar in bars.values():
            bar.close()
        manager.shutdown()
    return results


def _drain(progress_q: Any, bars: dict[str, Any], timeout: float) -> None:
    try:
        while True:
            mode, done, _total = progress_q.get(timeout=timeout)
            bar = bars[mode]
            bar.update(max(0, round(done) - bar.n))
    except queue.Empty:
        return


def parse_modes(text: str) -> tuple[str, ...]:
    """``both`` → (smart, ai); otherwise the one mode named."""
    if text == "both":
        return MODES
    if text in MODES:
        return (text,)
    raise UserError(f"unknown mode {text!r}; use ai, smart or both")


def parse_seeds(text: str) -> list[int]:
    """Parse ``1,2,3`` or ``1-8`` into seeds, checking each."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                seeds.extend(range(int(lo), int(hi) + 1))
            elif part:
                seeds.append(int(part))
        except ValueError as exc:
            raise UserError(f"bad seed list {text!r}: {part!r} is not a whole number or range") from exc
    if not seeds:
        raise UserError("no seeds given")
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
