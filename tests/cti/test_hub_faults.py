"""Faults end to end: PBX restart mid-call, malformed AMI input, console flood."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.models import CallAttempt
from tests.cti.hub_stack import IFACE, Stack, pbx_stack
from tests.cti.hub_support import LI_WEI, Console, seed

pytestmark = pytest.mark.e2e


async def _answered_call(st: Stack, console: Console) -> str:
    call = await st.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
    await console.wait_for("screen_pop", lambda d: d["call_id"] == call.linkedid)
    await st.sim.agent_answer(IFACE["1001"])
    await console.wait_for(
        "call_state", lambda d: d["call_id"] == call.linkedid and d["state"] == "up"
    )
    return str(call.linkedid)


async def test_pbx_restart_mid_call_keeps_the_disposition(engine: Engine) -> None:
    seed(engine)
    async with pbx_stack(engine) as st, Console(st.hub, "1001") as c1:
        call_id = await _answered_call(st, c1)
        states: list[str] = []
        st.ami.on_state(states.append)
        restart = asyncio.ensure_future(st.sim.restart())
        # The PBX hangs the call up, then drops us; the console learns the call ended.
        await c1.wait_for("call_state", lambda d: d["call_id"] == call_id and d["state"] == "ended")
        await st.wait(lambda: "disconnected" in states, what="AMI disconnect")
        # Wrap-up while the PBX is away: it needs only the database.
        res = await c1.request(
            "wrapup", call_id=call_id, disposition="complaint", notes="cut off by restart"
        )
        assert res["attempt_id"]
        await restart
        await st.wait(
            lambda: st.ami.connected and states[-1] == "connected", within=10, what="reconnect"
        )
        # Resynced: the static member is back and available, and calls pop again.
        await st.wait(
            lambda: (
                (v := st.hub.tracker.agent(IFACE["1001"])) is not None
                and v.state.value == "available"
            ),
            what="resync",
        )
        call2 = await st.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
        await c1.wait_for("screen_pop", lambda d: d["call_id"] == call2.linkedid)
        await st.sim.agent_answer(IFACE["1001"])
        await c1.wait_for(
            "call_state", lambda d: d["call_id"] == call2.linkedid and d["state"] == "up"
        )
        await c1.request("hangup", call_id=call2.linkedid)
        await c1.wait_for(
            "call_state", lambda d: d["call_id"] == call2.linkedid and d["state"] == "ended"
        )
        await c1.request("wrapup", call_id=call2.linkedid, disposition="satisfied")
        await st.hub.writer.flush()
    with session_scope(engine) as s:
        rows = {r.attempt_key: r for r in s.scalars(select(CallAttempt))}
    assert rows[f"call:{call_id}"].disposition == "complaint"
    assert rows[f"call:{call_id}"].notes == "cut off by restart"
    assert rows[f"call:{call_id}"].ended_at is not None
    assert rows[f"call:{call2.linkedid}"].disposition == "satisfied"


async def test_malformed_ami_input_does_not_disturb_other_calls(engine: Engine) -> None:
    seed(engine)
    async with pbx_stack(engine) as st, Console(st.hub, "1001") as c1:
        states: list[str] = []
        st.ami.on_state(states.append)
        call = await st.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
        await c1.wait_for("screen_pop", lambda d: d["call_id"] == call.linkedid)
        junk = [
            b"\x00\xff\xfe binary garbage \x80\x81\r\n\r\n",
            b"no event header here\r\nFoo: bar\r\n\r\n",
            b"Event: AgentCalled\r\nQueue: members\r\n\r\n",  # missing every id
            b"Event: AgentConnect\r\nLinkedid: nope\r\nInterface: Local/1001@agents/n\r\n\r\n",
            b"Event: Hangup\r\nUniqueid: \r\nCause: x\r\n\r\n",
            b"Event: AgentCalled\r\nLinkedid: x\r\nInterface: Local/9999@agents/n\r\nCallerIDName: \xe6\x9d\r\n\r\n",
        ]
        for conn in list(st.sim._conns):
            for chunk in junk:
                conn.send_bytes(chunk)
        await st.sim.agent_answer(IFACE["1001"])
        await c1.wait_for(
            "call_state", lambda d: d["call_id"] == call.linkedid and d["state"] == "up"
        )
        await c1.request("hangup", call_id=call.linkedid)
        await c1.wait_for(
            "call_state", lambda d: d["call_id"] == call.linkedid and d["state"] == "ended"
        )
        await c1.request("wrapup", call_id=call.linkedid, disposition="satisfied")
        assert "disconnected" not in states and st.ami.connected
        assert [p["call_id"] for p in c1.of("screen_pop")] == [call.linkedid]
        await st.hub.writer.flush()
    with session_scope(engine) as s:
        rows = list(s.scalars(select(CallAttempt)))
    assert [(r.attempt_key, r.disposition) for r in rows] == [
        (f"call:{call.linkedid}", "satisfied")
    ]


async def test_two_consoles_of_one_agent_and_reconnect_state(engine: Engine) -> None:
    seed(engine)
    async with (
        pbx_stack(engine) as st,
        Console(st.hub, "1001") as desk,
        Console(st.hub, "1001") as laptop,
    ):
        call = await st.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
        await desk.wait_for("screen_pop", lambda d: d["call_id"] == call.linkedid)
        await laptop.wait_for("screen_pop", lambda d: d["call_id"] == call.linkedid)
        # A console that connects now (or reconnects) gets the state and the ringing pop again.
        async with Console(st.hub, "1001") as late:
            await late.wait_for("agent_state", lambda d: d["state"] == "ringing")
            await late.wait_for("call_state", lambda d: d["call_id"] == call.linkedid)
            await late.wait_for("screen_pop", lambda d: d["call_id"] == call.linkedid)
            snap = await late.request("state")
            assert snap["pop"]["call_id"] == call.linkedid
            assert snap["agent_state"]["state"] == "ringing"
        await st.sim.agent_answer(IFACE["1001"])
        await laptop.wait_for("call_state", lambda d: d["state"] == "up")
        await st.sim.agent_hangup(IFACE["1001"])
        await desk.wait_for("call_state", lambda d: d["state"] == "ended")
        async with Console(st.hub, "1001") as late:
            # Ended but not wrapped up: still shown after a reconnect.
            ended = await late.wait_for("call_state", lambda d: d["call_id"] == call.linkedid)
            assert ended["state"] == "ended"
            await late.request("wrapup", call_id=call.linkedid, disposition="satisfied")
        await desk.wait_for(
            "agent_state", lambda d: d["state"] == "available" and d["calls_today"] == 1
        )


async def test_agent_logging_in_while_rung_gets_the_pop(engine: Engine) -> None:
    seed(engine)
    async with pbx_stack(engine) as st:
        call = await st.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
        await st.wait(
            lambda: (r := st.hub.calls.get(call.linkedid)) is not None and "1001" in r.ringing
        )
        async with Console(st.hub, "1001") as c1:
            pop = await c1.wait_for("screen_pop", lambda d: d["call_id"] == call.linkedid)
            assert pop["kind"] == "member"
