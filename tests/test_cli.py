"""The `aicity` command: instant help, clear user errors, and a real end-to-end run in both modes."""

import json
import subprocess
import sys
import time

import pytest

from aicity.cli import main


def test_help_is_instant_and_imports_nothing_heavy():
    code = ("import sys, time; t=time.perf_counter(); from aicity.cli import build_parser; build_parser(); "
            "heavy=[m for m in ('libsumo','traci','pandas','matplotlib','river','fairlearn','numpy') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aicity.cli", "--help"], capture_output=True, check=True)
    assert time.perf_counter() - started < 5  # generous: a cold interpreter on a loaded CI machine


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--scenario", "atlantis"], "unknown scenario 'atlantis'"),
    (["run", "--scenario", "/nonexistent/city.sumocfg"], "does not exist"),
    (["run", "--seed", "-4"], "seed -4 is out of range"),
    (["run", "--mode", "dream"], "unknown mode 'dream'"),
    (["bench", "mobility", "--seeds", "one"], "bad seed list"),
    (["bench", "safety", "--seeds", "5-1"], "seed range '5-1' runs backwards; write it low-high, e.g. 1-5"),
    (["bench", "mobility", "--controllers", "magic"], "unknown controller 'magic'"),
    (["run", "--scenario", "grid3x3", "--set", "bogus=1"], "unknown option 'bogus' for grid3x3; known:"),
    (["run", "--scenario", "grid3x3", "--set", "ev_per_hour=lots"], "option ev_per_hour must be a number (in veh/h)"),
    (["run", "--scenario", "grid3x3", "--set", "novalue"], "bad option 'novalue'"),
    (["run", "--scenario", "grid3x3", "--set", "ev_speed_factor=3"], "option ev_speed_factor must be from 0.5 to 2"),
    (["bench", "preemption", "--ev-speed-factor", "0.1"], "option ev_speed_factor must be from 0.5 to 2"),
    (["run", "--scenario", "grid3x3", "--probes", "2"], "probes fraction must be a number in (0, 1]"),
    # hostile values: NaN, infinities, absurd magnitudes, values the twin cannot honour exactly
    (["run", "--scenario", "grid3x3", "--set", "max_hold_s=NaN"], "option max_hold_s must be a finite number"),
    (["run", "--scenario", "grid3x3", "--set", "yellow_s=Infinity"], "option yellow_s must be a finite number"),
    (["run", "--scenario", "grid3x3", "--ev-per-hour", "nan"], "option ev_per_hour must be a finite number"),
    (["run", "--scenario", "grid3x3", "--set", "ev_per_hour=1e9"], "option ev_per_hour must be from 0 to 360"),
    (["run", "--scenario", "grid3x3", "--set", "decision_interval_s=2.5"], "cannot honour 2.5 exactly"),
    (["run", "--scenario", "grid3x3", "--set", "min_green_s=50", "--set", "max_green_s=20"], "do not fit together"),
    (["run", "--scenario", "grid3x3", "--duration", "0"], "--duration must be a positive number"),
    (["run", "--scenario", "grid3x3", "--duration", "1e9"], "longer than the scenario"),
    (["bench", "mobility", "--seeds", "1-100000000"], "at most 10000"),
    (["run", "--scenario", "grid3x3", "--checkpoint-every", "5"], "--checkpoint-every takes 0 or more steps, with"),
    (["run", "--scenario", "gridcity-2", "--districts", "2", "--checkpoint-every", "-1"], "takes 0 or more steps"),
])
def test_user_errors_end_with_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "--scenario", "grid3x3", "--out", str(blocker / "sub")]) == 2
    assert "cannot write to output folder" in capsys.readouterr().err


def test_scenarios_lists_one_line_each(capsys):
    assert main(["scenarios"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = [line.split()[0] for line in lines]
    assert {"grid3x3", "cologne8", "ingolstadt7", "grid4x4"} <= set(names)


@pytest.mark.sumo
def test_run_both_modes_end_to_end(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "aicity.cli", "run", "--scenario", "grid3x3", "--mode", "both",
                           "--seed", "3", "--duration", "900", "--out", str(out), "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "delay_s" in proc.stdout and "s, lower is better" in proc.stdout
    report = json.loads((out / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert set(report["modes"]) == {"smart", "ai"} and report["window_s"][1] - report["window_s"][0] == 900
    for mode in ("smart", "ai"):
        kpis = report["modes"][mode]["domains"]["mobility"]["kpis"]
        assert kpis["delay_s"] > 0 and kpis["finished"] > 0
        assert (out / mode / "city.db").stat().st_size > 0
    assert report["modes"]["smart"]["loop"]["proposals"] == 0
    ai_loop = report["modes"]["ai"]["loop"]
    assert ai_loop["proposals"] > 0 and ai_loop["actuated"] > 0
    row = report["comparison"]["mobility"]["delay_s"]
    assert row["change_pct"] == pytest.approx(100 * (row["ai"] - row["smart"]) / row["smart"])
    assert (row["unit"], row["better"]) == ("s", "lower")
    md = (out / "report.md").read_text()
    assert "| **delay_s** | s | lower |" in md and "AI City" in md
    pngs = list(out.glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)


@pytest.mark.sumo
def test_ai_run_is_governed_and_audited(tmp_path):
    """The AI City run writes a verifiable ledger whose records rebuild every actuation."""
    out = tmp_path / "gov"
    assert main(["run", "--scenario", "grid3x3", "--mode", "ai", "--seed", "2", "--duration", "900", "--out", str(out),
                 "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    gov = report["modes"]["ai"]["governance"]
    ai_loop = report["modes"]["ai"]["loop"]  # proposals set aside by planner precedence are not decisions
    assert gov["ledger_verified"] is True and gov["ledger_records"] >= ai_loop["proposals"] - ai_loop["overridden"]
    assert gov["samples"], "the report shows explained sample decisions"
    assert report["modes"]["ai"]["domains"]["mobility"]["equity"], "equity audited with fairlearn per group"
    db = str(out / "ai" / "city.db")
    assert main(["audit", "verify", "--db", db]) == 0
    # a reader that leaves early (`| head`) gets no traceback
    first = json.loads((out / "ai" / "audit.jsonl").read_text().splitlines()[1])
    piped = subprocess.run(f"{sys.executable} -m aicity.cli audit show --db {db} {first['id']} | head -1",
                           shell=True, capture_output=True, text=True)
    assert piped.stdout.strip() and "Traceback" not in piped.stderr and "Error" not in piped.stderr
    gone = subprocess.run(f"{sys.executable} -m aicity.cli audit show --db {db} {first['id']} | true", shell=True,
                          capture_output=True, text=True)  # the reader is gone before the first line
    assert gone.stderr == ""
    from aicity.core.store import SqliteStore
    from aicity.governance.ledger import read_jsonl
    from aicity.governance.records import reconstruct_actuations

    store = SqliteStore(db)
    acks = store.events(type="ack")
    store.close()
    _key, rows = read_jsonl(out / "ai" / "audit.jsonl")
    records = [json.loads(r.record) for r in rows if r.record]
    assert len(reconstruct_actuations(records)) == len(acks) > 0


@pytest.mark.sumo
def test_probe_run_uses_consented_probe_features_only(tmp_path):
    """`aicity run --probes`: consents are ledgered, the AI planner's decisions use the probe feature, and no
    pseudonym reaches the decision records."""
    out = tmp_path / "probes"
    assert main(["run", "--scenario", "grid3x3", "--mode", "ai", "--seed", "2", "--probes", "0.3",
                 "--duration", "900", "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    ai = report["modes"]["ai"]
    assert ai["options"] == {"probes": 0.3} and ai["domains"]["mobility"]["options"] == {"probes": 0.3}
    assert ai["consent"]["subjects"] > 0 and ai["consent"]["withdrawn"] == 0
    assert "data subjects gave consent" in (out / "report.md").read_text()
    from aicity.governance.ledger import read_jsonl

    _key, rows = read_jsonl(out / "ai" / "audit.jsonl")
    records = [json.loads(r.record) for r in rows if r.record]
    given = [r for r in records if r.get("kind") == "consent_given"]
    assert len(given) == ai["consent"]["subjects"]
    decisions = [r for r in records if r.get("kind") == "decision"]
    with_probe = [d for d in decisions if any(k.endswith("#probeArrivingShare") for k in (d.get("forecasts") or {}))]
    assert with_probe, "the AI planner used the consented probe feature in its decisions"
    assert "veh-" not in json.dumps(decisions)
