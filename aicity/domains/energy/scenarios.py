"""Energy scenarios: the ACN Caltech charging site, month by month (May-December 2019) and one test day, on its
real sessions, tariff and marginal emissions; the district feeder on a pandapower grid (:mod:`.district`); and
the city grid under the cologne8 road map (:mod:`.city_site`).

``Scenario.begin_s``/``end_s`` are seconds after the scenario's epoch (local midnight of its first day).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aicity.core.domain import Scenario
from aicity.domains.energy.const import DOMAIN
from aicity.domains.energy.site import Charger, Site

if TYPE_CHECKING:
    from aicity.domains.energy.learning import DemandLearner

TZ = ZoneInfo("America/Los_Angeles")
ACN_MONTHS = tuple(range(5, 13))
ACN_TRANSFORMER_KW = 150.0
ACN_CHARGER_KW = 6.656
"""32 A at 208 V: the Caltech garage's chargers (charging at it from plug-in gives the measured 99.8 kW peak)."""
ACN_MIN_KW = 1.248
"""6 A at 208 V, the smallest pilot signal J1772 allows."""
ACN_STEP_KW = 0.208
"""1 A at 208 V."""
DAY = 86400.0


def acn_month(month: int) -> Scenario:
    """One month of the Caltech site, 5-minute steps."""
    days = calendar.monthrange(2019, month)[1]
    return Scenario(f"acn-caltech-2019-{month:02d}", DOMAIN,
                    f"ACN Caltech garage, {calendar.month_name[month]} 2019: real sessions, SCE TOU-EV-4, "
                    "CAISO marginal CO2, 150 kW transformer", 0.0, days * DAY,
                    params={}, path=None)


def acn_day() -> Scenario:
    """Tuesday 3 September 2019, 08:00-20:00 (the test scenario)."""
    return Scenario("acn-caltech-day", DOMAIN, "ACN Caltech garage, Tue 3 Sep 2019 08:00-20:00",
                    2 * DAY + 8 * 3600, 2 * DAY + 20 * 3600)


def builtin_scenarios() -> list[Scenario]:
    """Every built-in energy scenario."""
    from aicity.domains.energy.city_site import city_scenario
    from aicity.domains.energy.district import district_scenarios
    from aicity.domains.energy.feeders import scenario as feeders

    return [acn_day(), *(acn_month(m) for m in ACN_MONTHS), *district_scenarios(), city_scenario(), feeders(2)]


def resolve(name: str) -> Scenario | None:
    """A built-in scenario by name (``energy/`` prefix allowed), or any ``feeders-<K>``."""
    from aicity.domains.energy.feeders import layout_of, scenario

    name = name.removeprefix(f"{DOMAIN}/")
    layout = layout_of(name)
    if layout is not None and layout.here is None:
        return scenario(layout.k)
    return next((s for s in builtin_scenarios() if s.name == name), None)


def epoch_of(scenario: Scenario) -> datetime:
    """Local midnight of the scenario's first day."""
    from aicity.domains.energy.city_site import NAME, city_epoch

    if scenario.name == NAME:
        return city_epoch()
    if scenario.name == "acn-caltech-day":
        return datetime(2019, 9, 1, tzinfo=TZ)
    if scenario.name.startswith("acn-caltech-2019-"):
        return datetime(2019, int(scenario.name.rsplit("-", 1)[1]), 1, tzinfo=TZ)
    raise KeyError(scenario.name)


def build_site(scenario: Scenario, params: Mapping[str, Any]) -> Site:
    """The ground-truth :class:`Site` of a scenario (options already validated)."""
    from aicity.domains.energy.city_site import NAME

    if scenario.name == NAME:
        from aicity.domains.energy.city_site import build_city

        return build_city(scenario, params)
    if scenario.name.startswith("district"):
        from aicity.domains.energy.district import HISTORY_DAYS, build_district

        return build_district(scenario, params, HISTORY_DAYS)
    return build_acn(scenario, params)


def build_acn(scenario: Scenario, params: Mapping[str, Any]) -> Site:
    """The Caltech garage: its chargers, the real sessions of the scenario's month, tariff and CO2."""
    import math
    from datetime import timedelta

    from aicity.domains.energy.data import Tariff, read_moer, read_sessions
    from aicity.domains.energy.edge import ChargerLimits

    epoch = epoch_of(scenario)
    step_s = 300.0
    n = math.ceil(scenario.end_s / step_s) + 1
    sessions = read_sessions(epoch, epoch + timedelta(seconds=scenario.end_s))
    safe = float(params.get("safe_rate_kw", ACN_MIN_KW))
    limits = ChargerLimits(ACN_CHARGER_KW, ACN_MIN_KW, ACN_STEP_KW, min(safe, ACN_CHARGER_KW))
    stations = sorted({s.station for s in read_sessions(datetime(2019, 5, 1, tzinfo=TZ),
                                                        datetime(2020, 1, 1, tzinfo=TZ))})
    chargers = tuple(Charger(st, limits, 0, f"bank-{st.split('-')[1][0]}00") for st in stations)
    tariff = Tariff.load()
    return Site(scenario.name, epoch, step_s, n, chargers, tuple(sessions), tariff.prices(epoch, n, step_s),
                read_moer(epoch, n, step_s), float(params.get("transformer_kw") or ACN_TRANSFORMER_KW),
                tariff.demand_charge(epoch))


def warm_up(learner: DemandLearner, scenario: Scenario, params: Mapping[str, Any]) -> int:
    """Teach ``learner`` the ``history_days`` whole days of the site's session records before the window (from the
    first day the records cover): when sessions arrived with the energy the planner would have seen (its arrival
    profile), their dwell as shown and how early they left against it; returns the days learned."""
    from datetime import timedelta

    from aicity.domains.energy.data import read_sessions

    days = int(params.get("history_days") or 0)
    if days <= 0 or not scenario.name.startswith("acn-"):
        return 0
    start = epoch_of(scenario) + timedelta(seconds=scenario.begin_s)
    origin = datetime(2019, 1, 1, tzinfo=TZ)
    past = read_sessions(origin, start)
    if not past:
        return 0
    since = max((start - timedelta(days=days)).date(),
                datetime.fromtimestamp(origin.timestamp() + past[0].arrival_s, TZ).date())
    past = [s for s in past if datetime.fromtimestamp(origin.timestamp() + s.arrival_s, TZ).date() >= since]
    mode = params.get("user_input")
    shown = [(s.departure_s if mode == "acn-sim" else s.est_departure_s) - s.arrival_s for s in past]
    learner.warm([(datetime.fromtimestamp(origin.timestamp() + s.arrival_s, TZ),
                   s.requested_kwh if mode == "typed" else s.capacity_kwh,
                   dwell, s.departure_s - s.arrival_s) for s, dwell in zip(past, shown, strict=True)],
                 since, start.date())
    return start.date().toordinal() - since.toordinal()
