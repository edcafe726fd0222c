"""Model cards (Mitchell et al. 2019) generated from benchmark and backtest results, as JSON and Markdown.

Results are flat records (one per run, as the bench and backtest write them), optionally with a ``groups``
mapping ``{factor: {group: {metric: value}}}`` for metrics disaggregated by district or time of day. A factor
``outer/inner`` crosses a record field with a factor (``scenario/district``: districts per map, never pooled
across maps). Cards name the worst-off group of every nested factor in their caveats.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError

SECTIONS = ("model_details", "intended_use", "factors", "metrics", "evaluation_data", "training_data",
            "quantitative_analyses", "ethical_considerations", "caveats_and_recommendations")


def _mean(xs: Sequence[float]) -> float | None:
    vals = [x for x in xs if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)]
    return sum(vals) / len(vals) if vals else None


def _selected(results: Sequence[Mapping[str, Any]], select: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in results if all(r.get(k) == v for k, v in select.items())]


CROSS = " / "
COUNT_KEYS = ("trips", "n")  # per-group sample sizes, shown next to the metrics (mean per run)


def _cells_of(r: Mapping[str, Any], factor: str) -> list[tuple[str, Mapping[str, Any]]]:
    """(group, metric values) pairs one record contributes to ``factor`` (record field or nested ``groups``)."""
    outer, sep, inner = factor.partition("/")
    if not sep:
        outer, inner = "", factor
    elif outer not in r:
        return []
    prefix = f"{r[outer]}{CROSS}" if outer else ""
    out: list[tuple[str, Mapping[str, Any]]] = []
    if inner in r:
        out.append((f"{prefix}{r[inner]}", r))
    for g, vals in ((r.get("groups") or {}).get(inner) or {}).items():
        if isinstance(vals, Mapping):
            out.append((f"{prefix}{g}", vals))
    return out


def summarize(results: Sequence[Mapping[str, Any]], metrics: Sequence[str],
              factors: Sequence[str]) -> dict[str, Any]:
    """Overall means and means disaggregated by each factor (record fields, nested ``groups``, or ``a/b``)."""
    overall = {m: _mean([r.get(m) for r in results]) for m in metrics}  # type: ignore[misc]
    by: dict[str, dict[str, dict[str, float | None]]] = {}
    for factor in factors:
        cells: dict[str, dict[str, list[float]]] = {}
        for r in results:
            for g, vals in _cells_of(r, factor):
                for m in [*metrics, *(c for c in COUNT_KEYS if c not in metrics)]:
                    if m in vals:
                        cells.setdefault(g, {}).setdefault(m, []).append(vals[m])
        if cells:
            by[factor] = {g: {m: _mean(v) for m, v in ms.items()} for g, ms in sorted(cells.items())}
    out: dict[str, Any] = {"n_runs": len(results), "overall": overall, "disaggregated": by}
    seeds = sorted({r["seed"] for r in results if isinstance(r.get("seed"), int)})
    if seeds:
        out["seeds"] = seeds
    return out


def worst_off(results: Sequence[Mapping[str, Any]], analysis: Mapping[str, Any], factor: str, metric: str, *,
              lowest_is_worst: bool = False, baseline: Mapping[str, Any] | None = None,
              equity_threshold: float | None = None) -> list[str]:
    """One sentence per map (or one in all) naming the worst-off group of ``factor`` on ``metric`` (with the
    best/worst ratio, flagged below ``equity_threshold``, when a threshold is given)."""
    groups = (analysis.get("disaggregated") or {}).get(factor) or {}
    outer = factor.partition("/")[0] if "/" in factor else ""
    inner = factor.partition("/")[2] or factor
    parts: dict[str, dict[str, float]] = {}
    for key, vals in groups.items():
        v = vals.get(metric)
        if v is not None:
            head, _, tail = key.partition(CROSS) if outer else ("", "", key)
            parts.setdefault(head, {})[tail] = v
    base_groups = ((baseline or {}).get("disaggregated") or {}).get(factor) or {}
    out = []
    for head, vals in sorted(parts.items()):
        if len(vals) < 2:
            continue
        pick = min if lowest_is_worst else max
        worst = pick(vals, key=lambda g: (vals[g], g))
        best = (max if lowest_is_worst else min)(vals, key=lambda g: (vals[g], g))
        runs = [r for r in results if not outer or str(r.get(outer)) == head]
        mean = _mean([r.get(metric) for r in runs])  # type: ignore[misc]
        seeds = sorted({r["seed"] for r in runs if isinstance(r.get("seed"), int)})
        where = f"{head}: " if head else ""
        text = (f"{where}worst-off {inner} {worst} ({metric} {_fmt(vals[worst])} vs {_fmt(mean)} "
                f"{f'for all of {head}' if head else 'overall'}; best {best} {_fmt(vals[best])}")
        if equity_threshold is not None and not lowest_is_worst and vals[worst] > 0:
            ratio = vals[best] / vals[worst]
            text += f"; best/worst {ratio:.2f}"
            text += f", below the {equity_threshold:g} equity threshold" if ratio < equity_threshold else ""
        b = (base_groups.get(f"{head}{CROSS}{worst}" if outer else worst) or {}).get(metric)
        if b is not None:
            text += f"; baseline there {_fmt(b)}"
        text += f"; seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})" if seeds else ")"
        out.append(text)
    return out


@dataclass
class ModelCard:
    """A model card: the nine sections of Mitchell et al., as data."""

    name: str
    version: str
    sections: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "version": self.version, "schema": "aicity-model-card/1 (Mitchell et al. 2019)",
                **{s: self.sections.get(s) for s in SECTIONS}}

    def to_markdown(self) -> str:
        """A readable card."""
        out = [f"# Model card: {self.name} (version {self.version})", ""]
        for s in SECTIONS:
            out.append(f"## {s.replace('_', ' ').capitalize()}")
            out.append("")
            out.extend(_md(self.sections.get(s)))
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    def write(self, folder: str | Path) -> tuple[Path, Path]:
        """Write ``<name>.json`` and ``<name>.md`` into ``folder``."""
        d = Path(folder)
        d.mkdir(parents=True, exist_ok=True)
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)
        j, m = d / f"{stem}.model-card.json", d / f"{stem}.model-card.md"
        j.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        m.write_text(self.to_markdown())
        return j, m


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "n/a" if v is None else str(v)


def _md(value: Any) -> list[str]:
    if value is None:
        return ["_Not provided._"]
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return [f"- {_fmt(v)}" for v in value]
    if isinstance(value, Mapping) and "overall" in value and "disaggregated" in value:
        return _md_analysis(value)
    if isinstance(value, Mapping):
        lines = []
        for k, v in value.items():
            if isinstance(v, (list, tuple)) and any(len(str(x)) > 60 for x in v):
                lines += [f"- **{k}**:", *(f"  - {x}" for x in v)]
            elif isinstance(v, (list, tuple)):
                lines.append(f"- **{k}**: {', '.join(map(str, v))}")
            elif isinstance(v, Mapping):
                lines += [f"- **{k}**:", *(f"  - {kk}: {_fmt(vv)}" for kk, vv in v.items())]
            else:
                lines.append(f"- **{k}**: {_fmt(v)}")
        return lines
    return [_fmt(value)]


def _md_analysis(value: Mapping[str, Any]) -> list[str]:
    seeds = value.get("seeds")
    lines = [f"Runs evaluated: {value.get('n_runs')}" + (f" (seeds {', '.join(map(str, seeds))})" if seeds else ""),
             "", "| metric | mean |", "|---|---|"]
    lines += [f"| {m} | {_fmt(v)} |" for m, v in value["overall"].items()]
    base = value.get("baseline")
    label = ", ".join(f"{k}={v}" for k, v in ((base or {}).get("select") or {}).items()) or "baseline"
    if base:
        lines += ["", f"Baseline for comparison ({label}):", "", "| metric | mean |", "|---|---|"]
        lines += [f"| {m} | {_fmt(v)} |" for m, v in base["overall"].items()]
    for factor, groups in value["disaggregated"].items():
        metrics = [m for m in value["overall"] if any(m in g for g in groups.values())]
        metrics += sorted({m for g in groups.values() for m in g} - set(metrics))
        base_groups = ((base or {}).get("disaggregated") or {}).get(factor) or {}
        base_metric = metrics[0] if base_groups and metrics else None
        cols = factor.split("/")
        head = [*cols, *metrics] + ([f"{base_metric} ({label})"] if base_metric else [])
        lines += ["", f"By {' and '.join(cols)}:", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for g, v in groups.items():
            keys = g.split(CROSS, len(cols) - 1) if len(cols) > 1 else [g]
            row = [*keys, *(_fmt(v.get(m)) for m in metrics)]
            if base_metric:
                row.append(_fmt((base_groups.get(g) or {}).get(base_metric)))
            lines.append("| " + " | ".join(row) + " |")
    return lines


REQUIRED_META = ("name", "version", "intended_use", "inputs", "limitations", "failure_conditions")


def build_model_card(meta: Mapping[str, Any], results: Sequence[Mapping[str, Any]], *,
                     select: Mapping[str, Any], metrics: Sequence[str], factors: Sequence[str] = (),
                     baseline: Mapping[str, Any] | None = None, worst: Sequence[str] = (),
                     equity_threshold: float | None = None) -> ModelCard:
    """A model card from human-written ``meta`` and the benchmark/backtest ``results`` of the selected model.

    ``worst`` lists the metrics whose worst-off group of every nested (``groups``) factor the caveats name:
    ``metric`` (highest is worst) or ``metric:min`` (lowest is worst); default the first metric. With
    ``equity_threshold`` (e.g. 0.8) each also states the best/worst ratio and whether it falls below it.
    """
    missing = [k for k in REQUIRED_META if not meta.get(k)]
    if missing:
        raise UserError(f"model card metadata lacks {', '.join(missing)}")
    mine = _selected(results, select)
    if not mine:
        raise UserError(f"no results match {dict(select)} (have {len(results)} records)")
    analysis = summarize(mine, metrics, factors)
    base_summary: dict[str, Any] | None = None
    if baseline is not None:
        base = _selected(results, baseline)
        base_summary = {"select": dict(baseline), **summarize(base, metrics, factors)} if base else None
        analysis["baseline"] = base_summary
    nested = [f for f in factors if any((f.partition("/")[2] or f) in (r.get("groups") or {}) for r in mine)]
    worst_found: list[str] = []
    for spec in (worst or metrics[:1]):
        metric, _, how = spec.partition(":")
        if how not in ("", "max", "min"):
            raise UserError(f"worst-off metric {spec!r}: use METRIC, METRIC:max or METRIC:min")
        for f in nested:
            worst_found += worst_off(mine, analysis, f, metric, lowest_is_worst=how == "min", baseline=base_summary,
                                     equity_threshold=equity_threshold)
    caveats: dict[str, Any] = {"limitations": meta["limitations"],
                               "known failure conditions": meta["failure_conditions"]}
    if worst_found:
        caveats["worst-off groups found"] = worst_found
    factor_section: dict[str, Any] = {"inputs": list(meta["inputs"]), "evaluated factors": list(factors)}
    if meta.get("factor_definitions"):
        factor_section["definitions"] = dict(meta["factor_definitions"])
    sections = {
        "model_details": {"name": meta["name"], "version": meta["version"], "type": meta.get("type", ""),
                          "owner": meta.get("owner", ""), "artifact_hash": meta.get("artifact_hash", ""),
                          "license": meta.get("license", "Apache-2.0"), "date": meta.get("date", "")},
        "intended_use": {"primary uses": meta["intended_use"],
                         "out of scope": meta.get("out_of_scope", "anything not listed as a primary use")},
        "factors": factor_section,
        "metrics": {"reported": list(metrics), "selection": dict(select),
                    "notes": meta.get("metric_notes", "means over runs; lower is better for delays and errors")},
        "evaluation_data": meta.get("evaluation_data", sorted({str(r.get("scenario", r.get("dataset", "")))
                                                               for r in mine} - {""})),
        "training_data": meta.get("training_data", "learns online from sensor observations during the run"),
        "quantitative_analyses": analysis,
        "ethical_considerations": meta.get("ethical_considerations",
                                           "equity across districts is audited every run (min/max ratio ≥ 0.8)"),
        "caveats_and_recommendations": caveats,
    }
    return ModelCard(str(meta["name"]), str(meta["version"]), sections)


def load_results(path: str | Path) -> list[dict[str, Any]]:
    """Read a benchmark/backtest JSON file (a list of records, or ``{"results": [...]}``)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise UserError(f"cannot read results {p}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UserError(f"results {p} are not JSON: {exc}") from exc
    if isinstance(data, Mapping):
        data = data.get("results")
    if not isinstance(data, list) or not all(isinstance(r, Mapping) for r in data):
        raise UserError(f"results {p} must be a list of records")
    return [dict(r) for r in data]
