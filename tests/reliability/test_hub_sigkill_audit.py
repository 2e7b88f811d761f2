"""`memberline serve` SIGKILLed at random moments during pops and wrap-ups: nothing lost.

Inbound calls ring a ringall queue of three bot agents (real hub protocol over TCP); the
bots record every screen pop that reached them and wrap their calls up. The hub process is
killed with SIGKILL three times at random points and started again. Afterwards every pop a
console received has its audit row (who was shown which member, for which call) and every
call it popped has its ``call_attempts`` row: the hub's write-ahead journal
(:mod:`cti.hub.persist`) replays what the killed process had not committed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm_bridge.auth import hash_password
from crm_bridge.db import make_engine, session_scope
from crm_bridge.models import Agent, AuditLog, CallAttempt, Member, MemberPhone, Role
from cti.pbxsim import AgentSpec, Dist, PbxSimulator, QueueSpec, Scenario
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

pytestmark = [pytest.mark.e2e]

AMI_SECRET = "sigkill-audit-secret"
AGENTS = ("1001", "1002", "1003")
MEMBERS = 12


def _seed(url: str) -> None:
    engine = make_engine(url)
    with session_scope(engine) as s:
        pw = hash_password("pw-audit")
        for code in AGENTS:
            s.add(Agent(code=code, extension=code, name=f"Agent {code}", role=Role.AGENT,
                        password_hash=pw))  # fmt: skip
        for i in range(MEMBERS):
            m = Member(member_no=f"A{i:03d}", name=f"会员{i}", joined_on=dt.date(2025, 1, 1))
            m.phones.append(MemberPhone(e164=f"+861390001{i:04d}"))
            s.add(m)
    engine.dispose()


class PopSpy:
    """Every screen pop that reached a bot console: (agent code, call id)."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    def attach(self, bot: AgentBot) -> None:
        inner = bot._on_push

        def spy(name: str, data: dict[str, Any]) -> None:
            if name == "screen_pop" and data.get("call_id"):
                self.seen.add((bot.agent, str(data["call_id"])))
            inner(name, data)

        bot._on_push = spy  # type: ignore[method-assign]


async def _bots(port: int, spy: PopSpy) -> list[AgentBot]:
    return await start_bots(port, AGENTS, "pw-audit", prepare=spy.attach, wrap_s=(0.2, 0.1))


async def _traffic(sim: PbxSimulator, rng: random.Random, stop: asyncio.Event) -> None:
    """An inbound call every ~0.25 s: known members, sometimes an unknown number."""
    n = 0
    while not stop.is_set():
        n += 1
        num = f"+861390001{rng.randrange(MEMBERS):04d}" if rng.random() < 0.8 else f"+86137{n:08d}"
        try:
            await sim.inbound_call(num, "", patience=20.0)
        except Exception:  # the simulator may be at its call cap
            pass
        await asyncio.sleep(rng.uniform(0.1, 0.4))


def _stored(url: str) -> tuple[set[tuple[str, str]], set[str]]:
    engine = make_engine(url)
    with session_scope(engine) as s:
        audits = {
            (a.actor.removeprefix("agent:"), str((a.details or {}).get("call_id")))
            for a in s.scalars(select(AuditLog))
            if a.action == "profile.pop" or a.action.startswith("pop.")
        }
        keys = {str(k) for k in s.scalars(select(CallAttempt.attempt_key))}
    engine.dispose()
    return audits, keys


async def test_sigkill_during_pops_and_wrapups_loses_no_audit_and_no_call_row(
    sqlite_url: str, tmp_path: Path
) -> None:
    _seed(sqlite_url)
    scenario = Scenario(
        seed=5,
        time_scale=0.25,
        queues=(QueueSpec("members", members=AGENTS, strategy="ringall"),),
        agents=tuple(
            AgentSpec(a, ring_time=Dist("fixed", 0.6), talk_time=Dist("fixed", 2.0)) for a in AGENTS
        ),
    )
    rng = random.Random(20261204)
    spy = PopSpy()
    stop = asyncio.Event()
    traffic: asyncio.Task[None] | None = None
    bots: list[AgentBot] = []
    kills = 0
    async with pbx_simulator(scenario, users={AMI_USER: AMI_SECRET}, auth_fail_delay=0.05) as sim:
        hub_port = free_port()
        conf = serve_config(
            tmp_path / "memberline.toml",
            database_url=sqlite_url,
            ami_port=sim.port,
            hub_port=hub_port,
        )
        serve = ServeProcess(conf, hub_name="hub-a", env={"MEMBERLINE_AMI_SECRET": AMI_SECRET})
        await serve.start()
        try:
            bots = await _bots(hub_port, spy)
            traffic = asyncio.create_task(_traffic(sim, rng, stop))
            loop = asyncio.get_running_loop()
            for _ in range(3):
                before = len(spy.seen)
                deadline = loop.time() + 30
                while len(spy.seen) < before + 3:  # pops (and so wrap-ups) are under way
                    assert loop.time() < deadline, "no pops reached the consoles"
                    await asyncio.sleep(0.05)
                await asyncio.sleep(rng.uniform(0.0, 1.5))  # a random point of the traffic
                await serve.kill()  # SIGKILL: no cleanup of any kind
                kills += 1
                await stop_bots(bots)
                await serve.start()
                bots = await _bots(hub_port, spy)
            await asyncio.sleep(2.0)
            stop.set()
            await traffic
            await asyncio.sleep(2.0)
        finally:
            stop.set()
            if traffic is not None and not traffic.done():
                traffic.cancel()
            await stop_bots(bots)
            await serve.stop()

    assert kills == 3
    audits, keys = _stored(sqlite_url)
    assert len(spy.seen) >= 12, spy.seen
    missing_audit = spy.seen - audits
    assert not missing_audit, f"pops delivered but not audited: {sorted(missing_audit)}"
    missing_rows = {c for _, c in spy.seen} - {k.removeprefix("call:") for k in keys}
    assert not missing_rows, f"popped calls without a call row: {sorted(missing_rows)}"
