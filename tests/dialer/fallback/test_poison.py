"""Poison rows fail alone: a row that cannot be built or sent permanently is failed with its
reason, the batch goes on; transient failures back off without blocking rows behind them.
Internationalised addresses go out with SMTPUTF8 when the server offers it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_bridge.db import session_scope
from crm_bridge.models import Channel, OutboxMessage, OutboxStatus
from dialer.fallback import Purpose, enqueue, run_worker

from .conftest import Stack, add_member

pytestmark = pytest.mark.e2e


def queue_email(stack: Stack, address: str, n: int = 1) -> list[int]:
    mids = []
    for _ in range(n):
        mid = add_member(stack.engine, phone=None, email=address)
        with session_scope(stack.engine) as s:
            enqueue(s, Purpose.POINTS_REDEMPTION, mid, ref="p", payload={"points_used": 5})
        mids.append(mid)
    return mids


def rows(stack: Stack) -> dict[int, OutboxMessage]:
    with session_scope(stack.engine) as s:
        return {
            r.member_id: r
            for r in s.scalars(select(OutboxMessage).where(OutboxMessage.channel == Channel.EMAIL))
        }


async def test_bad_rows_fail_alone_and_the_batch_goes_on(stack: Stack) -> None:
    stack.sinks.mail.smtputf8 = False  # a server without SMTPUTF8
    good = queue_email(stack, "ok@example.com", 20)
    (broken,) = queue_email(stack, "wang@@example.com")  # cannot be built
    (utf8,) = queue_email(stack, "李伟@例子.中国")  # needs SMTPUTF8: refused by this server
    (idna,) = queue_email(stack, "chen@exämple.com")  # IDNA domain: fine in ASCII form
    more = queue_email(stack, "late@example.com", 5)
    await run_worker(stack.worker(), until_idle=True)
    got = rows(stack)
    assert got[broken].status is OutboxStatus.FAILED
    assert "invalid email address" in (got[broken].last_error or "")
    assert got[utf8].status is OutboxStatus.FAILED and "SMTPUTF8" in (got[utf8].last_error or "")
    assert got[idna].status is OutboxStatus.SENT
    for mid in good + more:
        assert got[mid].status is OutboxStatus.SENT, got[mid].last_error
    rcpts = {r for m in stack.sinks.mail.mails for r in m.rcpt_tos}
    assert "chen@xn--exmple-cua.com" in rcpts and not any("@@" in r for r in rcpts)
    assert len(stack.sinks.mail.mails) == 20 + 5 + 1


async def test_utf8_address_sent_with_smtputf8_when_offered(stack: Stack) -> None:
    (mid,) = queue_email(stack, "李伟@例子.中国")
    await run_worker(stack.worker(), until_idle=True)
    assert rows(stack)[mid].status is OutboxStatus.SENT
    (mail,) = stack.sinks.mail.mails
    assert mail.rcpt_tos == ("李伟@例子.中国",)
    parsed = mail.parsed()
    assert parsed["To"] == "李伟@例子.中国"


async def test_transient_failure_backs_off_without_blocking_rows_behind(stack: Stack) -> None:
    (slow,) = queue_email(stack, "busy@example.com")
    stack.sinks.mail.rcpt_faults["busy@example.com"] = ["451 4.3.0 busy", "451 4.3.0 busy"]
    behind = queue_email(stack, "next@example.com", 10)
    await run_worker(stack.worker(), until_idle=True)
    got = rows(stack)
    assert all(got[m].status is OutboxStatus.SENT for m in behind)
    assert got[slow].status is OutboxStatus.SENT and got[slow].attempts == 3
    order = [m.rcpt_tos[0] for m in stack.sinks.mail.mails]
    assert order.index("busy@example.com") == len(order) - 1  # the others did not wait for it
