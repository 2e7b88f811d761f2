"""The demo's time-zone mix (pure): at every hour of a winter and a summer day, a good share
of the demo members are inside their calling window and outside their quiet hours, without
any rule being bent (only the mix of regions changes)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from crm_bridge.demo_seed import REGIONS, open_region_weights


def _expected_share(weights: dict[str, float], now: dt.datetime) -> float:
    """Members in an open zone, computed independently: each zone of a region is picked
    with equal probability (as the generator does)."""
    total = sum(weights.values())
    open_w = 0.0
    for region, w in weights.items():
        zones = REGIONS[region][2]
        for tz, _offset in zones:
            local = now.astimezone(ZoneInfo(tz)).time()
            if dt.time(9) <= local < dt.time(20):
                open_w += w / len(zones)
    return open_w / total


@pytest.mark.parametrize("day", [dt.date(2026, 12, 4), dt.date(2026, 7, 1)], ids=str)
def test_every_hour_has_members_to_contact(day: dt.date) -> None:
    for hour in range(24):
        for minute in (0, 30):
            now = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)
            weights, share = open_region_weights(now, dt.time(9), dt.time(20))
            assert share == pytest.approx(_expected_share(weights, now))
            assert share >= 0.45, (now, share)
            # Only scaled up: every region keeps at least its own share of members.
            assert all(weights[r] >= REGIONS[r][0] for r in REGIONS)


def test_shares_unchanged_when_enough_members_are_open() -> None:
    now = dt.datetime(2026, 12, 4, 3, 0, tzinfo=dt.UTC)  # 11:00 in China
    weights, share = open_region_weights(now, dt.time(9), dt.time(20))
    assert weights == {r: REGIONS[r][0] for r in REGIONS} and share > 0.9
