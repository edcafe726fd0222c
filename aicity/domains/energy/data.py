"""The data the energy domain ships (see ``data/README.md``): ACN Caltech sessions, CAISO marginal emissions,
the SCE TOU-EV-4 tariff. Read with the standard library, once per twin or planner (no module-level cache)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from aicity.core.errors import UserError

DATA = Path(__file__).resolve().parent / "data"
SESSIONS_FILE = DATA / "acn_caltech_2019.csv"
MOER_FILE = DATA / "moer_caiso_sce_2019.csv"
TARIFF_FILE = DATA / "sce_tou_ev_4_march_2019.json"

FArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True, slots=True)
class Session:
    """One real charging session, times in seconds after the scenario's epoch.

    ``capacity_kwh`` is what the EV took in reality (it is full after that); ``requested_kwh`` and
    ``est_departure_s`` are what the user typed in the app (ACN-Data fills both with the real values for
    sessions where nobody typed anything: ``claimed`` is False).
    """

    sid: str
    station: str
    arrival_s: float
    departure_s: float
    est_departure_s: float
    requested_kwh: float
    capacity_kwh: float
    claimed: bool


def read_sessions(start: datetime, end: datetime, path: Path = SESSIONS_FILE) -> list[Session]:
    """Sessions arriving in ``[start, end)`` (timezone-aware), in arrival order."""
    t0, t1 = start.timestamp(), end.timestamp()
    out: list[Session] = []
    try:
        with path.open(newline="") as f:
            for i, row in enumerate(csv.DictReader(f)):
                a = float(row["arrival_utc_s"])
                if not t0 <= a < t1:
                    continue
                out.append(Session(f"s{i:05d}", row["station"], a - t0, float(row["departure_utc_s"]) - t0,
                                   float(row["est_departure_utc_s"]) - t0, float(row["requested_kwh"]),
                                   float(row["delivered_kwh"]), row["claimed"] == "1"))
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"cannot read the shipped EV sessions {path.name}: {exc}") from exc
    return out


def read_moer(start: datetime, n_steps: int, step_s: float, path: Path = MOER_FILE) -> FArray:
    """Marginal CO2 (kg/kWh) for ``n_steps`` steps of ``step_s`` from ``start`` (mean over each step)."""
    with path.open() as f:
        head = f.readline()
        values = np.array([float(line) for line in f if line.strip()])
    meta = dict(item.split("=", 1) for item in head.lstrip("# ").split())
    first, every = float(meta["start_utc_s"]), float(meta["step_s"])
    times = start.timestamp() + np.arange(n_steps) * step_s
    idx = np.clip(((times - first) // every).astype(int), 0, len(values) - 1)
    per = max(1, round(step_s / every))
    return np.array([values[i:i + per].mean() for i in idx])


@dataclass(frozen=True, slots=True)
class Tariff:
    """A time-of-use tariff (acnportal's format): energy price by season, day type and hour; demand charge."""

    name: str
    schedule: tuple[dict[str, Any], ...]

    @classmethod
    def load(cls, path: Path = TARIFF_FILE) -> Tariff:
        """The shipped SCE TOU-EV-4 tariff."""
        data = json.loads(path.read_text())
        return cls(str(data["name"]), tuple(data["schedule"]))

    def _period(self, when: datetime) -> dict[str, Any]:
        md = (when.month, when.day)
        weekend = when.weekday() >= 5
        for p in self.schedule:
            s = tuple(int(x) for x in p["effective_start"].split("-"))
            e = tuple(int(x) for x in p["effective_end"].split("-"))
            in_season = s <= md <= e if s <= e else (md >= s or md <= e)
            mask = p["dow_mask"]
            if in_season and (mask == "ALL" or (mask == "WEEKENDS") == weekend):
                return p
        raise UserError(f"tariff {self.name} has no period for {when:%Y-%m-%d}")

    def price(self, when: datetime) -> float:
        """Energy price ($/kWh) at local time ``when``."""
        p = self._period(when)
        hour = when.hour + when.minute / 60
        price = p["tariffs"][0]
        for start, value in zip(p["times"], p["tariffs"], strict=True):
            if hour >= start:
                price = value
        return float(price)

    def demand_charge(self, when: datetime) -> float:
        """Demand charge ($ per kW of the month's peak) at ``when``."""
        return float(self._period(when)["demand_charge"])

    def prices(self, start: datetime, n_steps: int, step_s: float) -> FArray:
        """Price per step from ``start`` (local time)."""
        return np.array([self.price(start + timedelta(seconds=k * step_s)) for k in range(n_steps)])
