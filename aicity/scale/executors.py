"""Where districts run: on Ray actors (a local cluster, or any cluster by address), or in this process (one
district only: libsumo runs one simulation per process)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from typing import Any, Protocol

from aicity.core.errors import UserError
from aicity.scale.partition import District

EXECUTORS = ("ray", "local")


class DistrictDied(UserError):
    """A district's worker is gone (killed, crashed, its machine lost)."""

    def __init__(self, district: str, why: str) -> None:
        super().__init__(f"district {district!r}: its worker died ({why})")
        self.district = district


class DistrictFailed(UserError):
    """A district's loop raised an unexpected error (its traceback is the cause)."""

    def __init__(self, district: str, exc: BaseException) -> None:
        first = str(getattr(exc, "cause", None) or exc).strip().splitlines()
        super().__init__(f"district {district!r} failed: {first[-1] if first else type(exc).__name__}")
        self.district = district


def _cause(exc: BaseException) -> UserError | None:
    """The :class:`UserError` a remote district raised, if that is what ``exc`` carries."""
    seen: BaseException | None = getattr(exc, "cause", None) or exc.__cause__
    for _ in range(5):
        if seen is None:
            return None
        if type(seen) is not type(exc) and isinstance(seen, UserError):
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    return None


class Executor(Protocol):
    """Runs one :class:`~aicity.scale.district.DistrictLoop` per district and calls them together."""

    name: str

    def spawn(self, districts: Sequence[District], *, mode: str, seed: int, out: str, key: bytes | None,
              store: tuple[str, str] | None = None) -> None:
        """Create every district's loop (in order)."""
        ...

    def call(self, method: str, args: Sequence[tuple[Any, ...] | None]) -> list[Any]:
        """Call ``method`` on every district with its own arguments (None: not this one), all at once; the replies
        in order, a :class:`DistrictDied` in place of the reply of a district whose worker is gone."""
        ...

    def kill(self, index: int) -> None:
        """Lose district ``index``'s worker (fault tests); it is gone when this returns."""
        ...

    def respawn(self, index: int) -> None:
        """A new worker for district ``index``, its loop not yet opened (see ``DistrictLoop.recover``)."""
        ...

    def close(self) -> None:
        """Release every worker (and the cluster when this executor started it)."""
        ...


class LocalExecutor:
    """Every district in this process, called in turn (one district: the partitioned code path, no cluster)."""

    name = "local"

    def __init__(self, limit: int | None = 1) -> None:
        self.loops: list[Any] = []
        self.districts: list[District] = []
        self.dead: set[int] = set()
        self._make: Any = None
        self.limit = limit
        """The most districts it takes (None: any; a domain without libsumo can run many in one process)."""

    def spawn(self, districts: Sequence[District], *, mode: str, seed: int, out: str, key: bytes | None,
              store: tuple[str, str] | None = None) -> None:
        """Create the district loops here."""
        from aicity.scale.district import DistrictLoop

        if self.limit is not None and len(districts) > self.limit:
            raise UserError("the local executor runs one district (libsumo: one simulation per process); "
                            "use --executor ray for more")
        self._make = lambda d: DistrictLoop(d, mode=mode, seed=seed, out=os.path.join(out, d.name), key=key,
                                            store=store)
        self.districts = list(districts)
        self.loops = [self._make(d) for d in districts]
        self.dead = set()

    def call(self, method: str, args: Sequence[tuple[Any, ...] | None]) -> list[Any]:
        """Call each loop in turn."""
        return [None if a is None else DistrictDied(self.districts[i].name, "killed") if i in self.dead
                else getattr(self.loops[i], method)(*a) for i, a in enumerate(args)]

    def kill(self, index: int) -> None:
        """Lose the loop (its twins are left as they are, as a crashed process would leave them)."""
        self.dead.add(index)

    def respawn(self, index: int) -> None:
        """A new loop for the district."""
        self.loops[index] = self._make(self.districts[index])
        self.dead.discard(index)

    def close(self) -> None:
        """Nothing to release."""
        self.loops = []


def _round_robin(ray: Any, n: int) -> list[Any]:
    """Scheduling strategies for ``n`` districts dealt in turn over the cluster's live nodes (sorted by id), each a
    hard affinity (a district asks no CPU, so any live node can take it; a soft one fell back to the head node while
    a just-joined node was not yet schedulable, and Ray's own SPREAD is best effort only: both were seen to put every
    district on one of two nodes). A node lost later fails its actor, which is respawned anywhere (SPREAD)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = sorted(str(node["NodeID"]) for node in ray.nodes() if node.get("Alive"))
    if not nodes:
        return ["SPREAD"] * n
    return [NodeAffinitySchedulingStrategy(node_id=nodes[i % len(nodes)], soft=False) for i in range(n)]


class RayExecutor:
    """Every district a Ray actor; ``address`` names a running cluster (``auto``, ``ray://host:10001``,
    ``host:6379``) or None to start a local one with ``cpus`` CPUs. The city runs the same on either."""

    name = "ray"

    def __init__(self, address: str | None = None, cpus: int | None = None) -> None:
        self.address = address
        self.cpus = cpus
        self.actors: list[Any] = []
        self.names: list[str] = []
        self.districts: list[District] = []
        self._make: Any = None
        self._started = False

    def _init(self) -> Any:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reporting from an air-gapped site
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local cluster: no token written under ~/.ray
        try:
            import ray
        except ImportError as exc:
            raise UserError("districts on Ray need ray: pip install 'aicity[scale]'") from exc
        if not ray.is_initialized():
            try:
                if self.address is None:  # always a new cluster of our own, on this machine's loopback only
                    ray.init(address="local", num_cpus=self.cpus, include_dashboard=False, log_to_driver=False,
                             configure_logging=False, _node_ip_address="127.0.0.1")
                else:
                    ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                             configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UserError(f"cannot reach the Ray cluster at {self.address or 'a new local cluster'}: "
                                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
            self._started = True
        return ray

    def spawn(self, districts: Sequence[District], *, mode: str, seed: int, out: str, key: bytes | None,
              store: tuple[str, str] | None = None) -> None:
        """One actor per district, spread over the cluster's nodes."""
        ray = self._init()
        from aicity.scale.district import DistrictLoop

        remote = ray.remote(DistrictLoop)
        self.names = [d.name for d in districts]

        def make(d: District, strategy: Any = "SPREAD") -> Any:
            return remote.options(num_cpus=0, scheduling_strategy=strategy).remote(
                d, mode=mode, seed=seed, out=os.path.join(out, d.name), key=key, store=store)

        self._make = make
        self.districts = list(districts)
        self.actors = [make(d, strategy) for d, strategy in zip(districts, _round_robin(ray, len(districts)),
                                                                 strict=True)]

    def call(self, method: str, args: Sequence[tuple[Any, ...] | None]) -> list[Any]:
        """Call every actor at once and wait for all."""
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        refs = [None if a is None else getattr(actor, method).remote(*a)
                for actor, a in zip(self.actors, args, strict=True)]
        out: list[Any] = []
        for name, ref in zip(self.names, refs, strict=True):
            if ref is None:
                out.append(None)
                continue
            try:
                out.append(ray.get(ref))
            except (RayTaskError, RayActorError) as exc:
                cause = _cause(exc)
                if cause is not None:  # the district refused something: its own one-line message
                    raise UserError(f"district {name!r}: {cause}") from exc
                if isinstance(exc, RayActorError):
                    out.append(DistrictDied(name, type(exc).__name__))
                    continue
                raise DistrictFailed(name, exc) from exc
        return out

    def respawn(self, index: int) -> None:
        """A new actor for the district (anywhere in the cluster)."""
        self.actors[index] = self._make(self.districts[index])

    def kill(self, index: int, timeout_s: float = 30.0) -> None:
        """Kill one district's worker process (fault tests) and wait until the cluster knows it is gone
        (``ray.kill`` only asks: a call made meanwhile could still be answered)."""
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        actor = self.actors[index]
        ray.kill(actor, no_restart=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                ray.get(actor.alive.remote(), timeout=5.0)
            except (RayActorError, GetTimeoutError):
                return
            time.sleep(0.05)
        raise UserError(f"district {self.names[index]!r}: its worker was still answering {timeout_s:g} s after "
                        "it was killed")

    def close(self) -> None:
        """Kill the actors; stop the cluster when this executor started it."""
        import ray

        for actor in self.actors:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(actor)
        self.actors = []
        if self._started:
            ray.shutdown()
            self._started = False


def executor(name: str, address: str | None = None, cpus: int | None = None) -> Executor:
    """The executor called ``name`` (``ray`` or ``local``)."""
    if name == "ray":
        return RayExecutor(address, cpus)
    if name == "local":
        if address is not None:
            raise UserError("--ray-address needs --executor ray")
        return LocalExecutor()
    raise UserError(f"unknown executor {name!r}; use {' or '.join(EXECUTORS)}")
