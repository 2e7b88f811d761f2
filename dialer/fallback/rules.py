"""Send-time rules, pure: quiet hours and the daily cap window in the member's time zone.

Quiet hours ``start``–``end`` are local wall-clock times (default 21:00–09:00, wrapping over
midnight); ``start == end`` disables them. A message due inside quiet hours is deferred to
the next local ``end`` — computed on the member's calendar, so a DST change shortens or
lengthens the night rather than shifting the morning. The daily cap counts messages sent in
the member's local calendar day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.fallback.purposes import DEFAULT_POLICIES, OrderPolicy, Purpose


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
    default_timezone: str = "Asia/Shanghai"
    policies: Mapping[Purpose, OrderPolicy] = field(default_factory=lambda: dict(DEFAULT_POLICIES))


def zone(name: str | None, default: str = "Asia/Shanghai") -> ZoneInfo:
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


def _local_at(day: dt.date, t: dt.time, tz: ZoneInfo) -> dt.datetime:
    """``day`` at wall-clock ``t`` in ``tz`` as UTC (a time inside a DST gap moves forward)."""
    # fold=0 maps a wall time inside a spring-forward gap to the instant after the gap.
    return dt.datetime.combine(day, t, tzinfo=tz).astimezone(dt.UTC)


def in_quiet_hours(now: dt.datetime, tz: ZoneInfo, cfg: RulesConfig) -> bool:
    if cfg.quiet_start == cfg.quiet_end:
        return False
    t = now.astimezone(tz).time()
    if cfg.quiet_start < cfg.quiet_end:
        return cfg.quiet_start <= t < cfg.quiet_end
    return t >= cfg.quiet_start or t < cfg.quiet_end


def next_allowed(now: dt.datetime, tz: ZoneInfo, cfg: RulesConfig) -> dt.datetime:
    """``now`` if sending is allowed, else the end of the current quiet period (UTC)."""
    if not in_quiet_hours(now, tz, cfg):
        return now
    local = now.astimezone(tz)
    day = local.date()
    if local.time() >= cfg.quiet_end and cfg.quiet_start > cfg.quiet_end:
        day = day + dt.timedelta(days=1)
    return _local_at(day, cfg.quiet_end, tz)


def local_day_start(now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Midnight of the member's current local day, as UTC."""
    return _local_at(now.astimezone(tz).date(), dt.time(0, 0), tz)


def next_day_allowed(now: dt.datetime, tz: ZoneInfo, cfg: RulesConfig) -> dt.datetime:
    """The first allowed instant of the member's next local day (cap reached today)."""
    tomorrow = now.astimezone(tz).date() + dt.timedelta(days=1)
    start = _local_at(tomorrow, dt.time(0, 0), tz)
    return next_allowed(start, tz, cfg)
