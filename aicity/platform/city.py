"""The live city behind the API: the governed loop (``runner.prepare_run``) in a background thread, paced to
real time × a speed factor, with its governance (stop, resume, approvals, autonomy) exposed to people."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError
from aicity.core.store import StateStore

log = logging.getLogger(__name__)


class _Shutdown(Exception):
    """Raised from the pacing callback to end the loop when the server stops."""


class LiveCity:
    """One city in one mode, running while the server runs."""

    def __init__(self, scenario: str | None, *, store: StateStore, out: Path, speed: float = 1.0,
                 mode: str = "ai", seed: int = 1, options: Mapping[str, Any] | None = None,
                 duration_s: float | None = None, key: Any = None, policy: Any = None) -> None:
        if not speed > 0:
            raise UserError(f"--speed must be positive, got {speed}")
        self.scenario = scenario
        self.store = store
        self.out = out
        self.speed = float(speed)
        self.mode = mode
        self.seed = seed
        self.options = dict(options or {})
        self.duration_s = duration_s
        self.key = key
        self.policy = policy
        self.state = "starting"
        self.error: str | None = None
        self.sim_s = 0.0
        self.total_s = 0.0
        self.run: Any = None
        self.city: Any = None
        self.results: dict[str, Any] = {}
        self.ready = threading.Event()
        self._shutdown = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    # ---- life cycle ------------------------------------------------------------------------------
    def start(self, timeout_s: float = 120.0) -> None:
        """Load the city and start the loop in a daemon thread; returns once it runs (or raises its error)."""
        self._thread = threading.Thread(target=self._main, name="aicity-city", daemon=True)
        self._thread.start()
        if not self.ready.wait(timeout_s):
            raise UserError(f"the city did not start within {timeout_s:.0f} s")
        if self.state == "failed":
            raise UserError(f"the city could not start: {self.error}")

    def _main(self) -> None:
        from aicity.runner import load_city, prepare_run

        try:
            self.city = load_city(self.scenario, self.options, self.duration_s)
            self.total_s = float(self.city.duration_s)
            self.run = prepare_run(self.city, mode=self.mode, seed=self.seed, store=self.store, out=self.out,
                                   key=self.key, policy=self.policy)
        except Exception as exc:
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            self.ready.set()
            return
        self.state = "running"
        self._started = time.monotonic()
        self.ready.set()
        try:
            self.results = dict(self.run.run(self._pace, self.total_s).results)
            self.state = "finished"
        except _Shutdown:
            self.state = "stopped"
        except Exception as exc:
            log.exception("the live city failed")
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"

    def _pace(self, done_s: float, total_s: float) -> None:
        self.sim_s = done_s
        target = self._started + done_s / self.speed
        while not self._shutdown.is_set():
            wait = target - time.monotonic()
            if wait <= 0:
                break
            time.sleep(min(wait, 0.05))
        if self._shutdown.is_set():
            raise _Shutdown()

    def close(self) -> None:
        """End the loop (its twins close in the loop's own thread)."""
        self._shutdown.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # ---- what people see and do ------------------------------------------------------------------
    @property
    def governor(self) -> Any:
        """The run's governor (stop, resume, approvals, autonomy)."""
        if self.run is None:
            raise UserError("the city is not running yet")
        return self.run.governance.governor

    def domains(self) -> list[str]:
        """The city's domains."""
        return [p.name for p in self.run.loop.parts] if self.run is not None else []

    def status(self) -> dict[str, Any]:
        """State, clock, speed and loop counters."""
        stats = self.run.loop.stats.to_dict() if self.run is not None else {}
        return {"scenario": self.city.name if self.city is not None else self.scenario, "mode": self.mode,
                "state": self.state, "error": self.error, "speed": self.speed, "sim_s": round(self.sim_s, 3),
                "total_s": self.total_s, "domains": self.domains(), "loop": stats,
                "stopped": self.run is not None and any(self.governor.is_stopped(d) for d in self.domains()),
                "dead_letters": self.store.dead_letter_count, "now": datetime.now(UTC).isoformat()}

    def geometry(self) -> dict[str, Any]:
        """The network's own geometry (from each part's scenario file) as GeoJSON in its own coordinates."""
        from aicity.platform.geometry import scenario_geometry

        features: list[dict[str, Any]] = []
        for part in (self.city or []):
            features += scenario_geometry(part.scenario.path, part.name)
        return {"type": "FeatureCollection", "features": features}
