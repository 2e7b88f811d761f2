"""twisted.web webhooks over loopback: signatures, opt-out/opt-in keywords, unsubscribe link."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from sqlalchemy import Engine, event, select

from crm_bridge.db import session_scope
from crm_bridge.models import AuditLog, Member, OutboxMessage, OutboxStatus, utcnow
from dialer.fallback import INBOUND_PATH, STATUS_PATH, Purpose, SendRetryPolicy, enqueue
from dialer.fallback.store import StatusCallback, apply_status_callbacks
from dialer.fallback.unsubscribe import unsubscribe_url

from .conftest import SECRET, Stack, add_member

pytestmark = pytest.mark.e2e
PHONE = "+8613712345678"


def consent(engine: Engine, mid: int) -> tuple[bool, bool]:
    with session_scope(engine) as s:
        m = s.get(Member, mid)
        assert m is not None
        return m.consent_sms, m.consent_email


def audit(engine: Engine, mid: int) -> list[str]:
    with session_scope(engine) as s:
        return list(
            s.scalars(
                select(AuditLog.action).where(AuditLog.member_id == mid).order_by(AuditLog.id)
            )
        )


async def test_stop_chinese_stop_and_start(stack: Stack, engine: Engine) -> None:
    a = add_member(engine, phone=PHONE)
    b = add_member(engine, phone=PHONE)  # two members share the number: both opt out
    other = add_member(engine)
    url = stack.public_url + INBOUND_PATH
    assert await stack.sinks.sms.send_inbound(url, PHONE, "+15005550006", "STOP") == 200
    assert consent(engine, a)[0] is False and consent(engine, b)[0] is False
    assert consent(engine, other)[0] is True
    assert await stack.sinks.sms.send_inbound(url, PHONE, "+15005550006", "start") == 200
    assert consent(engine, a)[0] is True
    assert await stack.sinks.sms.send_inbound(url, PHONE, "+15005550006", "退订") == 200
    assert consent(engine, a)[0] is False
    assert audit(engine, a) == ["consent.sms_revoked", "consent.sms_granted", "consent.sms_revoked"]
    assert await stack.sinks.sms.send_inbound(url, PHONE, "+15005550006", "你好") == 200
    assert consent(engine, a)[0] is False


@pytest.mark.parametrize("signature", [None, "forged", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="])
async def test_inbound_without_a_valid_signature_is_refused(
    stack: Stack, engine: Engine, signature: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    mid = add_member(engine, phone=PHONE)
    status = await stack.sinks.sms.send_inbound(
        stack.public_url + INBOUND_PATH, PHONE, "+1500", "STOP", signature=signature
    )
    assert status == 403 and consent(engine, mid)[0] is True
    assert "Twilio signature" in caplog.text


async def test_signature_is_checked_against_the_configured_public_url(
    stack: Stack, engine: Engine
) -> None:
    mid = add_member(engine, phone=PHONE)
    stack.ctx.public_url = "https://hooks.example.com"  # Twilio called another URL than we see
    try:
        status = await stack.sinks.sms.send_inbound(
            stack.public_url + INBOUND_PATH, PHONE, "+1", "STOP"
        )
    finally:
        stack.ctx.public_url = stack.public_url
    assert status == 403 and consent(engine, mid)[0] is True


async def test_status_callback_signature(stack: Stack, engine: Engine) -> None:
    mid = add_member(engine)
    with session_scope(engine) as s:
        enqueue(s, Purpose.BIRTHDAY, mid, channels="sms", ref="2026")
        row = s.scalars(select(OutboxMessage)).one()
        row.status, row.provider_id = OutboxStatus.SENT, "SMabc"
        rid = row.id
    url = f"{stack.public_url}{STATUS_PATH}?o={rid}"
    params = {"MessageSid": "SMabc", "MessageStatus": "delivered", "AccountSid": "AC1"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=params, headers={"X-Twilio-Signature": "bad"}) as r:
            assert r.status == 403
        async with http.post(url, data=params) as r:
            assert r.status == 403
        with session_scope(engine) as s:
            assert s.get(OutboxMessage, rid).status is OutboxStatus.SENT  # type: ignore[union-attr]
        async with http.post(
            url, data=params, headers=stack.sinks.sms.signed_headers(url, params)
        ) as r:
            assert r.status == 204
    with session_scope(engine) as s:
        assert s.get(OutboxMessage, rid).status is OutboxStatus.DELIVERED  # type: ignore[union-attr]


async def test_unsubscribe_link(stack: Stack, engine: Engine) -> None:
    mid = add_member(engine)
    good = unsubscribe_url(stack.public_url, SECRET, mid)
    forged = unsubscribe_url(stack.public_url, b"not-our-secret", mid)
    async with aiohttp.ClientSession() as http:
        async with http.get(good) as r:  # GET only shows a confirmation (link scanners)
            assert r.status == 200 and "<form" in await r.text()
        assert consent(engine, mid)[1] is True
        async with http.post(forged, data={"List-Unsubscribe": "One-Click"}) as r:
            assert r.status == 403
        async with http.get(forged) as r:
            assert r.status == 403
        assert consent(engine, mid)[1] is True
        async with http.post(good, data={"List-Unsubscribe": "One-Click"}) as r:
            assert r.status == 200
    assert consent(engine, mid)[1] is False
    with session_scope(engine) as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.member_id == mid)).one()
    assert (
        entry.action == "consent.email_revoked"
        and entry.details["reason"] == "one-click unsubscribe"
    )


def _sending_sms(engine: Engine, n: int) -> list[int]:
    """``n`` SMS rows in ``sending`` (their provider call under way)."""
    ids = []
    for i in range(n):
        mid = add_member(engine)
        with session_scope(engine) as s:
            enqueue(s, Purpose.BIRTHDAY, mid, channels="sms", ref=f"cb{i}")
            row = s.scalars(select(OutboxMessage).where(OutboxMessage.member_id == mid)).one()
            row.status, row.attempts = OutboxStatus.SENDING, 1
            s.flush()
            ids.append(row.id)
    return ids


def test_callbacks_applied_in_one_batch_in_arrival_order(engine: Engine) -> None:
    a, b, c = _sending_sms(engine, 3)
    retry = SendRetryPolicy(max_attempts=3, base_s=60)
    batch = [
        StatusCallback(a, "SMa", "sent"),
        StatusCallback(a, "SMa", "delivered"),  # the second sees the first
        StatusCallback(b, "SMb", "undelivered", "30003"),  # unreachable: retried later
        StatusCallback(None, "SMc", "delivered"),  # no ?o= and no recorded sid yet
        StatusCallback(c, "SMother", "sent"),
        StatusCallback(c, "SMc2", "delivered"),
    ]
    with session_scope(engine) as s:
        out = apply_status_callbacks(s, batch, utcnow(), retry)
    assert out == ["sent", "delivered", "retry", "unknown message", "sent", "unknown message"]
    with session_scope(engine) as s:
        ra, rb, rc = (s.get(OutboxMessage, i) for i in (a, b, c))
        assert ra is not None and rb is not None and rc is not None
        assert (ra.status, ra.provider_id) == (OutboxStatus.DELIVERED, "SMa")
        assert rb.status is OutboxStatus.PENDING and rb.next_attempt_at is not None
        # c took the first sid it was told; a callback naming another sid is not applied
        assert (rc.status, rc.provider_id) == (OutboxStatus.SENT, "SMother")


async def test_concurrent_callbacks_share_transactions_and_are_stored_before_204(
    stack: Stack, engine: Engine
) -> None:
    ids = _sending_sms(engine, 40)
    commits = 0

    def count(_conn: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(engine, "commit", count)
    try:

        async def post(http: aiohttp.ClientSession, rid: int) -> int:
            url = f"{stack.public_url}{STATUS_PATH}?o={rid}"
            params = {"MessageSid": f"SM{rid}", "MessageStatus": "delivered", "AccountSid": "AC1"}
            headers = stack.sinks.sms.signed_headers(url, params)
            async with http.post(url, data=params, headers=headers) as r:
                status = r.status
            with session_scope(engine) as s:  # answered 204 only once stored
                row = s.get(OutboxMessage, rid)
                assert row is not None and row.status is OutboxStatus.DELIVERED
            return status

        async with aiohttp.ClientSession() as http:
            answers = await asyncio.gather(*(post(http, rid) for rid in ids))
    finally:
        event.remove(engine, "commit", count)
    assert answers == [204] * len(ids)
    # the reads after each answer commit too; the callbacks themselves went in far fewer
    assert commits < 2 * len(ids)
