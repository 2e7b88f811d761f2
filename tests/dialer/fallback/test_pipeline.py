"""End to end over loopback: enqueue -> worker -> Twilio-shaped sink / aiosmtpd -> callbacks."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.models import Channel, OutboxMessage, OutboxStatus
from dialer.fallback import Purpose, enqueue, run_worker

from .conftest import Stack, add_member

pytestmark = pytest.mark.e2e


def rows(engine: Engine) -> dict[tuple[int, Channel], OutboxMessage]:
    with session_scope(engine) as s:
        return {(r.member_id, r.channel): r for r in s.scalars(select(OutboxMessage))}


async def test_sms_then_email_delivered_once(stack: Stack, engine: Engine) -> None:
    mid = add_member(engine, name="<b>王芳</b>")
    with session_scope(engine) as s:
        enqueue(s, Purpose.EXHAUSTED, mid, campaign_id=None, ref="t1")
    await run_worker(stack.worker(), until_idle=True)
    await stack.sinks.sms.wait_callbacks()
    got = rows(engine)
    sms, email = got[(mid, Channel.SMS)], got[(mid, Channel.EMAIL)]
    assert sms.status is OutboxStatus.DELIVERED and sms.provider_id is not None
    assert email.status is OutboxStatus.SENT
    assert len(stack.sinks.sms.messages) == 1 and len(stack.sinks.mail.mails) == 1
    assert stack.sinks.sms.messages[0].body.startswith("【会员中心】<b>王芳</b>")
    mail = stack.sinks.mail.mails[0].parsed()
    html = mail.get_body(("html",))
    assert html is not None and "&lt;b&gt;王芳&lt;/b&gt;" in html.get_content()
    assert mail["List-Unsubscribe"].startswith(f"<{stack.public_url}/unsubscribe?m={mid}&t=")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert all(code == 204 for _, code in stack.sinks.sms.callback_results)
