"""Fixtures for the fallback tests: members as ORM rows, the local sinks, the webhook site."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import Site

from crm_bridge.db import normalise_url, session_scope
from crm_bridge.models import Member, MemberPhone
from crm_bridge.testing import (
    drop_pg_database,
    fresh_pg_database,
    fresh_sqlite_database,
    pg_server_url,
)
from dialer.fallback import (
    ContentSettings,
    EmailSettings,
    OutboxWorker,
    RulesConfig,
    SendRetryPolicy,
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
from tests.conftest import PG_SKIP_REASON

SECRET = b"test-unsubscribe-secret"
NO_QUIET = RulesConfig(quiet_start=dt.time(0, 0), quiet_end=dt.time(0, 0), daily_cap=10)
_numbers = itertools.count(1000)


def add_member(
    engine: Engine,
    *,
    name: str = "李伟",
    phone: str | None = "auto",
    email: str | None = "auto",
    tz: str = "Asia/Shanghai",
    locale: str = "zh-CN",
    **fields: Any,
) -> int:
    n = next(_numbers)
    with session_scope(engine) as s:
        m = Member(
            member_no=f"M{n}",
            name=name,
            joined_on=dt.date(2020, 1, 1),
            timezone=tz,
            locale=locale,
            email=(f"m{n}@example.com" if email == "auto" else email),
            **fields,
        )
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

    def content(self, bcc: str | None = None) -> ContentSettings:
        return ContentSettings(
            public_url=self.public_url,
            unsubscribe_secret=SECRET,
            email=EmailSettings(port=self.sinks.mail.port, bcc=bcc, timeout_s=2),
        )

    def worker(
        self, rules: RulesConfig = NO_QUIET, probe: bool = True, **settings: Any
    ) -> OutboxWorker:
        content = self.content(settings.pop("bcc", None))
        sms = TwilioSms(
            SmsSettings(
                self.sinks.sms.account_sid,
                self.sinks.sms.auth_token,
                "+15005550006",
                self.public_url,
                base_url=self.sinks.sms.base_url,
                timeout_s=2,
            )
        )
        ws = WorkerSettings(
            worker_id=settings.pop("worker_id", "test-worker"),
            poll_interval_s=0.05,
            idle_horizon_s=5,
            retry=SendRetryPolicy(max_attempts=3, base_s=0.05, max_s=0.2),
            provider_list_lag_s=settings.pop("provider_list_lag_s", 0.3),
            recovery_interval_s=settings.pop("recovery_interval_s", 0.5),
            **settings,
        )
        return OutboxWorker(
            self.engine,
            content=content,
            rules=rules,
            settings=ws,
            sms=sms,
            email=SmtpEmail(content.email),
            mail_probe=SinkMailProbe(self.sinks.sms.base_url) if probe else None,
        )


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(
        fresh_sqlite_database(tmp_path_factory.mktemp("fallback-template")).removeprefix(
            "sqlite:///"
        )
    )


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[str | None]:
    server = pg_server_url()
    if server is None:
        yield None
        return
    url = fresh_pg_database(server)
    yield url
    drop_pg_database(server, url)


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    _sqlite_template: Path,
    _pg_template: str | None,
) -> Iterator[str]:
    """Like the shared fixture, but every database is a copy of one migrated template
    (a file copy for SQLite, ``CREATE DATABASE … TEMPLATE`` for PostgreSQL)."""
    if request.param == "sqlite":
        target = tmp_path / "fallback.db"
        shutil.copyfile(_sqlite_template, target)
        yield f"sqlite:///{target}"
        return
    server = pg_server_url()
    if server is None or _pg_template is None:
        pytest.skip(PG_SKIP_REASON)
    template = make_url(_pg_template).database
    name = f"ml_fb_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    url = make_url(_pg_template).set(database=name).render_as_string(hide_password=False)
    yield url
    drop_pg_database(server, url)


@pytest.fixture
def member_factory(engine: Engine) -> Callable[..., int]:
    return lambda **kw: add_member(engine, **kw)


@pytest_asyncio.fixture
async def stack(engine: Engine) -> AsyncIterator[Stack]:
    reactor = install_reactor()
    root = Resource()
    ctx = WebhookContext(
        engine,
        "sink-token",
        "http://placeholder",
        SECRET,
        retry=SendRetryPolicy(max_attempts=3, base_s=0.05, max_s=0.2),
    )
    mount_webhooks(root, ctx)
    port: Any = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    public_url = f"http://127.0.0.1:{port.getHost().port}"
    ctx.public_url = public_url
    sinks = await LocalSinks.start()
    try:
        yield Stack(engine, sinks, public_url, ctx)
    finally:
        await sinks.stop()
        await ctx.close()
        stopped = port.stopListening()
        if isinstance(stopped, Deferred):
            await stopped.asFuture(asyncio.get_running_loop())


@pytest.fixture
def rules() -> Iterator[RulesConfig]:
    yield replace(NO_QUIET)
