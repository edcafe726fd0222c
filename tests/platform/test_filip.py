"""A third-party NGSI-LD client library from PyPI (FiLiP, the FIWARE Library for Python) drives the API.

FiLiP pins packaging~=24.1, which aicity's own environment cannot share (pandapower needs ~=26.0), so it runs in
an environment of its own, built here on first use with pip (``.venv/filip-<version>``, or the Python named by
$AICITY_FILIP_PYTHON). The test skips only when the package registry cannot be reached.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aicity.core.entity import GeoProperty, Property, Relationship
from tests.platform.conftest import TOKENS, Api

FILIP = "0.8.1"
ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("filip_driver.py")
UNREACHABLE = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
               "Max retries exceeded", "Network is unreachable", "ConnectTimeout", "Could not fetch URL",
               "No route to host", "Name or service not known")
"""What pip says when the registry cannot be reached (then the test skips, any other failure fails it)."""


def _run(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)


def filip_python() -> Path:
    """A Python with FiLiP: $AICITY_FILIP_PYTHON, else a venv built once beside aicity's (under a file lock)."""
    given = os.environ.get("AICITY_FILIP_PYTHON")
    if given:
        return Path(given)
    venv = ROOT / ".venv" / f"filip-{FILIP}"
    python = venv / "bin" / "python"
    done = venv / ".installed"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".filip-{FILIP}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.is_file():
            return python
        made = _run([sys.executable, "-m", "venv", "--clear", str(venv)], 120)
        if made.returncode != 0:
            pytest.fail(f"cannot create the FiLiP venv at {venv}: {made.stderr.strip()[-500:]}")
        pip = _run([str(python), "-m", "pip", "install", "-q", "--retries", "2", "--timeout", "30",
                    f"filip=={FILIP}"], 900)
        if pip.returncode != 0:
            said = pip.stdout + pip.stderr
            if any(s in said for s in UNREACHABLE):
                pytest.skip(f"the package registry is unreachable: cannot install filip=={FILIP}")
            pytest.fail(f"pip install filip=={FILIP} failed: {said.strip()[-1500:]}")
        done.write_text(FILIP)
    return python


def test_filip_creates_queries_updates_and_deletes_entities(api: Api) -> None:
    python = filip_python()
    run = _run([str(python), str(DRIVER), api.url, TOKENS["engineer"]], 300)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout)

    # FiLiP read back what it created, in its own models
    assert got["created"] == "/ngsi-ld/v1/entities/urn:ngsi-ld:Room:r1"
    r1 = got["retrieved"]
    assert r1["temperature"] == {"type": "Property", "value": 18.5, "unitCode": "CEL"}
    assert r1["location"]["value"] == {"type": "Point", "coordinates": [6.95, 50.94]}
    assert r1["building"] == {"type": "Relationship", "object": "urn:ngsi-ld:Building:b1"}
    assert got["by_type"] == ["urn:ngsi-ld:Room:r1", "urn:ngsi-ld:Room:r2", "urn:ngsi-ld:Room:r3"]
    assert got["warm"] == ["urn:ngsi-ld:Room:r2", "urn:ngsi-ld:Room:r3"]  # q=temperature>20
    assert got["near"] == ["urn:ngsi-ld:Room:r1", "urn:ngsi-ld:Room:r2"]  # r3 is ~32 km east
    kv = got["key_values"][0]
    assert (kv["temperature"], kv["building"]) == (22.0, "urn:ngsi-ld:Building:b1")

    # its updates: a batch upsert (options=update) that also created r4, one attribute, an appended one
    updated = got["updated"]
    assert [updated[f"urn:ngsi-ld:Room:r{k}"]["temperature"]["value"] for k in (1, 2, 3, 4)] == [19.0, 23.0, 26.5,
                                                                                                 30.0]
    assert updated["urn:ngsi-ld:Room:r3"]["temperature"]["unitCode"] == "CEL"  # a partial attribute update
    assert updated["urn:ngsi-ld:Room:r3"]["humidity"]["value"] == 0.41
    assert got["after_delete"] == ["urn:ngsi-ld:Room:r2", "urn:ngsi-ld:Room:r3", "urn:ngsi-ld:Room:r4"]
    assert got["left"] == ["urn:ngsi-ld:Room:r2", "urn:ngsi-ld:Room:r3"]
    assert got["missing"] == 404

    # and on aicity's side: the store holds exactly what FiLiP left, history included
    store = api.store
    assert sorted(e.id for e in store.entities() if e.type == "Room") == got["left"]
    r3 = store.get("urn:ngsi-ld:Room:r3")
    assert r3 is not None
    assert r3.attrs["temperature"] == Property(26.5, None, "CEL")
    assert "humidity" not in r3.attrs
    assert isinstance(r3.attrs["location"], GeoProperty)
    assert r3.attrs["building"] == Relationship("urn:ngsi-ld:Building:b1")
    assert [h.value for h in store.history("urn:ngsi-ld:Room:r1", "temperature")] == [18.5, 19.0]
    assert store.get("urn:ngsi-ld:Room:r1") is None and store.get("urn:ngsi-ld:Room:r4") is None
