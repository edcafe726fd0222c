"""Networks with sidewalks, crossings and walking areas: detectors only on lanes vehicles may use."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aicity.domains.mobility.network import DetectorPiece, additional_xml, allows_vehicles, load_network
from aicity.domains.mobility.scenarios import read_sumocfg


def test_allows_vehicles() -> None:
    assert allows_vehicles(None, None)
    assert allows_vehicles(None, "pedestrian")
    assert allows_vehicles("passenger bus", None)
    assert allows_vehicles("bicycle pedestrian", None)
    assert not allows_vehicles("pedestrian", None)
    assert not allows_vehicles(None, "all")


def test_detectors_tolerate_positions_beyond_short_lanes() -> None:
    text = additional_xml([DetectorPiece("d", "stub_0", 0.0, 0.05)], "out.xml", 300.0)
    assert 'friendlyPos="true"' in text


@pytest.fixture(scope="module")
def walkable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("sumo")
    from aicity.domains.mobility.walkable import make_walkable

    return make_walkable("grid3x3", tmp_path_factory.mktemp("walk"), flows=6, period_s=60.0, seed=3)


def _vehicle_lanes(net_file: str) -> tuple[set[str], set[str]]:
    """(lanes of normal edges that admit vehicles, every other lane) straight from the net file."""
    ok, other = set(), set()
    for edge in ET.parse(net_file).getroot().iter("edge"):
        for lane in edge.iter("lane"):
            normal = edge.get("function", "normal") == "normal"
            good = normal and allows_vehicles(lane.get("allow"), lane.get("disallow"))
            (ok if good else other).add(lane.get("id", ""))
    return ok, other


def test_walkable_network_has_signalised_walking_areas(walkable: Path) -> None:
    root = ET.parse(read_sumocfg(walkable).net).getroot()
    kinds = {e.get("function") for e in root.iter("edge")}
    assert {"walkingarea", "crossing"} <= kinds
    tl_from = {c.get("from", "") for c in root.iter("connection") if c.get("tl")}
    assert any(f.startswith(":") for f in tl_from), "signals control pedestrian links from walking areas"
    assert any(ln.get("allow") == "pedestrian" for ln in root.iter("lane")), "sidewalks"


def test_detectors_only_on_vehicle_lanes(walkable: Path) -> None:
    cfg = read_sumocfg(walkable)
    net = load_network(cfg.net)
    ok, other = _vehicle_lanes(cfg.net)
    assert set(net.lanes) <= ok
    pieces = net.detectors()
    assert pieces and {p.lane for p in pieces} <= ok
    assert not {p.lane for p in pieces} & other
    for sig in net.signals.values():
        assert sig.in_lanes and set(sig.in_lanes) <= ok and set(sig.out_lanes) <= ok
    assert len(net.signals) == 9


@pytest.mark.parametrize("controller", ["fixed", "maxpressure", "ai"])
def test_walkable_network_runs_every_controller(walkable: Path, controller: str) -> None:
    pytest.importorskip("libsumo")
    from aicity.domains.mobility.bench import run_episode

    result, _ = run_episode(str(walkable), controller, 1, duration_s=300.0)
    k = result.kpis
    assert k["finished"] > 20
    assert k["never_inserted"] == 0
    assert k["delay_s"] < 120.0
