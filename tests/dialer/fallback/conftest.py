"""Fixtures for the fallback tests: members as ORM rows, the local sinks, the webhook site."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import Engine
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort
from twisted.web.resource import Resource
from twisted.web.server import Site

from crm_bridge.db import session_scope
from crm_bridge.models import Member, MemberPhone
from dialer.fallback import (
    ContentSettings,
    EmailSettings,
    OutboxWorker,
    RetryPolicy,
    RulesConfig,
    SmsSettings,
    SmtpEmail,
    TwilioSms,
    WebhookContext,
    WorkerSettings,
    mount_webhooks,
)
from dialer.fallback.sinks import LocalSinks
from dialer.fallback.sinks.local import SinkMailProbe
from memberline.runtime import install_reactor

SECRET = b"test-unsubscribe-secret"
NO_QUIET = RulesConfig(quiet_start=dt.time(0, 0), quiet_end=dt.time(0, 0), daily_cap=10)
_numbers = itertools.count(1000)


def add_member(
    engine: Engine, *, name: str = "李伟", phone: str | None = "auto", email: str | None = "auto",
    tz: str = "Asia/Shanghai", locale: str = "zh-CN", **fields: Any,
) -> int:
    n = next(_numbers)
    with session_scope(engine) as s:
        m = Member(member_no=f"M{n}", name=name, joined_on=dt.date(2020, 1, 1), timezone=tz,
                   locale=locale, email=(f"m{n}@example.com" if email == "auto" else email), **fields)
        if phone:
            m.phones.append(MemberPhone(e164=f"+86138{n:08d}" if phone == "auto" else phone))
        s.add(m)
        s.flush()
        return m.id


@dataclass
class Stack:
    engine: Engine
    sinks: LocalSinks
    public_url: str
    ctx: WebhookContext

    def worker(self, rules: RulesConfig = NO_QUIET, probe: bool = True, **settings: Any) -> OutboxWorker:
        content = ContentSettings(
            public_url=self.public_url, unsubscribe_secret=SECRET,
            email=EmailSettings(port=self.sinks.mail.port, bcc=settings.pop("bcc", None), timeout_s=2),
        )
        sms = TwilioSms(SmsSettings(self.sinks.sms.account_sid, self.sinks.sms.auth_token,
                                    "+15005550006", self.public_url, base_url=self.sinks.sms.base_url,
                                    timeout_s=2))
        ws = WorkerSettings(worker_id=settings.pop("worker_id", "test-worker"), poll_interval_s=0.05,
                            idle_horizon_s=5, retry=RetryPolicy(max_attempts=3, base_s=0.05, max_s=0.2),
                            **settings)
        return OutboxWorker(self.engine, content=content, rules=rules, settings=ws, sms=sms,
                            email=SmtpEmail(content.email),
                            mail_probe=SinkMailProbe(self.sinks.sms.base_url) if probe else None)


@pytest.fixture
def member_factory(engine: Engine) -> Callable[..., int]:
    return lambda **kw: add_member(engine, **kw)


@pytest_asyncio.fixture
async def stack(engine: Engine) -> AsyncIterator[Stack]:
    reactor = install_reactor()
    root = Resource()
    ctx = WebhookContext(engine, "sink-token", "http://placeholder", SECRET,
                         retry=RetryPolicy(max_attempts=3, base_s=0.05, max_s=0.2))
    mount_webhooks(root, ctx)
    port: IListeningPort = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    public_url = f"http://127.0.0.1:{port.getHost().port}"
    ctx.public_url = public_url
    sinks = await LocalSinks.start()
    try:
        yield Stack(engine, sinks, public_url, ctx)
    finally:
        await sinks.stop()
        stopped = port.stopListening()
        if isinstance(stopped, Deferred):
            await stopped.asFuture(asyncio.get_running_loop())


@pytest.fixture
def rules() -> Iterator[RulesConfig]:
    yield replace(NO_QUIET)
