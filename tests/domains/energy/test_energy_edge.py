"""The actuator edge: no command sequence makes a charger or a battery exceed a limit (property-tested)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from aicity.domains.energy.edge import (
    BatteryLimits,
    ChargerLimits,
    battery_command,
    battery_step,
    charger_command,
)

LIM = ChargerLimits(max_kw=6.656, min_kw=1.248, step_kw=0.208, safe_kw=1.248)
BAT = BatteryLimits(power_kw=50.0, capacity_kwh=100.0, soc_min=0.1, soc_max=0.9, ramp_kw=20.0, efficiency=0.95)
commands = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64), st.integers(-10**6, 10**6),
                     st.just(True), st.none(), st.text(max_size=3))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(commands, st.booleans(), st.booleans()), min_size=1, max_size=40))
def test_charger_never_exceeds_a_limit(seq: list[tuple[object, bool, bool]]) -> None:
    for kw, connected, full in seq:
        cmd = charger_command(LIM, kw, connected=connected, full=full)
        assert cmd.status in ("applied", "clamped", "refused")
        assert cmd.kw == 0.0 or LIM.min_kw - 1e-9 <= cmd.kw <= LIM.max_kw + 1e-9
        if not connected or full:
            assert cmd.kw == 0.0  # no power to a departed or full EV
        if cmd.kw > 0:
            steps = (cmd.kw - LIM.min_kw) / LIM.step_kw
            assert abs(steps - round(steps)) < 1e-6
        if cmd.status != "applied":
            assert cmd.bound_by


def test_charger_refusals_name_the_limit() -> None:
    assert charger_command(LIM, 5.0, connected=False, full=False).bound_by == ("no_ev_connected",)
    assert charger_command(LIM, 5.0, connected=True, full=True).bound_by == ("ev_full",)
    assert charger_command(LIM, math.nan, connected=True, full=False).status == "refused"
    assert charger_command(LIM, 99.0, connected=True, full=False).bound_by == ("max_power 6.656 kW",)
    assert charger_command(LIM, -3.0, connected=True, full=False).bound_by == ("no_discharge",)
    small = charger_command(LIM, 0.9, connected=True, full=False)
    assert small.kw == LIM.min_kw and small.bound_by == ("min_power 1.248 kW",)
    exact = charger_command(LIM, LIM.min_kw + 2 * LIM.step_kw, connected=True, full=False)
    assert exact.status == "applied"


@settings(max_examples=150, deadline=None)
@given(st.floats(0.1, 0.9), st.lists(commands, min_size=1, max_size=60))
def test_battery_keeps_power_and_state_of_charge_limits(soc0: float, seq: list[object]) -> None:
    soc, prev = soc0 * BAT.capacity_kwh, 0.0
    for kw in seq:
        cmd = battery_command(BAT, kw, soc_kwh=soc, prev_kw=prev, dt_h=0.25)
        assert abs(cmd.kw) <= BAT.power_kw + 1e-9
        if cmd.status == "refused":
            assert cmd.kw == 0.0 and cmd.bound_by
            continue
        ramp_ok = abs(cmd.kw - prev) <= BAT.ramp_kw + 1e-9
        soc_bound = any(b.startswith("soc") for b in cmd.bound_by)
        assert ramp_ok or soc_bound  # only the state-of-charge band may force a step beyond the ramp
        soc = battery_step(BAT, cmd.kw, soc, 0.25)
        assert BAT.soc_min * BAT.capacity_kwh - 1e-9 <= soc <= BAT.soc_max * BAT.capacity_kwh + 1e-9
        prev = cmd.kw


def test_battery_names_the_bound() -> None:
    full = battery_command(BAT, 40.0, soc_kwh=90.0, prev_kw=40.0, dt_h=0.25)
    assert full.kw == 0.0 and full.bound_by == ("soc_max 90%",)
    ramp = battery_command(BAT, 50.0, soc_kwh=50.0, prev_kw=0.0, dt_h=0.25)
    assert ramp.kw == 20.0 and ramp.bound_by == ("ramp_limit 20 kW per interval",)
