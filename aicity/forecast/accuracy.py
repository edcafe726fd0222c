"""Live forecast accuracy: rolling one-step error of a forecaster against persistence, over many series.

A provider in the loop feeds :meth:`AccuracyTracker.observe` each step with what it just observed and what it
now forecasts for the next step. The tracker scores the previous step's forecasts against today's values, and
the naive persistence forecast (the previous value) likewise, over a rolling window of steps. ``ratio`` =
MAE(model) / MAE(persistence): below 1 the model beats persistence; governance demotes a controller whose model's
ratio rises above the accuracy declared in the policy (:class:`aicity.governance.oversight.AccuracyGuard`).

Persistence's MAE in the ratio is the window's, but never below its MAE over the whole run so far (the in-sample
scale of MASE, Hyndman & Koehler 2006): a window quieter than usual (a garage empty over the holidays, where
persistence forecasting nothing is exact) does not shrink the yardstick the model is held to.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(slots=True)
class AccuracyTracker:
    """Rolling MAE of one-step forecasts and of persistence, pooled over series, over ``window`` steps."""

    window: int = 30
    _prev_fc: dict[str, float] = field(default_factory=dict)
    _prev_y: dict[str, float] = field(default_factory=dict)
    _steps: deque[tuple[float, float, int]] = field(default_factory=deque)
    _sum: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    _run: list[float] = field(default_factory=lambda: [0.0, 0.0])
    """Persistence's absolute errors and the pairs scored, over the whole run."""

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"window must be a positive integer, got {self.window!r}")

    def observe(self, values: Mapping[str, float], forecasts: Mapping[str, float]) -> None:
        """Score the last forecasts against ``values`` (this step's observations), then keep ``forecasts``
        (for the next step) and ``values`` (the persistence forecast). Non-finite values are skipped."""
        err = naive = 0.0
        n = 0
        for sid, y in values.items():
            if not math.isfinite(y):
                continue
            fc, last = self._prev_fc.get(sid), self._prev_y.get(sid)
            if fc is None or last is None:
                continue
            err += abs(y - fc)
            naive += abs(y - last)
            n += 1
        self._steps.append((err, naive, n))
        self._run[0] += naive
        self._run[1] += n
        s = self._sum
        s[0] += err
        s[1] += naive
        s[2] += n
        if len(self._steps) > self.window:
            e, b, k = self._steps.popleft()
            s[0] -= e
            s[1] -= b
            s[2] -= k
        self._prev_fc = {k: v for k, v in forecasts.items() if math.isfinite(v)}
        self._prev_y = {k: v for k, v in values.items() if math.isfinite(v)}

    def stats(self) -> dict[str, float]:
        """``n`` scored pairs in the window, ``mae``, ``naive_mae`` (the window's) and ``ratio`` = ``mae`` over
        persistence's MAE in the window or over the run so far, whichever is larger (inf when persistence has been
        exact all run but the model is not; 1.0 with no data). Until the window holds ``window`` steps the accuracy
        is not yet known and ``n`` is 0: on a large network a few minutes of empty roads give hundreds of pairs on
        which persistence is exact, and a guard counting pairs alone would demote a controller at the start."""
        err, naive, n = self._sum
        if n <= 0 or len(self._steps) < self.window:
            return {"n": 0.0, "mae": 0.0, "naive_mae": 0.0, "ratio": 1.0}
        mae, base = err / n, naive / n
        scale = max(base, self._run[0] / self._run[1])
        ratio = mae / scale if scale > 1e-12 else (1.0 if mae <= 1e-12 else math.inf)
        return {"n": float(n), "mae": mae, "naive_mae": base, "ratio": ratio}
