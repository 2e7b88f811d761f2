"""The real thing on loopback for the console's Pilot flows: PBX simulator <-> AMI client
<-> tracker <-> hub, a seeded SQLite database, and helpers to drive a ConsoleApp."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from textual.pilot import Pilot

from agent_tui.app import ConsoleApp
from crm_bridge.auth import hash_password
from crm_bridge.db import session_scope
from crm_bridge.models import Agent, Member, MemberPhone, RewardItem, Role, Tier
from crm_bridge.purchases import record_purchase
from cti.pbxsim import Scenario
from cti.pbxsim.scenario import NumberOverride
from tests.cti import hub_stack, hub_support
from tests.cti.hub_support import Seed

PASSWORD = "consolepw1"
# The CTI tests' numbers and the simulator's agent interfaces (this stack builds on theirs).
LI_WEI, SHARED, UNKNOWN = hub_support.LI_WEI, hub_support.SHARED, hub_support.UNKNOWN
IFACE = hub_stack.IFACE

_HASH: list[str] = []


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
    """The CTI tests' PBX without the ``support`` queue: ``members`` rings 1001 only; the
    test answers and hangs up for the agents."""
    return hub_stack.scenario(
        support=False,
        overrides={LI_WEI: NumberOverride(outcome="answer", ring_time=0.3, talk_time=600.0)},
    )


@dataclass
class Stack(hub_stack.Stack):
    engine: Engine
    ids: Seed

    def app(self, **kw: Any) -> ConsoleApp:
        kw.setdefault("reconnect_initial", 0.05)
        return ConsoleApp("127.0.0.1", self.hub.port, **kw)


@contextlib.asynccontextmanager
async def console_stack(engine: Engine) -> AsyncIterator[Stack]:
    """The CTI tests' ``pbx_stack`` on this module's seed and scenario (the AMI client at
    its default ping, a looser resync bound, login throttling as the console tests need)."""
    ids = seed(engine)
    async with hub_stack.pbx_stack(
        engine, scenario(), ami_ping_s=10.0, resync_within=10.0, login_attempts_per_minute=20
    ) as st:
        yield Stack(st.sim, st.hub, st.ami, engine, ids)


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
