"""Greetings end to end over loopback: greetings run -> outbox -> worker -> Twilio-shaped sink
and aiosmtpd. Consent is the worker's (SMS refused: the email goes instead), and a second run
of the day sends nothing more."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.models import Channel, OutboxMessage, OutboxStatus
from dialer.fallback import run_worker
from dialer.greetings import run_greetings

from .conftest import Stack, add_member

pytestmark = pytest.mark.e2e

SPRING_2026 = dt.date(2026, 2, 17)


async def test_holiday_greetings_delivered_once_with_consent(stack: Stack, engine: Engine) -> None:
    zh = add_member(engine, name="李伟", locale="zh-CN")
    en = add_member(engine, name="Ann Lee", locale="en")
    mail_only = add_member(engine, name="王芳", consent_sms=False)
    add_member(engine, name="拒收", consent_sms=False, consent_email=False)
    for _ in range(2):
        run_greetings(engine, SPRING_2026, catch_up_days=0)
        await run_worker(stack.worker(), until_idle=True)
    await stack.sinks.sms.wait_callbacks()
    bodies = sorted(m.body for m in stack.sinks.sms.messages)
    assert len(bodies) == 2
    assert bodies[0].startswith("Happy Chinese New Year (Spring Festival), Ann Lee!")
    assert bodies[1].startswith("【会员中心】李伟，春节快乐！祝您和家人节日愉快。")
    assert len(stack.sinks.mail.mails) == 1  # the SMS was refused for consent: email instead
    mail = stack.sinks.mail.mails[0].parsed()
    assert mail["Subject"] == "春节快乐，王芳"
    with session_scope(engine) as s:
        rows = {(r.member_id, r.channel): r for r in s.scalars(select(OutboxMessage))}
    assert rows[(mail_only, Channel.SMS)].status is OutboxStatus.SKIPPED
    assert rows[(mail_only, Channel.EMAIL)].status is OutboxStatus.SENT
    # SMS delivered: the email sibling is never sent (one greeting, not two)
    assert rows[(zh, Channel.SMS)].status is OutboxStatus.DELIVERED
    assert rows[(zh, Channel.EMAIL)].status is not OutboxStatus.SENT
    assert rows[(en, Channel.EMAIL)].status is not OutboxStatus.SENT
