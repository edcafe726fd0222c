"""Static network structure read from .net.xml."""

import pytest

from aicity.domains.mobility.kpis import signal_positions
from aicity.domains.mobility.network import load_network
from aicity.domains.mobility.scenarios import read_sumocfg, require


def test_signals_whose_id_is_no_junction_sit_where_their_lanes_meet():
    net = load_network(read_sumocfg(require("ingolstadt7").path).net, 200.0)
    assert len(net.signals) == 7
    for sid, sig in net.signals.items():
        assert (sig.x, sig.y) != (0.0, 0.0), sid
        assert (sig.x, sig.y) == pytest.approx(signal_positions(net)[sid])
    xs = {round(s.x) for s in net.signals.values()}
    assert len(xs) == 7, "seven distinct places on the map"
