"""Abandonment counting as the law reads it, cautiously (pure; no I/O).

The rate the dialer must hold is *abandoned live calls / live answers*, over the legal window
(per campaign, e.g. 30 days US) — and Memberline also holds 2 x the cap over every 60 minutes.
A dropped call (no agent within 2 s) cannot be checked: nobody heard whether a person or a
machine answered. Counting it as the measured live share of an abandon is only as good as that
share, and after the list changes (evening: more people at home) a stale share under-counts
abandons several times over. So a drop counts as a **full** abandon (and a full live answer)
whenever the live share is uncertain (:func:`drop_weight`); with no way to measure the share
(no agent dispositions of machines, no AMD) it is always uncertain.

:class:`AbandonCounter` keeps the counted events and answers :class:`AbandonCounts` for the
legal window and the last hour. The campaign runner and the simulator feed it the same way.
"""

from __future__ import annotations

from collections import deque

from dialer.pacing.estimators import ShiftingRate
from dialer.pacing.snapshot import AbandonCounts


def drop_weight(live_share: ShiftingRate | None) -> float:
    """How much of an abandon a dropped call counts for.

    1.0 (a full abandon) when the share of live people among answers is unknown or uncertain
    (a young estimate, or a change point seen recently); else the upper bound of the share
    (never the plain estimate: over-counting is safe, under-counting breaks the law)."""
    if live_share is None or live_share.uncertain:
        return 1.0
    return live_share.upper()


class AbandonCounter:
    """Counted live answers and abandons with their times (seconds on the campaign clock).

    ``window_s`` is the legal window, ``hour_s`` the short one the pacer also holds (2 x cap).
    Times must not go backwards (events are counted as they are settled).
    """

    def __init__(self, cap: float, *, window_s: float = 30 * 86400.0, hour_s: float = 3600.0):
        if not 0.0 < cap <= 1.0:
            raise ValueError(f"abandonment cap must be in (0, 1], got {cap}")
        self.cap = cap
        self.window_s = window_s
        self.hour_s = hour_s
        self._window: deque[tuple[float, float, float]] = deque()
        self._hour: deque[tuple[float, float, float]] = deque()
        self.window_abandoned = 0.0
        self.window_live = 0.0
        self.hour_abandoned = 0.0
        self.hour_live = 0.0
        self.total_abandoned = 0.0
        self.total_live = 0.0

    def _add(self, at: float, abandoned: float, live: float) -> None:
        ev = (at, abandoned, live)
        self._window.append(ev)
        self._hour.append(ev)
        self.window_abandoned += abandoned
        self.window_live += live
        self.hour_abandoned += abandoned
        self.hour_live += live
        self.total_abandoned += abandoned
        self.total_live += live

    def live_answer(self, at: float) -> None:
        """An agent took the call within 2 s (a person, or not known to be a machine)."""
        self._add(at, 0.0, 1.0)

    def abandoned(self, at: float, weight: float = 1.0) -> None:
        """A call answered and not bridged to an agent in time (dropped, or hung up by AMD);
        ``weight`` = how likely it was a live person (:func:`drop_weight`)."""
        w = min(1.0, max(0.0, weight))
        self._add(at, w, w)

    def _trim(self, now: float) -> None:
        for q, span, is_hour in (
            (self._window, self.window_s, False),
            (self._hour, self.hour_s, True),
        ):
            while q and q[0][0] <= now - span:
                _, a, b = q.popleft()
                if is_hour:
                    self.hour_abandoned -= a
                    self.hour_live -= b
                else:
                    self.window_abandoned -= a
                    self.window_live -= b
        # running sums drift by rounding: exact zero when a window is empty
        if not self._hour:
            self.hour_abandoned = self.hour_live = 0.0
        if not self._window:
            self.window_abandoned = self.window_live = 0.0

    def counts(self, now: float) -> AbandonCounts:
        self._trim(now)
        w_live, h_live = max(0.0, self.window_live), max(0.0, self.hour_live)
        return AbandonCounts(
            min(w_live, max(0.0, self.window_abandoned)),
            w_live,
            min(h_live, max(0.0, self.hour_abandoned)),
            h_live,
            self.cap,
        )
