"""Quiet hours and the daily cap window in the member's time zone (pure, :mod:`dialer.hours`)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dialer.fallback.send_rules import RulesConfig
from dialer.hours import (
    allowed_at,
    local_day_start,
    member_zones,
    next_local_day,
    next_open,
)

CFG = RulesConfig()
W = CFG.window
SH, NY = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")


def utc(y: int, mo: int, d: int, h: int, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=dt.UTC)


def quiet(now: dt.datetime, tz: ZoneInfo, cfg: RulesConfig = CFG) -> bool:
    return not allowed_at(now, (tz,), cfg.window)


def test_same_instant_quiet_in_one_zone_not_in_the_other() -> None:
    now = utc(2026, 6, 1, 14, 0)  # 22:00 Shanghai, 10:00 New York (EDT)
    assert quiet(now, SH) and not quiet(now, NY)
    assert next_open(now, (NY,), W) == now
    assert next_open(now, (SH,), W) == utc(2026, 6, 2, 1, 0)  # 09:00 Shanghai next day


def test_after_midnight_defers_to_this_morning() -> None:
    now = utc(2026, 6, 1, 19, 0)  # 03:00 Shanghai on 2 June
    assert next_open(now, (SH,), W) == utc(2026, 6, 2, 1, 0)


def test_dst_spring_forward_night_is_an_hour_shorter() -> None:
    # New York springs forward on 8 March 2026 at 02:00: 09:00 is EDT (13:00 UTC) that day.
    evening = utc(2026, 3, 8, 3, 0)  # 22:00 EST on 7 March
    assert next_open(evening, (NY,), W) == utc(2026, 3, 8, 13, 0)
    before = utc(2026, 3, 7, 3, 0)  # 22:00 EST on 6 March -> 09:00 EST = 14:00 UTC
    assert next_open(before, (NY,), W) == utc(2026, 3, 7, 14, 0)


def test_dst_fall_back() -> None:
    evening = utc(2026, 11, 1, 2, 0)  # 22:00 EDT on 31 Oct -> 09:00 EST 1 Nov = 14:00 UTC
    assert next_open(evening, (NY,), W) == utc(2026, 11, 1, 14, 0)


def test_boundaries_and_disabled() -> None:
    assert not quiet(utc(2026, 6, 1, 1, 0), SH)  # exactly 09:00 local
    assert quiet(utc(2026, 6, 1, 13, 0), SH)  # exactly 21:00 local
    off = RulesConfig(quiet_start=dt.time(0), quiet_end=dt.time(0))
    assert not quiet(utc(2026, 6, 1, 19, 0), SH, off)
    daytime = RulesConfig(quiet_start=dt.time(12), quiet_end=dt.time(14))
    assert quiet(utc(2026, 6, 1, 5, 0), SH, daytime)  # 13:00 local
    assert next_open(utc(2026, 6, 1, 5, 0), (SH,), daytime.window) == utc(2026, 6, 1, 6, 0)


def test_cap_day_is_the_members_local_day() -> None:
    now = utc(2026, 6, 1, 17, 0)  # 01:00 on 2 June in Shanghai, 13:00 on 1 June in New York
    assert local_day_start(now, (SH,)) == utc(2026, 6, 1, 16, 0)
    assert local_day_start(now, (NY,)) == utc(2026, 6, 1, 4, 0)
    assert next_open(next_local_day(now, (SH,)), (SH,), W) == utc(2026, 6, 3, 1, 0)
    assert next_open(next_local_day(now, (NY,)), (NY,), W) == utc(2026, 6, 2, 13, 0)
    # Several zones: the day counted from the earliest midnight, the next from the latest.
    assert local_day_start(now, (SH, NY)) == utc(2026, 6, 1, 4, 0)
    assert next_local_day(now, (SH, NY)) == utc(2026, 6, 2, 16, 0)


def test_unknown_zone_is_unknown_not_a_default() -> None:
    """No fallback zone: the outbox holds such rows (see test_worker_rules)."""
    assert member_zones("Not/AZone") == ()
    assert member_zones(None, ["+447700900123"]) == ()
    assert next_open(utc(2026, 6, 1, 5), (), W) is None
    assert member_zones("Not/AZone", ["+8613800138000"]) == (SH,)
    assert member_zones("America/New_York", ["+8613800138000"]) == (NY,)
