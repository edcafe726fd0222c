"""Property tests of the actuator edge: no command sequence breaks the hard timing limits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aicity.core.domain import ProposedAction
from aicity.domains.mobility.edge import EdgeLimits, SignalEdge, yellow_state

GREENS = ["GGrrGGrr", "rrGGrrGG", "GgrrGgrr", "rrrGrrrG"]

command = st.tuples(
    st.integers(min_value=0, max_value=200),  # time of the command (s)
    st.sampled_from(["set_phase", "set_phase", "set_phase", "preempt", "release"]),
    st.integers(min_value=-1, max_value=4),  # phase (some out of range)
)


def _run(cmds: list[tuple[int, str, int]], limits: EdgeLimits, horizon: int = 260
         ) -> tuple[list[tuple[str, int | None]], SignalEdge, list[str]]:
    edge = SignalEdge("s", GREENS, limits, now=0.0)
    by_t: dict[int, list[tuple[str, int]]] = {}
    for t, a, ph in cmds:
        by_t.setdefault(t, []).append((a, ph))
    shown: list[tuple[str, int | None]] = []
    statuses = []
    for t in range(horizon):
        edge.tick(float(t))
        for a, ph in by_t.get(t, []):
            out = edge.apply(ProposedAction(target="s", action=a, params={"phase": ph}), float(t))
            statuses.append(out.status)
            assert out.status in ("applied", "clamped", "refused")
            if out.status != "applied" and a != "release":
                assert out.bound_by or out.reason
        shown.append((edge.kind, edge.green if edge.kind == "green" else edge.target))
        assert edge.state() in (GREENS[edge.green], *(
            yellow_state(GREENS[edge.green], g) for g in GREENS),
            *("".join("r" if c == "y" else c for c in yellow_state(GREENS[edge.green], g)) for g in GREENS))
    return shown, edge, statuses


def _runs(shown: list[tuple[str, int | None]]) -> list[tuple[str, int | None, int]]:
    runs: list[tuple[str, int | None, int]] = []
    for kind, g in shown:
        if runs and runs[-1][0] == kind and runs[-1][1] == g:
            runs[-1] = (kind, g, runs[-1][2] + 1)
        else:
            runs.append((kind, g, 1))
    return runs


@settings(max_examples=300, deadline=None)
@given(st.lists(command, max_size=60), st.sampled_from([0.0, 2.0]))
def test_no_short_green_no_missing_yellow_no_long_hold(cmds: list[tuple[int, str, int]], all_red: float) -> None:
    lim = EdgeLimits(yellow_s=3, min_green_s=7, max_green_s=60, all_red_s=all_red, max_hold_s=40, cooldown_s=30)
    shown, _edge, _ = _run(cmds, lim)
    runs = _runs(shown)
    for i, (kind, g, length) in enumerate(runs):
        last = i == len(runs) - 1
        if kind == "green" and not last:
            assert length >= lim.min_green_s, f"green {g} shown {length} s"
            nxt = runs[i + 1]
            assert nxt[0] == "yellow", "a change without yellow"
        if kind == "green":
            # a green never exceeds max green, or max green plus one preemption hold
            assert length <= lim.max_green_s + lim.max_hold_s
        if kind == "yellow" and not last:
            assert length == lim.yellow_s
            assert runs[i + 1][0] == ("allred" if all_red else "green")
            assert runs[i + 1][1] == g
        if kind == "allred" and not last:
            assert length == all_red
            assert runs[i + 1][0] == "green"
    preempt_cmds = [c for c in cmds if c[1] == "preempt"]
    if not preempt_cmds:
        assert all(length <= lim.max_green_s for k, _, length in runs if k == "green")


@settings(max_examples=200, deadline=None)
@given(st.lists(command, max_size=60))
def test_preemption_hold_and_cooldown(cmds: list[tuple[int, str, int]]) -> None:
    lim = EdgeLimits()
    edge = SignalEdge("s", GREENS, lim, now=0.0)
    by_t: dict[int, list[tuple[str, int]]] = {}
    for t, a, ph in cmds:
        by_t.setdefault(t, []).append((a, ph))
    for t in range(300):
        edge.tick(float(t))
        for a, ph in by_t.get(t, []):
            edge.apply(ProposedAction(target="s", action=a, params={"phase": ph}), float(t))
        if edge.preempting:
            assert t - edge.preempt_start < lim.max_hold_s, "hold beyond the maximum"
    starts = [e["time"] for e in edge.events if e["event"] == "preempt_start"]
    ends = [e for e in edge.events if e["event"] == "preempt_end"]
    assert len(starts) == edge.preemptions
    for end in ends:
        assert end["held_s"] <= lim.max_hold_s
    for end, nxt in zip(ends, starts[1:], strict=False):
        assert nxt - end["time"] >= lim.cooldown_s, "preemption inside the cooldown"


def test_clamp_and_refusal_reasons() -> None:
    edge = SignalEdge("s", GREENS, EdgeLimits(), now=0.0)
    out = edge.apply(ProposedAction(target="s", action="set_phase", params={"phase": 1}), 2.0)
    assert out.status == "clamped" and out.bound_by == ("min_green",)
    out = edge.apply(ProposedAction(target="s", action="set_phase", params={"phase": 9}), 3.0)
    assert out.status == "refused" and "phase_range" in out.bound_by
    edge.apply(ProposedAction(target="s", action="set_phase", params={"phase": 0}), 3.0)
    for t in range(4, 20):
        edge.tick(float(t))
    assert edge.apply(ProposedAction(target="s", action="preempt", params={"phase": 2}), 20.0).status == "applied"
    out = edge.apply(ProposedAction(target="s", action="set_phase", params={"phase": 0}), 21.0)
    assert out.status == "refused" and out.bound_by == ("preemption",)
    assert edge.apply(ProposedAction(target="s", action="release"), 30.0).status == "applied"
    out = edge.apply(ProposedAction(target="s", action="preempt", params={"phase": 1}), 40.0)
    assert out.status == "refused" and out.bound_by == ("preempt_cooldown",)


def test_preemption_retargets_within_the_same_hold() -> None:
    """A vehicle's next crossing of the same signal needs another phase: switched, clock and limits kept."""
    lim = EdgeLimits()
    edge = SignalEdge("s", GREENS, lim, now=0.0)
    for t in range(20):
        edge.tick(float(t))
    assert edge.apply(ProposedAction(target="s", action="preempt", params={"phase": 2}), 20.0).status == "applied"
    out = edge.apply(ProposedAction(target="s", action="preempt", params={"phase": 1}), 22.0)
    assert out.status == "clamped" and out.command["retarget"] and out.command["until"] == 20.0 + lim.max_hold_s
    assert [e["event"] for e in edge.events] == ["preempt_start", "preempt_retarget"]
    assert edge.preemptions == 1
    shown = []
    for t in range(22, 80):
        edge.tick(float(t))
        shown.append((t, edge.kind, edge.green))
    assert any(k == "green" and g == 1 for _, k, g in shown)  # the retargeted phase is shown
    end = next(e for e in edge.events if e["event"] == "preempt_end")
    assert end["time"] == 20.0 + lim.max_hold_s  # the hold's end did not move


def test_safe_state_hands_over_after_clearance() -> None:
    edge = SignalEdge("s", GREENS, EdgeLimits(all_red_s=2), now=0.0)
    for t in range(10):
        edge.tick(float(t))
    edge.apply(ProposedAction(target="s", action="set_phase", params={"phase": 1}), 10.0)
    edge.request_fixed()
    t = 10
    while not edge.ready_for_fixed():
        t += 1
        edge.tick(float(t))
    assert t - 10 == 5 and edge.green == 1  # 3 s yellow + 2 s all-red, then green 1 goes to the program
    out = edge.apply(ProposedAction(target="s", action="set_phase", params={"phase": 0}), float(t))
    assert out.refused and out.bound_by == ("fixed_time_mode",)
