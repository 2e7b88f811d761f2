"""Maintainer-first inbound routing end to end: PBX simulator (AMI + FastAGI client) <->
the ``route-inbound`` and ``hotline`` FastAGI routes <-> hub <-> consoles, on loopback.

The simulator runs the shipped dialplan's order: ``AGI(route-inbound)``, then
``Queue(maintainers)`` limited to the maintainer's penalty for ``ML_MAINTAINER_RING`` s, then
``Queue(members)``."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Engine

from crm_bridge.db import session_scope
from crm_bridge.models import Member, MemberPhone
from cti.hub.maintainer import MaintainerRoute
from cti.pbxsim import AgentSpec, InboundSpec, QueueSpec, Scenario
from cti.pbxsim.scenario import NumberOverride, fixed
from surveys.agi import SurveyAgiApplication, SurveyAgiRequest
from surveys.hotline import HotlineAgi
from tests.cti.hub_stack import IFACE, Stack, pbx_stack
from tests.cti.hub_support import LI_WEI, SHARED, Console, Seed, seed

pytestmark = pytest.mark.e2e

ORPHAN = "+8613500135000"
OTHER = "+8613600136000"  # Zhang San, maintained by 1002
STRANGER = "+8613700137999"  # no member
RING_S = 15.0  # the default; 1.5 s real at time_scale 0.1


def _scenario() -> Scenario:
    agents = tuple(
        AgentSpec(ext, auto_answer=False, auto_hangup=False, ring_time=fixed(0.2))
        for ext in ("1001", "1002")
    )
    return Scenario(
        time_scale=0.1,
        queues=(
            QueueSpec(
                "members", exten="8000", members=("1001", "1002"), timeout=60.0, max_wait=600.0
            ),
            QueueSpec("maintainers", exten="8009", members=(), timeout=60.0, max_wait=600.0),
        ),
        agents=agents,
        inbound=InboundSpec(patience=fixed(600.0)),
        overrides={
            SHARED: NumberOverride("answer", 0.0, None, ("2", "timeout", "0")),
            STRANGER: NumberOverride("answer", 0.0, None, ("0",)),
            # on the hotline: 0 pressed while the balance is being read
            LI_WEI: NumberOverride("answer", 0.0, None, ("early:0@hotline-balance",)),
        },
    )


def _seed(engine: Engine) -> Seed:
    ids = seed(engine)
    with session_scope(engine) as s:
        m = Member(member_no="M900001", name="孤儿", joined_on=dt.date(2024, 1, 1))
        m.phones.append(MemberPhone(e164=ORPHAN))
        s.add(m)
        s.flush()
        ids.members["orphan"] = m.id
    return ids


class _Routes:
    """The FastAGI server of ``memberline serve``: hotline and route-inbound."""

    def __init__(self, engine: Engine) -> None:
        self.hotline = HotlineAgi(engine, entry_timeout_ms=3000)
        self.stack: Stack | None = None
        self.app: SurveyAgiApplication | None = None
        self.server: asyncio.Server | None = None

    async def route(self, req: SurveyAgiRequest) -> None:
        assert self.stack is not None
        await MaintainerRoute(self.stack.hub).run(req)

    async def start(self) -> int:
        self.app = SurveyAgiApplication(header_timeout_s=2, reply_timeout_s=10)
        self.app.add_route("hotline", self.hotline.run)
        self.app.add_route("route-inbound", self.route)
        self.server = await asyncio.start_server(self.app.handler, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.app is not None:
            for t in list(self.app.connections):
                t.cancel()


@pytest.fixture
async def world(engine: Engine) -> AsyncIterator[tuple[Stack, Seed]]:
    ids = _seed(engine)
    routes = _Routes(engine)
    port = await routes.start()
    opts: dict[str, Any] = {"agi_port": port, "route_agi_path": "route-inbound"}
    try:
        async with pbx_stack(
            engine, _scenario(), sim_options=opts, maintainer_ring_s=RING_S
        ) as stack:
            routes.stack = stack
            yield stack, ids
    finally:
        await routes.close()


async def _join_maintainers(stack: Stack, console: Console, iface: str) -> None:
    await console.request("queue_login", queue="maintainers")
    await stack.wait(
        lambda: "maintainers" in (stack.hub.tracker.agent(iface) or _No()).queues,
        what="maintainers membership",
    )


class _No:
    queues: tuple[str, ...] = ()


def _route_of(stack: Stack, linkedid: str) -> str:
    for m in stack.sim.events:
        cmd = m.get("Command") or ""
        if (
            m.name == "AGIExecEnd"
            and cmd.startswith("SET VARIABLE ML_ROUTE")
            and (m.get("Linkedid") == linkedid)
        ):
            return cmd.split('"')[1]
    return ""


def _called(stack: Stack, linkedid: str) -> list[tuple[str, str]]:
    return [
        (m.get("Queue") or "", m.get("MemberName") or m.get("Interface") or "")
        for m in stack.sim.events
        if m.name == "AgentCalled" and m.get("Linkedid") == linkedid
    ]


async def test_available_maintainer_rings_first_and_the_pop_says_your_member(
    world: tuple[Stack, Seed],
) -> None:
    stack, ids = world
    async with Console(stack.hub, "1001") as c1, Console(stack.hub, "1002") as c2:
        await _join_maintainers(stack, c1, IFACE["1001"])
        call = await stack.sim.inbound_call(LI_WEI, "李伟", "members")
        pop = await c1.wait_for("screen_pop", within=10)
        assert pop["queue"] == "maintainers" and pop["your_member"] is True
        assert pop["kind"] == "member" and pop["profile"]["member"]["id"] == ids.members["liwei"]
        assert not c2.of("screen_pop")  # only the maintainer rings
        assert await stack.sim.agent_answer(IFACE["1001"])
        await stack.wait(lambda: stack.hub.calls.get(call.linkedid) is not None
                         and stack.hub.calls.get(call.linkedid).state == "up", what="up")  # type: ignore[union-attr]  # fmt: skip
        assert _called(stack, call.linkedid) == [("maintainers", "Agent 1001")]
        assert _route_of(stack, call.linkedid) == "maintainer"
        await stack.sim.agent_hangup(IFACE["1001"])
        assert await asyncio.wait_for(call.done, 10) == "agent"


async def test_a_static_member_who_never_joined_maintainers_leaves_quietly(
    world: tuple[Stack, Seed], caplog: pytest.LogCaptureFixture
) -> None:
    """1001 is a static member of ``members`` (like the demo's agents): its queue login is
    refused ("Already there") before the maintainer queue is joined, so the logout must not
    ask to leave ``maintainers`` (Asterisk answers "Not there" and the hub logged a warning
    per agent at every shutdown). 1002 joins both and leaves both."""
    from cti.hubproto.messages import ProtocolError

    stack, _ = world
    async with Console(stack.hub, "1001") as c1, Console(stack.hub, "1002") as c2:
        with pytest.raises(ProtocolError, match=r"(?i)already there"):
            await c1.request("queue_login")
        await c1.request("queue_logout")
        assert "maintainers" not in stack.hub.desk(stack.hub.agents_by_code["1001"]).queues
        await _join_maintainers(stack, c2, IFACE["1002"])
        await c2.request("queue_logout")
        await stack.wait(
            lambda: "maintainers" not in (stack.hub.tracker.agent(IFACE["1002"]) or _No()).queues,
            what="1002 left maintainers",
        )
    removes = [m for m in stack.sim.events if m.name == "QueueMemberRemoved"]
    assert [
        (m.get("Queue"), m.get("Interface")) for m in removes if m.get("Queue") == "maintainers"
    ] == [("maintainers", IFACE["1002"])]
    assert not [r for r in caplog.records if "could not leave" in r.getMessage()]


async def test_unanswered_maintainer_then_the_queue(world: tuple[Stack, Seed]) -> None:
    stack, _ = world
    async with Console(stack.hub, "1001") as c1, Console(stack.hub, "1002") as c2:
        await _join_maintainers(stack, c1, IFACE["1001"])
        call = await stack.sim.inbound_call(LI_WEI, "李伟", "members")
        await c1.wait_for("screen_pop", within=10)
        # 1001 lets it ring: after RING_S it goes to the queue and rings 1002 (and 1001 again)
        pop2 = await c2.wait_for("screen_pop", within=10)
        assert pop2["queue"] == "members" and pop2["your_member"] is False
        assert await stack.sim.agent_answer(IFACE["1002"])
        called = _called(stack, call.linkedid)
        assert called[0] == ("maintainers", "Agent 1001")
        assert ("members", "Agent 1002") in called[1:]
        await stack.sim.agent_hangup(IFACE["1002"])
        assert await asyncio.wait_for(call.done, 10) == "agent"


async def test_busy_maintainer_is_skipped(world: tuple[Stack, Seed]) -> None:
    stack, _ = world
    async with Console(stack.hub, "1001") as c1, Console(stack.hub, "1002") as c2:
        await _join_maintainers(stack, c1, IFACE["1001"])
        # 1001 takes another caller's call (Zhang San is 1002's, who is not in maintainers)
        first = await stack.sim.inbound_call(OTHER, "Zhang San", "members")
        await c1.wait_for("screen_pop", within=10)
        assert await stack.sim.agent_answer(IFACE["1001"])
        await stack.wait(lambda: stack.hub.agent_busy("1001"), what="1001 on a call")
        assert _route_of(stack, first.linkedid) == "logged_out"
        mark = c2.mark()
        call = await stack.sim.inbound_call(LI_WEI, "李伟", "members")
        pop = await c2.wait_for("screen_pop", lambda d: d["call_id"] == call.linkedid,
                                within=10, after=mark)  # fmt: skip
        assert pop["queue"] == "members" and pop["your_member"] is False
        assert _route_of(stack, call.linkedid) == "busy"
        assert all(q == "members" for q, _ in _called(stack, call.linkedid))
        await stack.sim.agent_hangup(IFACE["1001"])


@pytest.mark.parametrize(
    ("number", "route"), [(LI_WEI, "logged_out"), (ORPHAN, "none"), (SHARED, "unknown")]
)
async def test_no_maintainer_to_ring_goes_straight_to_the_queue(
    world: tuple[Stack, Seed], number: str, route: str
) -> None:
    stack, _ = world
    async with Console(stack.hub, "1002") as c2:  # 1001 (Li Wei's maintainer) is logged out
        call = await stack.sim.inbound_call(number, "", "members")
        pop = await c2.wait_for("screen_pop", within=10)
        assert pop["queue"] == "members" and pop["your_member"] is False
        assert _route_of(stack, call.linkedid) == route
        assert all(q == "members" for q, _ in _called(stack, call.linkedid))
        assert await stack.sim.agent_answer(IFACE["1002"])
        await stack.sim.agent_hangup(IFACE["1002"])
        assert await asyncio.wait_for(call.done, 10) == "agent"


async def test_hotline_zero_reaches_the_maintainer_whose_pop_says_what_was_heard(
    world: tuple[Stack, Seed],
) -> None:
    """A shared number (two members): the caller keys in member number 2 (Wang Fang, 1002's),
    hears her figures, is silent once (read again), then presses 0."""
    stack, ids = world
    async with Console(stack.hub, "1002") as c2:
        await _join_maintainers(stack, c2, IFACE["1002"])
        call = await stack.sim.inbound_call(SHARED, "", "members", hotline=True)
        pop = await c2.wait_for("screen_pop", within=15)
        assert pop["queue"] == "maintainers" and pop["your_member"] is True
        assert pop["kind"] == "member"  # not a chooser: the hotline identified her
        assert pop["profile"]["member"]["id"] == ids.members["twin_a"]
        assert pop["ivr"].startswith("Hotline heard: tier Gold, balance 0 points")
        assert "热线已播报" in pop["ivr"]
        assert await stack.sim.agent_answer(IFACE["1002"])
        await stack.sim.agent_hangup(IFACE["1002"])
        assert await asyncio.wait_for(call.done, 10) == "agent"


async def test_hotline_zero_from_an_unknown_number_pops_unknown_with_the_ivr_line(
    world: tuple[Stack, Seed],
) -> None:
    stack, _ = world
    async with Console(stack.hub, "1002") as c2:
        call = await stack.sim.inbound_call(STRANGER, "", "members", hotline=True)
        pop = await c2.wait_for("screen_pop", within=15)
        assert pop["queue"] == "members" and pop["kind"] == "unknown"
        assert pop["your_member"] is False
        assert pop["ivr"] == "Hotline: caller not identified / 热线：未识别会员"
        assert _route_of(stack, call.linkedid) == "unknown"
        assert await stack.sim.agent_answer(IFACE["1002"])
        await stack.sim.agent_hangup(IFACE["1002"])
        assert await asyncio.wait_for(call.done, 10) == "agent"


async def test_hotline_zero_mid_prompt_reaches_the_maintainer(world: tuple[Stack, Seed]) -> None:
    """Li Wei presses 0 while his balance is read: the tier was heard, the balance was not."""
    stack, ids = world
    async with Console(stack.hub, "1001") as c1:
        await _join_maintainers(stack, c1, IFACE["1001"])
        call = await stack.sim.inbound_call(LI_WEI, "李伟", "members", hotline=True)
        pop = await c1.wait_for("screen_pop", within=15)
        assert pop["queue"] == "maintainers" and pop["your_member"] is True
        assert pop["profile"]["member"]["id"] == ids.members["liwei"]
        assert pop["ivr"] == "Hotline heard: tier Gold / 热线已播报：金卡会员"
        ends = [
            (m.get("Command"), m.get("Result"))
            for m in stack.sim.events
            if m.name == "AGIExecEnd" and m.get("Linkedid") == call.linkedid
        ]
        assert ('STREAM FILE hotline-balance "0"', "Success") in ends
        dtmf = [m.get("Digit") for m in stack.sim.events if m.name == "DTMFEnd"]
        assert dtmf == ["0"]
        assert await stack.sim.agent_answer(IFACE["1001"])
        await stack.sim.agent_hangup(IFACE["1001"])
        assert await asyncio.wait_for(call.done, 10) == "agent"


def test_shipped_dialplan_runs_what_the_simulator_runs() -> None:
    """docs/asterisk: the member line asks route-inbound, rings the maintainers queue limited
    to the maintainer's penalty, then the queue; the hotline number runs the hotline route
    and, on 0, the member line (the order the simulator follows)."""
    from cti.hub.settings import HubSettings
    from memberline.config import Config
    from tests.dialer.test_dialplan import ASTERISK, match, parse_extensions

    plan = parse_extensions((ASTERISK / "extensions.conf").read_text(encoding="utf-8"))
    line = match(plan, "from-pstn", "8000")
    names = [a for a, _ in line]
    agi = next(d for a, d in line if a == "AGI")
    assert agi.endswith("/" + MaintainerRoute.ROUTE)
    mq = HubSettings().maintainer_queue
    assert mq == Config().ami.maintainer_queue
    assert [d.split(",")[0] for a, d in line if a == "Queue"] == [Config().ami.queue]
    assert names.index("AGI") < names.index("Gosub") < names.index("Queue")
    gosub = next(d for a, d in line if a == "Gosub")
    assert gosub == "maintainer-first,s,1(${ML_MAINTAINER_PENALTY},${ML_MAINTAINER_RING}"
    first = match(plan, "maintainer-first", "s")
    assert first == [
        ("Set", "LOCAL(QUEUE_MIN_PENALTY)=${ARG1}"),
        ("Set", "LOCAL(QUEUE_MAX_PENALTY)=${ARG1}"),
        ("Queue", f"{mq},t,,,${{ARG2}}"),
        ("Return", ""),
    ]
    hotline = match(plan, "hotline", "s")
    assert next(d for a, d in hotline if a == "AGI").endswith("/" + HotlineAgi.ROUTE)
    assert any(
        a == "GotoIf" and "HOTLINE_RESULT" in d and "from-pstn,8000" in d for a, d in hotline
    )
    assert ("Goto", "hotline,s,1") in match(plan, "from-pstn", "8100")
    text = (ASTERISK / "queues.conf").read_text(encoding="utf-8")
    assert f"[{mq}]" in text
