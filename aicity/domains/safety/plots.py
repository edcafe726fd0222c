"""The safety domain's own report plot: the call-to-arrival distribution per mode, against the targets."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aicity.core.domain import DomainResult

LABELS = {"smart": "Smart City", "ablation": "Ablation (AI, uncoordinated)", "ai": "AI City"}
COLORS = {"smart": "#8c8c8c", "ablation": "#ff7f0e", "ai": "#1f77b4"}


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    name = f"{prefix}response_distribution.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return [name]
