"""Drift detection fires after a planted level shift and not before."""

from datetime import datetime, timedelta

import numpy as np
import pytest

from aicity.core.event import EventType
from aicity.forecast.drift import DriftMonitor
from aicity.forecast.registry import make_multi

SHIFT = 1500


def run(detector: str, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    model = make_multi("seasonal_average", period=24)
    mon = DriftMonitor("seasonal_average", detector=detector)
    t0 = datetime(2024, 1, 1)
    fired = []
    for i in range(2000):
        y = 30 + 10 * np.sin(2 * np.pi * i / 24) + rng.normal(0, 2) + (25 if i >= SHIFT else 0)
        t = t0 + i * timedelta(hours=1)
        if i > 0:
            ev = mon.update("s", y - model.forecast("s", 1).mean[0], t)
            if ev is not None:
                assert ev.type == EventType.DRIFT and ev.data["series_id"] == "s"
                assert ev.data["detector"] == detector and ev.data["recommendation"] == "advise"
                fired.append(i)
        model.learn_step({"s": y}, t)
    return fired


@pytest.mark.parametrize("detector", ["page_hinkley", "adwin"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fires_after_shift_not_before(detector: str, seed: int) -> None:
    fired = run(detector, seed)
    assert fired, "no alarm after the level shift"
    assert min(fired) >= SHIFT
    assert min(fired) < SHIFT + 50


def test_unknown_detector() -> None:
    with pytest.raises(ValueError, match="detector"):
        DriftMonitor("m", detector="cusum2")
