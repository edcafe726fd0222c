"""Named energy controllers: the planners and forecast providers each runs, and the twin mode it runs in.

``smart`` is Smart City mode (chargers at full power from plug-in, batteries on self-consumption, no planner);
``ai`` is AI City mode (online forecasts + receding-horizon MPC); ``ai_noforecast`` is the MPC without anticipated
arrivals (to isolate what the forecasts add); ``oracle`` replays the perfect-foresight LP — a yardstick that reads
ground truth, never a controller a city could run; ``ai_told_peak`` (the district) is AI City told before the window
the peak the oracle's plan reaches — a diagnostic that reads ground truth too, measuring how much of AI City's gap
is not knowing the week's peak. Benchmarks pick them by name through the one loop.
"""

from __future__ import annotations

import dataclasses

from aicity.core.domain import ForecastProvider, Planner, Scenario
from aicity.core.errors import UserError
from aicity.core.meta import option_values

Parts = tuple[list[Planner], list[ForecastProvider]]

CITY_PLAN_STEP_S = 900.0
"""On the city scenario the MPC decides every minute but plans on 15-min steps (a 12 h plan of 1-min steps is
too slow to re-solve every minute)."""
CITY_FORECAST_H = 2.0
GUARD_HORIZON_H = 24.0
"""The district's guarded MPC plans (and forecasts) at least a day ahead: with 12 h, a plan made on a weekend
morning (one flat price all day) never saw the evening, so nothing recharged the batteries for it."""
RESERVE_DAYS = 14
RESERVE_H = 12.0
"""The district's batteries keep, over the next 12 h, the energy the heaviest of the last 14 days' measured
inflexible load would need above the peak already paid (:attr:`.mpc.MpcPlanner.reserve_h`): with the forecast
alone they spent it on the afternoon's on-peak prices and were empty before an evening heavier than forecast."""
RESERVE_JITTER_STEPS = 1
"""The reserve takes each recent day's load at its highest within one forecast step (15 min on the district) either
side of each step: a past day's spike at 21:15 guards 21:30 too (:attr:`.mpc.MpcPlanner.reserve_jitter_steps`).
Added after a held-out week's 21:30 spike above every past day's 21:30 met empty batteries; the batteries still ran
short at that step (237 kW instead of 244), but the bill fell on 6 of 8 weeks (bench/RESULTS.md)."""
FINISH_PENALTY = 1.0
"""The district plans each session to the departure its user typed, wanting its energy by the learned finish at
$1 per kWh late (:attr:`.mpc.MpcPlanner.finish_penalty`): with the learned finish hard, an evening at the paid peak
with empty batteries forced 75-127 kW of charging at 22:30 and raised a held-out month's peak from 258 to 326.5 kW.
Set before it was measured, not tuned: at $0.25 and $4 the week's draws 1-2 keep their peaks and draw 3's rises
3.7-4.3 kW; held-out month draw 4's falls with the price, 285.0 / 280.6 / 271.1 kW (bench/energy_notes.md)."""
MODES: dict[str, str] = {"smart": "smart", "ai": "ai", "ai_noforecast": "ai", "oracle": "ai", "ai_told_peak": "ai"}
"""Controller → the twin mode it runs in."""


def controller_parts(scenario: Scenario, name: str) -> Parts:
    """Planners and forecast providers of controller ``name`` on ``scenario``."""
    from aicity.domains.energy.meta import OPTIONS

    if name not in MODES:
        raise UserError(f"unknown energy controller {name!r}; known: {', '.join(MODES)}")
    if name == "smart":
        return [], []
    from aicity.domains.energy.feeders import layout_of
    from aicity.domains.energy.scenarios import build_site

    params = option_values(OPTIONS, scenario.params)
    layout = layout_of(scenario.name)
    if layout is not None and name == "ai_told_peak":
        raise _no_peak_guard(scenario)
    if layout is not None:
        from aicity.domains.energy.feeder_control import controller_parts as feeder_parts

        return feeder_parts(scenario, name, params, layout)
    site = build_site(scenario, params)
    if name == "oracle":
        from aicity.domains.energy.oracle import oracle_planner

        return [oracle_planner(site, scenario.begin_s, scenario.end_s, str(params["user_input"]))], []
    from aicity.domains.energy import city_options
    from aicity.domains.energy.data import Tariff
    from aicity.domains.energy.learning import DemandLearner
    from aicity.domains.energy.mpc import MpcPlanner

    city = city_options(scenario)
    dt = float(params["decision_interval_s"] or site.step_s)
    plan_step = max(dt, CITY_PLAN_STEP_S) if city else dt
    guarded = bool(site.batteries) and site.grid is not None and not city
    if name == "ai_told_peak" and not guarded:
        raise _no_peak_guard(scenario)
    horizon_h = max(float(params["horizon_h"]), GUARD_HORIZON_H) if guarded else float(params["horizon_h"])
    horizon = int(horizon_h * 3600 / dt)
    if city:  # forecasts of the next 2 h at the minute (the MPC holds the last value beyond)
        horizon = min(horizon, round(CITY_FORECAST_H * 3600 / dt))
    network = site.grid.planner_view() if site.grid is not None else None
    acn = not city and site.grid is None and not site.batteries
    planner = MpcPlanner(Tariff.load(), site.demand_charge, horizon_h,
                         bool(params["anticipate"]) and name in ("ai", "ai_told_peak"), network, plan_step_s=plan_step,
                         arrivals="quantile" if acn else "mean")
    period = max(1, round(86400 / dt))
    learner = DemandLearner(horizon=max(1, horizon), model=str(params["forecast_model"]), period=period)
    if guarded:  # the district keeps the recent days' measured load as scenarios of the evening (its reserve)
        learner.past_days = RESERVE_DAYS
    if acn:  # the charging network's own past sessions warm the arrival forecaster up (never the window's)
        from aicity.domains.energy.learning import ArrivalProfile
        from aicity.domains.energy.scenarios import warm_up

        learner.profile = ArrivalProfile(period, float(params["arrival_quantile"]))
        warm_up(learner, scenario, params)
    if site.history_kw.shape[1] > 0 and int(params["history_days"]) > 0:  # the grid's past readings and records
        learner.warm_meters(site.history_kw, site.history_arrivals, site.epoch, site.step_s)
    if city:
        from aicity.domains.energy.restoration import LoadTrend, RestorationPlanner

        return [RestorationPlanner(), planner], [learner, LoadTrend()]
    if site.batteries and site.grid is not None:  # the district: its peak guarded (cautious plan, live cap)
        from aicity.domains.energy.peak_guard import PeakGuard

        told = 0.0
        if name == "ai_told_peak":  # the diagnostic: the oracle's window peak, taken as paid from the start
            from aicity.domains.energy.oracle import oracle_kpis

            told = float(oracle_kpis(site, scenario.begin_s, scenario.end_s, str(params["user_input"]))["peak_kw"])
        return [PeakGuard(dataclasses.replace(planner, keep_energy="refill", battery_horizon_h=planner.horizon_h,
                                              reserve_h=RESERVE_H, told_peak_kw=told,
                                              reserve_jitter_steps=RESERVE_JITTER_STEPS,
                                              finish_penalty=FINISH_PENALTY, ramp_first_step=True,
                                              energy_on_expected=params["plan_load"] == "expected"),
                          chargers_capped=True)], [learner]
    return [planner], [learner]


def _no_peak_guard(scenario: Scenario) -> UserError:
    """The one-line error for the ``ai_told_peak`` diagnostic on a scenario without the district's peak guard."""
    return UserError(f"controller 'ai_told_peak' is a diagnostic of the district's peak guard; {scenario.name!r} has "
                     "none")
