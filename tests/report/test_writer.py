"""The report reads each domain's metadata: units, directions, verdicts, strict JSON, honest notes."""

from __future__ import annotations

import json
import math
from pathlib import Path

from aicity.core.city import City, Part
from aicity.core.domain import Scenario
from aicity.core.meta import KPI, Better, DomainMeta
from aicity.report.writer import write_report


class Pumps:
    name = "water"
    description = "pumps"
    meta = DomainMeta(kpis=(KPI("leak_l", "l", Better.LOWER, True), KPI("pressure_ok", "%", Better.HIGHER),
                            KPI("odd", "x", Better.LOWER)))


def _mode(mode: str, leak: float, ok: float, proposals: int) -> dict:
    return {"mode": mode, "loop": {"steps": 3, "proposals": proposals,
                                   "by_domain": {"water": {"proposals": proposals, "actuated": 0}}},
            "dead_letters": 0, "governance": {}, "consent": {}, "options": {},
            "domains": {"water": {"kpis": {"leak_l": leak, "pressure_ok": ok, "odd": math.nan}, "groups": {},
                                  "series": {}, "extra": {}, "equity": {},
                                  "kpi_meta": [k.to_dict() for k in Pumps.meta.kpis]}}}


def test_verdicts_follow_declared_directions_and_json_is_strict(tmp_path: Path) -> None:
    city = City("w", "water", (Part(Pumps(), Scenario("s", "water", "", 0, 60)),))  # type: ignore[arg-type]
    rep = write_report(tmp_path, city=city, seed=1, wall_s=1.0,
                       results={"smart": _mode("smart", 10.0, 90.0, 0), "ai": _mode("ai", 5.0, 80.0, 0)})
    table = rep["comparison"]["water"]
    assert table["leak_l"]["verdict"] == "better" and table["pressure_ok"]["verdict"] == "worse"
    assert table["odd"]["verdict"] == "" and table["odd"]["smart"] is None  # NaN becomes null, not bare NaN
    json.loads((tmp_path / "report.json").read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert rep["summary"]["water"]["better"] == 1 and rep["summary"]["water"]["worse"] == 1
    assert any("AI City made no proposal" in n for n in rep["notes"])  # nothing to control: said, not hidden
    md = (tmp_path / "report.md").read_text()
    assert "| **leak_l** | l | lower |" in md and "| pressure_ok | % | higher |" in md


def test_a_reference_optimum_shows_with_the_gap_closed(tmp_path: Path) -> None:
    city = City("w", "water", (Part(Pumps(), Scenario("s", "water", "", 0, 60)),))  # type: ignore[arg-type]
    smart, ai = _mode("smart", 10.0, 90.0, 3), _mode("ai", 5.0, 80.0, 3)
    ai["domains"]["water"].update(reference={"leak_l": 0.0, "pressure_ok": 90.0}, reference_name="oracle")
    rep = write_report(tmp_path, city=city, seed=1, wall_s=1.0, results={"smart": smart, "ai": ai})
    table = rep["comparison"]["water"]
    assert table["leak_l"]["gap_closed"] == 0.5 and table["leak_l"]["reference"] == 0.0
    assert table["pressure_ok"]["gap_closed"] is None  # the reference is no better than Smart City
    md = (tmp_path / "report.md").read_text()
    assert "| oracle | gap closed |" in md and "| 0.5 |" in md
    assert not any("no proposal" in n for n in rep["notes"])


def test_an_undefined_kpi_is_counted_not_measured_and_shown_as_a_dash(tmp_path: Path) -> None:
    city = City("w", "water", (Part(Pumps(), Scenario("s", "water", "", 0, 60)),))  # type: ignore[arg-type]
    smart, ai = _mode("smart", 10.0, 90.0, 1), _mode("ai", math.nan, 95.0, 1)  # AI City had no leak to measure
    rep = write_report(tmp_path, city=city, seed=1, wall_s=1.0, results={"smart": smart, "ai": ai})
    row = rep["comparison"]["water"]["leak_l"]
    assert row["verdict"] == "" and row["change_pct"] is None and row["ai"] is None
    assert rep["summary"]["water"] == {"better": 1, "worse": 0, "same": 0, "not_measured": 2,
                                       "headline": {"leak_l": "not measured"}}
    md = (tmp_path / "report.md").read_text()
    assert "| **leak_l** | l | lower | 10.00 | – |  |  |" in md and "nan" not in md.lower()
    assert "| water | 1 | 0 | 0 | 2 | leak_l not measured |" in md and "_Not measured:" in md
    assert "water: not measured in this window (nothing to measure in a mode; shown as –, neither better nor " \
           "worse): leak_l, odd" in rep["notes"]


def test_a_domains_own_notes_are_shown_once_or_with_their_mode(tmp_path: Path) -> None:
    city = City("w", "water", (Part(Pumps(), Scenario("s", "water", "", 0, 60)),))  # type: ignore[arg-type]
    smart, ai = _mode("smart", 10.0, 90.0, 1), _mode("ai", 5.0, 95.0, 1)
    smart["domains"]["water"]["extra"] = {"notes": ["no rain fell", "a pump was serviced"]}
    ai["domains"]["water"]["extra"] = {"notes": ["no rain fell"]}
    rep = write_report(tmp_path, city=city, seed=1, wall_s=1.0, results={"smart": smart, "ai": ai})
    said = [n for n in rep["notes"] if "rain" in n or "pump" in n]
    assert said == ["water: no rain fell", "water (Smart City): a pump was serviced"]
