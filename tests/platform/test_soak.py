"""The soak benchmark on a real server, briefly: nothing lost, memory sampled, the slope computed."""

from __future__ import annotations

from aicity.platform.soak import run_soak, slope_mb_per_min


def test_a_short_soak_loses_nothing_and_samples_memory() -> None:
    rec = run_soak(seconds=4.0, rate_per_s=4000.0, sample_s=0.5)
    assert rec["n"] > 0 and rec["lost"] == 0
    assert rec["rss_mb"]["max"] > 0 and len(rec["rss_samples"]) >= 4
    assert 1000 <= rec["rate_per_s"] <= 6000  # paced near the asked rate


def test_slope_is_fitted_after_warm_up() -> None:
    flat = [(float(t), 100.0 + (50.0 if t < 10 else 0.0)) for t in range(0, 100, 5)]
    assert abs(slope_mb_per_min(flat)) < 1e-9
    growing = [(float(t), 100.0 + t / 60.0) for t in range(0, 600, 5)]  # 1 MB a minute
    assert abs(slope_mb_per_min(growing) - 1.0) < 1e-6
