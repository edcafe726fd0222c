"""A city's map from its own scenario files: a SUMO network's edges and signalised junctions as GeoJSON
(in the network's own x/y metres), read with the standard library — no tiles, nothing fetched."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def _net_file(path: Path) -> Path | None:
    if path.name.endswith(".net.xml"):
        return path
    if path.suffix == ".sumocfg":
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError):
            return None
        for el in root.iter("net-file"):
            value = el.get("value")
            if value:
                return (path.parent / value.split(",")[0]).resolve()
    return None


def _shape(text: str | None) -> list[list[float]]:
    out = []
    for pair in (text or "").split():
        x, _, y = pair.partition(",")
        try:
            out.append([round(float(x), 2), round(float(y.split(",")[0]), 2)])
        except ValueError:
            continue
    return out


def scenario_geometry(path: str | None, domain: str) -> list[dict[str, Any]]:
    """GeoJSON features of a scenario's network (empty when its file holds none)."""
    if not path:
        return []
    net = _net_file(Path(path))
    if net is None or not net.is_file():
        return []
    try:
        root = ET.parse(net).getroot()
    except (ET.ParseError, OSError):
        return []
    features: list[dict[str, Any]] = []
    for edge in root.iter("edge"):
        if edge.get("function") == "internal":
            continue
        lane = edge.find("lane")
        coords = _shape(edge.get("shape") or (lane.get("shape") if lane is not None else None))
        if len(coords) >= 2:
            features.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords},
                             "properties": {"kind": "road", "id": edge.get("id"), "domain": domain}})
    for j in root.iter("junction"):
        if j.get("type") == "traffic_light":
            try:
                xy = [round(float(j.get("x", "")), 2), round(float(j.get("y", "")), 2)]
            except ValueError:
                continue
            features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": xy},
                             "properties": {"kind": "signal", "id": j.get("id"), "domain": domain}})
    return features
