"""The energy report's own plots: load with each mode's peak (and the oracle's), and the voltage band per mode."""

from __future__ import annotations

from pathlib import Path

from aicity.core.domain import DomainResult
from aicity.domains.energy.plots import load_and_peak_plot, report_plots, voltage_band_plot


def _result(peak: float, volts: bool = True) -> DomainResult:
    series = {"site_power_kw": [(0.0, 50.0), (900.0, peak), (1800.0, 40.0)]}
    if volts:
        series |= {"voltage_min_pu": [(0.0, 0.97), (900.0, 0.955)], "voltage_max_pu": [(0.0, 1.0), (900.0, 1.01)]}
    return DomainResult({"peak_kw": peak}, series=series, reference={"peak_kw": 60.0}, reference_name="oracle")


def test_both_plots_are_drawn_from_the_series_and_the_peaks(tmp_path: Path) -> None:
    both = {"smart": _result(120.0), "ai": _result(80.0)}
    assert report_plots(tmp_path, both, "energy_") == ["energy_load_and_peak.png", "energy_voltage_band.png"]
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("energy_load_and_peak.png", "energy_voltage_band.png"))


def test_no_grid_no_voltage_plot_and_no_meter_no_load_plot(tmp_path: Path) -> None:
    site_only = {"smart": _result(120.0, volts=False), "ai": _result(80.0, volts=False)}
    assert voltage_band_plot(tmp_path, site_only) == [] and load_and_peak_plot(tmp_path, site_only)
    assert report_plots(tmp_path, {"smart": DomainResult({}), "ai": DomainResult({})}) == []
