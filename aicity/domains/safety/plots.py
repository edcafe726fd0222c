"""The safety domain's own report plots: the call-to-arrival distribution per mode against the targets, and the
ambulances' positions over time on the map."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aicity.core.domain import DomainResult
from aicity.report.plots import COLORS, LABELS, pyplot, save


def responses(result: DomainResult) -> tuple[list[float], int]:
    """Call-to-arrival seconds of the calls reached, sorted, and how many calls were not reached."""
    reached, unreached = [], 0
    for rec in result.extra.get("incidents") or []:
        if rec.get("arrival_s") is None:
            unreached += 1
        else:
            reached.append(float(rec["arrival_s"]) - float(rec["call_s"]))
    return sorted(reached), unreached


def distribution_plot(out: Path, results: Mapping[str, DomainResult], prefix: str = "") -> list[str]:
    """``response_distribution.png``: per mode, the share of calls reached within each call-to-arrival time (an
    empirical CDF over every call made, so a call not reached keeps its mode's curve below 1), with the targets."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    per = {mode: responses(res) for mode, res in results.items()}
    right = max((t[-1] for t, _ in per.values() if t), default=0.0) * 1.03
    drawn = False
    for mode, (times, unreached) in per.items():
        total = len(times) + unreached
        if not total:
            continue
        xs = [0.0, *times, right]  # held flat after the last call reached: the rest were never reached
        ys = [0.0, *((k + 1) / total for k in range(len(times))), len(times) / total]
        label = f"{LABELS.get(mode, mode)} ({len(times)} of {total} calls reached)"
        ax.step(xs, ys, where="post", label=label, color=COLORS.get(mode))
        drawn = True
    targets: dict[str, Any] = next((dict((r.extra.get("options") or {}).get("targets_s") or {})
                                    for r in results.values()), {})
    for (name, t), style in zip(sorted(targets.items()), (":", "--", "-."), strict=False):
        ax.axvline(float(t), color="#444444", linestyle=style, linewidth=1,
                   label=f"target {name}: {float(t):g} s" if drawn else None)
    ax.set_xlabel("call-to-arrival time (s)")
    ax.set_ylabel("share of calls reached within")
    ax.set_ylim(0, 1.05)
    ax.set_title("Call-to-arrival time distribution")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no call in this run", ha="center", va="center", transform=ax.transAxes)
    return [save(fig, out, f"{prefix}response_distribution.png")]


def positions_plot(out: Path, results: Mapping[str, DomainResult], prefix: str = "") -> list[str]:
    """``ambulance_positions.png``: per mode, each ambulance's position every minute on the road map, coloured by
    the time into the window (a ring where it started); nothing where no position was recorded."""
    tracks = {m: r.extra.get("unit_positions") or {} for m, r in results.items()}
    if not any(any(v for v in t.values()) for t in tracks.values()):
        return []
    plt = pyplot()
    order = {"smart": 0, "ablation": 1, "ai": 2}
    modes = sorted((m for m in results if tracks[m]), key=lambda m: (order.get(m, 3), m))
    fig, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 5.2), squeeze=False)
    span = max((p[0] for t in tracks.values() for v in t.values() for p in v), default=1.0) or 1.0
    dots = None
    for ax, mode in zip(axes[0], modes, strict=True):
        for shape in results[mode].extra.get("edges_xy") or []:
            ax.plot([p[0] for p in shape], [p[1] for p in shape], color="#dddddd", linewidth=0.8, zorder=1)
        for k, (uid, pts) in enumerate(sorted(tracks[mode].items())):
            if not pts:
                continue
            xs, ys, ts = [p[1] for p in pts], [p[2] for p in pts], [p[0] / 60 for p in pts]
            ax.plot(xs, ys, color="#555555", linewidth=0.6, alpha=0.6, zorder=2)
            dots = ax.scatter(xs, ys, c=ts, cmap="viridis", vmin=0, vmax=span / 60, s=14, zorder=3,
                              marker="os^Dv"[k % 5], label=uid)
            ax.scatter([xs[0]], [ys[0]], s=90, facecolors="none", edgecolors="#d62728", linewidths=1.2, zorder=4)
        ax.set_title(f"{LABELS.get(mode, mode)}: ambulances every minute")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8, loc="best", title="unit (ring: start)", title_fontsize=8)
    if dots is not None:
        fig.colorbar(dots, ax=list(axes[0]), label="minutes into the window", shrink=0.8)
    return [save(fig, out, f"{prefix}ambulance_positions.png", tight=False)]


def report_plots(out: Path, results: Mapping[str, DomainResult], prefix: str = "") -> list[str]:
    """Every safety plot of the report."""
    return distribution_plot(out, results, prefix) + positions_plot(out, results, prefix)
