import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

import aicity.core
from aicity.core import domain as domain_mod
from aicity.core.domain import Scenario, discover, find_scenario, same_kpis
from aicity.core.errors import UserError
from aicity.core.meta import KPI, Better, DomainMeta


class FakeDomain:
    name = "toy"
    description = "a toy"
    meta = DomainMeta(kpis=(KPI("x", "s", Better.LOWER, True),))

    def scenarios(self):
        return [Scenario("tiny", "toy", "tiny", 0, 60)]

    def resolve(self, name):
        return next((s for s in self.scenarios() if s.name == name), None)

    def open_twin(self, scenario, *, seed, mode, services):
        raise NotImplementedError

    def planners(self, scenario, mode):
        return []

    def forecasters(self, scenario, mode):
        return []


def test_discover_loads_entry_points(monkeypatch):
    ep = SimpleNamespace(name="toy", value="toy:domain", load=lambda: FakeDomain)
    monkeypatch.setattr(domain_mod.metadata, "entry_points", lambda group: [ep])
    found = discover()
    assert list(found) == ["toy"]
    dom, scen = find_scenario(found, "toy/tiny")
    assert scen.duration_s == 60 and dom.name == "toy"
    with pytest.raises(UserError, match=r"unknown scenario 'nope'.*tiny"):
        find_scenario(found, "nope")


def test_discover_rejects_non_domains(monkeypatch):
    ep = SimpleNamespace(name="bad", value="x:y", load=lambda: object())
    monkeypatch.setattr(domain_mod.metadata, "entry_points", lambda group: [ep])
    with pytest.raises(domain_mod.PluginError, match=r"'bad' .* does not provide a Domain"):
        discover()


def test_installed_domains_are_discovered():
    assert "mobility" in discover()


def test_core_never_imports_a_domain():
    core_dir = Path(aicity.core.__file__).parent
    for path in core_dir.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith("aicity.") or name.startswith("aicity.core"), f"{path.name} imports {name}"


def test_a_broken_plugin_is_one_line_or_left_out(monkeypatch):
    def broken():
        raise ModuleNotFoundError("No module named 'aicity.domains.nowhere'")

    good = SimpleNamespace(name="toy", value="toy:domain", load=lambda: FakeDomain)
    bad = SimpleNamespace(name="nowhere", value="aicity.domains.nowhere:domain", load=broken)
    monkeypatch.setattr(domain_mod.metadata, "entry_points", lambda group: [bad, good])
    with pytest.raises(domain_mod.PluginError, match=r"plug-in 'nowhere' .* failed to load: ModuleNotFoundError"):
        discover()
    left_out: list[Exception] = []
    assert list(discover(on_error=left_out.append)) == ["toy"] and len(left_out) == 1


def test_same_kpis_takes_an_undefined_kpi_as_equal_only_to_an_undefined_one() -> None:
    nan = float("nan")
    assert same_kpis({"a": 1.0, "b": nan}, {"a": 1.0, "b": float("nan")})  # two NaN objects, as after a pickle
    assert not same_kpis({"a": 1.0, "b": nan}, {"a": 1.0, "b": 0.0})  # undefined is not zero
    assert not same_kpis({"a": 1.0}, {"a": 1.0, "b": 0.0}) and not same_kpis({"a": 1.0}, {"a": 2.0})
    assert same_kpis({"a": 1.0}, {"a": 1.0 + 1e-12}, rel_tol=1e-11) and not same_kpis({"a": 1.0}, {"a": 1.0 + 1e-12})
