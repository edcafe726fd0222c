"""Each server restarted mid-flow through the real component (``aicity bench restarts`` scenarios, shortened):
nothing lost, nothing stored or delivered twice, the component back by itself."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

import pytest

from aicity.core.errors import UserError
from aicity.platform.restarts import restart_mqtt, restart_nats, restart_postgres, run_restarts

SECONDS = 9.0


def _need(name: str, *paths: str) -> None:
    if shutil.which(name) is None and not any(Path(p).exists() or glob.glob(p) for p in paths):
        pytest.skip(f"{name} is not installed (.ci/run installs it)")


def test_postgresql_restarting_loses_and_duplicates_nothing_and_the_loop_was_held_blind() -> None:
    _need("initdb", "/usr/lib/postgresql/*/bin/initdb")
    r = restart_postgres(SECONDS)
    assert r["lost"] == 0 and r["duplicates"] == 0 and r["missing_ticks"] == [], r
    assert r["during_outage"] > 0 and r["store"]["buffered_rows"] > 0  # writes during the outage came back
    assert r["consistent"] and r["decisions"]["ledger_verifies"] and r["recovered"], r
    assert r["blind_ticks"] > 0 and r["store"]["episodes"] == 1 and not r["store"]["blind"]
    assert r["ok"]


def test_nats_restarting_loses_and_duplicates_nothing() -> None:
    _need("nats-server", "/usr/sbin/nats-server")
    r = restart_nats(SECONDS)
    assert r["lost"] == 0 and r["duplicates"] == 0 and r["stream_duplicates"] == 0, r
    assert r["during_outage"] > 0 and r["recovered"] and r["ok"], r


def test_the_mqtt_broker_restarting_loses_and_duplicates_nothing_and_commands_fail_in_one_line() -> None:
    _need("mosquitto", "/usr/sbin/mosquitto")
    r = restart_mqtt(SECONDS)
    assert r["lost"] == 0 and r["duplicates"] == 0, r
    assert r["during_outage"] > 0 and r["reconnected"] and r["recovered"] and r["ok"], r
    assert r["command_while_down"]["outcome"] == "refused" and "was not sent" in r["command_while_down"]["error"]
    assert r["bridge"]["commands_not_sent"] == 1


def test_bad_arguments_are_one_line() -> None:
    with pytest.raises(UserError, match="--seconds must be 6-600"):
        run_restarts(1)
    with pytest.raises(UserError, match="unknown server 'kafka'"):
        run_restarts(10, ("kafka",))
