"""AI City's guard of the district's peak around the MPC: the plan against a cautious load, the batteries' live
import cap.

A district's demand charge is paid on the window's highest 15-min import, and a cold or wrong forecast of the
evening load lets it through: the MPC, seeing a lower evening, spends the batteries earlier on cheaper energy.
:class:`PeakGuard` gives the MPC the forecasts with the inflexible load planned at an upper bound (the mean plus
the root sum of squares of the nodes' 80 % half-widths, never below the load just measured over the next hour:
:func:`.feeder_control.cautious`; the voltage band checked against each node's upper bound) and gives every
battery command ``cap_kw``, the import the batteries then hold in real time within the step (their inverters'
import-limit mode, :meth:`.twin.EnergyTwin._batteries`): the peak already paid for, or the MPC's planned peak if
higher; with ``chargers_capped`` every charger command carries it too, and the chargers' load-management mode
sheds, within the step, what the batteries cannot hold (:meth:`.twin.EnergyTwin._throttle`: an empty battery no
longer lets an evening spike and the EVs through together). Until the forecaster has learned a whole day (it knows
no evening yet) the plan may charge the batteries but not spend them, never expects the load below the last
measured, and the cap is the lowest level the batteries could hold that load to for :data:`COLD_HOLD_STEPS`. It
reads only meters, bus meters, chargers and batteries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aicity.core.domain import ProposedAction, Snapshot
from aicity.core.entity import Entity, Property
from aicity.domains.energy.const import BATTERY_TYPE, CHARGER_TYPE, METER_TYPE
from aicity.domains.energy.feeder_control import cautious, holdable, measured_inflexible
from aicity.domains.energy.learning import INFLEXIBLE, KEY
from aicity.domains.energy.mpc import MpcPlanner

COLD_HOLD_STEPS = 16
"""Cold, the batteries hold the import to the lowest level they could keep the last measured load to for this many
steps (four hours: an evening peak's length)."""


@dataclass(frozen=True)
class PeakGuard:
    """A pure planner: the MPC on cautious forecasts, its battery commands capped at the peak it plans."""

    mpc: MpcPlanner
    chargers_capped: bool = False
    """Charger commands carry the cap too: their load-management mode sheds what the batteries cannot hold."""

    @property
    def name(self) -> str:
        """The MPC's name (its proposals carry it)."""
        return self.mpc.name

    def __call__(self, snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[ProposedAction]:
        """The MPC's proposals; battery commands (and, with ``chargers_capped``, charger commands) carry ``cap_kw``."""
        meters = snapshot.of_type(METER_TYPE)
        if not meters:
            return self.mpc(snapshot, forecasts)
        paid = meters[0].get("peakPower")
        floor = float(paid) if isinstance(paid, int | float) and not isinstance(paid, bool) else 0.0
        fc, cold = self._forecasts(snapshot, forecasts)
        hold = None
        if cold:  # the lowest import the batteries could hold the plan's load to
            plan = [float(v) for v in fc.get(f"{KEY}{INFLEXIBLE}", {}).get("mean") or [0.0]]
            step_h = float(meters[0].get("decisionInterval") or 900.0) / 3600.0
            hold = holdable(plan[:COLD_HOLD_STEPS], snapshot.of_type(BATTERY_TYPE), step_h)
        props = self.mpc(_hold(snapshot) if cold else snapshot, fc)
        planned = [float(p.forecasts["planned_peak_kw"]) for p in props
                   if isinstance(p.forecasts.get("planned_peak_kw"), int | float)]
        cap = max(floor, planned[0] if hold is None else hold) if planned else None
        out = []
        for p in props:
            ent = snapshot.entities.get(p.target)
            if cap is not None and ent is not None and (ent.type == BATTERY_TYPE or (
                    self.chargers_capped and ent.type == CHARGER_TYPE)):
                p = dataclasses.replace(p, params={**p.params, "cap_kw": round(cap, 3)})
            out.append(p)
        return out

    def _forecasts(self, snapshot: Snapshot, forecasts: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
        """The forecasts with the inflexible load planned cautiously, and whether the forecaster is cold (has not
        learned a whole day: it knows no evening); cold, the plan never expects the load below the last measured."""
        measured = measured_inflexible(snapshot)
        inf = forecasts.get(f"{KEY}{INFLEXIBLE}")
        per_day = round(86400 / float(snapshot.of_type(METER_TYPE)[0].get("decisionInterval") or 900.0))
        if not isinstance(inf, Mapping):
            return forecasts, True
        if int(inf.get("steps") or 0) >= per_day:
            fc = cautious(forecasts, measured)
            upper = inf.get("nodes_upper_80")
            if isinstance(upper, Mapping) and upper:  # the voltage band checked against each node's upper bound
                fc = {**fc, f"{KEY}{INFLEXIBLE}": {**fc[f"{KEY}{INFLEXIBLE}"], "nodes": upper}}
            return fc, False
        if measured is None:  # cold: its intervals are not calibrated yet either
            return forecasts, True
        floor = [max(float(v), measured) for v in inf["mean"]]
        return {**forecasts, f"{KEY}{INFLEXIBLE}": {**inf, "mean": floor}}, True


def _hold(snapshot: Snapshot) -> Snapshot:
    """The snapshot with every battery's floor at the energy it holds: the plan may charge them, not spend them
    (a cold forecaster's plan would spend them on price differences before an evening it does not know)."""
    ents = dict(snapshot.entities)
    for b in snapshot.of_type(BATTERY_TYPE):
        stored, capacity = b.get("energyStored"), b.get("capacity")
        if isinstance(stored, int | float) and isinstance(capacity, int | float) and capacity > 0:
            floor = max(float(b.get("socMin") or 0.0), float(stored) / float(capacity))
            ents[b.id] = Entity.trusted(b.id, b.type, {**b.attrs, "socMin": Property(floor)})
    return Snapshot(snapshot.time, snapshot.elapsed_s, ents)
