"""The district feeder on a pandapower grid (filled in below)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aicity.core.domain import Scenario
from aicity.core.errors import UserError
from aicity.domains.energy.site import Site


def district_scenarios() -> list[Scenario]:
    """The district scenarios."""
    return []


def build_district(scenario: Scenario, params: Mapping[str, Any]) -> Site:
    """The district's ground truth."""
    raise UserError(f"unknown district scenario {scenario.name!r}")
