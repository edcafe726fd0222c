"""PNG plots of a run: time series per mode, per-group bars, KPIs on the network map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = {"smart": "#8c8c8c", "ablation": "#ff7f0e", "ai": "#1f77b4"}
LABELS = {"smart": "Smart City", "ablation": "Ablation (AI, uncoordinated)", "ai": "AI City"}


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (imported at first use: the CLI starts without it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, out: Path, name: str, *, tight: bool = True) -> str:
    """Write ``fig`` as ``out/name`` (110 dpi), close it and return ``name``."""
    if tight:
        fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    pyplot().close(fig)
    return name


def series_plots(out: Path, results: dict[str, dict[str, Any]], prefix: str = "") -> list[str]:
    """One PNG per time series, one line per mode."""
    plt = pyplot()
    names = sorted({k for r in results.values() for k in r.get("series", {})})
    files = []
    for name in names:
        fig, ax = plt.subplots(figsize=(8, 3.5))
        for mode, res in results.items():
            pts = res.get("series", {}).get(name) or []
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot([x / 60 for x in xs], ys, label=LABELS.get(mode, mode), color=COLORS.get(mode))
        ax.set_xlabel("simulated minutes")
        ax.set_ylabel(name)
        ax.set_title(f"{name} over time")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        else:  # no mode has a point of this series (e.g. no call to answer): say so, not an empty legend
            ax.text(0.5, 0.5, "no data in this run", ha="center", va="center", transform=ax.transAxes)
        files.append(save(fig, out, f"{prefix}series_{name}.png"))
    return files


def group_plots(out: Path, results: dict[str, dict[str, Any]], prefix: str = "") -> list[str]:
    """Bars per group (district, signal…) with one bar per mode."""
    plt = pyplot()
    dims = sorted({d for r in results.values() for d in r.get("groups", {})})
    files = []
    for dim in dims:
        keys = sorted({k for r in results.values() for k in r.get("groups", {}).get(dim, {})})
        if not keys:
            continue
        fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(keys) + 2), 3.8))
        width = 0.8 / max(1, len(results))
        for i, (mode, res) in enumerate(results.items()):
            vals = [res.get("groups", {}).get(dim, {}).get(k, float("nan")) for k in keys]
            ax.bar([j + i * width for j in range(len(keys))], vals, width, label=LABELS.get(mode, mode),
                   color=COLORS.get(mode))
        ax.set_xticks([j + width * (len(results) - 1) / 2 for j in range(len(keys))])
        ax.set_xticklabels([k[-14:] for k in keys], rotation=60, ha="right", fontsize=7)
        ax.set_title(f"per {dim}")
        ax.legend()
        files.append(save(fig, out, f"{prefix}groups_{dim}.png"))
    return files


def map_plots(out: Path, results: dict[str, dict[str, Any]], prefix: str = "") -> list[str]:
    """Per-group KPIs drawn at the groups' positions on the network (when the twin reports positions)."""
    plt = pyplot()
    files = []
    for dim in sorted({d for r in results.values() for d in r.get("extra", {}).get("positions", {})}):
        fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.5), squeeze=False)
        values = [v for r in results.values() for v in r.get("groups", {}).get(dim, {}).values() if v == v]
        vmax = max(values) if values else 1.0
        for ax, (mode, res) in zip(axes[0], results.items(), strict=True):
            pos = res.get("extra", {}).get("positions", {}).get(dim, {})
            for edge in res.get("extra", {}).get("edges_xy", []):
                xs, ys = zip(*edge, strict=True)
                ax.plot(xs, ys, color="#dddddd", lw=0.6, zorder=1)
            ids = [k for k in pos if k in res.get("groups", {}).get(dim, {})]
            if ids:
                sc = ax.scatter([pos[k][0] for k in ids], [pos[k][1] for k in ids],
                                c=[res["groups"][dim][k] for k in ids], s=90, cmap="RdYlGn_r", vmin=0,
                                vmax=vmax, zorder=2, edgecolors="black")
                fig.colorbar(sc, ax=ax, label=f"{res.get('extra', {}).get('group_metric', 'value')} per {dim}")
            ax.set_title(LABELS.get(mode, mode))
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_xticks([])
            ax.set_yticks([])
        files.append(save(fig, out, f"{prefix}map_{dim}.png"))
    return files
