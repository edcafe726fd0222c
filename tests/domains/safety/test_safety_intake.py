"""Bad input is refused with its reason: unknown place, a time in the future, a duplicate, an impossible position."""

from __future__ import annotations

from aicity.domains.safety.intake import check_incident_report, check_position

EDGES = {"e1", "e2"}


def good() -> dict[str, object]:
    return {"id": "I1", "edge": "e1", "call_s": 10.0, "priority": 1}


def test_incident_reports() -> None:
    assert check_incident_report(good(), edges=EDGES, now_s=20.0, seen=set()) is None
    assert "unknown place" in str(check_incident_report({**good(), "edge": "x"}, edges=EDGES, now_s=20, seen=set()))
    assert "in the future" in str(check_incident_report({**good(), "call_s": 99.0}, edges=EDGES, now_s=20,
                                                        seen=set()))
    assert "duplicate" in str(check_incident_report(good(), edges=EDGES, now_s=20, seen={"I1"}))
    assert "priority" in str(check_incident_report({**good(), "priority": 7}, edges=EDGES, now_s=20, seen=set()))
    assert "not a number" in str(check_incident_report({**good(), "call_s": float("nan")}, edges=EDGES, now_s=20,
                                                       seen=set()))


def test_positions() -> None:
    bounds = (0.0, 0.0, 1000.0, 1000.0)
    ok = {"x": 10.0, "y": 10.0, "t": 5.0, "edge": "e1"}
    assert check_position(ok, edges=EDGES, bounds=bounds, last=None) is None
    assert "off the map" in str(check_position({**ok, "x": 1e6}, edges=EDGES, bounds=bounds, last=None))
    assert "not on the map" in str(check_position({**ok, "edge": "zz"}, edges=EDGES, bounds=bounds, last=None))
    assert "impossible jump" in str(check_position({**ok, "x": 900.0}, edges=EDGES, bounds=bounds,
                                                   last=(4.0, 10.0, 10.0)))
