"""``aicity forecast backtest`` argument handling and output."""

import argparse
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from aicity.core.errors import UserError
from aicity.forecast import cli, registry


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="aicity")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_backtest_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "h.csv"
    t0 = datetime(2024, 1, 1)
    rows = ["unique_id,ds,y"] + [f"s,{(t0 + timedelta(hours=h)).isoformat()},{h % 7}" for h in range(240)]
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "r.json"
    args = parse(["forecast", "backtest", "--dataset", str(csv), "--models", "naive,default",
                  "--horizons", "1,2", "--eval-days", "2", "--json", str(out)])
    assert cli.run(args) == 0
    recs = json.loads(out.read_text())
    assert [(r["model"], r["horizon_steps"]) for r in recs] == [("naive", 1), ("naive", 2),
                                                                (registry.DEFAULT, 1), (registry.DEFAULT, 2)]
    assert "0 malformed" in capsys.readouterr().out


def test_bad_horizons() -> None:
    with pytest.raises(UserError, match="not a positive whole number"):
        cli.parse_horizons("1,x")
