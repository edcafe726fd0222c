"""The coordinator of a partitioned city: steps every district together, settles the whole city's proposals in
one orchestration stage and routes what crosses a border to the district behind it.

Per decision interval each district gets one ``propose`` call (what crossed in since the last step goes with it)
and one ``act`` call (the proposals the stage kept for it; it advances one step and returns what left through
its borders). The stage sees the whole city: every district sends the entities it sensed this step (changes,
not snapshots), which the coordinator keeps as the city's latest view.
"""

from __future__ import annotations

import pickle
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aicity.core.capabilities import Crossing, Partitionable
from aicity.core.city import City
from aicity.core.context import IdGenerator
from aicity.core.domain import DomainResult, Snapshot
from aicity.core.entity import Entity
from aicity.core.errors import UserError
from aicity.core.store import StateStore
from aicity.loop import TwinCall
from aicity.orchestrate.stage import Candidate, reads
from aicity.scale.district import Outbound, ledger_key
from aicity.scale.executors import DistrictDied, Executor
from aicity.scale.partition import partition

Progress = Callable[[float, float], None]
BYTES_SAMPLE = 10
"""Bytes moved are measured (pickled again) on every 10th step and counted ten times."""
CHECKPOINT_EVERY = 30
"""Steps between two checkpoints of every district (30 decision intervals of 10 s: every 5 simulated minutes)."""
VIEWS = ("relevant", "full")
"""What each district sends the stage each step: the entities it reads (``relevant``: carrying ``needs``, or
named in a proposal's ``uses``), or every entity sensed (``full``)."""


@dataclass
class ScaleStats:
    """What running as districts cost: per-step wall time, bytes each way, crossings."""

    districts: int
    executor: str
    steps: int = 0
    step_wall_s: list[float] = field(default_factory=list)
    compute_s: dict[str, float] = field(default_factory=dict)
    bytes_to_coordinator: int = 0
    bytes_to_districts: int = 0
    crossings: int = 0
    crossings_by_kind: dict[str, int] = field(default_factory=dict)
    unrouted: int = 0
    in_flight_at_end: int = 0
    recoveries: list[dict[str, Any]] = field(default_factory=list)
    placement: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Where each district's worker ran at the start (host, pid, Ray node id)."""
    checkpoint_every: int = 0
    checkpoints: int = 0
    checkpoint_bytes: int = 0
    """Every checkpoint's bytes, summed (they travel to the coordinator, which keeps each district's last)."""
    checkpoint_max: int = 0
    """The largest single checkpoint (bytes)."""
    checkpoint_s: float = 0.0
    """Time the districts spent saving checkpoints, summed over districts."""
    without_checkpoint: list[str] = field(default_factory=list)
    """Districts whose state cannot be saved (a twin without the capability): their log runs from the start."""
    open_s: float = 0.0
    loop_s: float = 0.0
    wall_s: float = 0.0
    sim_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (step times as mean, p50, p95, max)."""
        walls = sorted(self.step_wall_s) or [0.0]
        return {
            "districts": self.districts, "executor": self.executor, "steps": self.steps,
            "step_ms": {"mean": 1000 * statistics.fmean(walls), "p50": 1000 * walls[len(walls) // 2],
                        "p95": 1000 * walls[min(len(walls) - 1, int(0.95 * len(walls)))],
                        "max": 1000 * walls[-1]},
            "compute_s": dict(self.compute_s), "bytes_to_coordinator": self.bytes_to_coordinator,
            "bytes_to_districts": self.bytes_to_districts,
            "bytes_per_step": (self.bytes_to_coordinator + self.bytes_to_districts) / max(1, self.steps),
            "crossings": self.crossings, "crossings_by_kind": dict(self.crossings_by_kind),
            "unrouted": self.unrouted, "in_flight_at_end": self.in_flight_at_end,
            "recoveries": list(self.recoveries), "placement": dict(self.placement),
            "checkpoint_every": self.checkpoint_every,
            "checkpoints": self.checkpoints, "checkpoint_bytes": self.checkpoint_bytes,
            "checkpoint_bytes_max": self.checkpoint_max, "checkpoint_s": self.checkpoint_s,
            "without_checkpoint": list(self.without_checkpoint), "open_s": self.open_s,
            "loop_s": self.loop_s, "wall_s": self.wall_s, "sim_s": self.sim_s,
            "real_time_factor": self.sim_s / self.loop_s if self.loop_s > 0 else 0.0}


@dataclass
class DistrictEpisode:
    """A partitioned run of a city in one mode: merged results, counters, each district's close reply."""

    results: dict[str, DomainResult]
    stats: dict[str, Any]
    scale: ScaleStats
    districts: list[dict[str, Any]]
    governance: Any
    now: Any


class DistrictCity:
    """A city run as districts in one mode: ``executor`` hosts the districts, this process coordinates."""

    def __init__(self, city: City, *, districts: int, mode: str, seed: int, store: StateStore, out: Path,
                 executor: Executor, key: bytes | None = None, kill: Mapping[int, str] | None = None,
                 view: str = "relevant", checkpoint_every: int = CHECKPOINT_EVERY,
                 district_store: tuple[str, str] | None = None) -> None:
        from aicity.governance.runtime import for_run
        from aicity.loop import LoopStats, Settler
        from aicity.orchestrate.stage import priority_table
        from aicity.runner import orchestration_for

        self.city = city
        self.parts = partition(city, districts)
        self.mode, self.seed, self.out, self.key = mode, seed, out, key
        self.district_store = district_store
        """(PostgreSQL URL, schema): each district keeps its state in ``<schema>_<district>``; None: SQLite files."""
        self.executor = executor
        self.governance = for_run(store=store, domains=city.domains, mode=mode, out=out,
                                  key=ledger_key(key))  # the city's view: equity on merged results, the policy
        orchestrator, priority, costs = orchestration_for(mode, self.governance.governor.policy, city)
        self.stats = LoopStats()
        self.settler = Settler(orchestrator, priority, priority_table({d.name: d.meta for d in city.domains}),
                               store, IdGenerator(seed), self.stats, costs=costs)
        self.scale = ScaleStats(len(self.parts), executor.name)
        self.latest: dict[str, Entity] = {}
        self.now: datetime | None = None
        self.kill: dict[int, str] = dict(kill or {})
        if view not in VIEWS:
            raise UserError(f"unknown district view {view!r}; use {' or '.join(VIEWS)}")
        self.view = view
        self.watch: set[str] = set()
        """Entities named in any proposal's ``uses`` so far: every district sends their changes."""
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 0:
            raise UserError(f"--checkpoint-every must be a whole number of steps, 0 (none) or more, "
                            f"not {checkpoint_every!r}")
        self.checkpoint_every = checkpoint_every
        self.scale.checkpoint_every = checkpoint_every
        self.history: dict[str, list[tuple[list[tuple[str, Crossing]], list[TwinCall]]]] = {
            d.name: [] for d in self.parts}
        """Each district's recovery log: per step completed since its last checkpoint (since the start when it
        has none), what crossed in and the calls made on its twins."""
        self.checkpoints: dict[str, tuple[int, bytes]] = {}
        """Each district's last checkpoint: the steps it covers and its bytes, held here (a worker on another
        machine shares no disk with the lost one)."""

    def run(self, progress: Progress | None = None) -> DistrictEpisode:
        """Run every district to the end of the window, together; merged results. A district whose worker is
        lost is recovered in the same step (:meth:`_recover`); ``kill`` (step → district) loses one on purpose."""
        started = time.perf_counter()
        names = [d.name for d in self.parts]
        inbox: dict[str, list[tuple[str, Crossing]]] = {n: [] for n in names}
        closed: list[dict[str, Any]] | None = None
        self.executor.spawn(self.parts, mode=self.mode, seed=self.seed, out=str(self.out / "districts"),
                            key=self.key, store=self.district_store)
        try:
            _alive(self.executor.call("open", [() for _ in names]))
            self.scale.placement = dict(zip(names, _alive(self.executor.call("where", [() for _ in names])),
                                            strict=True))
            self.scale.open_s = time.perf_counter() - started  # workers, twins and (maybe) the cluster started
            total = self.city.duration_s
            done = False
            while not done:
                t0 = time.perf_counter()
                watch = frozenset(self.watch) if self.view == "relevant" else None
                args = [(inbox[n], watch) for n in names]
                sample = self.scale.steps % BYTES_SAMPLE == 0  # pickling everything again costs: every 10th step
                self.scale.bytes_to_districts += _size(args, sample)
                inbox = {n: [] for n in names}
                replies = self.executor.call("propose", args)
                self.scale.bytes_to_coordinator += _size(replies, sample)
                lost = {i for i, r in enumerate(replies) if isinstance(r, DistrictDied)}
                kept = self._settle([r for i, r in enumerate(replies) if i not in lost])
                if self.scale.steps in self.kill:  # a fault on purpose: after proposing, before acting
                    self.executor.kill(names.index(self.kill[self.scale.steps]))
                save = self.checkpoint_every > 0 and (self.scale.steps + 1) % self.checkpoint_every == 0
                args2 = [None if i in lost else (kept.get(n, []), save) for i, n in enumerate(names)]
                self.scale.bytes_to_districts += _size(args2, sample)
                outs = self.executor.call("act", args2)
                self.scale.bytes_to_coordinator += _size(outs, sample) - sample * BYTES_SAMPLE * sum(
                    len(o.checkpoint) for o in outs if isinstance(o, Outbound) and o.checkpoint is not None)
                # checkpoints are counted apart (checkpoint_bytes), once each
                lost |= {i for i, o in enumerate(outs) if isinstance(o, DistrictDied)}
                for i in sorted(lost):
                    outs[i] = self._recover(i, args[i][0])
                for i, out in enumerate(outs):
                    self._keep(names[i], args[i][0], out, save and i not in lost)
                    self.scale.compute_s[out.district] = self.scale.compute_s.get(out.district, 0.0) + out.wall_s
                    self.scale.unrouted += out.unrouted
                    for dom, to, crossing in out.crossings:
                        inbox[to].append((dom, crossing))
                        self.scale.crossings += 1
                        kind = crossing["kind"]
                        self.scale.crossings_by_kind[kind] = self.scale.crossings_by_kind.get(kind, 0) + 1
                for i, reply in enumerate(replies):
                    if i not in lost:
                        self.scale.compute_s[reply.district] = (self.scale.compute_s.get(reply.district, 0.0)
                                                                + reply.wall_s)
                done = any(o.done for o in outs)
                self.scale.steps += 1
                self.scale.step_wall_s.append(time.perf_counter() - t0)
                self.scale.sim_s = outs[0].elapsed_s
                self.now = outs[0].time
                if progress is not None:
                    progress(min(self.scale.sim_s, total), total)
            self.scale.loop_s = time.perf_counter() - started - self.scale.open_s
            self.scale.in_flight_at_end = sum(len(v) for v in inbox.values())  # left, the window ended first
            closed = _alive(self.executor.call("close", [() for _ in names]))
        finally:
            self.executor.close()
        self.scale.wall_s = time.perf_counter() - started
        return self._episode(closed)

    def _keep(self, name: str, inbound: list[tuple[str, Crossing]], out: Any, asked: bool) -> None:
        """Keep a completed step in the district's recovery log, or its checkpoint (the log then starts anew)."""
        if out.checkpoint is not None:
            self.checkpoints[name] = (self.scale.steps + 1, out.checkpoint)
            self.history[name] = []
            self.scale.checkpoints += 1
            self.scale.checkpoint_bytes += len(out.checkpoint)
            self.scale.checkpoint_max = max(self.scale.checkpoint_max, len(out.checkpoint))
            self.scale.checkpoint_s += out.checkpoint_s
            return
        if asked and not out.done and name not in self.scale.without_checkpoint:
            self.scale.without_checkpoint.append(name)
        self.history[name].append((inbound, out.calls))

    def _recover(self, index: int, inbound: list[tuple[str, Crossing]]) -> Any:
        """A new worker for district ``index`` loads its last checkpoint, replays its recovery log since and runs
        this step in its safe state."""
        name = self.parts[index].name
        t0 = time.perf_counter()
        self.executor.respawn(index)
        args: list[tuple[Any, ...] | None] = [None] * len(self.parts)
        at, saved = self.checkpoints.get(name, (0, None))
        args[index] = (self.history[name], inbound, saved, at)
        out = self.executor.call("recover", args)[index]
        if isinstance(out, DistrictDied):
            raise out
        took = time.perf_counter() - t0
        args[index] = ()
        (where,) = _alive([self.executor.call("where", args)[index]])
        self.scale.recoveries.append({"district": name, "step": self.scale.steps, "worker": where,
                                      "checkpoint_step": at if saved is not None else None,
                                      "checkpoint_bytes": len(saved) if saved is not None else 0,
                                      "replayed_steps": len(self.history[name]),
                                      "recovery_s": took, "safe_state_within_steps": 1})
        return out

    def _settle(self, replies: list[Any]) -> dict[str, list[Candidate]]:
        elapsed = {round(r.elapsed_s, 6) for r in replies}
        if len(elapsed) != 1:
            raise UserError(f"districts fell out of step: elapsed seconds {sorted(elapsed)}")
        candidates: list[Candidate] = []
        for reply in replies:
            for entity in reply.entities:
                self.latest[entity.id] = entity
            candidates.extend(reply.candidates)
        snapshot = Snapshot(replies[0].time, replies[0].elapsed_s, dict(self.latest))
        kept: dict[str, list[Candidate]] = {}
        self.watch |= reads(candidates)
        for cand in self.settler(candidates, snapshot):
            kept.setdefault(cand.origin, []).append(cand)
        return kept

    def _episode(self, closed: list[dict[str, Any]] | None) -> DistrictEpisode:
        if closed is None:
            raise UserError("the districts did not close")
        results: dict[str, DomainResult] = {}
        for part in self.city:
            dom = part.domain
            assert isinstance(dom, Partitionable)
            results[part.name] = dom.merge_results({c["district"]: c["results"][part.name] for c in closed})
        stats = self.stats.to_dict()  # the stage's own counts (districts settle nothing themselves)
        for c in closed:
            _add_counts(stats, c["stats"])
        stats["steps"] = self.scale.steps
        stats["sim_s"] = max(float(c["stats"].get("sim_s", 0.0)) for c in closed)
        stats["wall_s"] = self.scale.wall_s
        self.scale.sim_s = stats["sim_s"]
        return DistrictEpisode(results, stats, self.scale, closed, self.governance, self.now)


def _add_counts(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    """Add every whole-number counter of ``other`` (nested ones too) into ``into``."""
    for key, value in other.items():
        if isinstance(value, Mapping):
            _add_counts(into.setdefault(key, {}), value)
        elif isinstance(value, int) and not isinstance(value, bool):
            into[key] = int(into.get(key, 0)) + value


def _alive(replies: list[Any]) -> list[Any]:
    """``replies`` when every district answered; else its worker's loss, raised."""
    for r in replies:
        if isinstance(r, DistrictDied):
            raise r
    return replies


def merge_governance(city: Mapping[str, Any], districts: list[dict[str, Any]]) -> dict[str, Any]:
    """The city's governance summary with every district's ledger counted in (each district keeps its own)."""
    out = dict(city)
    out["ledger_records"] = int(city.get("ledger_records", 0)) + sum(
        int(d["governance"].get("ledger_records", 0)) for d in districts)
    out["ledger_verified"] = bool(city.get("ledger_verified", True)) and all(
        bool(d["governance"].get("ledger_verified", True)) for d in districts)
    out["district_ledgers"] = {d["district"]: {k: d["governance"].get(k) for k in (
        "ledger_records", "ledger_verified", "ledger_root", "audit_export")} for d in districts}
    return out


def _size(obj: Any, sample: bool) -> int:
    """Bytes ``obj`` takes pickled (what a cluster moves for it, near enough), counted for the steps a sampled
    step stands for; 0 on the others."""
    return len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)) * BYTES_SAMPLE if sample else 0

