"""Register export: both formats validate against the shipped schemas; gaps in the human config are named."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path

import jsonschema
import pytest

import aicity
from aicity.core.errors import UserError
from aicity.governance.oversight import DomainPolicy, Policy
from aicity.governance.register import export_register, load_config, schema, validate

MOBILITY = Path(aicity.__file__).parent / "domains" / "mobility" / "policy.toml"


@pytest.mark.parametrize("fmt", ["eurocities", "atrs"])
def test_export_validates(fmt: str) -> None:
    cards = [{"name": "maxpressure", "version": "1", "model_details": {"type": "max-pressure"},
              "quantitative_analyses": {"overall": {"delay_s": 23.5}}}]
    city = Policy.load().with_domains([DomainPolicy.load("mobility", MOBILITY)])
    entry = export_register(fmt, model_cards=cards, today=date(2026, 3, 2), policy=city)
    jsonschema.Draft202012Validator(schema(fmt)).validate(entry)  # independent re-check
    if fmt == "eurocities":
        assert entry["standard_version"] == "0.3.1" and entry["publication_date"] == "2026-03-02"
        assert "mobility/signal_phase: autonomous-within-envelope" in entry["human_intervention"]
        assert "anything no rule covers: advise" in entry["human_intervention"]
        assert entry["lawful_basis"].startswith("Public task")
    else:
        assert entry["tier_1"]["phase"] == "pilot"
        assert "delay_s=23.5" in entry["tier_2"]["tool_specification"]["model_performance"]


def test_missing_human_field_is_named() -> None:
    cfg = copy.deepcopy(load_config())
    del cfg["system"]["objection_procedure"]
    with pytest.raises(UserError, match=r"system\.objection_procedure"):
        export_register("eurocities", config=cfg)


def test_schema_rejects_bad_values() -> None:
    entry = export_register("eurocities", today=date(2026, 3, 2))
    with pytest.raises(UserError, match="status"):
        validate({**entry, "status": "maybe"}, "eurocities")
    with pytest.raises(UserError, match="contact_email"):
        validate({**entry, "contact_email": "nobody"}, "eurocities")
    with pytest.raises(UserError, match="unknown register format"):
        export_register("iso")
