"""Shared set-up for the hub tests: a small seeded database and a running hub."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from crm_bridge.auth import hash_password
from crm_bridge.db import session_scope
from crm_bridge.models import Agent, Member, MemberPhone, RewardItem, Role, Tier
from cti.hub import HubServer, HubSettings
from cti.hubproto.client import HubClient

PASSWORD = "s3cret-pw"

LI_WEI = "+8613800138000"
"""One member (Li Wei, maintained by 1001)."""
SHARED = "+8613900139000"
"""Two members share this number (a chooser)."""
UNKNOWN = "+8613700137000"


@dataclass
class Seed:
    agents: dict[str, int] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)


_HASH: list[str] = []


def _pw_hash() -> str:
    if not _HASH:
        _HASH.append(hash_password(PASSWORD))
    return _HASH[0]


def seed(engine: Engine) -> Seed:
    out = Seed()
    with session_scope(engine) as s:
        for code, role in (("1001", Role.AGENT), ("1002", Role.AGENT), ("9001", Role.SUPERVISOR)):
            a = Agent(
                code=code, extension=code, name=f"Agent {code}", role=role, password_hash=_pw_hash()
            )
            s.add(a)
            s.flush()
            out.agents[code] = a.id
        joined = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=200)  # dormant, win-back age

        def member(key: str, name: str, phone: str, agent: str | None, points: int = 0) -> None:
            m = Member(
                member_no=f"M{len(out.members) + 1:06d}",
                name=name,
                joined_on=joined,
                tier=Tier.GOLD,
                points_balance=points,
                email=f"{key}@example.com",
                maintaining_agent_id=out.agents[agent] if agent else None,
            )
            m.phones.append(MemberPhone(e164=phone))
            s.add(m)
            s.flush()
            out.members[key] = m.id

        member("liwei", "李伟", LI_WEI, "1001", points=5000)
        member("twin_a", "Wang Fang", SHARED, "1002")
        member("twin_b", "王芳", SHARED, None)
        member("other", "Zhang San", "+8613600136000", "1002", points=100)
        s.add(RewardItem(code="MUG", name="Mug", name_zh="杯子", points_cost=1200))
    return out


@contextlib.asynccontextmanager
async def running_hub(engine: Engine, **overrides: Any) -> AsyncIterator[HubServer]:
    settings = HubSettings(port=0, **overrides)
    hub = HubServer(settings, engine)
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


class Console:
    """A HubClient that records every push, with a helper to wait for one."""

    def __init__(self, hub: HubServer, agent: str, password: str = PASSWORD) -> None:
        import asyncio

        self.client = HubClient("127.0.0.1", hub.port, agent, password, reconnect_initial=0.05)
        self.pushes: list[tuple[str, dict[str, Any]]] = []
        self._event = asyncio.Event()
        self.client.on_push(self._on_push)

    def _on_push(self, name: str, data: dict[str, Any]) -> None:
        self.pushes.append((name, data))
        self._event.set()

    def of(self, name: str) -> list[dict[str, Any]]:
        return [d for n, d in self.pushes if n == name]

    def mark(self) -> int:
        """A position in the push history: ``wait_for(..., after=mark)`` ignores older pushes."""
        return len(self.pushes)

    async def wait_for(
        self, name: str, pred: Any = None, within: float = 5.0, after: int = 0
    ) -> dict[str, Any]:
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        seen = after
        while True:
            for n, d in self.pushes[seen:]:
                if n == name and (pred is None or pred(d)):
                    return d
            seen = len(self.pushes)
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"no {name} push matching; got {[n for n, _ in self.pushes]}")
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), left)
            except TimeoutError:
                pass

    async def __aenter__(self) -> Console:
        await self.client.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    async def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        return await self.client.request(cmd, **args)
