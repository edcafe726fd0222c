"""Incidents: the shipped NYC shape, seeded and paired across controllers, only where ambulances reach and leave."""

from __future__ import annotations

import pytest

from aicity.domains.safety.incidents import generate, history_counts, profile, zone_density

pytest.importorskip("sumolib")


@pytest.fixture(scope="module")
def smap():  # type: ignore[no-untyped-def]
    from aicity.domains.mobility.scenarios import read_sumocfg, resolve
    from aicity.domains.safety.geo import load_map

    scen = resolve("cologne8")
    assert scen is not None and scen.path is not None
    return load_map(read_sumocfg(scen.path).net, 3, 1)


def test_profile_is_the_nyc_shape() -> None:
    p = profile()
    assert sum(p.share_all) == pytest.approx(1.0, abs=1e-3) and len(p.share_all) == 24
    assert max(p.share_all) / min(p.share_all) == pytest.approx(2.6, abs=0.05)  # peak/trough, as measured
    assert 0.29 < sum(s * f for s, f in zip(p.share_all, p.p1_fraction, strict=True)) < 0.33
    assert len(p.zip_shares) == 177


def test_map_keeps_the_strongly_connected_part(smap) -> None:  # type: ignore[no-untyped-def]
    assert len(smap.edges) == 139  # of 149: the notes' count
    for e in smap.edges:
        assert smap.times_from(e)  # every edge reaches others...
    assert all(smap.sites[z] in smap.zones[z] for z in smap.zones)


def test_generation_is_seeded_and_paired(smap) -> None:  # type: ignore[no-untyped-def]
    a = generate(smap, begin_s=25200, duration_s=3600, seed=4, load_multiplier=200)
    b = generate(smap, begin_s=25200, duration_s=3600, seed=4, load_multiplier=200)
    c = generate(smap, begin_s=25200, duration_s=3600, seed=5, load_multiplier=200)
    assert a == b and a != c
    assert all(i.edge in smap.length and smap.zone_of[i.edge] == i.zone for i in a)
    assert all(0 <= i.call_s < 3600 and i.priority in (1, 2) for i in a)
    many = sum(len(generate(smap, begin_s=25200, duration_s=3600, seed=s, load_multiplier=200)) for s in range(20))
    expected = 20 * 509 * smap.area_km2 / 8760 * 200 * 24 * profile().share_all[7]
    assert 0.75 * expected < many < 1.25 * expected
    assert sum(zone_density(smap).values()) == pytest.approx(1.0)
    assert history_counts(smap, load_multiplier=1.0).shape == (28 * 24, len(smap.zones))
