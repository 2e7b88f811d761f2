"""The outbox's send-time rule settings: quiet hours, the daily cap, channel order.

The hours themselves are decided by :mod:`dialer.hours`, the module the dialer's calling
window uses too: quiet hours ``start``-``end`` (local wall-clock, default 21:00-09:00,
wrapping over midnight; ``start == end`` disables them) are the complement of an allowed
:class:`dialer.hours.Window`, checked in every zone the member may be in. A member whose
zone cannot be known (no valid zone on record, none from the number) is not sent to: the
row is held with that reason. The daily cap counts messages sent in the member's local day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from dialer.fallback.purposes import DEFAULT_POLICIES, OrderPolicy, Purpose
from dialer.hours import Window


def parse_hhmm(value: str) -> dt.time:
    hh, mm = value.split(":")
    return dt.time(int(hh), int(mm))


@dataclass(frozen=True)
class RulesConfig:
    quiet_start: dt.time = dt.time(21, 0)
    quiet_end: dt.time = dt.time(9, 0)
    daily_cap: int = 2
    """Messages per member per local day, across purposes and channels."""
    fallback_wait_s: float = 3600.0
    """``sms_else_email``: how long to wait for an SMS delivery receipt before emailing."""
    unknown_zone_retry_s: float = 6 * 3600.0
    """A row held because the member's zone is unknown is looked at again this much later
    (a migration or an operator may have filled the zone meanwhile)."""
    policies: Mapping[Purpose, OrderPolicy] = field(default_factory=lambda: dict(DEFAULT_POLICIES))

    @property
    def window(self) -> Window:
        """The allowed hours (the complement of quiet hours)."""
        return Window.from_quiet_hours(self.quiet_start, self.quiet_end)
