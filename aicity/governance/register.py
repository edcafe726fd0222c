"""Algorithm register export: Eurocities / NL Algorithmic Transparency Standard v0.3.1 and UK ATRS tiers 1–2.

Entries are filled from system metadata (policy, model cards, ledger) plus a human-written config (lawful basis,
proportionality, objection procedure, ...) and validated against the JSON Schemas in ``schemas/``.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError, unreadable
from aicity.governance.oversight import Policy

FORMATS = {"eurocities": "eurocities-ats-v0.3.1.json", "atrs": "uk-atrs-tiers-1-2.json"}
EXAMPLE_CONFIG = "register.example.toml"


def schema(fmt: str) -> dict[str, Any]:
    """The shipped JSON Schema of a register format."""
    if fmt not in FORMATS:
        raise UserError(f"unknown register format {fmt!r}; use one of {', '.join(FORMATS)}")
    data: dict[str, Any] = json.loads(resources.files("aicity.governance.schemas").joinpath(FORMATS[fmt]).read_text())
    return data


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """The human-written register config (TOML or JSON); the shipped example when ``path`` is None."""
    if path is None:
        text = resources.files("aicity.governance.policy").joinpath(EXAMPLE_CONFIG).read_text()
        source = EXAMPLE_CONFIG
    else:
        try:
            text = Path(path).read_text()
        except (OSError, ValueError) as exc:  # missing, unreadable, not UTF-8
            raise UserError(f"cannot read register config {path}: {getattr(exc, 'strerror', None) or exc}") from exc
        source = str(path)
    try:
        data: dict[str, Any] = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UserError(f"register config {source} is not valid TOML/JSON: {unreadable(exc)}") from exc
    for section in ("organisation", "system"):
        if not isinstance(data.get(section), dict):
            raise UserError(f"register config {source} needs a [{section}] table")
    return data


def system_metadata(policy: Policy | None = None, model_cards: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """What the software itself can state: version, oversight, monitoring, models."""
    pol = policy or Policy.load()
    try:
        version = metadata.version("aicity")
    except metadata.PackageNotFoundError:
        version = "unknown"
    levels = sorted({f"{r.domain}/{r.action_type}: {r.autonomy.value} (owner: {r.owner_role})" for r in pol.rules})
    levels.append(f"anything no rule covers: {pol.default.autonomy.value} (owner: {pol.default.owner_role}; "
                  "a ledgered policy notice)")
    models = [{"name": c.get("name"), "version": c.get("version"),
               "type": (c.get("model_details") or {}).get("type", ""),
               "performance": (c.get("quantitative_analyses") or {}).get("overall", {})} for c in model_cards]
    return {
        "software": f"aicity {version}",
        "algorithm_type": ", ".join(sorted({m["type"] for m in models if m["type"]}))
        or "rule-based optimisation with online-learning forecasts",
        "human_intervention": ("Autonomy levels per domain and action type from oversight policy "
                               f"{pol.version} (sha256 {pol.sha256[:12]}): " + "; ".join(levels)
                               + ". A global and per-domain stop returns actuators to the documented safe state; "
                                 "overrides and reversals require a recorded reason; approve-then-act proposals "
                                 "wait in an approvals queue."),
        "monitoring": ("Every decision is recorded in an append-only RFC 6962 Merkle ledger with signed tree heads "
                       "(verifiable offline); equity audits per district every run (alert below a 0.8 min/max "
                       "ratio); input plausibility checks; forecast accuracy and drift monitoring."),
        "architecture": ("sense → state (NGSI-LD store) → forecast → decide (planners) → govern (autonomy, "
                         "plausibility, envelope) → act (actuator edge with hard limits) → audit (ledger)"),
        "models": models or [{"name": "see model cards", "version": version}],
    }


def _need(cfg: Mapping[str, Any], section: str, key: str) -> Any:
    value = (cfg.get(section) or {}).get(key)
    if value in (None, "", []):
        raise UserError(f"register config lacks {section}.{key}: a person must write it")
    return value


def eurocities_entry(cfg: Mapping[str, Any], system: Mapping[str, Any], today: date) -> dict[str, Any]:
    """An NL/Eurocities Algorithmic Transparency Standard v0.3.1 entry."""
    org, s = "organisation", "system"
    entry = {
        "name": _need(cfg, s, "name"), "description_short": _need(cfg, s, "description_short"),
        "organization": _need(cfg, org, "name"), "department": _need(cfg, org, "department"),
        "contact_email": _need(cfg, org, "contact_email"), "area": _need(cfg, s, "area"),
        "domain": _need(cfg, s, "domain"), "status": _need(cfg, s, "status"),
        "decision_making_process": _need(cfg, s, "decision_making_process"), "goal": _need(cfg, s, "goal"),
        "impact": _need(cfg, s, "impact"), "risks": _need(cfg, s, "risks"),
        "risk_category": _need(cfg, s, "risk_category"), "proportionality": _need(cfg, s, "proportionality"),
        "lawful_basis": _need(cfg, s, "lawful_basis"), "training_data": _need(cfg, s, "training_data"),
        "source_data": _need(cfg, s, "source_data"),
        "connected_data_sources": list(_need(cfg, s, "connected_data_sources")),
        "algorithm_type": system["algorithm_type"],
        "description": f"{_need(cfg, s, 'description')} Architecture: {system['architecture']}.",
        "monitoring": system["monitoring"], "human_intervention": system["human_intervention"],
        "objection_procedure": _need(cfg, s, "objection_procedure"), "standard_version": "0.3.1",
        "lang": cfg.get("lang", "en"), "begin_date": _need(cfg, s, "begin_date"),
        "publication_date": today.isoformat(), "website": (cfg.get(org) or {}).get("website", ""),
        "models": list(system["models"]),
    }
    if (cfg.get(s) or {}).get("end_date"):
        entry["end_date"] = cfg[s]["end_date"]
    return entry


def atrs_entry(cfg: Mapping[str, Any], system: Mapping[str, Any]) -> dict[str, Any]:
    """A UK Algorithmic Transparency Recording Standard record, tiers 1 and 2."""
    org, s = "organisation", "system"
    perf = "; ".join(f"{m['name']}: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                                  for k, v in (m.get("performance") or {}).items())
                     for m in system["models"]) or "see model cards"
    return {
        "schema": "UK ATRS v3.0 (tiers 1-2)",
        "tier_1": {"name": _need(cfg, s, "name"), "description": _need(cfg, s, "description_short"),
                   "website": _need(cfg, org, "website"), "contact_email": _need(cfg, org, "contact_email"),
                   "organisation": _need(cfg, org, "name"), "function": _need(cfg, s, "function"),
                   "phase": _need(cfg, s, "phase")},
        "tier_2": {
            "owner_and_responsibility": {
                "organisation": _need(cfg, org, "name"), "team": _need(cfg, org, "team"),
                "senior_responsible_owner": _need(cfg, org, "senior_responsible_owner"),
                "external_supplier": _need(cfg, org, "external_supplier")},
            "description_and_rationale": {
                "detailed_description": _need(cfg, s, "description"), "scope": _need(cfg, s, "scope"),
                "benefit": _need(cfg, s, "benefit"),
                "alternatives_considered": _need(cfg, s, "alternatives_considered")},
            "decision_making_process": {
                "process_integration": _need(cfg, s, "decision_making_process"),
                "provided_information": "Each decision with its inputs, candidates, explanation and the limits "
                                        "that bound it (aicity audit show).",
                "frequency_and_scale": _need(cfg, s, "frequency_and_scale"),
                "human_decisions_and_review": system["human_intervention"],
                "required_training": _need(cfg, s, "required_training"),
                "appeals_and_review": _need(cfg, s, "appeals_and_review")},
            "tool_specification": {
                "system_architecture": system["architecture"],
                "phase_and_maintenance": f"{_need(cfg, s, 'phase')}; {system['software']}",
                "model_performance": perf, "models": list(system["models"])},
            "data": {"source_data": _need(cfg, s, "source_data"),
                     "development_data": _need(cfg, s, "development_data"),
                     "data_sharing": _need(cfg, s, "data_sharing"), "lawful_basis": _need(cfg, s, "lawful_basis"),
                     "data_retention": _need(cfg, s, "data_retention")},
            "risks_mitigations_and_impact_assessments": {
                "impact_assessments": _need(cfg, s, "impact_assessments"), "risks": _need(cfg, s, "risks"),
                "mitigations": _need(cfg, s, "mitigations"), "proportionality": _need(cfg, s, "proportionality")},
        },
    }


def validate(entry: Mapping[str, Any], fmt: str) -> None:
    """Validate an entry against the shipped schema; :class:`UserError` names the first problem and its path."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema(fmt), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(entry), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise UserError(f"{fmt} register entry is invalid at {where}: {e.message}")


def export_register(fmt: str, *, config: Mapping[str, Any] | None = None, policy: Policy | None = None,
                    model_cards: Sequence[Mapping[str, Any]] = (), today: date | None = None) -> dict[str, Any]:
    """Build and validate a register entry in ``fmt`` (``eurocities`` or ``atrs``)."""
    schema(fmt)  # refuse unknown formats first
    cfg = config if config is not None else load_config()
    system = system_metadata(policy, model_cards)
    entry = eurocities_entry(cfg, system, today or date.today()) if fmt == "eurocities" else atrs_entry(cfg, system)
    validate(entry, fmt)
    return entry
