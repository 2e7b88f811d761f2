"""Enqueue: idempotency keys, ON CONFLICT DO NOTHING inside the caller's transaction."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from crm_bridge.db import session_scope
from crm_bridge.models import Campaign, CampaignKind, Channel, DialMode, OutboxMessage, OutboxStatus
from dialer.fallback import OrderPolicy, Purpose, enqueue, idempotency_key
from dialer.fallback.outbox import ORDER_KEY

from .conftest import add_member


def test_key_shape() -> None:
    assert idempotency_key("exhausted", 5, Channel.SMS, campaign_id=7) == "exhausted:c7:5:sms"
    assert idempotency_key("birthday", 5, "email", ref="2026") == "birthday:2026:5:email"
    assert idempotency_key("birthday", 5, "email") == "birthday:-:5:email"


def test_second_enqueue_is_a_noop_and_the_transaction_survives(engine: Engine) -> None:
    mid = add_member(engine)
    with session_scope(engine) as s:
        s.add(
            Campaign(name="winback", kind=CampaignKind.DORMANT_WINBACK, mode=DialMode.PROGRESSIVE)
        )
        s.flush()
        cid = s.scalar(select(Campaign.id))
        first = enqueue(s, Purpose.EXHAUSTED, mid, campaign_id=cid)
        again = enqueue(s, Purpose.EXHAUSTED, mid, campaign_id=cid)
        s.add(Campaign(name="still-usable", kind=CampaignKind.SURVEY, mode=DialMode.IVR))
    assert [e.created for e in first] == [True, True]
    assert [e.created for e in again] == [False, False]
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 2
        assert s.scalar(select(func.count()).select_from(Campaign)) == 2  # caller's work committed
    with session_scope(engine) as s:  # and in a later transaction too
        assert [e.created for e in enqueue(s, Purpose.EXHAUSTED, mid, campaign_id=cid)] == [
            False,
            False,
        ]


def test_sms_then_email_holds_the_email(engine: Engine) -> None:
    mid = add_member(engine)
    with session_scope(engine) as s:
        enqueue(s, Purpose.DORMANT_GREETING, mid, ref="r1")
        enqueue(s, Purpose.BIRTHDAY, mid, ref="2026", order=OrderPolicy.BOTH)
    with session_scope(engine) as s:
        rows = {(r.purpose, r.channel): r for r in s.scalars(select(OutboxMessage))}
    held = rows[("dormant_greeting", Channel.EMAIL)]
    assert held.next_attempt_at is None and held.payload[ORDER_KEY] == "sms_then_email"
    assert rows[("dormant_greeting", Channel.SMS)].next_attempt_at is not None
    assert rows[("birthday", Channel.EMAIL)].next_attempt_at is not None


def test_member_without_phone_gets_a_skipped_sms_row_and_an_unheld_email(engine: Engine) -> None:
    mid = add_member(engine, phone=None)
    with session_scope(engine) as s:
        enqueue(s, Purpose.SURVEY_INVITATION, mid, ref="s1", payload={"survey_url": "https://x/s"})
    with session_scope(engine) as s:
        rows = {r.channel: r for r in s.scalars(select(OutboxMessage))}
    assert rows[Channel.SMS].status is OutboxStatus.SKIPPED
    assert rows[Channel.SMS].last_error == "no usable phone"
    assert rows[Channel.EMAIL].status is OutboxStatus.PENDING
    assert rows[Channel.EMAIL].next_attempt_at is not None
    assert rows[Channel.EMAIL].payload == {"survey_url": "https://x/s"}
