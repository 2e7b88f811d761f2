"""An agent shift over the real hub, campaign runner and PBX simulator (issue 12).

Five agents on a ringall queue: three human consoles (Textual Pilot, pressing the
disposition hotkey when their wrap-up screen appears) and two bots (hub clients that
wrap up what the hub says they owe). 60 inbound calls and a progressive campaign flow
through the queue; the simulated phones answer (the fastest ringing phone wins) and hang
up by themselves. Checked:

* every answered call ends with exactly one disposition, by its answering agent;
* no console ever shows a wrap-up for a call another agent answered;
* a wrap-up screen is never replaced by the next call;
* a break asked for mid-call is applied after that call's wrap-up, not before;
* campaign calls reach the consoles as outbound, with their campaign.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from textual.pilot import Pilot

from agent_tui.app import ConsoleApp
from agent_tui.screens.wrapup import WrapUpScreen
from crm_bridge.db import session_scope
from crm_bridge.models import (
    Agent,
    AuditLog,
    CallAttempt,
    CallListEntry,
    CampaignKind,
    DialMode,
    Member,
    MemberPhone,
    Role,
)
from cti.hub import HubServer, HubSettings
from cti.pbxsim import AgentSpec, Dist, InboundSpec, PbxSimulator, QueueSpec, Scenario
from cti.pbxsim.scenario import NumberOverride
from cti.tracker import CallAnswered
from dialer.dial_rules import DialRetryPolicy
from dialer.runner import CampaignRunner, RunnerSettings
from memberline.testing import AMI_USER, hub_on_pbx, pbx_simulator, runner_on_hub, shifted_clock
from tests.agent_tui import stack as console_stack
from tests.agent_tui.stack import LI_WEI, log_in
from tests.cti.hub_support import Console
from tests.dialer.support import add_campaign

pytestmark = pytest.mark.e2e

HUMANS = ("1001", "1002", "1003")
BOTS = ("1004", "1005")
AGENTS = HUMANS + BOTS
ZHANG = "+8613600136000"
CAMPAIGN_NUMBERS = [f"+86139000001{i:02d}" for i in range(8)]
INBOUND_CALLS = 60
# Noon in Shanghai on a weekday: inside every member's calling window whatever the real time.
BASE = dt.datetime(2026, 6, 1, 4, 0, tzinfo=dt.UTC).timestamp()
AMI_SECRET = "shift-ami"


def iface(ext: str) -> str:
    return f"Local/{ext}@agents/n"


def scenario() -> Scenario:
    return Scenario(
        seed=12,
        time_scale=0.02,  # 1 simulated second = 20 ms
        queues=(
            QueueSpec(
                "members",
                exten="8000",
                strategy="ringall",
                members=AGENTS,
                timeout=30.0,
                max_wait=6000.0,
            ),
        ),
        agents=tuple(
            AgentSpec(
                ext,
                ring_time=Dist("uniform", 2.0, 1.5, 0.3),
                talk_time=Dist("uniform", 15.0, 5.0, 8.0),
            )
            for ext in AGENTS
        ),
        inbound=InboundSpec(patience=Dist("fixed", 6000.0)),
        overrides={
            n: NumberOverride(outcome="answer", ring_time=2.0, talk_time=6000.0)
            for n in CAMPAIGN_NUMBERS
        },
    )


def seed(engine: Engine) -> int:
    """Agents 1001-1005 (+ the console stack's members); a progressive campaign of 8."""
    console_stack.seed(engine)
    with session_scope(engine) as s:
        pw = s.scalars(select(Agent.password_hash).where(Agent.code == "1001")).one()
        for code in ("1003", "1004", "1005"):
            s.add(
                Agent(
                    code=code,
                    extension=code,
                    name=f"Agent {code}",
                    role=Role.AGENT,
                    password_hash=pw,
                )
            )
        c = add_campaign(s, "shift-campaign", CampaignKind.POST_PURCHASE, DialMode.PROGRESSIVE)
        for i, num in enumerate(CAMPAIGN_NUMBERS):
            m = Member(
                member_no=f"S{i:03d}",
                name=f"活动会员{i}",
                joined_on=dt.date(2025, 1, 1),
                timezone="Asia/Shanghai",
            )
            m.phones.append(MemberPhone(e164=num))
            s.add(m)
            s.flush()
            s.add(CallListEntry(campaign_id=c.id, member_id=m.id, phone_e164=num))
        return c.id


@dataclass
class Rig:
    sim: PbxSimulator
    hub: HubServer
    runner: CampaignRunner


@contextlib.asynccontextmanager
async def shift_stack(engine: Engine) -> AsyncIterator[Rig]:
    """PBX simulator, AMI client, hub and campaign runner, wired as ``memberline serve``
    wires them (:mod:`memberline.testing`), on one shifted clock (so the calling window is
    open)."""
    clock = shifted_clock(BASE)
    async with (
        pbx_simulator(scenario(), users={AMI_USER: AMI_SECRET}, auth_fail_delay=0.05) as sim,
        hub_on_pbx(
            engine,
            sim,
            HubSettings(port=0, login_attempts_per_minute=50, wrapup_max_s=0.0),
            clock=clock,
            ami={"secret": AMI_SECRET},
            ready=lambda h: len(h.tracker.agents()) >= len(AGENTS),
        ) as hub_rig,
        runner_on_hub(
            engine,
            hub_rig,
            RunnerSettings(owner="shift", tick_s=0.2, ring_timeout_s=30, policy=DialRetryPolicy()),
            clock=clock,
        ) as runner,
    ):
        yield Rig(sim, hub_rig.hub, runner)


@dataclass
class Human:
    """One Pilot console and what it showed."""

    code: str
    app: ConsoleApp
    pilot: Pilot[Any]
    wrapups_shown: list[str] = field(default_factory=list)
    open_wrapup: str | None = None
    sent: set[str] = field(default_factory=set)
    pressed_at: float = 0.0
    displaced: list[str] = field(default_factory=list)

    def wrapup_screen(self) -> WrapUpScreen | None:
        return next((s for s in self.app.screen_stack if isinstance(s, WrapUpScreen)), None)

    async def step(self) -> None:
        """Look at the screen; wrap up what is shown (after a moment's thought)."""
        screen = self.wrapup_screen()
        if self.open_wrapup is not None and (screen is None or screen.call_id != self.open_wrapup):
            if self.open_wrapup not in self.sent:
                self.displaced.append(self.open_wrapup)  # gone without its disposition
            self.open_wrapup = None
        if screen is None:
            return
        if screen.call_id != self.open_wrapup:
            self.open_wrapup = screen.call_id
            self.wrapups_shown.append(screen.call_id)
            return  # think first
        now = time.monotonic()
        if self.app.screen is screen and (
            screen.call_id not in self.sent or now - self.pressed_at > 1.0
        ):
            self.sent.add(screen.call_id)  # (again, if the key landed before the screen had focus)
            self.pressed_at = now
            await self.pilot.press("s")


class Bot:
    """A hub client that wraps up every call the hub says it owes."""

    def __init__(self, hub: HubServer, code: str) -> None:
        self.code = code
        self.console = Console(hub, code, console_stack.PASSWORD)
        self.done: set[str] = set()

    async def step(self) -> None:
        for d in self.console.of("call_state"):
            cid = d["call_id"]
            if d.get("wrapup_due") and cid not in self.done:
                self.done.add(cid)
                await self.console.request("wrapup", call_id=cid, disposition="inquiry")


async def test_an_agent_shift(engine: Engine) -> None:
    campaign_id = seed(engine)
    async with shift_stack(engine) as rig, contextlib.AsyncExitStack() as stack:
        humans: list[Human] = []
        for code in HUMANS:
            app = ConsoleApp("127.0.0.1", rig.hub.port, reconnect_initial=0.05)
            pilot = await stack.enter_async_context(app.run_test(size=(80, 24)))
            await log_in(pilot, code, console_stack.PASSWORD)
            humans.append(Human(code, app, pilot))
        bots = [Bot(rig.hub, code) for code in BOTS]
        for bot in bots:
            await stack.enter_async_context(bot.console)
        await rig.runner.start()

        # 60 inbound calls, one every 80 ms, while the campaign dials
        async def arrivals() -> None:
            for i in range(INBOUND_CALLS):
                number = LI_WEI if i % 2 else ZHANG
                await rig.sim.inbound_call(number, "Caller", queue="members")
                await asyncio.sleep(0.08)

        feeder = asyncio.ensure_future(arrivals())
        pause_asked: dict[str, Any] = {}
        answered_1001: list[str] = []

        def on_event(ev: object) -> None:
            """The hub's domain events: 1001's first answered call (asked a break during it)."""
            if isinstance(ev, CallAnswered) and ev.interface == iface("1001"):
                answered_1001.append(ev.conversation_id)

        rig.hub.listeners.append(on_event)
        h1 = humans[0]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120  # a hang guard, not a speed target (about 35 s here)

        def campaign_done() -> bool:
            """Nothing in flight, and every entry dialled at least once (an entry whose call
            found no free agent within 2 s is abandoned and due again later, per policy)."""
            with session_scope(engine) as s:
                left = s.scalar(
                    select(func.count())
                    .select_from(CallListEntry)
                    .where(CallListEntry.campaign_id == campaign_id, CallListEntry.attempts == 0)
                )
            return left == 0 and all(c["in_flight"] == 0 for c in rig.runner.status())

        checks = 0
        while True:
            for h in humans:
                await h.step()
            for b in bots:
                await b.step()
            # mid-call, agent 1001 asks for a break (once): deferred until its wrap-up ends
            if not pause_asked and answered_1001:
                call_id = answered_1001[0]
                res = await h1.app.call_hub("pause", reason="break")
                pause_asked.update(call=call_id, result=res)
            if pause_asked.get("call") and "applied" not in pause_asked:
                m = rig.sim.state.queues["members"].member(iface("1001"))
                if m is not None and m.paused and m.paused_reason == "break":
                    pause_asked["applied"] = True
                    pause_asked["wrapped_before"] = pause_asked["call"] in h1.sent
                    await h1.app.call_hub("unpause")  # back to work
            await asyncio.sleep(0.05)
            checks += 1
            if feeder.done() and checks % 10 == 0:
                idle = rig.sim.active_calls() == 0 and not any(
                    a.state.value in ("on_call", "ringing", "wrap_up")
                    for a in rig.hub.tracker.agents()
                )
                if idle and campaign_done():
                    break
            if loop.time() > deadline:
                with session_scope(engine) as s:
                    entries = s.execute(
                        select(
                            CallListEntry.status, CallListEntry.attempts, CallListEntry.last_outcome
                        )
                    ).all()
                state = {
                    "active_calls": rig.sim.active_calls(),
                    "agents": [
                        (a.interface, a.state.value, a.pause_reason, a.paused_queues)
                        for a in rig.hub.tracker.agents()
                    ],
                    "entries": entries,
                    "humans": [
                        (
                            h.code,
                            [type(x).__name__ for x in h.app.screen_stack],
                            h.open_wrapup,
                            len(h.wrapups_shown),
                        )
                        for h in humans
                    ],
                    "bots": [(b.code, len(b.done)) for b in bots],
                    "desks": {c: (d.wrapup_call, d.wanted_pause) for c, d in rig.hub.desks.items()},
                    "runner": rig.runner.status(),
                    "fed": feeder.done(),
                    "notes": [(h.code, [n.message for n in h.app._notifications]) for h in humans],
                    "sent": [(h.code, sorted(h.sent)) for h in humans],
                }
                raise AssertionError(f"the shift did not finish in time: {state}")
        await feeder

        # --- every answered call: exactly one disposition, by its answering agent
        with session_scope(engine) as s:
            codes = dict(s.execute(select(Agent.id, Agent.code)).all())
            answered = s.execute(
                select(
                    CallAttempt.id,
                    CallAttempt.agent_id,
                    CallAttempt.disposition,
                    CallAttempt.direction,
                    CallAttempt.campaign_id,
                    CallAttempt.channel_id,
                    CallAttempt.attempt_key,
                ).where(CallAttempt.answered_at.is_not(None), CallAttempt.agent_id.is_not(None))
            ).all()
            wrapups = s.execute(
                select(AuditLog.actor, AuditLog.details).where(AuditLog.action == "call.wrapup")
            ).all()
        assert len([r for r in answered if r.campaign_id is None]) == INBOUND_CALLS
        assert [r for r in answered if r.campaign_id == campaign_id]  # some reached an agent
        by_attempt: dict[int, list[str]] = {}
        for actor, details in wrapups:
            by_attempt.setdefault(int(details["attempt_id"]), []).append(actor)
        owner_of: dict[str, str] = {}
        for row in answered:
            assert row.disposition is not None, (
                f"attempt {row.id} has no disposition: {row} {codes[row.agent_id]} {[(h.code, h.wrapups_shown, h.sent) for h in humans]} {[(b.code, sorted(b.done)) for b in bots]}"
            )
            owner = codes[row.agent_id]
            assert by_attempt.get(row.id) == [f"agent:{owner}"], (row.id, by_attempt.get(row.id))
            cid = row.attempt_key[5:] if row.attempt_key.startswith("call:") else row.channel_id
            owner_of[str(cid)] = owner
        served = {codes[r.agent_id] for r in answered}
        assert set(HUMANS) <= served and set(BOTS) & served

        # --- no console showed another agent's call in wrap-up, none was displaced
        for h in humans:
            assert h.wrapups_shown, f"{h.code} wrapped up nothing"
            assert all(owner_of[c] == h.code for c in h.wrapups_shown), h.code
            assert h.displaced == [], (h.code, h.displaced)
            assert len(h.wrapups_shown) == len(set(h.wrapups_shown))
            assert h.app.book.awaiting_wrapup() == []

        # --- the mid-call break: deferred, then applied only after that call's wrap-up
        assert pause_asked["result"] == {"deferred": True}
        assert pause_asked.get("applied") and pause_asked["wrapped_before"]

        # --- campaign calls reached the consoles as outbound, with their campaign
        pushed = [d for b in bots for d in b.console.of("call_state") if d.get("campaign_id")]
        if pushed:
            assert all(d["direction"] == "outbound" and d["campaign"] for d in pushed)
