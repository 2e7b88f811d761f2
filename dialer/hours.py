"""When a member may be contacted, pure: one module for the dialer and the outbox.

Both ask the same two questions about a member at a moment ``now``:

1. **Which time zones is the member in?** (:func:`member_zones`) Their record's IANA zone
   when it names a real zone; else the zones ``phonenumbers`` gives for their number (a
   mobile number of a country spanning several zones gives all of them); else none.
2. **Is ``now`` inside the allowed local hours in every one of those zones, and if not,
   when is the next such instant?** (:func:`next_open`) With several zones only the hours
   allowed in *all* of them are used, so a member whose number could be in Vladivostok or
   Moscow is contacted only when it is daytime in both.

Fail closed: no zone known means no contact (:data:`UNKNOWN_ZONE` is the reason recorded);
an allowed window never shared by the zones means no contact either. Local times come from
:mod:`zoneinfo`, so daylight-saving changes are handled by construction (a window start
inside a spring-forward gap moves to the instant after the gap).

The dialer's calling window (09:00-21:00, never outside the legal 08:00-21:00) and the
outbox's quiet hours (21:00-09:00 = allowed 09:00-21:00) are both a :class:`Window`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm_bridge.phones import zones_for_number

__all__ = [
    "NEVER_OPEN",
    "UNKNOWN_ZONE",
    "Window",
    "allowed_at",
    "local_day_start",
    "member_zones",
    "next_local_day",
    "next_open",
    "zones_for_number",
]

UNKNOWN_ZONE = "member's time zone unknown (none on record, none from the number)"
NEVER_OPEN = "the member's possible time zones share no allowed hour"
_HORIZON_DAYS = 3


@dataclass(frozen=True)
class Window:
    """Allowed local wall-clock hours ``[start, end)``; ``start > end`` wraps over midnight;
    ``start == end`` allows every hour."""

    start: dt.time
    end: dt.time

    @property
    def always(self) -> bool:
        return self.start == self.end

    def allows(self, local: dt.time) -> bool:
        if self.always:
            return True
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    @classmethod
    def from_quiet_hours(cls, quiet_start: dt.time, quiet_end: dt.time) -> Window:
        """The complement of quiet hours ``quiet_start``-``quiet_end``."""
        return cls(quiet_end, quiet_start)


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def member_zones(record: str | None, phones: Sequence[str] = ()) -> tuple[ZoneInfo, ...]:
    """The member's zone from the record, else every zone of their first number that gives
    any; ``()`` = unknown (the caller must not contact the member)."""
    if record:
        z = _zone(record)
        if z is not None:
            return (z,)
    for e164 in phones:
        names = zones_for_number(e164)
        if names:
            return tuple(z for n in names if (z := _zone(n)) is not None)
    return ()


def allowed_at(at: dt.datetime, zones: Sequence[ZoneInfo], window: Window) -> bool:
    return bool(zones) and all(window.allows(at.astimezone(z).time()) for z in zones)


def next_open(now: dt.datetime, zones: Sequence[ZoneInfo], window: Window) -> dt.datetime | None:
    """``now`` when contact is allowed now in every zone, else the earliest later instant
    that is (UTC); None when no zone is known or the zones share no allowed hour within
    three days."""
    if not zones:
        return None
    if allowed_at(now, zones, window):
        return now
    # The allowed set is an intersection of unions of intervals: its first point after now
    # is the opening of one zone's window. Try every opening in the horizon, earliest first.
    openings = sorted(
        {
            dt.datetime.combine(day, window.start, tzinfo=z).astimezone(dt.UTC)
            for z in zones
            for day in (
                now.astimezone(z).date() + dt.timedelta(days=d) for d in range(_HORIZON_DAYS + 1)
            )
        }
    )
    for at in openings:
        if at > now and allowed_at(at, zones, window):
            return at
    return None


def local_day_start(now: dt.datetime, zones: Sequence[ZoneInfo]) -> dt.datetime:
    """The earliest local midnight of ``now`` among the zones (UTC): a daily cap counted
    from it counts at least everything sent during the member's local day."""
    return min(
        dt.datetime.combine(now.astimezone(z).date(), dt.time(0), tzinfo=z).astimezone(dt.UTC)
        for z in zones
    )


def next_local_day(now: dt.datetime, zones: Sequence[ZoneInfo]) -> dt.datetime:
    """The latest next local midnight among the zones (UTC): a new day everywhere."""
    return max(
        dt.datetime.combine(
            now.astimezone(z).date() + dt.timedelta(days=1), dt.time(0), tzinfo=z
        ).astimezone(dt.UTC)
        for z in zones
    )
