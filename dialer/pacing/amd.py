"""The AMD governor: use answering-machine detection only while it keeps the law.

AMD hangs up on answers it classifies as machines; a live person classified as a machine (a
false positive) is an abandoned call in law. In ``auto`` mode the governor starts in a *trial*
where AMD runs but every "machine" verdict is still passed to an agent, so false positives are
counted exactly and nobody is abandoned by AMD. Once it has seen ``min_live`` live answers it
switches AMD *on* (hanging up "machine" verdicts, still verifying a ``verify_fraction`` random
sample to keep measuring) only if the upper estimate of the AMD abandonment rate fits
``budget_fraction`` of the cap; otherwise AMD stays *off* for the rest of the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from dialer.pacing.snapshot import AmdMode


class AmdState(StrEnum):
    OFF = "off"
    TRIAL = "trial"
    ON = "on"


@dataclass(frozen=True)
class AmdGovernorConfig:
    budget_fraction: float = 0.25
    """Share of the abandonment cap AMD false positives may use."""
    min_live: int = 150
    """Live answers seen under AMD before the trial may conclude."""
    max_trial_live: int = 1500
    """The trial ends (AMD off) if the estimate is still inconclusive after this many."""
    verify_fraction: float = 0.1
    """With AMD on: share of "machine" verdicts still passed to an agent (measurement)."""
    z: float = 2.0
    """Upper-bound width (standard errors) of the false-positive estimate."""


class AmdGovernor:
    """Decides per answered call whether AMD analyses it and whether a "machine" verdict is
    verified by an agent; learns the false-positive rate from verified verdicts."""

    def __init__(self, mode: AmdMode, cap: float, config: AmdGovernorConfig | None = None):
        self.mode = mode
        self.cap = cap
        self.config = config or AmdGovernorConfig()
        self.state = {
            AmdMode.ON: AmdState.ON,
            AmdMode.OFF: AmdState.OFF,
            AmdMode.AUTO: AmdState.TRIAL,
        }[mode]
        self._live_passed = 0.0  # live answers AMD called "human" (agents confirm)
        self._live_flagged = 0.0  # live answers AMD called "machine", weighted by 1/verify prob
        self._flagged_verified = 0  # "machine" verdicts an agent saw
        self._flagged_live = 0  # ... that were live people
        self.reason = f"AMD {mode.value}"

    @property
    def analysing(self) -> bool:
        return self.state is not AmdState.OFF

    def verify_probability(self) -> float:
        """Probability that a "machine" verdict is passed to an agent anyway."""
        if self.state is AmdState.TRIAL:
            return 1.0
        if self.state is AmdState.ON and self.mode is AmdMode.AUTO:
            return self.config.verify_fraction
        return 0.0

    def false_positive_rate(self) -> tuple[float, float]:
        """(estimate, upper bound) of P(verdict machine | live answer), Beta(1, 1) prior."""
        n = self._live_passed + self._live_flagged
        p = (self._live_flagged + 1.0) / (n + 2.0)
        upper = p + self.config.z * math.sqrt(p * (1.0 - p) / (n + 2.0))
        return p, upper

    def live_given_machine_verdict(self) -> float:
        """Estimated P(live | "machine" verdict), from the verdicts agents verified: how much an
        un-verified hang-up counts as an abandoned live call (Beta(1, 1) prior)."""
        return (self._flagged_live + 1.0) / (self._flagged_verified + 2.0)

    def record_verified(
        self, *, verdict_machine: bool, live: bool, verify_probability: float
    ) -> None:
        """An agent saw a call AMD analysed: was it live, and what had AMD said."""
        if not live:
            return
        if verdict_machine:
            self._live_flagged += 1.0 / max(verify_probability, 1e-6)
        else:
            self._live_passed += 1.0
        self._review()

    def _review(self) -> None:
        if self.mode is not AmdMode.AUTO or self.state is AmdState.OFF:
            return
        n = self._live_passed + self._live_flagged
        fp, upper = self.false_positive_rate()
        budget = self.config.budget_fraction * self.cap
        cost = upper * (1.0 - self.config.verify_fraction)
        lower = max(0.0, 2.0 * fp - upper)
        if self.state is AmdState.TRIAL and n >= self.config.min_live:
            if cost <= budget:
                self.state = AmdState.ON
                self.reason = f"AMD on: false positives {fp:.1%} (<= {upper:.1%}) fit {budget:.1%}"
            elif (
                lower * (1.0 - self.config.verify_fraction) > budget
                or n >= self.config.max_trial_live
            ):
                self.state = AmdState.OFF
                self.reason = (
                    f"AMD off: false positives {fp:.1%} (>= {upper:.1%} upper) would abandon "
                    f"more than {budget:.1%} of live answers"
                )
        elif self.state is AmdState.ON and fp * (1.0 - self.config.verify_fraction) > budget:
            self.state = AmdState.OFF
            self.reason = f"AMD off: measured false positives {fp:.1%} exceed the budget"
