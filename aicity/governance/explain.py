"""Plain-language explanations of decision records: the planner's own account, top inputs, a counterfactual, and
the binding constraints.

Counterfactuals are derived from the candidates' score terms. A candidate may carry ``terms`` as a mapping
``{input key: contribution}`` or a list of ``{"input": key, "contribution": x}``; when it carries neither, the
explanation says that no counterfactual can be derived instead of inventing one. A planner may give its own
plain-words account of a choice in the chosen action's parameters or in its candidate (:data:`REASON_KEYS`: why
this unit, which constraint bound an optimiser); the explanation shows it as *Why*, not inside the option's name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

META_KEYS = {"score", "terms", "meaning"}
REASON_KEYS = ("explanation", "why", "binding")
"""Fields holding a planner's own plain-words account of a choice, shown as the explanation's *Why*."""
LIST_SHOWN = 3
"""Longer lists in an option's parameters (a route's edges) are named by their length only."""


def label(key: str) -> str:
    """A readable name for an input key (drops the NGSI-LD URN prefix)."""
    return key.removeprefix("urn:ngsi-ld:")


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def candidate_label(c: Mapping[str, Any]) -> str:
    """A candidate's name from its non-score fields, e.g. ``phase=2``."""
    parts: list[str] = []
    for k, v in sorted(c.items()):
        if k in META_KEYS or k in REASON_KEYS:
            continue
        if isinstance(v, Mapping):
            parts.extend(f"{kk}={_shown(vv)}" for kk, vv in sorted(v.items()) if kk not in REASON_KEYS)
        else:
            parts.append(f"{k}={_shown(v)}")
    return ", ".join(parts) or "(unnamed option)"


def _shown(v: Any) -> str:
    """A parameter's value as an option's name shows it: a long list by its length."""
    if isinstance(v, list | tuple) and len(v) > LIST_SHOWN:
        return f"[{len(v)} items]"
    return str(v)


def terms_of(c: Mapping[str, Any]) -> dict[str, float] | None:
    """A candidate's per-input score terms, or None when it has none in a known form."""
    raw = c.get("terms")
    if isinstance(raw, Mapping):
        out = {str(k): _num(v) for k, v in raw.items()}
    elif isinstance(raw, Sequence) and raw and all(isinstance(t, Mapping) and "input" in t for t in raw):
        out = {}
        for t in raw:
            out[str(t["input"])] = (out.get(str(t["input"])) or 0.0) + (_num(t.get("contribution")) or 0.0)
    else:
        return None
    clean = {k: v for k, v in out.items() if v is not None}
    return clean or None


def _matches(c: Mapping[str, Any], chosen: Mapping[str, Any]) -> bool:
    params = chosen.get("params") or {}
    keys = [k for k in c if k not in META_KEYS and k not in REASON_KEYS]
    if not keys:
        return False
    for k in keys:
        if k == "action" and c[k] == chosen.get("action"):
            continue
        if k == "params" and c[k] == params:
            continue
        if k not in params and c[k] == chosen.get("target"):  # the option names the unit chosen (its target)
            continue
        if params.get(k) != c[k]:
            return False
    return True


def _reason(chosen_action: Mapping[str, Any], chosen: Mapping[str, Any] | None) -> str:
    """The planner's own account of the choice, from the action's parameters and its candidate."""
    found: list[str] = []
    for source in (chosen_action.get("params") or {}, chosen or {}):
        for key in REASON_KEYS:
            text = source.get(key)
            if isinstance(text, str) and text.strip() and text.strip() not in found:
                found.append(text.strip())
    return " ".join(t if t.endswith((".", "!", "?")) else t + "." for t in found)


@dataclass(frozen=True, slots=True)
class Explanation:
    """An explanation in parts and as text."""

    summary: str
    top_inputs: Sequence[str] = ()
    reason: str = ""
    """The planner's own plain-words account (empty when it gave none)."""
    counterfactual: str = ""
    constraints: Sequence[str] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The whole explanation in plain words."""
        lines = [self.summary]
        if self.reason:
            lines.append("Why: " + self.reason)
        if self.top_inputs:
            lines.append("Top contributing inputs: " + "; ".join(self.top_inputs) + ".")
        if self.counterfactual:
            lines.append("Counterfactual: " + self.counterfactual)
        lines.append("Constraints: " + ("; ".join(self.constraints) + "." if self.constraints
                                        else "none bound the choice."))
        return "\n".join(lines)


def _input_values(record: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for ref in record.get("inputs") or []:
        for k, v in (ref.get("values") or {}).items():
            n = _num(v)
            if n is not None:
                out[k] = n
    return out


def _counterfactual(chosen: Mapping[str, Any], others: list[Mapping[str, Any]], maximize: bool,
                    values: Mapping[str, float]) -> tuple[str, dict[str, Any]]:
    if not others:
        return "only one option was considered, so no other choice was possible.", {}
    sign = 1.0 if maximize else -1.0
    runner = max(others, key=lambda c: sign * (_num(c.get("score")) or float("-inf")))
    sc, sr = _num(chosen.get("score")), _num(runner.get("score"))
    rl = candidate_label(runner)
    if sc is None or sr is None:
        return f"the candidates carry no numeric scores, so the margin to {rl} is unknown.", {}
    margin = sign * (sc - sr)
    tc, tr = terms_of(chosen), terms_of(runner)
    if tc is None or tr is None:
        return (f"the runner-up {rl} scored {sr:g} against {sc:g}; the candidates carry no per-input score "
                "terms, so which input would have changed the choice cannot be derived."), {"runner_up": rl}
    best: tuple[float, str, float, float] | None = None
    for key in sorted(set(tc) | set(tr)):
        v = values.get(key)
        d = sign * (tc.get(key, 0.0) - tr.get(key, 0.0))
        if v is None or v == 0 or d == 0:
            continue
        threshold = v * (1.0 - margin / d)
        rel = abs(v - threshold) / abs(v)
        if best is None or rel < best[0]:
            best = (rel, key, threshold, v)
    if best is None:
        return (f"the runner-up {rl} scored {sr:g} against {sc:g}; none of the score terms is tied to an "
                "input value, so no input threshold can be derived."), {"runner_up": rl}
    _, key, threshold, v = best
    direction = "below" if threshold < v else "above"
    return (f"had {label(key)} been {direction} {threshold:.3g} (it was {v:g}), {rl} would have been chosen "
            "(assuming its score term scales with the value; the margin was "
            f"{margin:.3g})."), {"runner_up": rl, "input": key, "threshold": threshold, "value": v}


def explain(record: Mapping[str, Any]) -> Explanation:
    """Explain one decision record in plain words."""
    chosen_action = record.get("chosen") or {}
    cands = [c for c in record.get("candidates") or [] if isinstance(c, Mapping)]
    chosen = next((c for c in cands if _matches(c, chosen_action)), None)
    scored = [c for c in cands if _num(c.get("score")) is not None]
    if chosen is None and scored:
        chosen = max(scored, key=lambda c: _num(c.get("score")) or 0.0)
    maximize = True
    chosen_score = _num(chosen.get("score")) if chosen is not None else None
    if chosen_score is not None and len(scored) > 1:
        all_scores = [_num(c.get("score")) or 0.0 for c in scored]
        maximize = not (chosen_score == min(all_scores) and chosen_score != max(all_scores))
    model = (record.get("model") or {}).get("id", "the model")
    what = candidate_label(chosen) if chosen is not None else \
        f"{chosen_action.get('action', '?')} {candidate_label(chosen_action.get('params') or {})}"
    summary = (f"At {record.get('time')}, {model} chose {what} for {chosen_action.get('target', '?')} in "
               f"{record.get('domain')} (autonomy {record.get('autonomy_level')}, verdict "
               f"{record.get('verdict')}{', DEGRADED inputs' if record.get('degraded') else ''}).")
    values = _input_values(record)
    top: list[str] = []
    terms = terms_of(chosen) if chosen is not None else None
    if terms:
        for key, contrib in sorted(terms.items(), key=lambda kv: -abs(kv[1]))[:3]:
            val = f" = {values[key]:g}" if key in values else ""
            top.append(f"{label(key)}{val} (contributed {contrib:+.3g} to the score)")
    elif values:
        top = [f"{label(k)} = {v:g}" for k, v in list(values.items())[:5]]
        top.append("(no per-input contributions were given; listed unranked)")
    counterfactual, details = "", dict[str, Any]()
    if chosen is not None and _num(chosen.get("score")) is None and not any(c is not chosen for c in scored):
        counterfactual = "the record lists no scored alternatives, so no counterfactual can be derived."
    elif chosen is not None:
        others = [c for c in scored if c is not chosen]
        counterfactual, details = _counterfactual(chosen, others, maximize, values)
    else:
        counterfactual = "the record lists no scored candidates, so no counterfactual can be derived."
    constraints = [str(b) for b in record.get("limits_bound") or []]
    act = record.get("actuation") or {}
    if act.get("reason"):
        constraints.append(f"actuator edge: {act.get('status')} ({act['reason']})")
    if record.get("verdict") not in ("act", None):
        constraints.extend(str(r) for r in record.get("reasons") or [] if str(r) not in constraints)
    return Explanation(summary, top, _reason(chosen_action, chosen), counterfactual, constraints, details)
