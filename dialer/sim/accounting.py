"""What the campaign runner does with each settled call, for the simulator.

The simulator knows the truth (person or machine); the runner does not. This class receives
only what the runner's events tell it — the call was not answered (``OriginateResponse``
failure / no answer), reached the agent queue (answered), was bridged to an agent, was
dropped by the 2-second rule, or an agent became ready again after a call (talk, wrap-up) —
and feeds the pacer's estimators and abandonment counts exactly as the runner does
(``dialer/runner.py``, ``_finish``): every answered call the runner settles is a *live* answer
to it (it has no machine verdict: AMD is not wired and dispositions are not read back), and a
drop is a full abandon (:func:`dialer.pacing.counting.drop_weight`).

Keep this the only place the simulator counts for the pacer, so that moving it onto the
runner's call ledger changes this file alone.
"""

from __future__ import annotations

from dialer.pacing.counting import AbandonCounter, drop_weight
from dialer.pacing.estimators import OutcomeEstimator
from dialer.pacing.snapshot import AbandonCounts


class RunnerAccounting:
    """The runner's view of a campaign's calls: the estimator and the abandonment counter."""

    def __init__(self, horizon_s: int, cap: float, *, machine_verdicts: bool = False):
        self.estimator = OutcomeEstimator(horizon_s)
        self.counter = AbandonCounter(cap)
        self.machine_verdicts = machine_verdicts
        """True only in research runs with AMD: the runner cannot tell machines apart."""

    def not_reached(self) -> None:
        """No answer, busy, congestion: the call never reached the agent queue."""
        self.estimator.record_attempt(reached_queue=False)

    def reached(self, reach_delay_s: float) -> None:
        """Answered and sent to the agent queue after ``reach_delay_s``."""
        self.estimator.record_attempt(reached_queue=True, reach_delay_s=reach_delay_s)

    def bridged(self, at: float, *, machine: bool, handle_s: float) -> None:
        """An agent took the call within 2 s. ``machine`` is the truth, used only when the
        runner could know it (``machine_verdicts``)."""
        if self.machine_verdicts and machine:
            self.estimator.record_connection(live=False, machine_handle_s=handle_s)
            return
        self.estimator.record_connection(live=True)
        self.counter.live_answer(at)

    def dropped(self, at: float) -> None:
        """Answered, no agent within 2 s: the safe-harbour message played, the call ended."""
        self.counter.abandoned(at, drop_weight(self.estimator.live))

    def amd_hangup(self, at: float, p_live: float) -> None:
        """AMD hung up on a "machine" verdict (research runs only)."""
        self.estimator.record_attempt(reached_queue=False)
        self.counter.abandoned(at, p_live)

    def agent_cycle(self, talk_s: float, wrap_s: float) -> None:
        self.estimator.record_agent_cycle(talk_s, wrap_s)

    def counts(self, now: float) -> AbandonCounts:
        return self.counter.counts(now)
