"""Crash recovery: rows left ``sending`` are resolved by asking the provider, never resent blind."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from crm_bridge.db import session_scope
from crm_bridge.models import AuditLog, Channel, Member, OutboxMessage, OutboxStatus, utcnow
from dialer.fallback import OrderPolicy, Purpose, RulesConfig, enqueue, run_worker
from dialer.fallback.content import email_message
from dialer.fallback.store import build_jobs, lease_batch, mark_sending, retry_row

from .conftest import NO_QUIET, Stack, add_member

pytestmark = pytest.mark.e2e
ACCEPTED = (OutboxStatus.SENT, OutboxStatus.DELIVERED)
"""An SMS the provider took; its delivery receipt may arrive before the assertion."""
OWNER = "test-worker#"  # the stack's worker id: a restart reclaims these rows at once


def crash_mid_send(stack: Stack, mid: int, channels: str | tuple[str, ...]) -> list[int]:
    """Queue, lease and mark ``sending`` exactly as the worker does, then 'crash'."""
    with session_scope(stack.engine) as s:
        enqueue(s, Purpose.EXHAUSTED, mid, channels=channels, ref="crash", order=OrderPolicy.BOTH)
    with session_scope(stack.engine) as s:
        batch = lease_batch(s, OWNER + "1", utcnow(), 10, 60, NO_QUIET)
    jobs, poisoned = build_jobs(batch.rows, stack.content(), utcnow())
    assert not poisoned
    with session_scope(stack.engine) as s:
        assert mark_sending(s, jobs, OWNER, utcnow(), 60) == {j.id for j in jobs}
    return [j.id for j in jobs]


def row(engine: Engine, rid: int) -> OutboxMessage:
    with session_scope(engine) as s:
        r = s.get(OutboxMessage, rid)
        assert r is not None
        return r


async def test_sms_accepted_before_the_crash_is_found_at_the_provider(stack: Stack) -> None:
    mid = add_member(stack.engine)
    (rid,) = crash_mid_send(stack, mid, "sms")
    # the provider got it, the worker died before recording the sid:
    worker = stack.worker()
    assert worker.sms is not None
    body = row(stack.engine, rid).payload["_body"]
    sent = await worker.sms.send(row(stack.engine, rid).to_address, body, rid)
    await worker.sms.close()
    restarted = stack.worker()
    await run_worker(restarted, until_idle=True)
    r = row(stack.engine, rid)
    assert (
        r.status in (OutboxStatus.SENT, OutboxStatus.DELIVERED)
        and r.provider_id == sent.provider_id
    )
    assert r.attempts == 1 and len(stack.sinks.sms.messages) == 1
    assert restarted.stats.counts["recovered_sent"] == 1


async def test_sms_never_accepted_is_sent_once_after_asking(stack: Stack) -> None:
    mid = add_member(stack.engine)
    (rid,) = crash_mid_send(stack, mid, "sms")
    worker = stack.worker()
    await run_worker(worker, until_idle=True)
    r = row(stack.engine, rid)
    assert r.status in ACCEPTED and r.attempts == 2
    assert worker.stats.counts["recovered_pending"] == 1 and len(stack.sinks.sms.messages) == 1


async def test_sending_row_with_a_recorded_provider_id_is_sent(stack: Stack) -> None:
    mid = add_member(stack.engine)
    (rid,) = crash_mid_send(stack, mid, "sms")
    with session_scope(stack.engine) as s:
        s.execute(
            update(OutboxMessage).where(OutboxMessage.id == rid).values(provider_id="SMrecorded")
        )
    await run_worker(stack.worker(), until_idle=True)
    r = row(stack.engine, rid)
    assert r.status is OutboxStatus.SENT and r.provider_id == "SMrecorded"
    assert stack.sinks.sms.messages == []


async def test_two_copies_at_the_provider_are_not_sent_a_third_time(stack: Stack) -> None:
    mid = add_member(stack.engine)
    (rid,) = crash_mid_send(stack, mid, "sms")
    stack.sinks.sms.callbacks = False  # no delivery receipt to settle it
    w = stack.worker()
    assert w.sms is not None
    r = row(stack.engine, rid)
    for _ in range(2):
        await w.sms.send(r.to_address, r.payload["_body"], rid)
    await w.sms.close()
    await run_worker(stack.worker(), until_idle=True)
    got = row(stack.engine, rid)
    assert got.status is OutboxStatus.SENT and "+1 more" in (got.last_error or "")
    assert len(stack.sinks.sms.messages) == 2


async def test_sms_still_queued_at_the_provider_has_no_date_sent_and_is_found(
    stack: Stack,
) -> None:
    """A message the provider accepted but has not sent yet (queued/sending, no DateSent):
    a DateSent filter would miss it and resend; the reference lookup finds it."""
    mid = add_member(stack.engine)
    (rid,) = crash_mid_send(stack, mid, "sms")
    sink = stack.sinks.sms
    sink.step_s = 30.0  # stays queued for the whole test
    w = stack.worker()
    assert w.sms is not None
    r = row(stack.engine, rid)
    sent = await w.sms.send(r.to_address, r.payload["_body"], rid)
    await w.sms.close()
    assert sink.messages[0].status == "queued" and sink.messages[0].resource()["date_sent"] is None
    restarted = stack.worker()
    await run_worker(restarted, until_idle=True)
    got = row(stack.engine, rid)
    assert got.status is OutboxStatus.SENT and got.provider_id == sent.provider_id
    assert "(queued)" in (got.last_error or "")
    assert len(sink.messages) == 1 and restarted.stats.counts["recovered_sent"] == 1


async def test_connection_dropped_after_accept_with_listing_lag_is_not_resent(
    stack: Stack,
) -> None:
    """The provider stores the message, drops the connection, and lists it only 1 s later:
    recovery waits the lag out instead of concluding "no copy" and resending."""
    sink = stack.sinks.sms
    sink.list_lag_s = 1.0
    sink.drop_next = 1
    sink.callbacks = False  # no status callback (carrying ?o=<id>) settles it first
    mid = add_member(stack.engine)
    with session_scope(stack.engine) as s:
        enqueue(s, Purpose.EXHAUSTED, mid, channels="sms", ref="drop")
    w = stack.worker(provider_list_lag_s=1.5)
    await run_worker(w, until_idle=True)
    assert sink.dropped == 1 and len(sink.messages) == 1
    with session_scope(stack.engine) as s:
        (r,) = s.scalars(select(OutboxMessage)).all()
        assert r.status in ACCEPTED and r.provider_id == sink.messages[0].sid
        assert r.attempts == 1
    assert w.stats.counts["recovered_wait"] >= 1 and w.stats.counts["recovered_sent"] == 1


async def test_provider_lookup_failure_puts_the_row_up_for_review(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """Nothing proves the message absent: review, listed by ``outbox list --review``."""
    mid = add_member(stack.engine)
    (rid,) = crash_mid_send(stack, mid, "sms")
    w = stack.worker()
    stack.sinks.sms.auth_token = "rotated"  # the lookup is refused (HTTP 401)
    await run_worker(w, until_idle=True)
    got = row(stack.engine, rid)
    assert got.status is OutboxStatus.REVIEW and "lookup failed" in (got.last_error or "")
    assert stack.sinks.sms.messages == []
    from memberline.cli import main

    url = stack.engine.url.render_as_string(hide_password=False)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    import asyncio

    rc = await asyncio.to_thread(main, ["outbox", "list", "--review", "--config", str(cfg)])
    out = capsys.readouterr().out
    assert rc == 0 and f"{rid:>7}  review" in out and "lookup failed" in out


async def test_expired_lease_of_another_worker_is_recovered(stack: Stack) -> None:
    mid = add_member(stack.engine)
    (rid,) = crash_mid_send(stack, mid, "sms")
    with session_scope(stack.engine) as s:  # not ours: only recovered once the lease expired
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == rid)
            .values(lease_owner="other-host#3", lease_expires_at=utcnow() - dt.timedelta(seconds=1))
        )
    await run_worker(stack.worker(worker_id="someone-else"), until_idle=True)
    assert row(stack.engine, rid).status in ACCEPTED
    assert len(stack.sinks.sms.messages) == 1


async def test_email_in_flight_goes_to_review_then_operator_retry(stack: Stack) -> None:
    mid = add_member(stack.engine)
    (rid,) = crash_mid_send(stack, mid, "email")
    await run_worker(stack.worker(probe=False), until_idle=True)
    r = row(stack.engine, rid)
    assert r.status is OutboxStatus.REVIEW and stack.sinks.mail.mails == []
    with session_scope(stack.engine) as s:
        retry_row(s, rid, "cli:ops", utcnow())
    await run_worker(stack.worker(probe=False), until_idle=True)
    assert row(stack.engine, rid).status is OutboxStatus.SENT and len(stack.sinks.mail.mails) == 1
    with session_scope(stack.engine) as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "outbox.retry")).one()
        assert entry.actor == "cli:ops" and entry.details == {
            "outbox_id": rid,
            "previous": "review",
        }
        with pytest.raises(ValueError, match="only failed or review"):
            retry_row(s, rid, "cli:ops", utcnow())


async def test_email_in_flight_is_proved_by_the_sink(stack: Stack) -> None:
    mid = add_member(stack.engine)
    (rid,) = crash_mid_send(stack, mid, "email")
    w = stack.worker()
    content = w.content
    with session_scope(stack.engine) as s:  # the mail went out before the crash
        r = s.get(OutboxMessage, rid)
        assert r is not None
        member = s.get(Member, mid)
        assert member is not None
        msg = email_message(content, member, r, utcnow())
    assert w.email is not None and w.sms is not None
    await w.email.send(msg)
    await w.email.close()
    await w.sms.close()
    await run_worker(stack.worker(), until_idle=True)
    assert row(stack.engine, rid).status is OutboxStatus.SENT
    assert stack.sinks.mail.count(msg.message_id) == 1


async def test_leased_but_never_sent_rows_return_to_pending(stack: Stack) -> None:
    mid = add_member(stack.engine)
    with session_scope(stack.engine) as s:
        enqueue(s, Purpose.BIRTHDAY, mid, channels=(Channel.SMS,), ref="l")
    with session_scope(stack.engine) as s:
        (job,) = lease_batch(
            s,
            OWNER + "9",
            utcnow(),
            10,
            60,
            RulesConfig(quiet_start=dt.time(0), quiet_end=dt.time(0)),
        ).rows
    await run_worker(stack.worker(), until_idle=True)
    r = row(stack.engine, job.row.id)
    assert r.status in ACCEPTED and r.attempts == 1 and len(stack.sinks.sms.messages) == 1
