"""What a pacing decision sees (:class:`PacingSnapshot`) and what it returns (:class:`PacingDecision`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from crm_bridge.models import DialMode
from dialer.pacing.estimators import PacingModel

__all__ = ["AbandonCounts", "AmdMode", "DialMode", "PacingDecision", "PacingSnapshot"]


class AmdMode(StrEnum):
    ON = "on"
    OFF = "off"
    AUTO = "auto"
    """AMD used only while its measured false-positive rate fits the abandonment budget."""


@dataclass(frozen=True)
class AbandonCounts:
    """Abandoned live calls and live answers, as the dialer counts them.

    ``window_*``: the legal window (per campaign, e.g. 30 days US / 24 h UK).
    ``hour_*``: the last 60 minutes (keeps short spikes down, e.g. on small teams).
    Counts may be fractional estimates (an abandoned call's live/machine split is estimated).
    """

    window_abandoned: float = 0.0
    window_live: float = 0.0
    hour_abandoned: float = 0.0
    hour_live: float = 0.0
    cap: float = 0.03

    @property
    def window_rate(self) -> float:
        return self.window_abandoned / self.window_live if self.window_live > 0 else 0.0

    @property
    def hour_rate(self) -> float:
        return self.hour_abandoned / self.hour_live if self.hour_live > 0 else 0.0


@dataclass(frozen=True)
class PacingSnapshot:
    """The campaign's state at one decision epoch.

    Elapsed times are seconds since the state began: ``wrap_elapsed_s`` since the agent's call
    ended, ``talk_elapsed_s`` since the agent was connected, ``inflight_elapsed_s`` since a call
    was placed (still ringing, or answered and under AMD analysis). ``queued`` counts answered
    calls waiting for an agent right now (they will take the next free agents).
    """

    agents_free: int
    now_s: float = 0.0
    """Campaign clock (monotonic seconds); the predictive pacer's calibration ages with it."""
    wrap_elapsed_s: Sequence[float] = ()
    talk_elapsed_s: Sequence[float] = ()
    inflight_elapsed_s: Sequence[float] = ()
    queued: int = 0
    model: PacingModel | None = None
    abandons: AbandonCounts = field(default_factory=AbandonCounts)
    amd_active: bool = False
    preview_requests: int = 0
    """Preview mode: agents who pressed dial since the last decision."""
    ivr_active: int = 0
    """IVR mode: calls connected to the IVR now."""
    concurrency_cap: int = 0
    """IVR mode: the most simultaneous calls (in flight + connected)."""

    @property
    def agents_logged_in(self) -> int:
        return self.agents_free + len(self.wrap_elapsed_s) + len(self.talk_elapsed_s)


@dataclass(frozen=True)
class PacingDecision:
    """How many calls to place now, and why (for the operator and the campaign log)."""

    calls: int
    reason: str
    expected_abandons: float = 0.0
    expected_live: float = 0.0
    expected_reach: float = 0.0
    """Expected calls (in flight + these) that will need an agent within the horizon."""
    expected_supply: float = 0.0
    """Expected agents free (now + becoming free) within the horizon."""
