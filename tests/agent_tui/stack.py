"""The real thing on loopback for the console's Pilot flows: PBX simulator <-> AMI client
<-> tracker <-> hub, a seeded SQLite database, and helpers to drive a ConsoleApp."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from textual.pilot import Pilot

from agent_tui.app import ConsoleApp
from crm_bridge.auth import hash_password
from crm_bridge.db import session_scope
from crm_bridge.models import Agent, Member, MemberPhone, RewardItem, Role, Tier
from crm_bridge.purchases import record_purchase
from cti.ami.client import AmiClient
from cti.hub import HubServer, HubSettings
from cti.pbxsim import AgentSpec, InboundSpec, PbxSimulator, QueueSpec, Scenario
from cti.pbxsim.scenario import NumberOverride, fixed
from cti.tracker import Tracker

PASSWORD = "consolepw1"
AMI_SECRET = "ami-console-secret"
LI_WEI = "+8613800138000"
SHARED = "+8613900139000"
UNKNOWN = "+8613700137000"
IFACE = {"1001": "Local/1001@agents/n", "1002": "Local/1002@agents/n"}

_HASH: list[str] = []


@dataclass
class Seed:
    agents: dict[str, int] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)


def seed(engine: Engine) -> Seed:
    """Agents 1001, 1002, supervisor 9001; 李伟 (1001's, points, purchases), two members on
    one number, Zhang San (1002's); one reward."""
    if not _HASH:
        _HASH.append(hash_password(PASSWORD))
    out = Seed()
    now = dt.datetime.now(dt.UTC)
    with session_scope(engine) as s:
        for code, name, role in (
            ("1001", "王芳", Role.AGENT),
            ("1002", "Chen Jie", Role.AGENT),
            ("9001", "Supervisor Li", Role.SUPERVISOR),
        ):
            a = Agent(code=code, extension=code, name=name, role=role, password_hash=_HASH[0])
            s.add(a)
            s.flush()
            out.agents[code] = a.id

        def member(key: str, name: str, phone: str, agent: str | None, points: int = 0) -> int:
            m = Member(
                member_no=f"M{len(out.members) + 1:06d}",
                name=name,
                joined_on=dt.date(2022, 5, 1),
                tier=Tier.GOLD,
                points_balance=points,
                timezone="Asia/Shanghai",
                maintaining_agent_id=out.agents[agent] if agent else None,
            )
            m.phones.append(MemberPhone(e164=phone))
            s.add(m)
            s.flush()
            out.members[key] = m.id
            return m.id

        liwei = member("liwei", "李伟", LI_WEI, "1001", points=5000)
        member("twin_a", "Wang Fang", SHARED, "1002")
        member("twin_b", "王芳芳", SHARED, None)
        member("zhang", "Zhang San", "+8613600136000", "1002", points=100)
        s.add(RewardItem(code="MUG", name="Mug", name_zh="杯子", points_cost=1200))
        s.flush()
        record_purchase(
            s, liwei, Decimal("399.00"), now - dt.timedelta(days=8), "外套", "上海南京西路店"
        )
    return out


def scenario() -> Scenario:
    """Queue ``members`` rings 1001 only; the test answers and hangs up for the agents."""
    agents = tuple(
        AgentSpec(ext, auto_answer=False, auto_hangup=False, ring_time=fixed(0.2))
        for ext in ("1001", "1002")
    )
    return Scenario(
        time_scale=0.2,
        queues=(
            QueueSpec("members", exten="8000", members=("1001",), timeout=60.0, max_wait=600.0),
        ),
        agents=agents,
        inbound=InboundSpec(patience=fixed(600.0)),
        overrides={LI_WEI: NumberOverride(outcome="answer", ring_time=0.3, talk_time=600.0)},
    )


@dataclass
class Stack:
    sim: PbxSimulator
    hub: HubServer
    ami: AmiClient
    engine: Engine
    ids: Seed

    def app(self, **kw: Any) -> ConsoleApp:
        kw.setdefault("reconnect_initial", 0.05)
        return ConsoleApp("127.0.0.1", self.hub.port, **kw)


@contextlib.asynccontextmanager
async def console_stack(engine: Engine) -> AsyncIterator[Stack]:
    ids = seed(engine)
    sim = PbxSimulator(
        scenario(), ami_users={"memberline": AMI_SECRET}, auth_fail_delay=0.05, restart_gap=0.05
    )
    await sim.start("127.0.0.1", 0)
    hub = HubServer(
        HubSettings(port=0, outbound_context="members-out", login_attempts_per_minute=20),
        engine,
        tracker=Tracker(),
    )
    ami = AmiClient(
        "127.0.0.1", sim.port, "memberline", AMI_SECRET, action_timeout=3.0,
        reconnect_initial=0.05, reconnect_max=0.5,
    )  # fmt: skip
    ami.subscribe(hub.on_ami_message)
    hub.attach_pbx(ami)
    try:
        await hub.start()
        await ami.start(fail_fast=True)
        await until(lambda: hub.tracker.agent(IFACE["1001"]) is not None, what="AMI resync")
        yield Stack(sim, hub, ami, engine, ids)
    finally:
        await ami.close()
        await hub.stop()
        await sim.stop()


async def until(pred: Callable[[], Any], within: float = 10.0, what: str = "") -> None:
    """Wait for a condition driven by sockets (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not pred():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.02)


async def settle(
    pilot: Pilot[Any], pred: Callable[[], Any], within: float = 10.0, what: str = ""
) -> None:
    """Wait for a condition while the app processes messages (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not pred():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what or pred}")
        await pilot.pause(0.02)


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Type ASCII text key by key (spaces included)."""
    await pilot.press(*("space" if ch == " " else ch for ch in text))


async def log_in(pilot: Pilot[Any], agent: str, password: str = PASSWORD) -> None:
    """Type the credentials into the login screen and wait for the home screen."""
    from agent_tui.screens.home import HomeScreen

    app = pilot.app
    await settle(pilot, lambda: app.screen.__class__.__name__ == "LoginScreen", what="login")
    from textual.widgets import Input

    for box in ("#agent", "#password"):
        app.screen.query_one(box, Input).value = ""
    await pilot.click("#agent")
    await pilot.press(*agent, "enter", *password, "enter")
    await settle(pilot, lambda: isinstance(app.screen, HomeScreen), what="home screen")
    assert isinstance(app, ConsoleApp)
    await settle(pilot, lambda: app.agent_state is not None, what="first agent_state")
