"""Model cards (Mitchell et al. 2019) generated from benchmark and backtest results, as JSON and Markdown.

Results are flat records (one per run, as the bench and backtest write them), optionally with a ``groups``
mapping ``{factor: {group: {metric: value}}}`` for metrics disaggregated by district or time of day.
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


def summarize(results: Sequence[Mapping[str, Any]], metrics: Sequence[str],
              factors: Sequence[str]) -> dict[str, Any]:
    """Overall means and means disaggregated by each factor (record fields or nested ``groups``)."""
    overall = {m: _mean([r.get(m) for r in results]) for m in metrics}  # type: ignore[misc]
    by: dict[str, dict[str, dict[str, float | None]]] = {}
    for factor in factors:
        cells: dict[str, dict[str, list[float]]] = {}
        for r in results:
            if factor in r:
                g = str(r[factor])
                for m in metrics:
                    if m in r:
                        cells.setdefault(g, {}).setdefault(m, []).append(r[m])
            for g, vals in ((r.get("groups") or {}).get(factor) or {}).items():
                for m in metrics:
                    if m in vals:
                        cells.setdefault(str(g), {}).setdefault(m, []).append(vals[m])
        if cells:
            by[factor] = {g: {m: _mean(v) for m, v in ms.items()} for g, ms in sorted(cells.items())}
    return {"n_runs": len(results), "overall": overall, "disaggregated": by}


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
        lines = [f"Runs evaluated: {value.get('n_runs')}", "", "| metric | mean |", "|---|---|"]
        lines += [f"| {m} | {_fmt(v)} |" for m, v in value["overall"].items()]
        if value.get("baseline"):
            lines += ["", "Baseline for comparison:", "", "| metric | mean |", "|---|---|"]
            lines += [f"| {m} | {_fmt(v)} |" for m, v in value["baseline"]["overall"].items()]
        for factor, groups in value["disaggregated"].items():
            metrics = sorted({m for g in groups.values() for m in g})
            lines += ["", f"By {factor}:", "", "| " + " | ".join([factor, *metrics]) + " |",
                      "|" + "---|" * (len(metrics) + 1)]
            lines += ["| " + " | ".join([g, *(_fmt(v.get(m)) for m in metrics)]) + " |" for g, v in groups.items()]
        return lines
    if isinstance(value, Mapping):
        return [f"- **{k}**: {_fmt(v) if not isinstance(v, (list, tuple)) else ', '.join(map(str, v))}"
                for k, v in value.items()]
    return [_fmt(value)]


REQUIRED_META = ("name", "version", "intended_use", "inputs", "limitations", "failure_conditions")


def build_model_card(meta: Mapping[str, Any], results: Sequence[Mapping[str, Any]], *,
                     select: Mapping[str, Any], metrics: Sequence[str], factors: Sequence[str] = (),
                     baseline: Mapping[str, Any] | None = None) -> ModelCard:
    """A model card from human-written ``meta`` and the benchmark/backtest ``results`` of the selected model."""
    missing = [k for k in REQUIRED_META if not meta.get(k)]
    if missing:
        raise UserError(f"model card metadata lacks {', '.join(missing)}")
    mine = _selected(results, select)
    if not mine:
        raise UserError(f"no results match {dict(select)} (have {len(results)} records)")
    analysis = summarize(mine, metrics, factors)
    if baseline is not None:
        base = _selected(results, baseline)
        analysis["baseline"] = {"select": dict(baseline), **summarize(base, metrics, ())} if base else None
    sections = {
        "model_details": {"name": meta["name"], "version": meta["version"], "type": meta.get("type", ""),
                          "owner": meta.get("owner", ""), "artifact_hash": meta.get("artifact_hash", ""),
                          "license": meta.get("license", "Apache-2.0"), "date": meta.get("date", "")},
        "intended_use": {"primary uses": meta["intended_use"],
                         "out of scope": meta.get("out_of_scope", "anything not listed as a primary use")},
        "factors": {"inputs": list(meta["inputs"]), "evaluated factors": list(factors)},
        "metrics": {"reported": list(metrics), "selection": dict(select),
                    "notes": meta.get("metric_notes", "means over runs; lower is better for delays and errors")},
        "evaluation_data": meta.get("evaluation_data", sorted({str(r.get("scenario", r.get("dataset", "")))
                                                               for r in mine} - {""})),
        "training_data": meta.get("training_data", "learns online from sensor observations during the run"),
        "quantitative_analyses": analysis,
        "ethical_considerations": meta.get("ethical_considerations",
                                           "equity across districts is audited every run (min/max ratio ≥ 0.8)"),
        "caveats_and_recommendations": {"limitations": meta["limitations"],
                                        "known failure conditions": meta["failure_conditions"]},
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
