"""Dataset loading: the ODOT counts and long-format files, with honest counts of bad data."""

from pathlib import Path

import pytest

from aicity.core.errors import UserError
from aicity.forecast import datasets
from aicity.forecast.datasets import DatasetError


def test_odot_counts_loads_offline() -> None:
    d = datasets.load("odot-counts")
    assert len(d.series_ids) == 22 and d.period == 96
    assert d.values.shape == (len(d.times), 22)
    assert d.report.rows == 54824 and d.report.malformed == 0
    assert d.report.missing == 88        # a 1 h and a 30 min gap, left missing


def test_long_csv_counts_malformed_duplicate_and_missing(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("unique_id,ds,y\n"
                 "a,2024-01-01 00:00,1\n"
                 "a,2024-01-01 01:00,2\n"
                 "a,2024-01-01 01:00,9\n"          # duplicate
                 "a,2024-01-01 03:00,oops\n"       # malformed value
                 "a,not a time,3\n"                # malformed time
                 "a,2024-01-01 04:00,4\n"
                 "b,2024-01-01 00:00,5\n")
    d = datasets.load(str(p))
    assert d.report.malformed == 2 and d.report.duplicates == 1
    assert d.values.shape == (5, 2)
    assert d.report.missing == 2 + 4         # a at 02:00 and 03:00; b after 00:00
    assert d.period == 24
    assert "left missing" in d.report.summary()


def test_missing_columns_is_a_typed_error(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("id,time,value\na,2024-01-01,1\n")
    with pytest.raises(DatasetError, match="lacks column"):
        datasets.load(str(p))


def test_unknown_name_and_missing_file() -> None:
    with pytest.raises(UserError, match="unknown dataset"):
        datasets.load("metr-la")
    with pytest.raises(DatasetError, match="does not exist"):
        datasets.load("/nonexistent/x.csv")


def test_taylor_half_hourly_demand_from_pmdarima() -> None:
    d = datasets.load("taylor")
    assert d.values.shape == (4032, 1) and d.period == 48
    assert d.times[0].isoformat() == "2000-06-05T00:00:00" and d.times[0].weekday() == 0   # a Monday
    assert d.values[:3, 0].tolist() == [22262.0, 21756.0, 22247.0]
    assert d.report.missing == 0 and "MIT" in d.meta["licence"]


def test_vic_elec_acn_arrivals_and_waterflow_load_offline() -> None:
    vic = datasets.load("vic-elec")
    assert vic.values.shape == (17520, 1) and vic.period == 48 and 2.0 < float(vic.values.mean()) < 8.0
    acn = datasets.load("acn-arrivals")
    assert acn.series_ids == ("caltech", "jpl") and acn.period == 24 and acn.values.shape == (5880, 2)
    assert acn.values.sum(axis=0).tolist() == [6704.0, 11830.0]       # sessions May-Dec 2019
    water = datasets.load("waterflow")
    assert water.period == 24 and water.report.rows == 1268
    assert water.report.missing == len(water.times) - 1268           # gaps left missing


def test_registered_names_cover_the_new_datasets() -> None:
    assert {"odot-counts", "taylor", "vic-elec", "acn-arrivals", "waterflow"} <= set(datasets.LOADERS)
