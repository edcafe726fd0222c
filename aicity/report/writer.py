"""Writes report.json and report.md (with plots) for a Smart City vs AI City run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from aicity.core.domain import Scenario
from aicity.report import equity, plots

LABELS = plots.LABELS


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
    return str(v)


def compare(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Every KPI side by side, with the AI City change relative to Smart City where both exist."""
    keys = sorted({k for r in results.values() for k in r.get("kpis", {})})
    table: dict[str, dict[str, float | None]] = {}
    for key in keys:
        row: dict[str, float | None] = {m: r.get("kpis", {}).get(key) for m, r in results.items()}
        smart, ai = row.get("smart"), row.get("ai")
        if isinstance(smart, int | float) and isinstance(ai, int | float) and smart:
            row["change_pct"] = 100.0 * (ai - smart) / abs(smart)
        else:
            row["change_pct"] = None
        table[key] = row
    return table


def equity_table(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per group dimension and mode: ratio, difference, Jain's index, worst-off group, flag."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for mode, res in results.items():
        for dim, groups in res.get("groups", {}).items():
            out.setdefault(dim, {})[mode] = res.get("equity", {}).get(dim) or equity.summarize(groups)
    return out


def write_report(out: Path, *, scenario: Scenario, domain: str, seed: int,
                 results: dict[str, dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """Write the report files into ``out`` and return the report as a dict."""
    figures = plots.series_plots(out, results) + plots.map_plots(out, results) + plots.group_plots(out, results)
    report = {
        "scenario": scenario.name, "domain": domain, "seed": seed, "description": scenario.description,
        "window_s": [scenario.begin_s, scenario.end_s], "wall_s": wall_s,
        "modes": {m: {k: v for k, v in r.items() if k != "series"} for m, r in results.items()},
        "comparison": compare(results), "equity": equity_table(results), "figures": figures,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text(markdown(report))
    return report


def markdown(report: dict[str, Any]) -> str:
    """The human-readable report."""
    modes = list(report["modes"])
    lines = [f"# aicity run: {report['scenario']} (seed {report['seed']})", "",
             f"{report['description']}", "",
             f"Domain `{report['domain']}`, simulated window "
             f"{report['window_s'][0]:.0f}–{report['window_s'][1]:.0f} s, wall time {report['wall_s']:.1f} s. "
             "Both modes ran on the same twin with the same seed.", ""]
    options = next(iter(report["modes"].values())).get("options") or {}
    if options:
        lines += ["Scenario options (both modes): " + ", ".join(f"`{k}={v}`" for k, v in sorted(options.items())),
                  ""]
    lines += ["## KPIs side by side", "",
             "| KPI | " + " | ".join(LABELS.get(m, m) for m in modes) + " | AI vs Smart |",
             "|---|" + "---:|" * (len(modes) + 1)]
    for key, row in report["comparison"].items():
        change = row.get("change_pct")
        lines.append(f"| {key} | " + " | ".join(_fmt(row.get(m)) for m in modes)
                     + f" | {'' if change is None else f'{change:+.1f}%'} |")
    lines += ["", "## The loop", "",
              "| counter | " + " | ".join(LABELS.get(m, m) for m in modes) + " |",
              "|---|" + "---:|" * len(modes)]
    counters = [k for k in next(iter(report["modes"].values()))["loop"] if k != "verdicts"]
    for key in counters:
        lines.append(f"| {key} | " + " | ".join(_fmt(report["modes"][m]["loop"].get(key)) for m in modes) + " |")
    lines.append("| dead letters | " + " | ".join(_fmt(report["modes"][m]["dead_letters"]) for m in modes) + " |")
    if report["equity"]:
        lines += ["", "## Equity across groups", "",
                  "Lower-is-better KPI per group; ratio = best/worst group (flagged below 0.8, the four-fifths rule).",
                  "", "| group | mode | n | ratio | difference | Jain | worst-off | flag |",
                  "|---|---|---:|---:|---:|---:|---|---|"]
        for dim, per_mode in report["equity"].items():
            for mode, s in per_mode.items():
                if s.get("n"):
                    lines.append(f"| {dim} | {LABELS.get(mode, mode)} | {s['n']} | {s['ratio']:.2f} | "
                                 f"{_fmt(s['difference'])} | {s['jain']:.3f} | {s['worst']} | "
                                 f"{'**below 0.8**' if s['flag'] else 'ok'} |")
    for mode in modes:
        gov = report["modes"][mode].get("governance") or {}
        samples = gov.get("samples") or []
        if gov:
            lines += ["", f"## Governance — {LABELS.get(mode, mode)}", ""]
            for key, value in gov.items():
                if key != "samples" and not isinstance(value, dict | list):
                    lines.append(f"- {key}: {_fmt(value)}")
            for key, value in gov.items():
                if isinstance(value, dict) and value:
                    lines.append(f"- {key}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in value.items()))
        consent = report["modes"][mode].get("consent") or {}
        if consent.get("subjects"):
            lines += ["", f"Personal data ({LABELS.get(mode, mode)}): {consent['subjects']} data subjects gave consent "
                      f"({consent['records']} records, ledgered), {consent['withdrawn']} withdrew; only consented "
                      "data was read."]
        if samples:
            lines += ["", "Sample decisions, explained:", ""]
            lines += [f"- {s}" for s in samples]
    if report["figures"]:
        lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in report["figures"]]
    lines.append("")
    return "\n".join(lines)
