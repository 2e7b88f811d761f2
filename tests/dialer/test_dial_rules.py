from __future__ import annotations

import datetime as dt

import pytest

from dialer.dial_rules import (
    CallingWindow,
    Candidate,
    DialOutcome,
    DialRetryPolicy,
    Verdict,
    after_attempt,
    check,
    next_window_start,
)

UTC = dt.UTC
W = CallingWindow()
P = DialRetryPolicy()


def cand(**kw: object) -> Candidate:
    base = dict(
        timezone="Asia/Shanghai",
        do_not_call=False,
        consent_call=True,
        phone_valid=True,
        attempts=0,
        attempts_today_all_campaigns=0,
        last_abandoned_at=None,
    )
    base.update(kw)
    return Candidate(**base)  # type: ignore[arg-type]


def test_window_is_clamped_to_legal_hours() -> None:
    w = CallingWindow.parse("07:00", "22:30")
    assert (w.start, w.end) == (dt.time(8), dt.time(21))


@pytest.mark.parametrize(
    ("utc", "tz", "inside"),
    [
        (dt.datetime(2026, 6, 1, 1, 0, tzinfo=UTC), "Asia/Shanghai", True),  # 09:00 local
        (dt.datetime(2026, 6, 1, 0, 59, tzinfo=UTC), "Asia/Shanghai", False),  # 08:59 local
        (dt.datetime(2026, 6, 1, 13, 0, tzinfo=UTC), "Asia/Shanghai", False),  # 21:00 local
        (dt.datetime(2026, 6, 1, 12, 59, tzinfo=UTC), "Asia/Shanghai", True),  # 20:59 local
        (dt.datetime(2026, 6, 1, 13, 0, tzinfo=UTC), "America/New_York", True),  # 09:00 EDT
        (dt.datetime(2026, 1, 15, 13, 0, tzinfo=UTC), "America/New_York", False),  # 08:00 EST
        (dt.datetime(2026, 1, 15, 14, 0, tzinfo=UTC), "America/New_York", True),  # 09:00 EST
    ],
)
def test_calling_window_in_member_zone(utc: dt.datetime, tz: str, inside: bool) -> None:
    assert (next_window_start(utc, tz, W) is None) is inside


def test_next_opening_across_dst_change() -> None:
    # Saturday 2026-03-07 22:00 EST; clocks spring forward on Sunday 03-08. Next opening is
    # Sunday 09:00 EDT = 13:00 UTC (not 14:00 UTC as it would be in winter).
    now = dt.datetime(2026, 3, 8, 3, 0, tzinfo=UTC)
    assert next_window_start(now, "America/New_York", W) == dt.datetime(
        2026, 3, 8, 13, 0, tzinfo=UTC
    )
    # London, the night the clocks go back (2026-10-25): opening 09:00 GMT = 09:00 UTC.
    now = dt.datetime(2026, 10, 24, 21, 30, tzinfo=UTC)
    assert next_window_start(now, "Europe/London", W) == dt.datetime(2026, 10, 25, 9, 0, tzinfo=UTC)


def test_unknown_zone_fails_closed() -> None:
    """No zone on record (or a bogus one) and no number giving one: never dialled."""
    at = dt.datetime(2026, 6, 1, 10, tzinfo=UTC)
    for tz in ("Mars/Olympus", None, ""):
        with pytest.raises(LookupError, match="time zone unknown"):
            next_window_start(at, tz, W)
        d = check(cand(timezone=tz), at, W, P)
        assert d.verdict is Verdict.NEVER and "no time zone" in d.reason
    # +44 7700 900xxx is Ofcom's drama range: phonenumbers gives no zone either.
    d = check(cand(timezone=None, phones=("+447700900123",)), at, W, P)
    assert d.verdict is Verdict.NEVER


def test_zone_from_the_number_when_the_record_has_none() -> None:
    # 06:00 in London, 14:00 in Shanghai: a UK member must not be called.
    at = dt.datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
    uk = cand(timezone=None, phones=("+447911123456",))
    d = check(uk, at, W, P)
    assert d.verdict is Verdict.LATER and "calling window" in d.reason
    assert d.retry_at == dt.datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # 09:00 BST
    assert check(cand(timezone=None, phones=("+8613800138000",)), at, W, P).verdict is Verdict.DIAL
    # The record wins over the number.
    assert check(cand(timezone="Asia/Shanghai", phones=("+447911123456",)), at, W, P).verdict is (
        Verdict.DIAL
    )


def test_number_with_several_zones_uses_only_hours_allowed_in_all() -> None:
    # A Russian mobile may be anywhere from Bucharest's offset (UTC+3) to Anadyr (UTC+12):
    # 09:00-21:00 in all of them is only 06:00-09:00 UTC.
    phones = ("+79161234567",)
    assert (
        check(
            cand(timezone=None, phones=phones), dt.datetime(2026, 6, 1, 8, 0, tzinfo=UTC), W, P
        ).verdict
        is Verdict.DIAL
    )
    d = check(cand(timezone=None, phones=phones), dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC), W, P)
    assert d.verdict is Verdict.LATER  # 22:00 in Anadyr, 13:00 in Moscow
    assert d.retry_at == dt.datetime(2026, 6, 2, 6, 0, tzinfo=UTC)  # 09:00 Bucharest-offset
    # Eastern Australia and Perth (2 h apart in June): only 09:00-19:00 Sydney time is in both.
    au = ("+61412345678",)
    sydney_0930 = dt.datetime(2026, 6, 1, 23, 30, tzinfo=UTC)  # 09:30 Sydney, 07:30 Perth
    d = check(cand(timezone=None, phones=au), sydney_0930, W, P)
    assert d.verdict is Verdict.LATER
    assert d.retry_at is not None and d.retry_at.astimezone(
        dt.timezone(dt.timedelta(hours=8))
    ).time() >= dt.time(9, 0)


NOON_SH = dt.datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kw", "verdict", "reason"),
    [
        ({}, Verdict.DIAL, "ok"),
        ({"do_not_call": True}, Verdict.NEVER, "do-not-call"),
        ({"consent_call": False}, Verdict.NEVER, "consented"),
        ({"phone_valid": False}, Verdict.NEVER, "valid phone"),
        ({"attempts": 3}, Verdict.NEVER, "attempts"),
        ({"attempts_today_all_campaigns": 2}, Verdict.LATER, "daily attempt cap"),
        ({"last_abandoned_at": NOON_SH - dt.timedelta(hours=71)}, Verdict.LATER, "72 h"),
        ({"last_abandoned_at": NOON_SH - dt.timedelta(hours=73)}, Verdict.DIAL, "ok"),
        ({"timezone": "America/New_York"}, Verdict.LATER, "calling window"),
    ],
)
def test_check(kw: dict[str, object], verdict: Verdict, reason: str) -> None:
    d = check(cand(**kw), NOON_SH, W, P)
    assert d.verdict is verdict
    assert reason in d.reason
    if verdict is Verdict.LATER:
        assert d.retry_at is not None and d.retry_at > NOON_SH


def test_dnc_beats_everything() -> None:
    d = check(cand(do_not_call=True, timezone="America/New_York"), NOON_SH, W, P)
    assert d.verdict is Verdict.NEVER


@pytest.mark.parametrize(
    ("outcome", "delay"),
    [
        (DialOutcome.BUSY, 600),
        (DialOutcome.NO_ANSWER, 7200),
        (DialOutcome.MACHINE, 86400),
        (DialOutcome.FAILED, 86400),
        (DialOutcome.ABANDONED, 72 * 3600),
    ],
)
def test_retry_delays(outcome: DialOutcome, delay: int) -> None:
    status, due = after_attempt(outcome, 1, NOON_SH, P)
    assert status == "pending" and due == NOON_SH + dt.timedelta(seconds=delay)


def test_answered_done_and_exhaustion() -> None:
    assert after_attempt(DialOutcome.ANSWERED, 1, NOON_SH, P) == ("done", None)
    assert after_attempt(DialOutcome.BUSY, 3, NOON_SH, P) == ("exhausted", None)
