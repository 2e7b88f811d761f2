"""The hub restarts while an agent is on a call: the new hub takes the call up again from
the AMI resync (CoreShowChannels + QueueStatus), pops it back on the agent's console, and
the hang-up and wrap-up land on the same call row."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.models import CallAttempt
from cti.ami.client import AmiClient
from cti.hub import HubServer, HubSettings
from cti.hubproto import ErrorCode, ProtocolError
from cti.pbxsim import PbxSimulator
from cti.tracker import AgentState, Tracker
from tests.cti.hub_stack import AMI_SECRET, IFACE, pbx_stack
from tests.cti.hub_support import LI_WEI, Console, seed

pytestmark = pytest.mark.e2e


@contextlib.asynccontextmanager
async def second_hub(engine: Engine, sim: PbxSimulator) -> AsyncIterator[HubServer]:
    """A new hub process's worth of state (fresh tracker, no calls) on the same PBX and DB."""
    hub = HubServer(HubSettings(port=0, outbound_context="members-out"), engine, tracker=Tracker())
    ami = AmiClient("127.0.0.1", sim.port, "memberline", AMI_SECRET, action_timeout=3.0)
    ami.subscribe(hub.on_ami_message)
    hub.attach_pbx(ami)
    try:
        await hub.start()
        await ami.start(fail_fast=True)
        yield hub
    finally:
        await ami.close()
        await hub.stop()


async def test_a_restarted_hub_takes_up_the_call_in_progress(engine: Engine) -> None:
    ids = seed(engine)
    async with pbx_stack(engine) as st:
        async with Console(st.hub, "1001") as c1:
            call = await st.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
            call_id = str(call.linkedid)
            await c1.wait_for("screen_pop", lambda d: d["call_id"] == call_id)
            await st.sim.agent_answer(IFACE["1001"])
            await c1.wait_for(
                "call_state", lambda d: d["call_id"] == call_id and d["state"] == "up"
            )
        await st.hub.writer.flush()
        await st.ami.close()
        await st.hub.stop()  # the hub goes away; the PBX keeps the call up

        async with second_hub(engine, st.sim) as hub2:
            await st.wait(
                lambda: (
                    (v := hub2.tracker.agent(IFACE["1001"])) is not None
                    and v.state is AgentState.ON_CALL
                ),
                what="agent on the call after the resync",
            )
            assert hub2.calls.get(call_id) is not None
            async with Console(hub2, "1001") as c2:
                pop = await c2.wait_for("screen_pop", lambda d: d["call_id"] == call_id)
                assert pop["kind"] == "member"
                assert pop["profile"]["member"]["id"] == ids.members["liwei"]
                state = await c2.wait_for("call_state", lambda d: d["call_id"] == call_id)
                assert state["state"] == "up"
            async with Console(hub2, "1002") as other:  # still 1001's call only
                with pytest.raises(ProtocolError) as err:
                    await other.request("hangup", call_id=call_id)
                assert err.value.code is ErrorCode.FORBIDDEN
            async with Console(hub2, "1001") as c2:
                await c2.request("hangup", call_id=call_id)
                await c2.wait_for(
                    "call_state", lambda d: d["call_id"] == call_id and d["state"] == "ended"
                )
                res = await c2.request(
                    "wrapup", call_id=call_id, disposition="satisfied", notes="after a restart"
                )
                assert res["attempt_id"]
            await hub2.writer.flush()
    with session_scope(engine) as s:
        rows = s.scalars(select(CallAttempt).where(CallAttempt.attempt_key == f"call:{call_id}"))
        row = rows.one()  # the same row before and after the restart, not a second one
    assert row.disposition == "satisfied" and row.notes == "after a restart"
    assert row.agent_id == ids.agents["1001"] and row.member_id == ids.members["liwei"]
    assert row.ended_at is not None and row.hangup_by == "agent"
