"""Every map the sumo-rl wheel ships is a scenario, read where the wheel installed it, and runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from aicity.domains.mobility.scenarios import (
    RESCO_MAPS,
    builtin_scenarios,
    nets_dir,
    read_sumocfg,
    require,
    resolve,
)
from aicity.domains.mobility.sumo_rl_maps import SUMO_RL_MAPS, WINDOW_S, canonical, config_text

NETS = nets_dir()
needs_wheel = pytest.mark.skipif(NETS is None, reason="the sumo-rl wheel is not installed")
ALL_MAPS = (*RESCO_MAPS, *SUMO_RL_MAPS)


def test_every_map_folder_of_the_wheel_is_registered() -> None:
    if NETS is None:
        pytest.skip("the sumo-rl wheel is not installed")
    folders = {p.name for p in NETS.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders - {"RESCO"} == {s.folder for s in SUMO_RL_MAPS.values()}
    assert {p.name for p in (NETS / "RESCO").iterdir() if p.is_dir()} == set(RESCO_MAPS)


@needs_wheel
def test_all_maps_listed_and_resolvable() -> None:
    names = [s.name for s in builtin_scenarios()]
    assert names[0] == "grid3x3"
    assert set(ALL_MAPS) <= set(names)
    for name in SUMO_RL_MAPS:
        scen = require(name)
        assert (scen.begin_s, scen.end_s) == (0.0, WINDOW_S)
        cfg = read_sumocfg(scen.path or "")
        assert NETS is not None and Path(cfg.net).is_relative_to(NETS.resolve()), "read from the wheel"
        assert all(Path(r).is_relative_to(NETS.resolve()) for r in cfg.routes)


def test_names_are_case_insensitive() -> None:
    assert canonical("nguyen") == "Nguyen"
    assert canonical("4X4-LUCAS") == "4x4-Lucas"
    assert canonical("cologne8") is None
    if NETS is not None:
        scen = resolve("ow")
        assert scen is not None and scen.name == "OW"


def test_generated_config_names_wheel_files_only(tmp_path: Path) -> None:
    text = config_text(tmp_path, SUMO_RL_MAPS["4x4loop"])
    assert f"{tmp_path}/4x4loop/4x4loop.net.xml" in text
    assert "circle.add.xml" in text and f'<end value="{WINDOW_S:g}"/>' in text


@needs_wheel
@pytest.mark.parametrize("name", ALL_MAPS)
def test_every_map_runs_every_controller(name: str) -> None:
    pytest.importorskip("libsumo")
    from aicity.domains.mobility.bench import run_episode

    delays = {}
    for controller in ("fixed", "maxpressure", "ai"):
        result, _ = run_episode(name, controller, 1, duration_s=60.0)
        delays[controller] = result.kpis["delay_s"]
        assert result.kpis["finished"] + result.kpis["unfinished"] + result.kpis["never_inserted"] > 0
    assert all(d >= 0.0 for d in delays.values())
