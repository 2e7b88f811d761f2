"""`memberline serve` killed with SIGKILL mid-campaign, then restarted.

The PBX simulator (in this process) counts every Originate it receives by its preset
ChannelId. Across the kill and the restart: no attempt is originated twice, every
attempt row ends with an outcome (possibly ``interrupted``), and the campaign resumes
and finishes its list.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_bridge.auth import hash_password
from crm_bridge.db import make_engine, session_scope
from crm_bridge.models import (
    Agent,
    CallAttempt,
    CallListEntry,
    CampaignKind,
    DialMode,
    EntryStatus,
    Member,
    MemberPhone,
    Role,
)
from cti.pbxsim import AgentSpec, Dist, OutboundSpec, QueueSpec, Scenario
from memberline.agentbot import AgentBot
from memberline.testing import (
    AMI_USER,
    ServeProcess,
    free_port,
    pbx_simulator,
    serve_config,
    start_bots,
    stop_bots,
)
from tests.dialer.support import add_campaign

pytestmark = [pytest.mark.e2e]

AMI_SECRET = "sigkill-ami-secret"
AGENTS = ("1001", "1002", "1003")
MEMBERS = 14


def _noon_zone() -> str:
    """An Etc/GMT zone where it is about midday now: inside every calling window."""
    offset = 12 - dt.datetime.now(dt.UTC).hour
    offset = max(-12, min(14, offset))
    return "Etc/GMT" + (f"-{offset}" if offset > 0 else f"+{-offset}")


def _seed(url: str) -> int:
    engine = make_engine(url)
    zone = _noon_zone()
    with session_scope(engine) as s:
        pw = hash_password("pw-sigkill")
        for code in AGENTS:
            s.add(
                Agent(
                    code=code,
                    extension=code,
                    name=f"Agent {code}",
                    role=Role.AGENT,
                    password_hash=pw,
                )
            )
        c = add_campaign(s, "sigkill", CampaignKind.CUSTOM, DialMode.PROGRESSIVE)
        for i in range(MEMBERS):
            num = f"+861390000{i:04d}"
            m = Member(
                member_no=f"K{i:03d}", name=f"会员{i}", joined_on=dt.date(2025, 1, 1), timezone=zone
            )
            m.phones.append(MemberPhone(e164=num))
            s.add(m)
            s.flush()
            s.add(CallListEntry(campaign_id=c.id, member_id=m.id, phone_e164=num))
        cid = c.id
    engine.dispose()
    return cid


def _attempts(url: str) -> list[tuple[str, str | None]]:
    engine = make_engine(url)
    with session_scope(engine) as s:
        rows = [(str(a.channel_id), a.outcome) for a in s.scalars(select(CallAttempt))]
    engine.dispose()
    return rows


def _entries_settled(url: str) -> bool:
    engine = make_engine(url)
    with session_scope(engine) as s:
        open_ = s.scalars(
            select(CallListEntry).where(
                CallListEntry.status.in_(
                    [EntryStatus.PENDING, EntryStatus.LEASED, EntryStatus.DIALING]
                ),
                CallListEntry.next_attempt_at.is_(None)
                | (CallListEntry.next_attempt_at <= dt.datetime.now(dt.UTC)),
            )
        ).all()
    engine.dispose()
    return not open_


async def test_sigkill_mid_campaign_never_dials_an_attempt_twice(
    sqlite_url: str, tmp_path: Path
) -> None:
    _seed(sqlite_url)
    scenario = Scenario(
        seed=3,
        time_scale=0.2,
        queues=(QueueSpec("members", members=AGENTS),),
        agents=tuple(
            AgentSpec(a, ring_time=Dist("fixed", 0.5), talk_time=Dist("fixed", 8.0)) for a in AGENTS
        ),
        outbound=OutboundSpec(
            p_answer=0.6,
            p_noanswer=0.2,
            p_busy=0.2,
            p_congestion=0.0,
            p_voicemail=0.0,
            ring_time=Dist("fixed", 3.0),
            talk_time=Dist("fixed", 30.0),
        ),
    )
    async with pbx_simulator(scenario, users={AMI_USER: AMI_SECRET}, auth_fail_delay=0.05) as sim:
        hub_port = free_port()
        conf = serve_config(
            tmp_path / "memberline.toml",
            database_url=sqlite_url,
            ami_port=sim.port,
            hub_port=hub_port,
            extra="[calling]\nretry_busy_s = 1\nretry_no_answer_s = 1\nmax_attempts = 2\n",
        )
        serve = ServeProcess(conf, hub_name="hub-k", env={"MEMBERLINE_AMI_SECRET": AMI_SECRET})
        await serve.start()
        bots: list[AgentBot] = []
        try:
            bots = await start_bots(hub_port, AGENTS, "pw-sigkill", wrap_s=(0.3, 0.1))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 40
            while sim.stats.calls_originated < 6:
                assert loop.time() < deadline, "the campaign never started dialling"
                await asyncio.sleep(0.1)
            await serve.kill()  # SIGKILL: no cleanup of any kind
            await stop_bots(bots)
            killed_at = sim.stats.calls_originated

            await serve.start()
            bots = await start_bots(hub_port, AGENTS, "pw-sigkill", wrap_s=(0.3, 0.1))
            deadline = loop.time() + 90
            while not (
                _entries_settled(sqlite_url)
                and all(o is not None for _, o in _attempts(sqlite_url))
            ):
                assert loop.time() < deadline, "the campaign did not finish after the restart"
                await asyncio.sleep(0.5)
        finally:
            await stop_bots(bots)
            await serve.stop()

    originated = collections.Counter(
        m.get("Uniqueid") for m in sim.events if m.name == "OriginateResponse"
    )
    rows = _attempts(sqlite_url)
    attempt_ids = {cid for cid, _ in rows}
    assert originated, "nothing was dialled"
    assert max(originated.values()) == 1, "an attempt was originated twice"
    assert set(originated) <= attempt_ids, "an Originate without a durable attempt row"
    assert all(outcome is not None for _, outcome in rows), "an outcome was lost"
    assert sim.stats.calls_originated > killed_at, "the campaign did not resume after the restart"
