"""Send-time rules in the worker: consent re-read, quiet hours per zone, daily cap, flags, order."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select, update

from crm_bridge.db import session_scope
from crm_bridge.models import Channel, Member, MemberPhone, OutboxMessage, OutboxStatus, utcnow
from dialer.fallback import OrderPolicy, Purpose, RulesConfig, enqueue, run_worker

from .conftest import Stack, add_member

pytestmark = pytest.mark.e2e
ACCEPTED = (OutboxStatus.SENT, OutboxStatus.DELIVERED)
"""An SMS the provider took; its delivery receipt may arrive before the assertion."""


def rows(engine: Engine, mid: int) -> dict[tuple[str, Channel], OutboxMessage]:
    with session_scope(engine) as s:
        return {
            (r.purpose, r.channel): r
            for r in s.scalars(select(OutboxMessage).where(OutboxMessage.member_id == mid))
        }


def zone_at_local_hour(hour: int) -> str:
    """An Etc/GMT zone whose local hour is ``hour`` right now."""
    now = dt.datetime.now(dt.UTC)
    offset = (hour - now.hour) % 24
    if offset > 14:
        offset -= 24
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


async def test_consent_is_read_at_send_time(stack: Stack, engine: Engine) -> None:
    mid = add_member(engine)
    with session_scope(engine) as s:
        enqueue(s, Purpose.EXHAUSTED, mid, campaign_id=None, ref="e1")
    with session_scope(engine) as s:  # the member opts out after the row was queued
        s.execute(update(Member).where(Member.id == mid).values(consent_sms=False))
    await run_worker(stack.worker(), until_idle=True)
    got = rows(engine, mid)
    assert got[("exhausted", Channel.SMS)].status is OutboxStatus.SKIPPED
    assert got[("exhausted", Channel.SMS)].last_error == "no SMS consent"
    assert got[("exhausted", Channel.EMAIL)].status is OutboxStatus.SENT  # SMS then email goes on
    assert stack.sinks.sms.messages == [] and len(stack.sinks.mail.mails) == 1


async def test_no_email_consent_and_flagged_phone_are_skipped(stack: Stack, engine: Engine) -> None:
    mid = add_member(engine, consent_email=False)
    with session_scope(engine) as s:
        enqueue(s, Purpose.BIRTHDAY, mid, ref="2026", order=OrderPolicy.BOTH)
    with session_scope(engine) as s:  # flagged after queueing (another message failed)
        s.execute(update(MemberPhone).where(MemberPhone.member_id == mid).values(invalid=True))
    await run_worker(stack.worker(), until_idle=True)
    got = rows(engine, mid)
    assert got[("birthday", Channel.SMS)].status is OutboxStatus.SKIPPED
    assert got[("birthday", Channel.SMS)].last_error == "phone flagged invalid"
    assert got[("birthday", Channel.EMAIL)].last_error == "no email consent"
    assert got[("birthday", Channel.EMAIL)].status is OutboxStatus.SKIPPED


async def test_quiet_hours_follow_the_members_zone(stack: Stack, engine: Engine) -> None:
    night = add_member(engine, tz=zone_at_local_hour(3))
    day = add_member(engine, tz=zone_at_local_hour(13))
    with session_scope(engine) as s:
        for mid in (night, day):
            enqueue(s, Purpose.DORMANT_GREETING, mid, channels="sms", ref="q")
    before = utcnow()
    await run_worker(stack.worker(rules=RulesConfig(daily_cap=10)), until_idle=True)
    deferred = rows(engine, night)[("dormant_greeting", Channel.SMS)]
    assert rows(engine, day)[("dormant_greeting", Channel.SMS)].status in ACCEPTED
    assert deferred.status is OutboxStatus.PENDING and deferred.attempts == 0
    assert "quiet hours" in (deferred.last_error or "")
    assert deferred.next_attempt_at is not None
    wait = deferred.next_attempt_at - before
    assert dt.timedelta(hours=5) < wait <= dt.timedelta(hours=6, minutes=1)  # 09:00 local
    assert len(stack.sinks.sms.messages) == 1


async def test_daily_cap_defers_to_the_next_local_day(stack: Stack, engine: Engine) -> None:
    mid = add_member(engine, tz="Asia/Shanghai")
    with session_scope(engine) as s:
        for p in (Purpose.BIRTHDAY, Purpose.DORMANT_GREETING, Purpose.SURVEY_INVITATION):
            enqueue(s, p, mid, channels="sms", ref="cap")
    rules = RulesConfig(quiet_start=dt.time(0), quiet_end=dt.time(0), daily_cap=2)
    await run_worker(stack.worker(rules=rules), until_idle=True)
    got = list(rows(engine, mid).values())
    sent = [r for r in got if r.status in ACCEPTED]
    deferred = [r for r in got if r.status is OutboxStatus.PENDING]
    assert len(sent) == 2 and len(deferred) == 1 and len(stack.sinks.sms.messages) == 2
    assert deferred[0].last_error == "daily cap 2 reached"
    assert deferred[0].next_attempt_at is not None and deferred[0].next_attempt_at > utcnow()
    local = deferred[0].next_attempt_at.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert local.time() == dt.time(0, 0) and local.date() > utcnow().astimezone(local.tzinfo).date()


async def test_sms_else_email_skips_the_email_when_the_sms_was_delivered(
    stack: Stack, engine: Engine
) -> None:
    ok = add_member(engine)
    bad = add_member(engine, phone="+8613911112222")
    stack.sinks.sms.faults["+8613911112222"] = "21211"
    with session_scope(engine) as s:
        for mid in (ok, bad):
            enqueue(
                s, Purpose.CALLBACK_CONFIRMATION, mid, ref="cb1", payload={"callback_at": "15:00"}
            )
    rules = RulesConfig(quiet_start=dt.time(0), quiet_end=dt.time(0), fallback_wait_s=0.3)
    await run_worker(stack.worker(rules=rules), until_idle=True)
    await stack.sinks.sms.wait_callbacks()
    await run_worker(stack.worker(rules=rules), until_idle=True)
    good_rows, bad_rows = rows(engine, ok), rows(engine, bad)
    assert good_rows[("callback_confirmation", Channel.SMS)].status is OutboxStatus.DELIVERED
    assert good_rows[("callback_confirmation", Channel.EMAIL)].status is OutboxStatus.SKIPPED
    assert good_rows[("callback_confirmation", Channel.EMAIL)].last_error == "SMS delivered"
    assert bad_rows[("callback_confirmation", Channel.SMS)].status is OutboxStatus.FAILED
    assert bad_rows[("callback_confirmation", Channel.EMAIL)].status is OutboxStatus.SENT
    assert len(stack.sinks.mail.mails) == 1
