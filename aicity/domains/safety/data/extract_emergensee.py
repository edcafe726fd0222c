"""Derive the shipped NYC EMS profiles from the emergenSEE 0.9.7 sdist (MIT), once, without running its code.

Usage: ``python extract_emergensee.py <emergenSEE-0.9.7 folder>`` (the unpacked sdist). The sdist's pickles are
2016-era joblib pickles of pandas frames; unpickling can run code, so this reader resolves only the few names
a pandas frame of numbers needs, to inert stand-ins, and reads the joblib arrays itself. It writes
``nyc_ems_hourly.csv`` (share of calls per hour of day, all calls and life-threatening ones) and
``nyc_ems_zip_share.csv`` (each ZIP code's share of all calls) next to this file.
"""

from __future__ import annotations

import csv
import pickle
import sys
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np

LIFE_THREATENING = (
    "CARDIAC ARREST", "CARD OR RESP ARREST", "UNCONSCIOUS", "UNC PATIENT", "CHOKING", "STATUS EPILEPTICUS",
    "ANAPHYLA", "MAJOR BURNS", "GUN SHOT WOUND", "STABBING", "MULTIPLE TRAUMA", "MAJOR INJURY", "CVA (STROKE)",
    "STROKE", "RESPIRATORY DISTRESS", "RESP DISTRESS", "DIFFICULT BREATH", "DIFF BREATHING", "DROWNING",
    "ELECTROCUTION", "INTERNAL BLEEDING", "PEDESTRIAN STRUCK", "AMPUTATION, ARM", "BABY OUT OR IMMINENT BIRTH",
    "JUMPER DOWN", "ALL OTHER MCI")
"""Call-type prefixes counted as life-threatening (priority 1); every other call type is priority 2."""

_ALLOWED = {("pandas.core.frame", "DataFrame"), ("pandas.core.internals", "BlockManager"),
            ("pandas.indexes.numeric", "Int64Index"), ("pandas.indexes.base", "Index"),
            ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"), ("numpy", "ndarray"),
            ("numpy.core.multiarray", "_reconstruct")}


class Inert:
    """A stand-in for an allowed class: keeps its state, runs nothing."""

    def __init__(self, *args: Any) -> None:
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _Dtype:
    def __init__(self, *args: Any) -> None:
        self.dtype = np.dtype(str(args[0]))

    def __setstate__(self, state: Any) -> None:
        if state[1] == ">":
            self.dtype = self.dtype.newbyteorder(">")


def _new_index(cls: Any, data: dict[str, Any]) -> dict[str, Any]:
    return dict(data)


_PyUnpickler: Any = pickle._Unpickler  # the pure-Python unpickler: its BUILD can be overridden


class RestrictedUnpickler(_PyUnpickler):  # type: ignore[misc]
    """Resolves only pandas/numpy/joblib names of a numeric frame, each to an inert stand-in."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file, encoding="latin1")
        self._file = file
        self._classes: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("numpy", "dtype"):
            return _Dtype
        if name == "_new_Index":
            return _new_index
        if (module, name) == ("__builtin__", "slice"):
            return slice
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return self._classes.setdefault((module, name), type(name, (Inert,), {}))

    def load_build(self) -> None:
        super().load_build()
        obj = self.stack[-1]
        if type(obj).__name__ != "NumpyArrayWrapper":
            return
        st = obj.state
        dtype = st["dtype"].dtype
        if dtype.hasobject:
            raise pickle.UnpicklingError("object arrays are refused")
        count = int(np.prod(st["shape"]))
        raw = self.read(count * dtype.itemsize)
        self.stack[-1] = np.frombuffer(raw, dtype=dtype).reshape(st["shape"], order=st["order"]).copy()

    dispatch: ClassVar[dict[int, Any]] = dict(_PyUnpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build


def frames(path: Path) -> dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """Call type → (column labels, row labels, values[rows, columns]) of every frame in one pickle."""
    with path.open("rb") as fh:
        data = RestrictedUnpickler(fh).load()
    out = {}
    for key, frame in data.items():
        axes, blocks, _items, _extra = frame.state["_data"].state
        cols, rows = axes[0]["data"], axes[1]["data"]
        out[str(key)] = (cols, rows, np.asarray(blocks[0]).T)
    return out


def main(folder: str) -> None:
    """Write the two CSV files from the sdist in ``folder``."""
    hourly = frames(Path(folder) / "emergenSEE" / "data" / "hourly_data_dic.pkl")
    zips, hours, allv = hourly["all"]
    assert list(hours) == list(range(24)), hours
    p1 = sum(v[2].sum(axis=1) for k, v in hourly.items() if k != "all" and k.upper().startswith(LIFE_THREATENING))
    here = Path(__file__).resolve().parent
    tot_all, tot_p1 = allv.sum(), p1.sum()
    with (here / "nyc_ems_hourly.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["hour", "share_all", "share_p1", "p1_fraction"])
        for h in range(24):
            w.writerow([h, f"{allv[h].sum() / tot_all:.5f}", f"{p1[h] / tot_p1:.5f}",
                        f"{p1[h] / allv[h].sum():.4f}"])
    with (here / "nyc_ems_zip_share.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["zip", "share_all"])
        for i, z in enumerate(zips):
            w.writerow([int(z), f"{allv[:, i].sum() / tot_all:.6f}"])
    print(f"calls/yr {tot_all:.0f}, life-threatening share {tot_p1 / tot_all:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
