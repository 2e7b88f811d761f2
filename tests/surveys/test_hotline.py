"""The self-service hotline over real FastAGI, Asterisk's side played by the PBX simulator:
a known caller, an unknown number, a number two members share, a hang-up mid-prompt, and
``0`` to an agent whose pop says what the member just heard."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Engine, select

from crm_bridge.db import make_engine, session_scope
from crm_bridge.models import Agent, AuditLog, CallAttempt, Member, MemberPhone, PointsLedger, Tier
from cti.pbxsim import PbxSimulator, QueueSpec, Scenario
from cti.pbxsim.scenario import NumberOverride
from surveys.agi import SurveyAgiApplication
from surveys.hotline import HotlineAgi, heard_summary
from tests.cti.pbxsim_helpers import AmiClient

pytestmark = pytest.mark.e2e

TODAY = dt.date(2026, 12, 4)
KNOWN = "+8613800138000"  # Li Wei alone
SHARED = "+8613900139000"  # Wang Fang (zh) and Amy Chen (en)
STRANGER = "+8613700137000"  # nobody's
EXPIRES = dt.date(2027, 3, 31)


@dataclass(frozen=True)
class Ids:
    liwei: int
    wang: int
    amy: int


def _seed(engine: Engine) -> Ids:
    with session_scope(engine) as s:
        agent = Agent(code="1001", extension="1001", name="王芳", password_hash="x")
        s.add(agent)
        s.flush()

        def member(no: str, name: str, locale: str, tier: Tier, points: int, phone: str) -> int:
            m = Member(
                member_no=no, name=name, locale=locale, tier=tier, points_balance=points,
                joined_on=dt.date(2024, 1, 5), maintaining_agent_id=agent.id,
            )  # fmt: skip
            m.phones.append(MemberPhone(e164=phone))
            s.add(m)
            s.flush()
            return m.id

        liwei = member("M00000042", "李伟", "zh-CN", Tier.GOLD, 12300, KNOWN)
        wang = member("M00000043", "王芳", "zh-CN", Tier.SILVER, 500, SHARED)
        amy = member("M00000044", "Amy Chen", "en", Tier.PLATINUM, 2005, SHARED)
        s.add_all(
            [
                PointsLedger(member_id=liwei, delta=2000, balance_after=2000, reason="purchase",
                             expires_on=EXPIRES),
                PointsLedger(member_id=liwei, delta=10300, balance_after=12300, reason="purchase",
                             expires_on=dt.date(2027, 9, 1)),
                PointsLedger(member_id=liwei, delta=700, balance_after=700, reason="purchase",
                             expires_on=dt.date(2026, 1, 1)),  # already expired: not "next"
                PointsLedger(member_id=amy, delta=2005, balance_after=2005, reason="purchase",
                             expires_on=EXPIRES),
            ]
        )  # fmt: skip
        return Ids(liwei, wang, amy)


@pytest_asyncio.fixture
async def agi(engine: Engine) -> AsyncIterator[tuple[int, HotlineAgi]]:
    hotline = HotlineAgi(engine, today=TODAY, entry_timeout_ms=3000)
    app = SurveyAgiApplication(header_timeout_s=2, reply_timeout_s=10)
    app.add_route(hotline.ROUTE, hotline.run)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], hotline
    finally:
        server.close()
        for task in list(app.connections):
            task.cancel()
        await server.wait_closed()


async def _call(
    port: int,
    number: str,
    keys: tuple[str, ...],
    talk: float | None = None,
) -> tuple[str, list[str], PbxSimulator]:
    scen = Scenario(
        time_scale=0.01,
        queues=(QueueSpec("members", exten="8000", members=(), timeout=15.0, max_wait=30.0),),
        overrides={number: NumberOverride("answer", 0.0, talk, keys)},
    )
    sim = PbxSimulator(scen, agi_port=port)
    await sim.start()
    try:
        handle = await sim.inbound_call(number, "", "members", hotline=True, patience=5.0)
        outcome = await asyncio.wait_for(handle.done, 15)
    finally:
        await sim.stop()
    commands = [m.get("Command") or "" for m in sim.events if m.name == "AGIExecEnd"]
    return outcome, commands, sim


def _plays(commands: list[str]) -> list[str]:
    return [c.split()[2] for c in commands if c.startswith("STREAM FILE")]


def _audit(engine: Engine) -> list[tuple[str, str, int | None, dict[str, str]]]:
    with session_scope(engine) as s:
        return [
            (a.actor, a.action, a.member_id, dict(a.details or {}))
            for a in s.scalars(select(AuditLog).order_by(AuditLog.id))
        ]


def _row(engine: Engine) -> CallAttempt:
    with session_scope(engine) as s:
        row = s.scalars(select(CallAttempt).where(CallAttempt.outcome == "hotline")).one()
        s.expunge(row)
        return row


ZH_FACTS = [
    "hotline-tier-gold",
    "hotline-balance", "hotline-n-1", "hotline-n-10000", "hotline-n-liang", "hotline-n-1000",
    "hotline-n-3", "hotline-n-100", "hotline-points",  # 一万两千三百 分
    "hotline-expiry-lead", "hotline-n-liang", "hotline-n-1000", "hotline-expiry-mid",  # 其中 两千 分将于
    "hotline-n-2", "hotline-n-0", "hotline-n-2", "hotline-n-7", "hotline-year",  # 二零二七年
    "hotline-n-3", "hotline-month", "hotline-n-3", "hotline-n-10", "hotline-n-1", "hotline-day",  # 三月三十一日
    "hotline-expiry-end",
]  # fmt: skip


async def test_known_caller_hears_tier_balance_and_expiry_in_chinese(
    engine: Engine, agi: tuple[int, HotlineAgi]
) -> None:
    ids = _seed(engine)
    # listens once, then silence at the menu twice: goodbye
    outcome, commands, _ = await _call(agi[0], KNOWN, ("timeout", "timeout"))
    assert outcome == "ivr"
    assert commands[:3] == ["ANSWER", "GET VARIABLE CHANNEL(linkedid)",
                            'SET VARIABLE CHANNEL(language) "zh_CN"']  # fmt: skip
    assert not any(c.startswith("GET DATA hotline-enter-member") for c in commands)
    # silence at the menu once: it is read again; twice: goodbye
    assert _plays(commands) == ["hotline-welcome", *ZH_FACTS, *ZH_FACTS, "hotline-goodbye"]
    assert 'SET VARIABLE HOTLINE_RESULT "done"' in commands
    row = _row(engine)
    assert row.member_id == ids.liwei and row.linkedid
    assert _audit(engine) == [
        ("hotline", "hotline.self_service", ids.liwei,
         {"call_id": row.linkedid, "identified_by": "caller_id"}),
    ]  # fmt: skip
    assert row.notes == (
        "Hotline heard: tier Gold, balance 12,300 points, 2,000 points expire 2027-03-31"
        " / 热线已播报：金卡会员，积分余额 12300，2000 积分于 2027-03-31 到期"
    )


async def test_shared_number_asks_for_the_member_number_and_speaks_english(
    engine: Engine, agi: tuple[int, HotlineAgi]
) -> None:
    ids = _seed(engine)
    # 42 is a member, but not one on this number: refused; then Amy's 44 (no zero padding)
    outcome, commands, _ = await _call(agi[0], SHARED, ("42", "44", "timeout", "timeout"))
    assert outcome == "ivr"
    asks = [c for c in commands if c.startswith("GET DATA")]
    assert asks[:2] == ["GET DATA hotline-enter-member 3000 12"] * 2
    assert "hotline-not-found" in _plays(commands)
    assert 'SET VARIABLE CHANNEL(language) "en"' in commands
    assert not any("hotline-enter-phone" in c for c in commands)  # the number vouches
    plays = _plays(commands)
    start = plays.index("hotline-tier-platinum")
    assert plays[start : start + 14] == [
        "hotline-tier-platinum",
        "hotline-balance", "hotline-n-2", "hotline-n-1000", "hotline-n-5", "hotline-points",
        "hotline-n-2", "hotline-n-1000", "hotline-n-5", "hotline-expiry-mid",
        "hotline-month-3", "hotline-ord-31", "hotline-n-20", "hotline-n-20",
    ]  # fmt: skip
    assert plays[start + 14] == "hotline-n-7"  # ... twenty twenty-seven
    row = _row(engine)
    assert row.member_id == ids.amy
    assert [a[3]["identified_by"] for a in _audit(engine)] == ["member_no"]
    assert row.notes is not None and row.notes.startswith("Hotline heard: tier Platinum")


async def test_unknown_number_needs_member_number_and_phone_digits(
    engine: Engine, agi: tuple[int, HotlineAgi]
) -> None:
    ids = _seed(engine)
    # wrong last four digits: refused; then right ones; hears it; 1 = again; hangs up at menu
    keys = ("42", "1234", "42", "8000", "1", "hangup")
    outcome, commands, _ = await _call(agi[0], STRANGER, keys)
    assert outcome == "caller"
    asks = [c.split()[2] for c in commands if c.startswith("GET DATA")]
    assert asks == [
        "hotline-enter-member", "hotline-enter-phone",
        "hotline-enter-member", "hotline-enter-phone",
        "hotline-menu", "hotline-menu",
    ]  # fmt: skip
    assert _plays(commands).count("hotline-tier-gold") == 2  # 1 = hear it again
    row = _row(engine)
    assert row.member_id == ids.liwei
    assert [a[3]["identified_by"] for a in _audit(engine)] == ["member_no+phone"]
    assert "balance 12,300 points" in (row.notes or "")


async def test_unknown_member_number_three_times_then_goodbye(
    engine: Engine, agi: tuple[int, HotlineAgi]
) -> None:
    _seed(engine)
    outcome, commands, _ = await _call(agi[0], STRANGER, ("999", "timeout", "77", "timeout"))
    assert outcome == "ivr"
    assert _plays(commands).count("hotline-not-found") == 2
    asks = [c.split()[2] for c in commands if c.startswith("GET DATA")]
    assert asks == ["hotline-enter-member"] * 3 + ["hotline-menu-unknown"]
    assert _plays(commands)[-1] == "hotline-goodbye"
    row = _row(engine)
    assert row.member_id is None and row.notes == heard_summary(None, [])
    assert _audit(engine) == []  # nobody's figures were read out


async def test_hang_up_mid_prompt_keeps_what_was_heard(
    engine: Engine, agi: tuple[int, HotlineAgi]
) -> None:
    """The caller hangs up (AMI Hangup of the handset) while the balance is being read."""
    ids = _seed(engine)
    scen = Scenario(
        time_scale=0.05,  # a prompt lasts 48 ms real: time to hang up inside one
        queues=(QueueSpec("members", exten="8000", members=(), timeout=15.0, max_wait=30.0),),
    )
    sim = PbxSimulator(scen, agi_port=agi[0])
    await sim.start()
    ami = await AmiClient.connect(sim.port)
    try:
        await ami.login()
        handle = await sim.inbound_call(KNOWN, "", "members", hotline=True, patience=60.0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not any(
            m.name == "AGIExecStart" and m.get("Command") == 'STREAM FILE hotline-balance "0"'
            for m in sim.events
        ):
            assert loop.time() < deadline, "the balance was never read"
            await asyncio.sleep(0.002)
        ami.send("Hangup", Channel=handle.caller_channel)
        assert await asyncio.wait_for(handle.done, 10) == "caller"
    finally:
        await ami.close()
        await sim.stop()
    commands = [m.get("Command") or "" for m in sim.events if m.name == "AGIExecEnd"]
    # cut off mid-prompt (result=-1, then CHANNEL STATUS finds the channel dead); no more
    assert commands[-2].startswith("STREAM FILE hotline-") and commands[-1] == "CHANNEL STATUS"
    plays = _plays(commands)
    assert plays[:3] == ["hotline-welcome", "hotline-tier-gold", "hotline-balance"]
    assert "hotline-points" not in plays  # the balance never finished
    row = _row(engine)
    assert row.member_id == ids.liwei
    assert row.notes is not None
    assert "tier Gold" in row.notes and "balance" not in row.notes


async def test_a_broken_database_sends_the_caller_to_an_agent(tmp_path: Path) -> None:
    """No tables behind the engine: every lookup fails; the caller is queued, not dropped."""
    broken = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    hotline = HotlineAgi(broken, today=TODAY, entry_timeout_ms=3000)
    app = SurveyAgiApplication(header_timeout_s=2, reply_timeout_s=10)
    app.add_route(hotline.ROUTE, hotline.run)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    try:
        outcome, commands, sim = await _call(server.sockets[0].getsockname()[1], KNOWN, ())
    finally:
        server.close()
        await server.wait_closed()
        broken.dispose()
    assert 'SET VARIABLE HOTLINE_RESULT "agent"' in commands
    assert outcome == "abandon"  # it reached the queue (nobody there) instead of a hang-up
    assert any(m.name == "QueueCallerJoin" for m in sim.events)
