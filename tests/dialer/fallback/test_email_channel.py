"""Email against a real aiosmtpd server: 450, 550, disconnects, partial refusal, auth."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.models import Member, OutboxMessage, OutboxStatus
from dialer.fallback import EmailSettings, Purpose, SendOutcome, SmtpEmail, enqueue, run_worker
from dialer.fallback.email import build_message
from dialer.fallback.sinks import SmtpSink
from dialer.fallback.templates import render_email

from .conftest import Stack, add_member

pytestmark = pytest.mark.e2e


def email_row(engine: Engine, mid: int) -> OutboxMessage:
    with session_scope(engine) as s:
        return s.scalars(
            select(OutboxMessage).where(
                OutboxMessage.member_id == mid, OutboxMessage.channel == "email"
            )
        ).one()


async def send_one(
    stack: Stack,
    address: str,
    *,
    rcpt: object = None,
    data: object = None,
    probe: bool = True,
    bcc: str | None = None,
) -> tuple[int, OutboxMessage]:
    mid = add_member(stack.engine, phone=None, email=address)
    if rcpt is not None:
        stack.sinks.mail.rcpt_faults[address] = rcpt  # type: ignore[assignment]
    if data is not None:
        stack.sinks.mail.data_faults[address] = data  # type: ignore[assignment]
    with session_scope(stack.engine) as s:
        enqueue(
            s,
            Purpose.POINTS_REDEMPTION,
            mid,
            ref="p1",
            payload={"points_used": 500, "item": "保温杯"},
        )
    await run_worker(stack.worker(probe=probe, bcc=bcc), until_idle=True)
    return mid, email_row(stack.engine, mid)


def flagged(engine: Engine, mid: int) -> bool:
    with session_scope(engine) as s:
        member = s.get(Member, mid)
        assert member is not None
        return member.email_invalid


async def test_450_is_retried_then_sent_once(stack: Stack) -> None:
    mid, row = await send_one(stack, "busy@example.com", rcpt=["450 4.2.1 mailbox busy"])
    assert row.status is OutboxStatus.SENT and row.attempts == 2
    assert stack.sinks.mail.count(row.provider_id or "") == 1 and not flagged(stack.engine, mid)


async def test_550_fails_for_good_and_flags_the_address(stack: Stack) -> None:
    mid, row = await send_one(stack, "nobody@example.com", rcpt="550 5.1.1 no such user")
    assert row.status is OutboxStatus.FAILED and row.attempts == 1
    assert "smtp 550" in (row.last_error or "") and flagged(stack.engine, mid)
    assert stack.sinks.mail.mails == []


async def test_554_at_data_fails_without_flagging(stack: Stack) -> None:
    mid, row = await send_one(stack, "spamfilter@example.com", data="554 5.7.1 rejected as spam")
    assert row.status is OutboxStatus.FAILED and not flagged(stack.engine, mid)


async def test_disconnect_before_data_is_a_safe_retry(stack: Stack) -> None:
    _, row = await send_one(stack, "flaky@example.com", rcpt=["disconnect"])
    assert row.status is OutboxStatus.SENT and row.attempts == 2
    assert len(stack.sinks.mail.mails) == 1


async def test_disconnect_during_data_is_recovered_by_asking_the_sink(stack: Stack) -> None:
    # The server drops the line after receiving DATA's payload without storing it: the worker
    # cannot know, asks the sink (probe), learns it has no copy and sends again, once.
    _, row = await send_one(stack, "cut@example.com", data=["disconnect"])
    assert row.status is OutboxStatus.SENT and row.attempts == 2
    assert len(stack.sinks.mail.mails) == 1


async def test_disconnect_during_data_without_a_probe_goes_to_review(stack: Stack) -> None:
    _, row = await send_one(stack, "cut2@example.com", data=["disconnect"], probe=False)
    assert row.status is OutboxStatus.REVIEW and row.attempts == 1
    assert "cannot be asked" in (row.last_error or "")
    assert stack.sinks.mail.mails == []


async def test_partial_refusal_of_the_archive_copy_still_sends(stack: Stack) -> None:
    stack.sinks.mail.rcpt_faults["archive@example.com"] = "550 5.1.1 archive gone"
    _, row = await send_one(stack, "member@example.com", bcc="archive@example.com")
    assert row.status is OutboxStatus.SENT
    assert stack.sinks.mail.mails[0].rcpt_tos == ("member@example.com",)


async def test_partial_refusal_of_the_member_fails_even_if_archive_accepted(stack: Stack) -> None:
    mid, row = await send_one(
        stack, "gone@example.com", rcpt="550 5.1.1 gone", bcc="archive@example.com"
    )
    assert row.status is OutboxStatus.FAILED and flagged(stack.engine, mid)
    assert stack.sinks.mail.mails == []


async def test_auth_and_direct_send_results() -> None:
    sink = await SmtpSink(username="ml", password="pw").start()
    try:
        rendered = render_email(Purpose.BIRTHDAY, "en", {"name": "Ann"}, "https://u/x")
        good = EmailSettings(port=sink.port, username="ml", password="pw", timeout_s=2)
        msg = build_message(
            good, "ann@example.com", rendered, key="k1", unsubscribe_url="https://u/x"
        )
        client = SmtpEmail(good)
        assert (await client.send(msg)).outcome is SendOutcome.SENT
        await client.close()
        bad = SmtpEmail(EmailSettings(port=sink.port, username="ml", password="nope", timeout_s=1))
        assert (await bad.send(msg)).outcome is SendOutcome.TRANSIENT  # kept for a retry, not lost
        refused = await SmtpEmail(EmailSettings(port=1, timeout_s=1)).send(msg)
        assert refused.outcome is SendOutcome.TRANSIENT and refused.code == "connect"
        assert sink.count(msg.message_id) == 1
    finally:
        await sink.stop()
