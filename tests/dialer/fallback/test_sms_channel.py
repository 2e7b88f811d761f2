"""SMS against the Twilio-shaped sink: every error code, retries, callbacks, flags."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.models import AuditLog, Member, MemberPhone, OutboxMessage, OutboxStatus
from dialer.fallback import Purpose, enqueue, run_worker

from .conftest import Stack, add_member

pytestmark = pytest.mark.e2e


def sms_row(engine: Engine, mid: int) -> OutboxMessage:
    with session_scope(engine) as s:
        row = s.scalars(
            select(OutboxMessage).where(
                OutboxMessage.member_id == mid, OutboxMessage.channel == "sms"
            )
        ).one()
        return row


async def send_one(
    stack: Stack, phone: str, fault: str | list[str] | None
) -> tuple[int, OutboxMessage]:
    mid = add_member(stack.engine, phone=phone, email=None)
    if fault is not None:
        stack.sinks.sms.faults[phone] = fault
    with session_scope(stack.engine) as s:
        enqueue(s, Purpose.CALLBACK_CONFIRMATION, mid, ref="t", payload={"callback_at": "10:00"})
    await run_worker(stack.worker(), until_idle=True)
    await stack.sinks.sms.wait_callbacks()
    return mid, sms_row(stack.engine, mid)


@pytest.mark.parametrize("code", ["21211", "21614"])
async def test_invalid_number_fails_and_flags_the_phone(stack: Stack, code: str) -> None:
    mid, row = await send_one(stack, "+8613900000001", code)
    assert (
        row.status is OutboxStatus.FAILED and row.attempts == 1 and code in (row.last_error or "")
    )
    with session_scope(stack.engine) as s:
        assert (
            s.scalars(select(MemberPhone.invalid).where(MemberPhone.member_id == mid)).one() is True
        )
    assert stack.sinks.sms.messages == []


async def test_21610_revokes_sms_consent(stack: Stack) -> None:
    mid, row = await send_one(stack, "+8613900000002", "21610")
    assert row.status is OutboxStatus.FAILED and row.attempts == 1
    with session_scope(stack.engine) as s:
        assert s.get(Member, mid).consent_sms is False  # type: ignore[union-attr]
        actions = list(s.scalars(select(AuditLog.action).where(AuditLog.member_id == mid)))
    assert "consent.sms_revoked" in actions


@pytest.mark.parametrize("code", ["429", "500"])
async def test_transient_errors_are_retried_then_sent_once(stack: Stack, code: str) -> None:
    _, row = await send_one(stack, "+8613900000003", [code, code])
    assert row.status is OutboxStatus.DELIVERED and row.attempts == 3
    assert len(stack.sinks.sms.messages) == 1


async def test_transient_errors_give_up_after_max_attempts(stack: Stack) -> None:
    _, row = await send_one(stack, "+8613900000004", "500")
    assert row.status is OutboxStatus.FAILED and row.attempts == 3
    assert "gave up after 3 attempts" in (row.last_error or "")


@pytest.mark.parametrize("code", ["30005", "30006"])
async def test_undelivered_callback_marks_undelivered_and_flags(stack: Stack, code: str) -> None:
    mid, row = await send_one(stack, "+8613900000005", code)
    assert row.status is OutboxStatus.UNDELIVERED and row.last_error == f"undelivered {code}"
    with session_scope(stack.engine) as s:
        assert (
            s.scalars(select(MemberPhone.invalid).where(MemberPhone.member_id == mid)).one() is True
        )


async def test_30003_is_retried_later_and_then_delivered(stack: Stack) -> None:
    mid, row = await send_one(stack, "+8613900000006", ["30003"])
    assert row.status is OutboxStatus.PENDING and row.next_attempt_at is not None
    await run_worker(stack.worker(), until_idle=True)
    await stack.sinks.sms.wait_callbacks()
    row = sms_row(stack.engine, mid)
    assert row.status is OutboxStatus.DELIVERED and row.attempts == 2
    assert [m.status for m in stack.sinks.sms.messages] == ["undelivered", "delivered"]


async def test_bad_credentials_are_retried_not_dropped(stack: Stack) -> None:
    mid = add_member(stack.engine, phone="+8613900000007", email=None)
    with session_scope(stack.engine) as s:
        enqueue(s, Purpose.BIRTHDAY, mid, ref="2026")
    worker = stack.worker()
    stack.sinks.sms.auth_token = "rotated"  # the sink no longer accepts the worker's token
    await run_worker(worker, until_idle=True)
    row = sms_row(stack.engine, mid)
    assert row.status is OutboxStatus.FAILED and row.attempts == 3
    assert "401" in (row.last_error or "") and stack.sinks.sms.messages == []
