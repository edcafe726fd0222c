"""The energy domain's own report plots: the site's load with each mode's peak, and the voltage band per mode."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from aicity.core.domain import DomainResult
from aicity.domains.energy.const import VMAX, VMIN
from aicity.report.plots import COLORS, LABELS, pyplot, save


def load_and_peak_plot(out: Path, results: Mapping[str, DomainResult], prefix: str = "") -> list[str]:
    """``load_and_peak.png``: the site's import per mode over the window, each mode's peak as a dashed line (and the
    reference optimum's, where the run has one); nothing when no mode measured the site's power."""
    if not any(r.series.get("site_power_kw") for r in results.values()):
        return []
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.4))
    reference: tuple[str, float] | None = None
    for mode, res in results.items():
        pts = res.series.get("site_power_kw") or []
        color = COLORS.get(mode)
        if pts:
            ax.plot([t / 3600 for t, _ in pts], [v for _, v in pts], color=color, linewidth=1,
                    label=LABELS.get(mode, mode))
        peak = res.kpis.get("peak_kw")
        if isinstance(peak, int | float) and math.isfinite(peak):
            ax.axhline(float(peak), color=color, linestyle="--", linewidth=1,
                       label=f"{LABELS.get(mode, mode)} peak {float(peak):.1f} kW")
        ref = res.reference.get("peak_kw")
        if reference is None and isinstance(ref, int | float):
            reference = (res.reference_name or "reference", float(ref))
    if reference is not None:
        ax.axhline(reference[1], color="#2ca02c", linestyle=":", linewidth=1.2,
                   label=f"{reference[0]} peak {reference[1]:.1f} kW")
    ax.set_xlabel("hours into the window")
    ax.set_ylabel("site import (kW)")
    ax.set_title("Load and peak over the window, per mode")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    return [save(fig, out, f"{prefix}load_and_peak.png")]


def voltage_band_plot(out: Path, results: Mapping[str, DomainResult], prefix: str = "") -> list[str]:
    """``voltage_band.png``: per mode, the span between the lowest and the highest bus voltage at each step (AC power
    flow) against the 0.95-1.05 pu band; nothing where no grid is modelled."""
    spans = {m: (r.series.get("voltage_min_pu") or [], r.series.get("voltage_max_pu") or [])
             for m, r in results.items()}
    if not any(lo and hi for lo, hi in spans.values()):
        return []
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for mode, (lo, hi) in spans.items():
        if not (lo and hi):
            continue
        high = dict(hi)
        ts = [t for t, _ in lo if t in high]
        color = COLORS.get(mode)
        ax.fill_between([t / 3600 for t in ts], [v for t, v in lo if t in high], [high[t] for t in ts],
                        color=color, alpha=0.3, step="post", label=f"{LABELS.get(mode, mode)}: lowest to highest bus")
    for bound in (VMIN, VMAX):
        ax.axhline(bound, color="#d62728", linestyle="--", linewidth=1)
    ax.text(0.005, VMIN, f" {VMIN:g} pu", color="#d62728", va="bottom", fontsize=8, transform=ax.get_yaxis_transform())
    ax.text(0.005, VMAX, f" {VMAX:g} pu", color="#d62728", va="top", fontsize=8, transform=ax.get_yaxis_transform())
    low = min(v for lo, _ in spans.values() for _, v in lo)
    top = max(v for _, hi in spans.values() for _, v in hi)
    ax.set_ylim(min(low, VMIN) - 0.01, max(top, VMAX) + 0.01)
    ax.set_xlabel("hours into the window")
    ax.set_ylabel("bus voltage (pu)")
    ax.set_title("Voltage band per mode (AC power flow)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return [save(fig, out, f"{prefix}voltage_band.png")]


def report_plots(out: Path, results: Mapping[str, DomainResult], prefix: str = "") -> list[str]:
    """Every energy plot the run has data for."""
    return load_and_peak_plot(out, results, prefix) + voltage_band_plot(out, results, prefix)
