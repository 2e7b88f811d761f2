"""Discrete-event simulation of an outbound campaign (heapq, seeded, deterministic).

The simulator knows the truth (who answered, human or machine); the dialer policy only sees
what a real dialer would: agent states, calls in flight, queue length, and the outcomes it
measured (fed to :class:`~dialer.pacing.OutcomeEstimator`). Metrics are computed from the
truth.

Call life: placed -> rings (lognormal ring time; a live person with ``answer_rate``, a machine
with ``machine_rate``, else no answer at ``ring_timeout_s``; an answer later than the timeout
is a no answer) -> with AMD analysing: ``amd_delay_s`` then a verdict right with
``amd_accuracy`` (a "machine" verdict is hung up unless the governor verifies it) -> the agent
queue, where the 2-second rule applies: no free agent within 2 s = abandoned (safe-harbour
message). A live call gets lognormal talk then wrap-up; a machine costs the agent 5 s.
Scenario shifts change the answer and machine rates of calls placed from their time on.

What the pacer learns goes through :class:`~dialer.sim.accounting.RunnerAccounting`, which
counts as the live runner does (it cannot tell machines from people).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from dialer.pacing import AmdGovernor, AmdMode
from dialer.pacing.snapshot import AbandonCounts, PacingSnapshot
from dialer.sim.accounting import NoAccounting, RunnerAccounting
from dialer.sim.scenario import Scenario

PATIENCE_S = 2.0
MACHINE_HANDLE_S = 5.0

# agent states
FREE, TALK, WRAP, MACHINE = 0, 1, 2, 3
# event codes
_SETTLE, _AMD, _EXPIRE, _AGENT, _EPOCH = range(5)
# outcomes
_NOANSWER, _LIVE, _MACH = 0, 1, 2


def lognormal_params(mean: float, sd: float) -> tuple[float, float]:
    sigma2 = math.log(1.0 + (sd * sd) / (mean * mean))
    return math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2)


class Policy(Protocol):
    """A pacing policy driven by the simulator every ``interval_s`` seconds."""

    name: str
    interval_s: float
    runner_accounting: bool
    """Feed the calls to the runner's ledger and estimator (Memberline's policies)."""

    def calls_to_place(self, sim: Simulation) -> int: ...


@dataclass
class _Call:
    placed: float
    outcome: int
    verdict_machine: bool = False
    verified: bool = False  # a "machine" verdict passed to an agent for measurement
    analysed: bool = False
    live_index: int = -1  # index into Simulation.live_events for live calls
    queued_at: float = 0.0
    verify_p: float = 0.0


@dataclass(frozen=True)
class SimResult:
    algorithm: str
    amd_mode: str
    talk_min_per_agent_hour: float
    utilization: float
    abandon_rate: float
    pacing_abandon_rate: float
    amd_abandon_rate: float
    max_hour_abandon_rate: float
    connects_per_agent_hour: float
    calls_placed: int
    live_answers: int

    def figures(self) -> dict[str, float | int | str]:
        return {
            "talk_min_per_agent_hour": round(self.talk_min_per_agent_hour, 3),
            "utilization": round(self.utilization, 4),
            "abandon_rate": round(self.abandon_rate, 4),
            "pacing_abandon_rate": round(self.pacing_abandon_rate, 4),
            "amd_abandon_rate": round(self.amd_abandon_rate, 4),
            "amd_mode": self.amd_mode,
            "max_hour_abandon_rate": round(self.max_hour_abandon_rate, 4),
            "connects_per_agent_hour": round(self.connects_per_agent_hour, 3),
            "calls_placed": self.calls_placed,
        }


class Simulation:
    """One run of one policy on one scenario."""

    def __init__(
        self,
        scenario: Scenario,
        policy: Policy,
        amd_mode: AmdMode = AmdMode.AUTO,
        *,
        hours: float | None = None,
    ):
        sc = scenario
        self.sc = sc
        self.policy = policy
        self.amd_mode = amd_mode
        self.end = (hours if hours is not None else sc.hours) * 3600.0
        self.now = 0.0
        self._calls_rng = random.Random(sc.seed * 1_000_003 + 1)
        self._dur_rng = random.Random(sc.seed * 1_000_003 + 2)
        self._amd_rng = random.Random(sc.seed * 1_000_003 + 3)
        self._ring = lognormal_params(*sc.ring_time_s)
        self._talk = lognormal_params(*sc.talk_time_s)
        self._wrap = lognormal_params(*sc.wrap_time_s)
        self._heap: list[tuple[float, int, int, int]] = []
        self._seq = 0
        n = sc.agents
        self.state = [FREE] * n
        self.since = [0.0] * n
        self._talk_len = [0.0] * n
        self._free: list[int] = list(range(n - 1, -1, -1))
        self.calls: dict[int, _Call] = {}
        self._next_call = 0
        self.inflight: dict[int, float] = {}  # call id -> placed time (ringing or AMD)
        self.queue: deque[tuple[int, float]] = deque()  # (call id, deadline)
        self.horizon_s = math.ceil(sc.ring_timeout_s + sc.amd_delay_s + PATIENCE_S) + 1
        runner = getattr(policy, "runner_accounting", True)
        self.acct = (RunnerAccounting if runner else NoAccounting)(self.horizon_s, sc.abandon_cap)
        self._agent_call = [-1] * n  # the call each agent is on (to hang it up)
        self.estimator = self.acct.estimator
        self.governor = AmdGovernor(amd_mode, sc.abandon_cap)
        # VICIdial's own statistics (its vicidial_log): every call placed, drops, and answers
        # with a "human answered" status (agent-dispositioned people, and every DROP)
        self.vd_calls_today = 0
        self.vd_drops_today = 0
        self.vd_answers_today = 0
        self.vd_placed: deque[float] = deque()
        self.vd_dropped: deque[float] = deque()
        """Placing times of every call, and of the dropped ones (its last-minute drop %)."""
        # truth
        self.calls_placed = 0
        self.talk_total = 0.0
        self.connects = 0
        self.live_events: list[tuple[float, int]] = []  # (answer time, 0 ok / 1 pacing / 2 amd)
        self.amd_time_on = 0.0

    # -- scheduling --------------------------------------------------------------------------
    def _push(self, t: float, code: int, arg: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, code, arg))

    def place(self, n: int) -> None:
        sc = self.sc
        rng = self._calls_rng
        for _ in range(n):
            cid = self._next_call
            self._next_call += 1
            self.calls_placed += 1
            self.vd_calls_today += 1
            self.vd_placed.append(self.now)
            answer_rate, machine_rate = sc.rates_at(self.now)
            u = rng.random()
            ring = rng.lognormvariate(*self._ring)
            if u < answer_rate and ring < sc.ring_timeout_s:
                outcome, t = _LIVE, ring
            elif u < answer_rate + machine_rate and ring < sc.ring_timeout_s:
                outcome, t = _MACH, ring
            else:
                outcome, t = _NOANSWER, sc.ring_timeout_s
            call = _Call(self.now, outcome)
            gov = self.governor
            if gov.analysing:  # as the runner: AMD and its verification drawn at placing
                call.analysed = True
                verify = gov.verify_probability()
                call.verify_p = verify
                call.verified = verify > 0 and self._amd_rng.random() < verify
            self.calls[cid] = call
            self.inflight[cid] = self.now
            self.acct.placed(cid, self.now, amd=call.analysed, verify=call.verified)
            self._push(self.now + t, _SETTLE, cid)

    # -- the dialer's bookkeeping ------------------------------------------------------------
    def abandon_counts(self) -> AbandonCounts:
        return self.acct.counts(self.now)

    def snapshot(self, *, with_model: bool = True) -> PacingSnapshot:
        """What the runner hands the pacer (``with_model=False``: skip the estimates): agent
        states, and calls dialling and waiting as the ledger counts them."""
        now = self.now
        dialling, waiting = self.acct.dialling_and_waiting(now)
        wrap, talk = [], []
        state, since = self.state, self.since
        for i in range(len(state)):
            s = state[i]
            if s == WRAP:
                wrap.append(now - since[i])
            elif s != FREE:
                talk.append(now - since[i])
        return PacingSnapshot(
            agents_free=len(self._free),
            now_s=now,
            wrap_elapsed_s=wrap,
            talk_elapsed_s=talk,
            inflight_elapsed_s=dialling,
            queued=waiting,
            model=self.estimator.model() if with_model else None,
            abandons=self.abandon_counts(),
            amd_active=self.governor.analysing,
        )

    # -- events ------------------------------------------------------------------------------
    def _settle(self, cid: int) -> None:
        call = self.calls[cid]
        if call.outcome == _NOANSWER:
            del self.inflight[cid]
            del self.calls[cid]
            self.acct.not_answered(cid, self.now)
            return
        if call.outcome == _LIVE:
            self.live_events.append((self.now, 0))
            call.live_index = len(self.live_events) - 1
        self.acct.answered(cid, self.now)
        if call.analysed:
            acc = self.sc.amd_accuracy
            right = self._amd_rng.random() < acc
            call.verdict_machine = (call.outcome == _MACH) == right
            self._push(self.now + self.sc.amd_delay_s, _AMD, cid)
        else:
            self._to_queue(cid)

    def _amd_done(self, cid: int) -> None:
        call = self.calls[cid]
        self.acct.amd_verdict(cid, self.now, machine=call.verdict_machine)
        if call.verdict_machine:
            if call.verified and self._free:
                # the shipped dialplan: a sampled machine verdict goes to an agent only
                # when one is ready at once, else it is hung up like the rest
                self._to_queue(cid)
                return
            # hung up as a machine
            del self.inflight[cid]
            del self.calls[cid]
            self.acct.hung_up(cid, self.now)
            if call.outcome == _LIVE:
                idx = call.live_index
                self.live_events[idx] = (self.live_events[idx][0], 2)
            return
        self._to_queue(cid)

    def _to_queue(self, cid: int) -> None:
        del self.inflight[cid]
        self.calls[cid].queued_at = self.now
        if self._free:
            self._connect(cid, self._free.pop())
        else:
            self.queue.append((cid, self.now + PATIENCE_S))
            self._push(self.now + PATIENCE_S, _EXPIRE, cid)

    def _expire(self, cid: int) -> None:
        call = self.calls.get(cid)
        if call is None:
            return  # already connected
        # the queue is FIFO with a fixed patience: the expiring call is at the head
        while self.queue and self.queue[0][0] != cid:
            self.queue.popleft()
        if self.queue:
            self.queue.popleft()
        del self.calls[cid]
        self.vd_drops_today += 1
        self.vd_answers_today += 1
        self.vd_dropped.append(call.placed)
        self.acct.expire(self.now)  # the runner's tick: over 2 s without an agent
        self.acct.dropped(cid, self.now)
        if call.outcome == _LIVE:
            idx = call.live_index
            self.live_events[idx] = (self.live_events[idx][0], 1)

    def _connect(self, cid: int, agent: int) -> None:
        call = self.calls.pop(cid)
        self.since[agent] = self.now
        self._agent_call[agent] = cid
        if call.analysed:
            # the agent's disposition says person or machine (the runner reads it back)
            self.governor.record_verified(
                verdict_machine=call.verdict_machine,
                live=call.outcome == _LIVE,
                verify_probability=call.verify_p if call.verdict_machine else 1.0,
            )
        self.acct.bridged(cid, self.now, agent, self.now - call.queued_at)
        if call.analysed and call.verdict_machine:
            # the agent's disposition of a verification call reaches the runner's ledger
            self.acct.verified(cid, self.now, live=call.outcome == _LIVE)
        if call.outcome == _LIVE:
            self.connects += 1
            self.vd_answers_today += 1
            self.state[agent] = TALK
            talk = self._dur_rng.lognormvariate(*self._talk)
            self._talk_len[agent] = talk
            self._push(self.now + talk, _AGENT, agent)
        else:
            self.state[agent] = MACHINE
            self._push(self.now + MACHINE_HANDLE_S, _AGENT, agent)

    def _agent_event(self, agent: int) -> None:
        s = self.state[agent]
        if s == TALK or s == MACHINE:
            self.acct.hung_up(self._agent_call[agent], self.now)
        if s == TALK:
            talk = self.now - self.since[agent]
            self.talk_total += min(self.now, self.end) - min(self.since[agent], self.end)
            self.state[agent] = WRAP
            self.since[agent] = self.now
            self._talk_len[agent] = talk
            self._push(self.now + self._dur_rng.lognormvariate(*self._wrap), _AGENT, agent)
            return
        if s == WRAP:
            self.acct.agent_cycle(self._talk_len[agent], self.now - self.since[agent])
        else:
            # a machine: the runner sees an agent call of a few seconds and no wrap-up
            self.acct.agent_cycle(MACHINE_HANDLE_S, 0.0)
        self.state[agent] = FREE
        self.since[agent] = self.now
        self._agent_free(agent)

    def _agent_free(self, agent: int) -> None:
        q = self.queue
        while q:
            cid, deadline = q.popleft()
            if cid in self.calls and deadline >= self.now:
                self._connect(cid, agent)
                return
        self._free.append(agent)

    # -- run ---------------------------------------------------------------------------------
    def run(self) -> SimResult:
        interval = self.policy.interval_s
        self._push(0.0, _EPOCH, 0)
        heap = self._heap
        pop = heapq.heappop
        while heap:
            t, _, code, arg = pop(heap)
            if t > self.end:
                break
            self.now = t
            if code == _EPOCH:
                n = self.policy.calls_to_place(self)
                if n > 0:
                    self.place(n)
                if self.governor.analysing:
                    self.amd_time_on += interval
                self._push(t + interval, _EPOCH, 0)
            elif code == _SETTLE:
                self._settle(arg)
            elif code == _AMD:
                self._amd_done(arg)
            elif code == _EXPIRE:
                self._expire(arg)
            else:
                self._agent_event(arg)
        self.now = self.end
        for i, s in enumerate(self.state):
            if s == TALK:
                self.talk_total += max(0.0, self.end - self.since[i])
        return self._result()

    def _result(self) -> SimResult:
        sc = self.sc
        agent_hours = sc.agents * self.end / 3600.0
        live = len(self.live_events)
        pacing = sum(1 for _, k in self.live_events if k == 1)
        amd = sum(1 for _, k in self.live_events if k == 2)
        rate = (pacing + amd) / live if live else 0.0
        if self.amd_mode is AmdMode.AUTO:
            share = self.amd_time_on / self.end if self.end else 0.0
            amd_mode = f"auto ({self.governor.state.value} at end, AMD on {share:.0%} of the time)"
        else:
            amd_mode = self.amd_mode.value
        return SimResult(
            algorithm=self.policy.name,
            amd_mode=amd_mode,
            talk_min_per_agent_hour=self.talk_total / 60.0 / agent_hours,
            utilization=self.talk_total / (sc.agents * self.end),
            abandon_rate=rate,
            pacing_abandon_rate=pacing / live if live else 0.0,
            amd_abandon_rate=amd / live if live else 0.0,
            max_hour_abandon_rate=max_window_rate(self.live_events, 3600.0, self.end),
            connects_per_agent_hour=self.connects / agent_hours,
            calls_placed=self.calls_placed,
            live_answers=live,
        )


def max_window_rate(events: list[tuple[float, int]], window: float, end: float) -> float:
    """Worst abandonment rate over any ``window``-second span (events sorted by time).

    Windows end at every event time from ``window`` on (the whole run if shorter)."""
    if not events:
        return 0.0
    if end <= window:
        return sum(1 for _, k in events if k) / len(events)
    worst = 0.0
    lo = 0
    ab = 0
    times = [t for t, _ in events]
    flags = [1 if k else 0 for _, k in events]
    for hi in range(len(events)):
        ab += flags[hi]
        while times[lo] <= times[hi] - window:
            ab -= flags[lo]
            lo += 1
        if times[hi] >= window:
            rate = ab / (hi - lo + 1)
            if rate > worst:
                worst = rate
    return worst
