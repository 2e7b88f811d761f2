"""Policies the simulator drives: our pacing functions, and VICIdial's ADAPT_TAPERED baseline."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from dialer.pacing import (
    PacingDecision,
    PacingSnapshot,
    PredictiveConfig,
    PredictivePacer,
    progressive,
)
from dialer.sim.engine import MACHINE, TALK, Simulation


class PacingPolicy:
    """Adapter: build the snapshot a runner would, call a :mod:`dialer.pacing` function."""

    def __init__(
        self,
        name: str,
        decide: Callable[[PacingSnapshot], PacingDecision],
        interval_s: float = 1.0,
        *,
        needs_model: bool = True,
    ):
        self.name = name
        self.runner_accounting = True
        self.needs_model = needs_model
        self.interval_s = interval_s
        self._decide = decide
        self.last: PacingDecision | None = None

    def calls_to_place(self, sim: Simulation) -> int:
        self.last = self._decide(sim.snapshot(with_model=self.needs_model))
        return self.last.calls


def progressive_policy() -> PacingPolicy:
    return PacingPolicy("progressive", progressive, needs_model=False)


def predictive_policy(config: PredictiveConfig | None = None) -> PacingPolicy:
    return PacingPolicy("predictive", PredictivePacer(config).decide)


@dataclass
class VicidialConfig:
    """VICIdial's adaptive settings, defaults as shipped (``vicidial_campaigns`` columns in
    ``MySQL_AST_CREATE_tables.sql``: adaptive_dropped_percentage 3, adaptive_maximum_level 3.0,
    adaptive_latest_server_time 2100, adaptive_intensity 0, adaptive_dl_diff_target 0)."""

    adaptive_maximum_level: float = 3.0
    adaptive_dropped_percentage: float = 3.0
    adaptive_latest_server_time: int = 2100
    adaptive_intensity: float = 0.0
    adaptive_dl_diff_target: float = 0.0
    start_level: float = 1.0
    day_start_hour: float = 9.0
    """Server time when the simulated day starts (its drop counts start at midnight, no calls
    before the campaign)."""
    sample_every_s: float = 1.0
    """AST_VDadapt.pl's loop (``--delay``, default 1 s): one agent/queue sample per loop."""
    samples_averaged: int = 15
    level_every_s: float = 15.0
    drops_every_s: float = 60.0
    place_every_s: float = 2.5


class VicidialPolicy:
    """ADAPT_TAPERED as VICIdial's ``bin/AST_VDadapt.pl`` (``calculate_dial_level``,
    ``count_agents_lines``, ``calculate_drops``) and ``AST_VDauto_dial.pl`` implement it.

    * Every second: sample ready agents (READY), calls waiting for an agent (LIVE), and all
      logged-in agents; the differential is the mean over the last 15 samples of ready minus
      waiting.
    * Every 60 s: drop statistics from its call log: calls placed and drops in the last
      minute; since midnight, calls, drops, and answers with a human-answered status (agent
      dispositions of people, and DROP).
    * Every 15 s: ``level = level x (1 + differential / mean agents)`` (intensity 0), clamped
      to 1.0..max; if over 20 calls in the last minute and drops > 50 % *of those calls*:
      halve; if over 50 calls today and drops / answers today > the dropped percentage:
      ADAPT_TAPERED multiplies the level by ``(latest server time - HHMM) / 1000`` when fewer
      than 10 "hours" (1000 in HHMM arithmetic) are left, so the taper deepens gradually
      towards 21:00, and sets 1.0 past it; never below 1.0.
    * Every 2.5 s: ``goal = round(level x (ready + in-call agents)) - calls in progress``
      (ringing, waiting, or connected to an agent: its ``vicidial_auto_calls`` rows), so level
      1.0 is one line per ready agent.
    """

    def __init__(self, config: VicidialConfig | None = None, name: str = "vicidial"):
        self.cfg = config or VicidialConfig()
        self.name = name
        self.runner_accounting = False  # VICIdial keeps its own statistics (Simulation.vd_*)
        self.interval_s = 0.5
        self.level = self.cfg.start_level
        self._samples: deque[tuple[int, int, int]] = deque(maxlen=self.cfg.samples_averaged)
        self._next_sample = 0.0
        self._next_level = self.cfg.level_every_s
        self._next_drops = self.cfg.drops_every_s
        self._next_place = 0.0
        self._calls_one = 0
        self._drops_one = 0
        self._calls_today = 0
        self._drops_today = 0
        self._answers_today = 0

    def calls_to_place(self, sim: Simulation) -> int:
        cfg = self.cfg
        now = sim.now
        ready = len(sim._free)
        if now >= self._next_sample:
            self._samples.append((ready, len(sim.queue), len(sim.state)))
            self._next_sample += cfg.sample_every_s
        if now >= self._next_drops:
            self._calculate_drops(sim)
            self._next_drops += cfg.drops_every_s
        if now >= self._next_level:
            self._calculate_dial_level(now)
            self._next_level += cfg.level_every_s
        if now < self._next_place:
            return 0
        self._next_place += cfg.place_every_s
        in_call = sum(1 for s in sim.state if s == TALK or s == MACHINE)
        progress = len(sim.inflight) + len(sim.queue) + in_call
        goal = round(self.level * (ready + in_call)) - progress
        return max(0, goal)

    def _calculate_drops(self, sim: Simulation) -> None:
        since = sim.now - 60.0
        for q in (sim.vd_placed, sim.vd_dropped):
            while q and q[0] <= since:
                q.popleft()
        self._calls_one = len(sim.vd_placed)
        self._drops_one = sum(1 for t in sim.vd_dropped if t > since)
        self._calls_today = sim.vd_calls_today
        self._drops_today = sim.vd_drops_today
        self._answers_today = sim.vd_answers_today

    def _calculate_dial_level(self, now: float) -> None:
        cfg = self.cfg
        n = len(self._samples)
        if n == 0:
            return
        ready_avg = sum(s[0] for s in self._samples) / n
        waiting_avg = sum(s[1] for s in self._samples) / n
        agents_avg = sum(s[2] for s in self._samples) / n
        diff = ready_avg - waiting_avg + cfg.adaptive_dl_diff_target
        mul = diff / agents_avg if diff != 0 and agents_avg != 0 else 0.0
        intensity = cfg.adaptive_intensity / 100.0
        pct = mul * 100.0
        pct = pct * abs(intensity - 1.0) if pct < 0 else pct * (intensity + 1.0)
        level = round(self.level * (pct / 100.0 + 1.0), 3)
        level = min(level, cfg.adaptive_maximum_level)
        level = max(level, 1.0)
        if self._calls_one > 20 and 100.0 * self._drops_one / self._calls_one > 50.0:
            level = level / 2.0
        answers = max(1, self._answers_today)
        if self._calls_today > 50 and 100.0 * self._drops_today / answers > (
            cfg.adaptive_dropped_percentage
        ):
            minutes = int(cfg.day_start_hour * 60 + now / 60.0)
            hhmm = (minutes // 60) * 100 + minutes % 60
            hours_left = cfg.adaptive_latest_server_time - hhmm
            if hours_left < 0:
                level = 1.0
            elif hours_left <= 1000:
                level = level * hours_left / 1000.0
        self.level = max(1.0, level)
