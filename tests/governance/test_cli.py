"""The governance commands, driven through argparse as the main CLI does."""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

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
from .test_oversight import run as run_loop


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
