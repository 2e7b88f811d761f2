"""Policies the simulator drives: our pacing functions, and VICIdial's ADAPT_TAPERED baseline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dialer.pacing import Decision, PacingSnapshot, PredictiveConfig, PredictivePacer, progressive
from dialer.sim.engine import MACHINE, TALK, Simulation


class PacingPolicy:
    """Adapter: build the snapshot a runner would, call a :mod:`dialer.pacing` function."""

    def __init__(
        self,
        name: str,
        decide: Callable[[PacingSnapshot], Decision],
        interval_s: float = 1.0,
        *,
        needs_model: bool = True,
    ):
        self.name = name
        self.needs_model = needs_model
        self.interval_s = interval_s
        self._decide = decide
        self.last: Decision | None = None

    def calls_to_place(self, sim: Simulation) -> int:
        self.last = self._decide(sim.snapshot(with_model=self.needs_model))
        return self.last.calls


def progressive_policy() -> PacingPolicy:
    return PacingPolicy("progressive", progressive, needs_model=False)


def predictive_policy(config: PredictiveConfig | None = None) -> PacingPolicy:
    return PacingPolicy("predictive", PredictivePacer(config).decide)


@dataclass
class VicidialConfig:
    """VICIdial's adaptive settings (defaults as shipped)."""

    adaptive_maximum_level: float = 3.0
    adaptive_dropped_percentage: float = 3.0
    adaptive_latest_server_time: float = 21.0  # 2100
    diff_target: float = 0.0
    start_level: float = 1.0
    day_start_hour: float = 9.0
    update_every_s: float = 15.0
    place_every_s: float = 2.5


class VicidialPolicy:
    """ADAPT_TAPERED as VICIdial publishes it (AST_VDadapt.pl, the published algorithm).

    Every 15 s: ``m = (avg ready - avg waiting + diff_target) / avg total agents``,
    ``level = clamp(level * (1 + m), 1.0, max)``; over 20 calls in the last minute with more
    than half dropped: halve; over 50 calls today and the drop % since the start of the day
    above the limit: the taper (nothing before 11:00, the level pinned to 1.0 after).
    Every 2.5 s: ``goal = round(level * (ready + in-call agents)) - calls in progress`` (calls
    ringing, waiting, or connected to an agent).
    Its drop % sees only calls that reached the agent queue (AMD hang-ups are not drops).
    """

    def __init__(self, config: VicidialConfig | None = None, name: str = "vicidial"):
        self.cfg = config or VicidialConfig()
        self.name = name
        self.interval_s = self.cfg.place_every_s
        self.level = self.cfg.start_level
        self._ticks = 0
        self._ready_sum = 0.0
        self._waiting_sum = 0.0
        self._samples = 0

    def calls_to_place(self, sim: Simulation) -> int:
        cfg = self.cfg
        ready = len(sim._free)
        in_call = sum(1 for s in sim.state if s == TALK or s == MACHINE)
        waiting = len(sim.queue)
        self._ready_sum += ready
        self._waiting_sum += waiting
        self._samples += 1
        self._ticks += 1
        if self._ticks * cfg.place_every_s >= cfg.update_every_s:
            self._update(sim)
            self._ticks = 0
        # VICIdial's active calls include those already talking to an agent (its
        # vicidial_auto_calls rows), so at level 1.0 this is one line per ready agent.
        progress = len(sim.inflight) + waiting + in_call
        goal = round(self.level * (ready + in_call)) - progress
        return max(0, goal)

    def _update(self, sim: Simulation) -> None:
        cfg = self.cfg
        total = len(sim.state)
        avg_ready = self._ready_sum / self._samples
        avg_waiting = self._waiting_sum / self._samples
        self._ready_sum = self._waiting_sum = 0.0
        self._samples = 0
        m = (avg_ready - avg_waiting + cfg.diff_target) / total
        self.level = min(cfg.adaptive_maximum_level, max(1.0, self.level * (1.0 + m)))
        recent = sim.q_recent
        while recent and recent[0][0] < sim.now - 60.0:
            recent.popleft()
        if len(recent) > 20 and sum(1 for _, d in recent if d) > 0.5 * len(recent):
            self.level = max(1.0, self.level / 2.0)
        if sim.q_answered > 50:
            drop_pct = 100.0 * sim.q_dropped / sim.q_answered
            if drop_pct > cfg.adaptive_dropped_percentage:
                hour = cfg.day_start_hour + sim.now / 3600.0
                if cfg.adaptive_latest_server_time - hour < 10.0:
                    self.level = 1.0
