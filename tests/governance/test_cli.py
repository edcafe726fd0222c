"""The governance commands, driven through argparse as the main CLI does."""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicity.core.domain import ProposedAction
from aicity.core.errors import UserError
from aicity.core.store import SqliteStore
from aicity.governance.cli import add_parsers
from aicity.governance.ledger import Ledger
from aicity.governance.oversight import Governor, Policy

from .fakes import POLICY, TankTwin
from .fakes import run as run_loop


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="aicity")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


@pytest.fixture
def city(tmp_path: Path, key: Ed25519PrivateKey) -> tuple[Path, Path]:
    """A city.db with a short governed run, and the key file it was signed with."""
    key_path = tmp_path / "ledger.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    db = tmp_path / "run" / "city.db"
    db.parent.mkdir()
    store = SqliteStore(db)
    gov = Governor(Ledger.open(store, key_path), Policy.parse(POLICY.encode(), "t"))
    twin = TankTwin()
    run_loop(gov, twin, 3)
    p = ProposedAction("v1", "flush", {"opening": 60}, action_type="flush")
    gov.record(p, gov.review(p, twin.snapshot(), domain="water", now=twin.now), None, domain="water", now=twin.now)
    store.close()
    return db, key_path


def test_verify_export_show(city: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, key_path = city
    assert cli("audit", "verify", "--db", str(db), "--key", str(key_path)) == 0
    assert "7 records verified" in capsys.readouterr().out
    out = tmp_path / "audit.jsonl"
    assert cli("audit", "export", "--db", str(db), "--jsonl", str(out)) == 0
    assert cli("audit", "verify", "--jsonl", str(out)) == 0
    capsys.readouterr()
    assert cli("audit", "show", "dec-0000002", "--db", str(db)) == 0
    shown = capsys.readouterr().out
    assert "Explanation" in shown and "Counterfactual" in shown and "inclusion proof" in shown
    assert "verifies" in shown
    # tamper with the export: verify fails and names the record
    lines = out.read_text().splitlines()
    lines[3] = lines[3].replace('"opening":30', '"opening":31', 1) if '"opening":30' in lines[3] else \
        lines[3].replace('"opening":85', '"opening":86', 1)
    out.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert cli("audit", "verify", "--jsonl", str(out)) == 1
    assert "dec-0000002" in capsys.readouterr().out


def test_verify_with_another_key_fails(city: tuple[Path, Path], tmp_path: Path) -> None:
    db, _ = city
    other = tmp_path / "other.pem"
    other.write_bytes(Ed25519PrivateKey.from_private_bytes(bytes(32)).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    assert cli("audit", "verify", "--db", str(db), "--key", str(other)) == 1
    with pytest.raises(UserError, match="no database"):
        cli("audit", "verify", "--db", str(tmp_path / "nope.db"))


def test_approvals_and_stop(city: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    db, key_path = city
    assert cli("approvals", "list", "--db", str(db)) == 0
    listing = capsys.readouterr().out
    assert "flush" in listing and "pending" in listing
    aid = listing.split()[0]
    assert cli("approvals", "approve", aid, "--reason", "planned flush", "--by", "eng", "--db", str(db),
               "--key", str(key_path)) == 0
    with pytest.raises(UserError, match="already approved"):
        cli("approvals", "reject", aid, "--reason", "no", "--db", str(db), "--key", str(key_path))
    assert cli("oversight", "stop", "--domain", "water", "--reason", "storm", "--db", str(db),
               "--key", str(key_path)) == 0
    capsys.readouterr()
    assert cli("oversight", "status", "--db", str(db)) == 0
    assert "stopped: water" in capsys.readouterr().out
    assert cli("audit", "verify", "--db", str(db), "--key", str(key_path)) == 0
    conn = sqlite3.connect(db)
    kinds = [r[0] for r in conn.execute("SELECT kind FROM ledger ORDER BY seq")]
    assert kinds[-2:] == ["approval", "stop"]


def test_register_export(tmp_path: Path) -> None:
    out = tmp_path / "reg" / "atrs.json"
    assert cli("register", "export", "--format", "atrs", "--out", str(out)) == 0
    assert json.loads(out.read_text())["tier_1"]["organisation"] == "City of Example"
    bad = tmp_path / "cfg.toml"
    bad.write_text('[organisation]\nname="x"\n[system]\nname="y"\n')
    with pytest.raises(UserError, match="lacks"):
        cli("register", "export", "--format", "eurocities", "--out", str(out), "--config", str(bad))


def test_modelcard_build(tmp_path: Path) -> None:
    from .test_modelcard import RESULTS

    res = tmp_path / "r.json"
    res.write_text(json.dumps(RESULTS))
    from importlib import resources

    meta = resources.files("aicity.governance.policy").joinpath("modelcards/maxpressure.toml")
    assert cli("modelcard", "build", "--results", str(res), "--meta", str(meta), "--select", "controller=maxpressure",
               "--baseline", "controller=fixed", "--metrics", "delay_s", "--factors", "district",
               "--out", str(tmp_path / "cards")) == 0
    card = json.loads((tmp_path / "cards" / "maxpressure.model-card.json").read_text())
    assert card["quantitative_analyses"]["disaggregated"]["district"]["south"]["delay_s"] == 27.0
    assert cli("modelcard", "build", "--results", str(res), "--meta", str(meta), "--select", "controller=maxpressure",
               "--metrics", "delay_s", "--factors", "scenario/district,time_of_day", "--worst", "delay_s",
               "--equity-threshold", "0.8", "--out", str(tmp_path / "cards")) == 0
    card = json.loads((tmp_path / "cards" / "maxpressure.model-card.json").read_text())
    assert card["quantitative_analyses"]["disaggregated"]["scenario/district"]["grid / south"]["delay_s"] == 27.0
    assert card["caveats_and_recommendations"]["worst-off groups found"] == [
        "grid: worst-off district south (delay_s 27 vs 22 for all of grid; best north 20; best/worst 0.74, below the "
        "0.8 equity threshold; seeds 1, 2, 3)",
        "worst-off time_of_day peak (delay_s 30 vs 22 overall; best off-peak 12; best/worst 0.40, below the 0.8 "
        "equity threshold; seeds 1, 2, 3)"]
    assert card["factors"]["definitions"]["district"].startswith("the map's TAZ")
    with pytest.raises(UserError, match="FIELD=VALUE"):
        cli("modelcard", "build", "--results", str(res), "--meta", str(meta), "--select", "oops",
            "--metrics", "delay_s", "--out", str(tmp_path))


# ---- trust: truncation, pruning, the stop button (issue 11) ---------------------------------------------------
SITE = b'version = "s"\n[default]\nautonomy = "advise"\nowner_role = "duty officer"\n'


def _run(out: Path, key: Ed25519PrivateKey, previous: Path | None = None, steps: int = 3) -> Any:
    """A governed run of the toy water domain into ``out`` (city.db, audit.jsonl, ledger-head.json)."""
    from aicity.core.meta import KPI, Better, DomainMeta
    from aicity.governance.runtime import for_run

    from .test_runtime import WATER_POLICY

    out.mkdir(parents=True, exist_ok=True)
    (out.parent / "water.toml").write_text(WATER_POLICY)
    meta = DomainMeta(kpis=(KPI("level_m", "m", Better.LOWER),), action_types=("valve",),
                      policy=out.parent / "water.toml")
    domain = type("Water", (), {"name": "water", "meta": meta})()
    store = SqliteStore(out / "city.db")
    rt = for_run(store=store, domains=[domain], mode=out.name, out=out, key=key,
                 policy=Policy.parse(SITE, "site.toml"), previous=previous)
    twin = TankTwin()
    run_loop(rt.governor, twin, steps)
    summary = rt.summary()
    store.close()
    return rt, summary, twin


def _raw(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER ledger_no_delete")
    conn.execute("DROP TRIGGER ledger_no_update")
    return conn


@pytest.mark.parametrize("keep", [4, 0])
def test_deleting_the_newest_ledger_rows_fails_verify(tmp_path: Path, key: Ed25519PrivateKey, keep: int,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run" / "ai"
    _, summary, _ = _run(out, key)
    n = summary["ledger_records"]
    assert (out / "ledger-head.json").is_file() and summary["ledger_head"]["size"] == n
    assert cli("audit", "verify", "--db", str(out / "city.db")) == 0
    assert f"consistent with the signed tree head in {out / 'ledger-head.json'}" in capsys.readouterr().out
    _raw(out / "city.db").execute("DELETE FROM ledger WHERE seq >= ?", (keep,))
    assert cli("audit", "verify", "--db", str(out / "city.db")) == 1
    said = capsys.readouterr().out
    assert "truncated" in said and f"the newest {n - keep} records are missing" in said


def test_dropping_the_last_export_lines_fails_verify(tmp_path: Path, key: Ed25519PrivateKey,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run" / "ai"
    _run(out, key)
    export = out / "audit.jsonl"
    assert cli("audit", "verify", "--jsonl", str(export)) == 0
    lines = export.read_text().splitlines()
    export.write_text("\n".join(lines[:-2]) + "\n")
    capsys.readouterr()
    assert cli("audit", "verify", "--jsonl", str(export)) == 1
    assert "truncated" in capsys.readouterr().out


def test_truncation_is_caught_by_a_witness_the_report_or_expected_size(tmp_path: Path, key: Ed25519PrivateKey,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run" / "ai"
    _, summary, _ = _run(out, key)
    n, root = summary["ledger_records"], summary["ledger_head"]["root"]
    witness = tmp_path / "witness-head.json"
    witness.write_bytes((out / "ledger-head.json").read_bytes())
    export_copy = tmp_path / "witness.jsonl"
    export_copy.write_bytes((out / "audit.jsonl").read_bytes())
    _raw(out / "city.db").execute("DELETE FROM ledger WHERE seq = ?", (n - 1,))
    (out / "ledger-head.json").unlink()  # the attacker removes the head next to the records too
    db = str(out / "city.db")
    assert cli("audit", "verify", "--db", db) == 0
    assert "warning: no published tree head found" in capsys.readouterr().out  # said, never silently intact
    assert cli("audit", "verify", "--db", db, "--expect-size", str(n), "--expect-root", root) == 1
    assert cli("audit", "verify", "--db", db, "--witness", str(witness)) == 1
    assert cli("audit", "verify", "--db", db, "--witness", str(export_copy)) == 1
    assert cli("audit", "verify", "--db", db, "--expect-size", str(n - 1)) == 0
    (out.parent / "report.json").write_text(json.dumps({"modes": {"ai": {"governance": summary}}}))
    capsys.readouterr()
    assert cli("audit", "verify", "--db", db) == 1
    assert "report.json" in capsys.readouterr().out
    with pytest.raises(UserError, match="--expect-size"):
        cli("audit", "verify", "--db", db, "--expect-root", root)


def test_rewriting_the_head_prefix_fails_against_the_published_root(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    """Deleting the newest rows and appending new, validly signed ones (key stolen) still disagrees with the head."""
    out = tmp_path / "run" / "ai"
    _, summary, _ = _run(out, key)
    n = summary["ledger_records"]
    _raw(out / "city.db").execute("DELETE FROM ledger WHERE seq >= ?", (n - 2,))
    store = SqliteStore(out / "city.db")
    ledger = Ledger(store, key=key)
    for i in range(3):
        ledger.append({"id": f"forged-{i}", "kind": "decision", "time": "2026-03-02T08:00:00+00:00"})
    store.close()
    assert cli("audit", "verify", "--db", str(out / "city.db")) == 1


def test_pruning_is_reported_and_unaccounted_blanking_fails(tmp_path: Path, key: Ed25519PrivateKey,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import timedelta

    from .conftest import T0

    out = tmp_path / "run" / "ai"
    _run(out, key)
    db = str(out / "city.db")
    _raw(out / "city.db").execute("UPDATE ledger SET record = NULL WHERE seq < 2")  # allowed by the trigger
    capsys.readouterr()
    assert cli("audit", "verify", "--db", db) == 1
    assert "no prune record accounts for them" in capsys.readouterr().out
    store = SqliteStore(db)
    ledger = Ledger(store, key=key, retention=timedelta(days=1))
    assert ledger.prune(T0 + timedelta(days=2), by="records officer") > 0
    ledger.publish_head(out / "ledger-head.json", now=T0)
    store.close()
    capsys.readouterr()
    assert cli("audit", "verify", "--db", db) == 0
    said = capsys.readouterr().out
    assert "records pruned" in said and "by records officer" in said and "retention of 1 days" in said


def test_a_missing_or_corrupt_database_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "city.db"
    bad.write_bytes(b"this is not a database at all" * 100)
    for argv in (("audit", "verify", "--db"), ("audit", "export", "--jsonl", str(tmp_path / "x"), "--db"),
                 ("oversight", "status", "--db"), ("approvals", "list", "--db")):
        with pytest.raises(UserError, match="cannot"):
            cli(*argv, str(bad))
        with pytest.raises(UserError, match="no database"):
            cli(*argv, str(tmp_path / "missing.db"))


def test_a_stop_for_an_unknown_domain_is_refused(city: tuple[Path, Path]) -> None:
    db, key_path = city
    with pytest.raises(UserError, match=r"unknown domain 'watr'.*water"):
        cli("oversight", "stop", "--domain", "watr", "--reason", "typo", "--db", str(db), "--key", str(key_path))
    store = SqliteStore.open(db)
    assert [r["kind"] for r in Ledger(store).records("stop")] == []
    store.close()
    with pytest.raises(UserError, match="no active stop"):
        cli("oversight", "resume", "--domain", "water", "--reason", "x", "--db", str(db), "--key", str(key_path))


def test_cli_commands_never_create_a_key(city: tuple[Path, Path], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    db, _ = city
    monkeypatch.delenv("AICITY_LEDGER_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(UserError, match="no ledger key configured"):
        cli("oversight", "stop", "--reason", "storm", "--db", str(db))
    assert not (tmp_path / "home").exists()


def test_an_active_stop_survives_the_next_run_and_the_report_states_it(tmp_path: Path, key: Ed25519PrivateKey,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run" / "ai"
    _run(out, key)
    key_path = tmp_path / "k.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    assert cli("oversight", "stop", "--domain", "water", "--reason", "burst main on Elm St", "--by", "op7",
               "--db", str(out / "city.db"), "--key", str(key_path)) == 0
    aside = tmp_path / "run" / "previous"
    aside.mkdir()
    (out / "city.db").rename(aside / "city.db")
    with pytest.raises(UserError, match="another ledger"):  # a rerun must not leave the old head over a new ledger
        _run(out, key)
    (out / "city.db").unlink()
    for name in ("ledger-head.json", "audit.jsonl"):
        (out / name).rename(aside / name)
    _, summary, twin = _run(out, key, previous=aside / "city.db")
    assert twin.openings == {"v0": 50.0, "v1": 50.0}  # safe state at once, nothing acted
    # the loop plans nothing while the carried-over stop holds: no decision at all, acted or not
    assert summary["counts"].get("verdict_act", 0) == 0 and summary["counts"].get("verdict_stopped", 0) == 0
    (stop,) = summary["oversight"]
    assert stop["by"] == "op7" and stop["reason"] == "burst main on Elm St" and stop["domain"] == "water"
    assert stop["carried_over_from"] == str(aside / "city.db") and stop["safe_state"] is not None
    assert stop["resume"] is None and "still active" in stop["text"] and "safe state reached" in stop["text"]
    assert summary["stops_carried_over"] == ["water"]
    assert cli("audit", "verify", "--db", str(out / "city.db")) == 0
    assert cli("oversight", "resume", "--domain", "water", "--reason", "main repaired", "--by", "op8",
               "--db", str(out / "city.db"), "--key", str(key_path)) == 0
    store = SqliteStore(out / "city.db")
    from aicity.governance.oversight import Governor as Gov
    from aicity.governance.runtime import GovernanceRuntime

    again = GovernanceRuntime(Gov(Ledger(store, key=key)), domains={}, mode="ai", out=out)
    (stop,) = again.oversight()
    assert stop["resume"]["by"] == "op8" and "resumed by op8" in stop["text"]
    assert not again.is_stopped("water")
    store.close()
