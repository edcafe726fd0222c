"""A hand-checkable toy map shared by the safety tests."""

from __future__ import annotations

from aicity.domains.safety.geo import SafetyMap


def ring() -> SafetyMap:
    """Three 100 m edges at 10 m/s in a one-way ring a → b → c → a: 10 s each."""
    edges = ("a", "b", "c")
    xy = {"a": (0.0, 0.0), "b": (100.0, 0.0), "c": (50.0, 80.0)}
    return SafetyMap("ring.net.xml", edges, dict.fromkeys(edges, 100.0), dict.fromkeys(edges, 10.0), xy,
                     {e: (xy[e], xy[e]) for e in edges}, {"a": ("b",), "b": ("c",), "c": ("a",)},
                     {"z1": edges}, dict.fromkeys(edges, "z1"), {"z1": (50.0, 30.0)}, {"z1": "a"}, ("c",), 0.01)
