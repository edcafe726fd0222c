"""Writes report.json (strict JSON) and report.md (with plots) for a Smart City vs AI City run of a city.

Every KPI is shown with the unit and direction its domain declares (:class:`aicity.core.meta.KPI`), per domain
and for the city as a whole; nothing here knows any domain.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aicity.core.city import City
from aicity.core.domain import DomainResult, ReportPlots
from aicity.report import plots

LABELS = plots.LABELS


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "–" if v is None else str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
    return str(v)


def strict(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None, so the JSON is strict."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    return value


def verdict(meta: Mapping[str, Any], smart: Any, ai: Any) -> str:
    """``better``, ``worse`` or ``same`` for AI City against Smart City, by the KPI's declared direction."""
    if not (isinstance(smart, int | float) and isinstance(ai, int | float)) or not (
            math.isfinite(smart) and math.isfinite(ai)):
        return ""
    if math.isclose(smart, ai, rel_tol=1e-9, abs_tol=1e-12):
        return "same"
    lower = meta.get("better") == "lower"
    return "better" if (ai < smart) == lower else "worse"


def gap_closed(smart: Any, ai: Any, reference: Any) -> float | None:
    """``(Smart − AI) / (Smart − reference)``: 1 = AI City as good as the reference, 0 = no better than Smart City;
    None when the reference is no better than Smart City or a value is missing."""
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (smart, ai, reference)):
        return None
    span = smart - reference
    return None if abs(span) < 1e-9 else (smart - ai) / span


def compare(results: dict[str, dict[str, Any]], domain: str) -> dict[str, dict[str, Any]]:
    """One domain's KPIs side by side in declared order, with unit, direction, change and verdict (and, when the
    domain reports a reference optimum, its value and the gap AI City closed)."""
    first = next(iter(results.values()))["domains"][domain]
    reference: dict[str, Any] = {}
    for res in results.values():
        reference = reference or res["domains"][domain].get("reference") or {}
    table: dict[str, dict[str, Any]] = {}
    for meta in first.get("kpi_meta", []):
        key = meta["name"]
        row: dict[str, Any] = {"unit": meta["unit"], "better": meta["better"], "headline": meta["headline"]}
        for mode, res in results.items():
            row[mode] = res["domains"][domain]["kpis"].get(key)
        smart, ai = row.get("smart"), row.get("ai")
        row["change_pct"] = None
        if (isinstance(smart, int | float) and isinstance(ai, int | float) and smart and math.isfinite(smart)
                and math.isfinite(ai)):
            row["change_pct"] = 100.0 * (ai - smart) / abs(smart)
        row["verdict"] = verdict(meta, smart, ai)
        if "ablation" in results:  # what orchestration itself adds: AI City against every domain's AI alone
            row["vs_ablation"] = verdict(meta, row.get("ablation"), ai)
        if reference:
            row["reference"] = reference.get(key)
            row["gap_closed"] = gap_closed(smart, ai, reference.get(key))
        table[key] = row
    return table


def city_summary(comparison: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """For the city as a whole: per domain, how many KPIs (and headline KPIs) got better, worse or stayed."""
    out: dict[str, Any] = {}
    total = {"better": 0, "worse": 0, "same": 0, "not_measured": 0}
    for domain, table in comparison.items():
        counts = {"better": 0, "worse": 0, "same": 0, "not_measured": 0}
        headline = {}
        for key, row in table.items():
            kind = row["verdict"] or "not_measured"  # no verdict: a mode had nothing to measure (e.g. no call)
            counts[kind] += 1
            total[kind] += 1
            if row["headline"]:
                headline[key] = row["verdict"] or "not measured"
        out[domain] = {**counts, "headline": headline}
    out["all_domains"] = total
    return out


def write_report(out: Path, *, city: City, seed: int, results: dict[str, dict[str, Any]],
                 wall_s: float, notes: list[str] | None = None) -> dict[str, Any]:
    """Write the report files into ``out`` and return the report as a dict."""
    domains = [p.name for p in city]
    figures: list[str] = []
    for d in domains:
        per = {m: r["domains"][d] for m, r in results.items()}
        prefix = f"{d}_" if len(domains) > 1 else ""
        figures += plots.series_plots(out, per, prefix) + plots.map_plots(out, per, prefix)
        figures += plots.group_plots(out, per, prefix)
        plugin = city.part(d).domain
        if isinstance(plugin, ReportPlots):
            figures += plugin.plots(out, {m: _as_result(r) for m, r in per.items()}, prefix)
    comparison = {d: compare(results, d) for d in domains}
    notes = list(notes or [])
    ai_loop = results.get("ai", {}).get("loop", {}).get("by_domain", {})
    for d in domains:
        said = {m: [n for n in r["domains"][d].get("extra", {}).get("notes", []) if isinstance(n, str)]
                for m, r in results.items()}  # what a domain says of its own run (e.g. why nothing was measured)
        shared = [n for n in dict.fromkeys(n for ns in said.values() for n in ns)
                  if all(n in ns for ns in said.values())]  # said in every mode: once, without a mode
        notes += [f"{d}: {n}" for n in shared]
        notes += [f"{d} ({LABELS.get(m, m)}): {n}" for m, ns in said.items() for n in ns if n not in shared]
        undefined = sorted({k for r in results.values() for k, v in r["domains"][d].get("kpis", {}).items()
                            if isinstance(v, float) and math.isnan(v)})
        if undefined:
            notes.append(f"{d}: not measured in this window (nothing to measure in a mode; shown as –, neither "
                         f"better nor worse): {', '.join(undefined)}")
        if "ai" in results and ai_loop.get(d, {}).get("proposals", 0) == 0:
            notes.append(f"{d}: AI City made no proposal in this window — nothing to control here, so both modes "
                         "ran the same plans and any difference is not AI City's doing")
    modes = {m: {**{k: v for k, v in r.items() if k != "domains"},
                 "domains": {d: {k: v for k, v in dr.items() if k not in ("series", "kpi_meta")}
                             for d, dr in r["domains"].items()}} for m, r in results.items()}
    report = {
        "city": city.name, "description": city.description, "domains": domains,
        "scenarios": {p.name: p.scenario.name for p in city}, "seed": seed,
        "window_s": [city.begin_s, city.end_s], "wall_s": wall_s, "notes": notes,
        "modes": modes, "comparison": comparison, "summary": city_summary(comparison),
        "equity": {d: {m: r["domains"][d].get("equity", {}) for m, r in results.items()} for d in domains},
        "figures": figures,
    }
    report = dict(strict(report))
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str, allow_nan=False))
    (out / "report.md").write_text(markdown(report))
    return report


def _as_result(r: Mapping[str, Any]) -> DomainResult:
    return DomainResult(dict(r.get("kpis", {})), dict(r.get("groups", {})), dict(r.get("series", {})),
                        dict(r.get("extra", {})), dict(r.get("reference", {})), str(r.get("reference_name", "")))


def _kpi_lines(report: dict[str, Any], domain: str, modes: list[str]) -> list[str]:
    table = report["comparison"][domain]
    ref = any("reference" in row for row in table.values())
    ref_name = next((str(r["domains"][domain]["reference_name"]) for r in report["modes"].values()
                     if r["domains"][domain].get("reference_name")), "")
    extra_head = f" | {ref_name or 'reference'} | gap closed" if ref else ""
    abl = any("vs_ablation" in row for row in table.values())
    lines = ["| KPI | unit | better | " + " | ".join(LABELS.get(m, m) for m in modes) + " | AI vs Smart | "
             + (" | AI vs ablation" if abl else "") + extra_head + (" |" if ref else "|"),
             "|---|---|---|" + "---:|" * (len(modes) + 1) + "---|" + ("---|" if abl else "")
             + ("---:|---:|" if ref else "")]
    for key, row in table.items():
        change = row.get("change_pct")
        name = f"**{key}**" if row["headline"] else key
        tail = f" {_fmt(row.get('reference'))} | {_fmt(row.get('gap_closed'))} |" if ref else ""
        mid = f" {row.get('vs_ablation', '')} |" if abl else ""
        lines.append(f"| {name} | {row['unit']} | {row['better']} | " + " | ".join(_fmt(row.get(m)) for m in modes)
                     + f" | {'' if change is None else f'{change:+.1f}%'} | {row['verdict']} |" + mid + tail)
    counts = next(iter(report["modes"].values()))["domains"][domain].get("extra", {}).get("counts") or {}
    if counts:
        lines += ["", "Counts (neither better nor worse): " + "; ".join(
            f"{k} " + " / ".join(_fmt(report["modes"][m]["domains"][domain].get("extra", {}).get("counts", {})
                                      .get(k)) for m in modes) for k in counts)]
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The human-readable report."""
    modes = list(report["modes"])
    parts = ", ".join(f"{d} (`{s}`)" for d, s in report["scenarios"].items())
    lines = [f"# aicity run: {report['city']} (seed {report['seed']})", "", f"{report['description']}", "",
             f"Domains: {parts}; simulated window {report['window_s'][0]:.0f}–{report['window_s'][1]:.0f} s, "
             f"wall time {report['wall_s']:.1f} s. Every mode ran on the same twins with the same seed.", ""]
    lines += [f"- {n}" for n in report.get("notes", [])] + ([""] if report.get("notes") else [])
    options = next(iter(report["modes"].values())).get("options") or {}
    if options:
        lines += ["Scenario options (both modes): " + ", ".join(f"`{k}={v}`" for k, v in sorted(options.items())),
                  ""]
    if "smart" in modes and "ai" in modes:
        lines += ["## The city as a whole", "",
                  "| domain | KPIs better | worse | same | not measured | headline KPIs |",
                  "|---|---:|---:|---:|---:|---|"]
        for d in report["domains"]:
            s = report["summary"][d]
            head = ", ".join(f"{k} {v}" for k, v in s["headline"].items())
            lines.append(f"| {d} | {s['better']} | {s['worse']} | {s['same']} | {s.get('not_measured', 0)} | {head} |")
        c = report["summary"]["all_domains"]
        lines += [f"| **all domains** | {c['better']} | {c['worse']} | {c['same']} | {c.get('not_measured', 0)} | |",
                  ""]
        if c.get("not_measured"):
            lines += ["_Not measured: a KPI with nothing to measure in a mode in this run (e.g. no call to answer), "
                      "shown as –; it is neither better nor worse._", ""]
    for d in report["domains"]:
        lines += [f"## {d}: KPIs side by side", "", "Headline KPIs in bold; *better* is the direction the domain "
                  "declares for each KPI.", ""]
        lines += [*_kpi_lines(report, d, modes), ""]
    lines += ["## The loop", "", "| counter | " + " | ".join(LABELS.get(m, m) for m in modes) + " |",
              "|---|" + "---:|" * len(modes)]
    counters = [k for k, v in next(iter(report["modes"].values()))["loop"].items() if not isinstance(v, dict)]
    for key in counters:
        lines.append(f"| {key} | " + " | ".join(_fmt(report["modes"][m]["loop"].get(key)) for m in modes) + " |")
    lines.append("| dead letters | " + " | ".join(_fmt(report["modes"][m]["dead_letters"]) for m in modes) + " |")
    lines += _equity_lines(report)
    lines += _district_lines(report, modes)
    for mode in modes:
        lines += _orchestration_lines(report, mode)
    for mode in modes:
        lines += _governance_lines(report, mode)
    if report["figures"]:
        lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in report["figures"]]
    lines.append("")
    return "\n".join(lines)


def _equity_lines(report: dict[str, Any]) -> list[str]:
    rows = []
    for d, per_mode in report["equity"].items():
        for mode, dims in per_mode.items():
            for dim, s in (dims or {}).items():
                if not s.get("audited"):
                    rows.append(f"| {d} | {dim} | {LABELS.get(mode, mode)} | {s.get('n', 0)} | – | – | – | – | "
                                f"not audited: {s.get('note', 'fewer than two groups')} |")
                else:
                    rows.append(f"| {d} | {dim} | {LABELS.get(mode, mode)} | {s['n']} | {s['ratio']:.2f} | "
                                f"{_fmt(s['difference'])} | {s['jain']:.3f} | {s['worst']} | "
                                f"{'**below 0.8**' if s['flag'] else 'ok'} |")
    if not rows:
        return []
    return ["", "## Equity across groups", "",
            "Each domain's declared KPI per group; ratio = best/worst group (flagged below 0.8, the four-fifths rule).",
            "", "| domain | group | mode | n | ratio | difference | Jain | worst-off | flag |",
            "|---|---|---|---:|---:|---:|---:|---|---|", *rows]


def _district_lines(report: dict[str, Any], modes: Sequence[str]) -> list[str]:
    scales = {m: report["modes"][m].get("scale") for m in modes if report["modes"][m].get("scale")}
    if not scales:
        return []
    first = next(iter(scales.values()))
    lines = ["", "## Districts", "", f"The city ran as {first['districts']} districts on {first['executor']}, "
             "stepping together each decision interval; each district keeps its own store and ledger "
             "(`<mode>/districts/<name>/`). Bytes are what moved between the coordinator and the districts.", "",
             "| | " + " | ".join(LABELS.get(m, m) for m in scales) + " |", "|---|" + "---:|" * len(scales)]
    rows: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
            ("time per step, mean (ms)", lambda s: s["step_ms"]["mean"]),
            ("time per step, p95 (ms)", lambda s: s["step_ms"]["p95"]),
            ("bytes per step", lambda s: s["bytes_per_step"]), ("crossings", lambda s: s["crossings"]),
            ("in flight at the end", lambda s: s["in_flight_at_end"]),
            ("unrouted crossings", lambda s: s["unrouted"]),
            ("workers lost and recovered", lambda s: len(s["recoveries"])),
            ("checkpoints (every N steps)",
             lambda s: f"{s.get('checkpoints', 0)} (every {s.get('checkpoint_every', 0)})"),
            ("steps replayed at recovery",
             lambda s: ", ".join(str(r["replayed_steps"]) for r in s["recoveries"]) or "—"),
            ("start-up (s)", lambda s: s["open_s"]), ("x real time (loop)", lambda s: s["real_time_factor"]))
    for label, get in rows:
        lines.append(f"| {label} | " + " | ".join(_fmt(get(s)) for s in scales.values()) + " |")
    without = sorted({d for s in scales.values() for d in s.get("without_checkpoint", [])})
    if without:
        lines += ["", f"Districts without checkpoints (a twin without `Checkpointable`): {', '.join(without)} — "
                  "a lost worker there replays its log since the start."]
    return lines


def _orchestration_lines(report: dict[str, Any], mode: str) -> list[str]:
    orch = report["modes"][mode].get("orchestration") or {}
    if not orch.get("counts"):
        return []
    counts = ", ".join(f"{k} {v}" for k, v in sorted(orch["counts"].items()))
    lines = ["", f"## Orchestration — {LABELS.get(mode, mode)}", "",
             f"Conflicts between domains settled by the orchestration stage: {counts}.", ""]
    lines += [f"- {r['time']} `{r['target']}` ({r['resolution']}, policy {r['policy']}): {r['reason']}"
              for r in orch.get("first", [])]
    return lines


def _governance_lines(report: dict[str, Any], mode: str) -> list[str]:
    lines: list[str] = []
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
            elif isinstance(value, list) and value and key != "samples":
                lines.append(f"- {key}:")
                lines += [f"  - {item}" for item in value]
    consent = report["modes"][mode].get("consent") or {}
    if consent.get("subjects"):
        lines += ["", f"Personal data ({LABELS.get(mode, mode)}): {consent['subjects']} data subjects gave consent "
                  f"({consent['records']} records, ledgered), {consent['withdrawn']} withdrew; only consented "
                  "data was read."]
    if samples:
        lines += ["", "Sample decisions, explained:", ""]
        lines += [f"- {s}" for s in samples]
    return lines
