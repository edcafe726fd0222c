"""One district of a partitioned city, run by its own governed loop (the body of a Ray actor).

Each step the coordinator calls :meth:`DistrictLoop.propose` (what crossed in is taken in, then sense, learn
and decide: the proposals and the entities sensed this step go back) and :meth:`DistrictLoop.act` (the kept
proposals are governed, actuated and audited here, the twins advance one step, and what left through a border
goes back). The district keeps its own store and tamper-evident ledger in its own folder.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aicity.core.capabilities import Bordered, Crossing, RejectedInput
from aicity.core.context import IdGenerator
from aicity.core.domain import Snapshot
from aicity.core.entity import Entity
from aicity.core.errors import ObservationError, UserError
from aicity.core.store import StateStore
from aicity.loop import TwinCall
from aicity.orchestrate.stage import Candidate, reads
from aicity.scale.partition import District


@dataclass
class Proposals:
    """What a district sends the coordinator each step: its proposals, what it sensed, its clock."""

    district: str
    elapsed_s: float
    time: datetime
    candidates: list[Candidate]
    entities: list[Entity]
    done: bool
    wall_s: float = 0.0


@dataclass
class Outbound:
    """What left a district through its borders during a step: ``(domain, neighbour, crossing)`` each."""

    district: str
    elapsed_s: float
    time: datetime
    crossings: list[tuple[str, str, Crossing]] = field(default_factory=list)
    calls: list[TwinCall] = field(default_factory=list)
    """Every call this step made on the district's twins (the coordinator keeps them: the recovery log)."""
    unrouted: int = 0
    done: bool = False
    wall_s: float = 0.0
    checkpoint: bytes | None = None
    """The district's state after this step, when the coordinator asked for one (None: it cannot save it)."""
    checkpoint_s: float = 0.0


class DistrictLoop:
    """A district's loop: its twins, planners, store and ledger (``out``), in one mode and seed."""

    def __init__(self, district: District, *, mode: str, seed: int, out: str, key: bytes | None = None,
                 store: tuple[str, str] | None = None) -> None:
        self.district = district
        self.store_at = store
        self.mode, self.seed, self.key = mode, seed, key
        self.out = Path(out)
        self._snapshot: Snapshot | None = None
        self.rejected_inbound = 0
        self.recovered: dict[str, Any] | None = None

    def alive(self) -> bool:
        """True: the worker answers (the executor's kill waits until it no longer does)."""
        return True

    def where(self) -> dict[str, Any]:
        """Where this worker runs: host, process id and, on Ray, the cluster node's id."""
        import os
        import socket
        import sys

        node = None
        if "ray" in sys.modules:  # only a Ray worker has imported it
            import ray

            if ray.is_initialized():
                node = str(ray.get_runtime_context().get_node_id())
        return {"host": socket.gethostname(), "pid": os.getpid(), "node": node}

    def open(self) -> float:
        """Build the district's governed loop (store, ledger, twins) and start it; its elapsed seconds.

        Done here, not in the constructor, so a refusal reaches the coordinator as the district's own error."""
        from aicity.core.store import SqliteStore, open_store
        from aicity.runner import prepare_run

        self.out.mkdir(parents=True, exist_ok=True)
        if self.store_at is None:
            self.db = str(self.out / "city.db")
            self.store: StateStore = SqliteStore(self.db, series=False)
        else:  # the district's own schema: a worker started anywhere in the cluster reaches it
            from aicity.core.store_pg import in_schema, where_of

            url, schema = self.store_at[0], f"{self.store_at[1]}_{self.district.name.lower()}"
            self.db = f"{where_of(url)} schema {schema}"
            self.store = open_store(in_schema(url, schema))
        self.run = prepare_run(self.district.city, mode=self.mode, seed=self.seed, store=self.store, out=self.out,
                               key=ledger_key(self.key))
        self.loop = self.run.loop
        self.loop.open()
        return float(self.loop.parts[0].twin.elapsed_s())

    def propose(self, inbound: Sequence[tuple[str, Crossing]], watch: frozenset[str] | None = None) -> Proposals:
        """Take in what crossed into the district, then sense, learn and decide. The entities sensed go back in
        full, or with ``watch`` only those the orchestration stage reads: entities carrying ``needs``, those named
        in ``watch`` (capacities other districts' proposals use) and those its own proposals use."""
        started = time.perf_counter()
        self._take_in(inbound)
        self.loop.journal = []
        candidates, snapshot = self.loop.propose()
        self._snapshot = snapshot
        cands = [Candidate(c.domain, c.proposal, c.priority, self.district.name) for c in candidates]
        sensed = list(self.loop.sensed)
        if watch is not None:
            wanted = watch | reads(cands)
            sensed = [e for e in sensed if e.id in wanted or e.get("needs") is not None]
        return Proposals(self.district.name, snapshot.elapsed_s, snapshot.time, cands, sensed,
                         self.loop.done(), time.perf_counter() - started)

    def act(self, kept: Sequence[Candidate], checkpoint: bool = False) -> Outbound:
        """Govern, actuate and audit the kept proposals, advance one step; what left through a border, and with
        ``checkpoint`` the district's state once they left (:meth:`save`)."""
        started = time.perf_counter()
        if self._snapshot is None:
            raise RuntimeError("act() before propose()")
        self.loop.act(kept, self._snapshot)
        self.loop.advance()
        out = self._outbound(started)
        out.calls = list(self.loop.journal or [])
        if checkpoint and not out.done:  # at the end there is nothing left to recover
            t0 = time.perf_counter()
            out.checkpoint = self.save()
            out.checkpoint_s = time.perf_counter() - t0
        return out

    def save(self) -> bytes | None:
        """The district's state between two steps (its loop's :meth:`~aicity.loop.CityLoop.save_checkpoint`
        and its own counters) as bytes for the coordinator to hold; None when a twin cannot save its own."""
        loop = self.loop.save_checkpoint()
        if loop is None:
            return None
        return pickle.dumps({"district": self.district.name, "loop": loop, "rejected_inbound": self.rejected_inbound},
                            protocol=pickle.HIGHEST_PROTOCOL)

    def _outbound(self, started: float) -> Outbound:
        elapsed = float(self.loop.parts[0].twin.elapsed_s())
        out = Outbound(self.district.name, elapsed, self.loop.clock.now())
        for run in self.loop.parts:
            if not isinstance(run.twin, Bordered):
                continue
            for crossing in run.twin.outbound():
                to = self.district.neighbour(run.name, crossing["via"])
                if to is None:  # the twin named no border of this district: kept, never dropped
                    out.unrouted += 1
                    self.store.dead_letter(f"{run.name}.border", ObservationError(
                        None, None, f"crossing through {crossing['via']!r}, which is no border of district "
                        f"{self.district.name!r}"), dict(crossing), now=self.loop.clock.now())
                    continue
                out.crossings.append((run.name, to, crossing))
        out.done = self.loop.done()
        out.wall_s = time.perf_counter() - started
        return out

    def recover(self, history: Sequence[tuple[Sequence[tuple[str, Crossing]], Sequence[TwinCall]]],
                inbound: Sequence[tuple[str, Crossing]], checkpoint: bytes | None = None,
                checkpoint_step: int = 0) -> Outbound:
        """Take over from a lost worker: open the district on its own store and ledger (which keep everything
        recorded before the loss), load its last ``checkpoint`` (taken after ``checkpoint_step`` steps; None: from
        the start), replay its recovery log since — the steps it completed, with what crossed in and the calls made
        on its twins — without recording anything twice, then run the step the worker was lost in with every twin
        in its safe state (recorded in the ledger); what left through a border in that step."""
        started = time.perf_counter()
        self.open()
        records_before = self.run.governance.ledger.size
        if checkpoint is not None:
            saved = pickle.loads(checkpoint)  # the coordinator's copy of this district's own bytes
            if saved.get("district") != self.district.name:
                raise UserError(f"district {self.district.name!r} was given {saved.get('district')!r}'s checkpoint")
            self.loop.load_checkpoint(saved["loop"])
            self.rejected_inbound = int(saved["rejected_inbound"])
        loaded_s = time.perf_counter() - started  # a new loop opened, and the checkpoint loaded into it
        for crossed, calls in history:
            self._take_in(crossed, quiet=True)
            self.loop.replay_step(calls)
            for run in self.loop.parts:  # what left then was delivered then
                if isinstance(run.twin, Bordered):
                    run.twin.outbound()
        replayed_s = time.perf_counter() - started - loaded_s
        steps = checkpoint_step + len(history)  # never the lost worker's ids again
        self.loop.ids = self.loop.settler.ids = IdGenerator(self.seed * 1_000_003 + steps)
        self._take_in(inbound)
        now = self.loop.clock.set_elapsed(self.loop.parts[0].twin.elapsed_s())
        for run in self.loop.parts:
            run.twin.safe_state()
            run.was_held = True  # the next step hands control back (Resumable twins)
        self.run.governance.governor.ledger.append({
            "id": f"recovery-{self.run.governance.ledger.size:07d}", "kind": "recovery", "time": now.isoformat(),
            "district": self.district.name, "checkpoint_step": checkpoint_step if checkpoint is not None else None,
            "replayed_steps": len(history), "replay_s": round(replayed_s, 3), "load_s": round(loaded_s, 3),
            "ledger_records_found": records_before,
            "detail": "the district's worker was lost; restored from " + (
                "its last checkpoint and its recovery log since" if checkpoint is not None else
                "its recovery log since the start (no checkpoint)") + "; every actuator held in its safe state "
                "for this step"})
        self.loop.advance()
        self.loop.journal = [(r.name, "safe_state", None) for r in self.loop.parts]
        out = self._outbound(started)
        out.calls = list(self.loop.journal)
        self.recovered = {"checkpoint_step": checkpoint_step if checkpoint is not None else None,
                          "replayed_steps": len(history), "load_s": loaded_s, "replay_s": replayed_s,
                          "ledger_records_found": records_before}
        return out

    def _take_in(self, inbound: Sequence[tuple[str, Crossing]], quiet: bool = False) -> None:
        by_domain: dict[str, list[Crossing]] = {}
        for dom, crossing in inbound:
            by_domain.setdefault(dom, []).append(crossing)
        twins = {r.name: r.twin for r in self.loop.parts}
        now = self.loop.clock.now()
        for dom, items in by_domain.items():
            twin = twins.get(dom)
            rejects: list[RejectedInput]
            if not isinstance(twin, Bordered):
                rejects = [{"source": f"{dom}.border", "reason": f"district {self.district.name!r} has no "
                            f"{dom} twin taking crossings", "payload": dict(c)} for c in items]
            else:
                rejects = twin.inbound(items)
            for item in rejects if not quiet else ():  # a replay's rejects were kept the first time
                self.rejected_inbound += 1
                self.store.dead_letter(str(item["source"]), ObservationError(None, None, str(item["reason"])),
                                       item["payload"], now=now)

    def close(self) -> dict[str, Any]:
        """Close the twins; every domain's result, the loop's counters and the governance summary."""
        results = self.loop.close()
        summary = self.run.governance.summary()
        stats = self.loop.stats.to_dict()
        stats["rejected_inbound"] = self.rejected_inbound
        stats["recovered"] = self.recovered
        reply = {"district": self.district.name, "results": results, "stats": stats, "governance": summary,
                 "dead_letters": self.store.dead_letter_count, "db": self.db}
        self.store.close()
        return reply


def new_key() -> bytes:
    """A throw-away ledger key as raw bytes (what crosses to a worker; benchmarks and tests)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    return Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def ledger_key(raw: bytes | None) -> Any:
    """The ledger key from raw bytes; None: the deployment key where the caller runs."""
    if raw is None:
        return None
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(raw)
