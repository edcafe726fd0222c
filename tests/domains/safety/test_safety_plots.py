"""The safety report's own plot: the call-to-arrival distribution per mode, with calls never reached kept in."""

from __future__ import annotations

from pathlib import Path

from aicity.core.domain import DomainResult
from aicity.domains.safety.plots import distribution_plot, positions_plot, report_plots, responses


def _result(*calls: tuple[float, float | None]) -> DomainResult:
    incidents = [{"call_s": c, "arrival_s": a} for c, a in calls]
    return DomainResult({}, extra={"incidents": incidents, "options": {"targets_s": {"p1": 150.0, "p2": 180.0}}})


def test_responses_are_the_calls_reached_sorted_and_the_rest_counted() -> None:
    assert responses(_result((10.0, 200.0), (0.0, 90.0), (30.0, None))) == ([90.0, 190.0], 1)
    assert responses(DomainResult({})) == ([], 0)


def test_the_distribution_is_drawn_per_mode_and_says_when_there_was_no_call(tmp_path: Path) -> None:
    both = {"smart": _result((0.0, 120.0), (5.0, None)), "ai": _result((0.0, 100.0), (5.0, 300.0))}
    assert distribution_plot(tmp_path, both, "safety_") == ["safety_response_distribution.png"]
    assert (tmp_path / "safety_response_distribution.png").stat().st_size > 1000
    none = {"smart": _result(), "ai": _result()}
    assert distribution_plot(tmp_path, none) == ["response_distribution.png"]


def test_positions_are_drawn_per_mode_on_the_roads_and_only_where_recorded(tmp_path: Path) -> None:
    moved = DomainResult({}, extra={"unit_positions": {"A1": [[0.0, 0.0, 0.0], [60.0, 50.0, 10.0]], "A2": []},
                                    "edges_xy": [[[0.0, 0.0], [100.0, 0.0]]]})
    assert positions_plot(tmp_path, {"smart": moved, "ai": moved}) == ["ambulance_positions.png"]
    assert positions_plot(tmp_path, {"smart": DomainResult({}), "ai": DomainResult({})}) == []
    assert report_plots(tmp_path, {"ai": moved}) == ["response_distribution.png", "ambulance_positions.png"]
