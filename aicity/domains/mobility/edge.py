"""The actuator edge of one signal: a pure timing state machine that enforces the hard limits.

Whatever a planner asks, the edge guarantees (in controlled mode):

* every change between two different greens shows ``yellow_s`` of yellow, then ``all_red_s`` of all-red
  when the network's program has an all-red phase;
* every green is shown at least ``min_green_s`` before its yellow starts;
* a normal green is shown at most ``max_green_s`` (then the edge moves on to the requested or next phase);
* a preemption lasts at most ``max_hold_s`` from its command, and a signal accepts no new preemption for
  ``cooldown_s`` after one ends; normal control resumes from the phase it held.

It needs no SUMO: :meth:`SignalEdge.tick` is fed the time (seconds) before each simulation step and
:meth:`SignalEdge.state` tells which state string to show. The twin pushes changed states to SUMO.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aicity.core.domain import Outcome, ProposedAction

GREEN = "green"
YELLOW = "yellow"
ALL_RED = "allred"


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """Hard timing limits of one signal's actuator edge (seconds)."""

    yellow_s: float = 3.0
    min_green_s: float = 7.0
    max_green_s: float = 60.0
    all_red_s: float = 0.0
    max_hold_s: float = 40.0
    cooldown_s: float = 30.0

    def __post_init__(self) -> None:
        if self.yellow_s <= 0 or self.min_green_s <= 0 or self.max_green_s < self.min_green_s:
            raise ValueError(f"inconsistent edge limits: {self}")
        if self.all_red_s < 0 or self.max_hold_s <= 0 or self.cooldown_s < 0:
            raise ValueError(f"inconsistent edge limits: {self}")


def yellow_state(current: str, nxt: str) -> str:
    """The yellow shown between green ``current`` and green ``nxt``: links losing right of way turn yellow."""
    return "".join(
        "y" if c in "Gg" and n not in "Gg" else c for c, n in zip(current, nxt, strict=True))


def all_red_state(current: str) -> str:
    """All-red after ``current``'s yellow (links that keep green stay green)."""
    return "".join("r" if c in "yY" else c for c in current)


class SignalEdge:
    """Timing state machine of one signal; greens are indexed 0..n-1 in program order."""

    def __init__(self, signal_id: str, greens: list[str], limits: EdgeLimits | None = None, *,
                 now: float = 0.0, green: int = 0, green_since: float | None = None,
                 controlled: bool = True) -> None:
        if not greens:
            raise ValueError(f"signal {signal_id} has no green phase")
        self.signal_id = signal_id
        self.greens = list(greens)
        self.limits = limits or EdgeLimits()
        self.kind = GREEN
        self.green = green
        self.target: int | None = None
        self.since = now if green_since is None else green_since
        self.pending: int | None = None
        self.preempt_phase: int | None = None
        self.preempt_start = 0.0
        self.cooldown_until = float("-inf")
        self.controlled = controlled
        self.to_fixed = False
        self.preemptions = 0
        self.max_hold_timeouts = 0
        self.events: list[dict[str, Any]] = []
        self._now = now
        self._shown = ""

    # ----- reading -------------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of green phases."""
        return len(self.greens)

    @property
    def preempting(self) -> bool:
        """True while a preemption holds this signal."""
        return self.preempt_phase is not None

    def green_elapsed(self, now: float) -> float:
        """Seconds the current green has been shown (0 during a change)."""
        return now - self.since if self.kind == GREEN else 0.0

    def state(self) -> str:
        """The state string to show now."""
        g = self.greens[self.green]
        if self.kind == GREEN:
            return g
        assert self.target is not None
        y = yellow_state(g, self.greens[self.target])
        return y if self.kind == YELLOW else all_red_state(y)

    def resend(self) -> None:
        """Forget the state last shown, so the next :meth:`poll` returns it again (after a hand-over)."""
        self._shown = ""

    def poll(self) -> str | None:
        """The state string if it changed since the last poll, else None."""
        s = self.state()
        if s == self._shown:
            return None
        self._shown = s
        return s

    # ----- time ----------------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Advance the timing to ``now`` (call once per simulation step, before it)."""
        self._now = now
        if not self.controlled:
            return
        lim = self.limits
        if self.preempt_phase is not None and now - self.preempt_start >= lim.max_hold_s - 1e-9:
            self.max_hold_timeouts += 1  # also during a change: the hold never outlasts its maximum
            self._end_preempt(now, "max_hold")
        if self.kind == YELLOW and now - self.since >= lim.yellow_s - 1e-9:
            if lim.all_red_s > 0:
                self.kind, self.since = ALL_RED, now
            else:
                self._enter_green(now)
        if self.kind == ALL_RED and now - self.since >= lim.all_red_s - 1e-9:
            self._enter_green(now)
        if self.kind != GREEN:
            return
        elapsed = now - self.since
        can_switch = elapsed >= lim.min_green_s - 1e-9
        if self.preempt_phase is not None:
            if self.preempt_phase != self.green and can_switch:
                self._switch(self.preempt_phase, now)
            return
        if self.to_fixed:
            return
        if self.pending is not None and self.pending != self.green and can_switch:
            self._switch(self.pending, now)
        elif elapsed >= lim.max_green_s - 1e-9 and self.n > 1:
            nxt = self.pending if self.pending not in (None, self.green) else (self.green + 1) % self.n
            assert nxt is not None
            self.events.append({"time": now, "signal": self.signal_id, "event": "max_green",
                                "from": self.green, "to": nxt})
            self._switch(nxt, now)

    def _enter_green(self, now: float) -> None:
        assert self.target is not None
        self.green, self.target, self.kind, self.since = self.target, None, GREEN, now
        if self.pending == self.green:
            self.pending = None

    def _switch(self, to: int, now: float) -> None:
        if to == self.green:
            return
        self.kind, self.target, self.since = YELLOW, to, now
        if self.pending == to:
            self.pending = None

    def _end_preempt(self, now: float, why: str) -> None:
        self.events.append({"time": now, "signal": self.signal_id, "event": "preempt_end", "why": why,
                            "phase": self.preempt_phase, "held_s": now - self.preempt_start})
        self.preempt_phase = None
        self.cooldown_until = now + self.limits.cooldown_s

    # ----- commands ------------------------------------------------------------------------------------
    def apply(self, action: ProposedAction, now: float) -> Outcome:
        """Take a command (``set_phase``, ``preempt`` or ``release``) and say what was done with it."""
        self.tick(now)
        kind = action.action
        if kind not in ("set_phase", "preempt", "release"):
            return Outcome(action, "refused", reason=f"unknown action {kind!r} (set_phase, preempt, release)")
        if not self.controlled or self.to_fixed:
            return Outcome(action, "refused", bound_by=("fixed_time_mode",),
                           reason=f"signal {self.signal_id} runs its fixed-time program")
        if kind == "release":
            if self.preempt_phase is None:
                return Outcome(action, "refused", reason="no preemption active")
            self._end_preempt(now, "release")
            return Outcome(action, "applied", command={"release": True})
        phase = action.params.get("phase")
        if isinstance(phase, bool) or not isinstance(phase, int) or not 0 <= phase < self.n:
            return Outcome(action, "refused", bound_by=("phase_range",),
                           reason=f"phase {phase!r} is not a green phase index 0..{self.n - 1}")
        if kind == "preempt":
            return self._preempt(action, phase, now)
        if self.preempt_phase is not None:
            return Outcome(action, "refused", bound_by=("preemption",),
                           reason=f"signal {self.signal_id} is preempted for phase {self.preempt_phase}")
        return self._set_phase(action, phase, now)

    def _set_phase(self, action: ProposedAction, phase: int, now: float) -> Outcome:
        lim = self.limits
        if self.kind != GREEN:
            assert self.target is not None
            if phase == self.target:
                self.pending = None
                return Outcome(action, "applied", command={"phase": phase})
            self.pending = phase
            at = now + self._clearance_left(now) + lim.min_green_s
            return Outcome(action, "clamped", command={"phase": self.target, "then": phase, "at": at},
                           bound_by=("clearance", "min_green"),
                           reason=f"change to phase {self.target} under way; phase {phase} after its "
                                  f"{lim.min_green_s:g} s minimum green")
        if phase == self.green:
            self.pending = None
            return Outcome(action, "applied", command={"phase": phase, "hold": True})
        elapsed = now - self.since
        if elapsed >= lim.min_green_s - 1e-9:
            self._switch(phase, now)
            return Outcome(action, "applied", command={"phase": phase})
        self.pending = phase
        at = self.since + lim.min_green_s
        return Outcome(action, "clamped", command={"phase": phase, "at": at}, bound_by=("min_green",),
                       reason=f"phase {self.green} shown {elapsed:g} s < {lim.min_green_s:g} s minimum green; "
                              f"change deferred to t={at:g}")

    def _preempt(self, action: ProposedAction, phase: int, now: float) -> Outcome:
        if self.preempt_phase is not None:
            if self.preempt_phase == phase:
                return Outcome(action, "applied", command={"preempt": phase, "until": self._hold_end()})
            # the vehicle's next crossing here needs another phase: retarget within the same hold (its clock
            # runs on, so the maximum hold still bounds the whole preemption; min green and clearance apply)
            self.events.append({"time": now, "signal": self.signal_id, "event": "preempt_retarget",
                                "from": self.preempt_phase, "phase": phase})
            self.preempt_phase = phase
            self.tick(now)
            cmd = {"preempt": phase, "until": self._hold_end(), "retarget": True}
            if (self.kind == GREEN and self.green == phase) or (self.kind != GREEN and self.target == phase):
                return Outcome(action, "applied", command=cmd)
            return Outcome(action, "clamped", command=cmd, bound_by=("min_green", "max_hold"),
                           reason="retargeted preemption follows the current phase's minimum green; "
                                  "the hold's end is unchanged")
        if now < self.cooldown_until:
            return Outcome(action, "refused", bound_by=("preempt_cooldown",),
                           reason=f"preemption cooldown until t={self.cooldown_until:g}")
        self.preempt_phase, self.preempt_start, self.pending = phase, now, None
        self.preemptions += 1
        self.events.append({"time": now, "signal": self.signal_id, "event": "preempt_start", "phase": phase})
        self.tick(now)
        cmd = {"preempt": phase, "until": self._hold_end()}
        if self.kind == GREEN and self.green == phase:
            return Outcome(action, "applied", command=cmd)
        if self.kind != GREEN and self.target == phase:
            return Outcome(action, "applied", command=cmd)
        bound = ("min_green",) if self.kind == GREEN else ("clearance", "min_green")
        return Outcome(action, "clamped", command=cmd, bound_by=bound,
                       reason="preempted phase follows after the current phase's minimum green")

    def _hold_end(self) -> float:
        return self.preempt_start + self.limits.max_hold_s

    def _clearance_left(self, now: float) -> float:
        lim = self.limits
        if self.kind == YELLOW:
            return lim.yellow_s - (now - self.since) + lim.all_red_s
        if self.kind == ALL_RED:
            return lim.all_red_s - (now - self.since)
        return 0.0

    # ----- fixed-time hand-over ------------------------------------------------------------------------
    def request_fixed(self) -> None:
        """Safe state: stop taking commands, end any preemption; :meth:`ready_for_fixed` says when to hand over."""
        if self.preempt_phase is not None:
            self._end_preempt(self._now, "safe_state")
        self.pending = None
        self.to_fixed = True

    def ready_for_fixed(self) -> bool:
        """True when the signal shows a green and may be handed to its fixed-time program."""
        return self.controlled and self.to_fixed and self.kind == GREEN

    def handed_over(self) -> None:
        """Mark the signal as run by its fixed-time program."""
        self.controlled, self.to_fixed = False, False

    def power_off(self, now: float) -> None:
        """The signal went dark (no power): end any preemption and stop controlling it at once."""
        self._now = now
        if self.preempt_phase is not None:
            self._end_preempt(now, "no_power")
        self.pending, self.target, self.kind = None, None, GREEN
        self.controlled, self.to_fixed = False, False

    def take_control(self, green: int, green_since: float, now: float) -> None:
        """Resume control from a fixed-time program that shows green ``green`` since ``green_since``."""
        self.controlled, self.to_fixed = True, False
        self.kind, self.green, self.target, self.since, self.pending = GREEN, green, None, green_since, None
        self._now = now
        self._shown = self.greens[green]
