"""Offline peers for the forecast benchmark: statsforecast's AutoETS and MSTL, refitted at sampled origins.

statsforecast 2.x requires pandas < 3 while aicity runs on pandas 3, so the peers run in their own Python
(e.g. ``python -m venv /opt/peers && /opt/peers/bin/pip install 'statsforecast>=2'``): this file is a script that
imports only numpy and statsforecast. ``run_peers`` (called by ``bench/forecast_backtest.py`` from aicity's
Python) writes the series to a temporary ``.npz``, runs this file with the peers' Python and reads the forecasts
back. Each fit sees the last ``history`` values before its origin; missing values are carried forward for the
peers only (statsforecast takes no NaN). AutoETS uses a daily season (``period`` steps, ``model="ZZZ"``),
MSTL daily and weekly seasons with an AutoETS trend.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

PEERS = ("AutoETS", "MSTL")


def _fill(y: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Carry the last value forward over NaNs (leading NaNs take the first value)."""
    out = np.asarray(y, dtype=float).copy()
    ok = ~np.isnan(out)
    if not ok.any():
        return np.zeros_like(out)
    idx = np.where(ok, np.arange(len(out)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = out[idx]
    out[: int(np.argmax(ok))] = out[int(np.argmax(ok))]
    return out


def _models(period: int) -> dict[str, Any]:
    sm = importlib.import_module("statsforecast.models")
    return {"AutoETS": sm.AutoETS(season_length=period),
            "MSTL": sm.MSTL(season_length=[period, 7 * period], trend_forecaster=sm.AutoETS(model="ZZN"))}


def fit_all(path_in: str, path_out: str) -> None:
    """Forecast every (series, origin) pair in ``path_in`` with each peer; write means and 90 % bounds."""
    data = np.load(path_in)
    y, series, origins = data["values"], data["series"], data["origins"]
    period, history, horizon = int(data["period"]), int(data["history"]), int(data["horizon"])
    models = _models(period)
    shape = (len(PEERS), len(series), len(origins), horizon)
    mean, lo, hi = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    seconds = np.zeros(len(PEERS))
    for k, name in enumerate(PEERS):
        t0 = time.perf_counter()
        for i, s in enumerate(series):
            for j, o in enumerate(origins):
                hist = _fill(y[max(0, o + 1 - history): o + 1, s])
                fc = models[name].forecast(y=hist, h=horizon, level=[90])
                mean[k, i, j], lo[k, i, j], hi[k, i, j] = fc["mean"], fc["lo-90"], fc["hi-90"]
        seconds[k] = time.perf_counter() - t0
    np.savez(path_out, mean=mean, lo=lo, hi=hi, seconds=seconds)


def run_peers(python: str, values: np.ndarray[Any, Any], series: list[int], origins: list[int], period: int,
              history: int, horizon: int) -> dict[str, Any]:
    """Run :func:`fit_all` in the Python ``python`` (which has statsforecast); arrays keyed mean/lo/hi/seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, values=values, series=np.array(series), origins=np.array(origins), period=period,
                 history=history, horizon=horizon)
        subprocess.run([python, str(Path(__file__).resolve()), str(src), str(dst)], check=True)
        out = np.load(dst)
        return {k: np.asarray(out[k]) for k in ("mean", "lo", "hi", "seconds")}


def version(python: str) -> str | None:
    """statsforecast's version in ``python``, or None when it cannot be imported there."""
    code = "import json, statsforecast; print(json.dumps(statsforecast.__version__))"
    try:
        res = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    return str(json.loads(res.stdout))


if __name__ == "__main__":
    fit_all(sys.argv[1], sys.argv[2])
