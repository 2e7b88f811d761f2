"""The hub owns each agent's desk (issue 12), over the real hub, AMI client and PBX simulator.

* A ringall call pops on every ringing console; the moment one agent answers, the others
  get ``pop_withdrawn`` and the call, its wrap-up and its disposition are the answerer's.
* After-call work: paused with reason ``wrap-up`` until the disposition; a pause asked for
  meanwhile is applied after it; past the maximum the call goes to the unfinished list.
* A PBX restart with the early-login race (QueueStatus refused until app_queue loads)
  and members reset unpaused: the hub re-applies every queue login and pause.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine

from cti.hubproto import ErrorCode, ProtocolError
from cti.pbxsim import AgentSpec, InboundSpec, QueueSpec, Scenario
from cti.pbxsim.scenario import NumberOverride, fixed
from cti.tracker import AgentState
from tests.cti.hub_stack import IFACE, Stack, pbx_stack
from tests.cti.hub_support import LI_WEI, Console, seed

pytestmark = pytest.mark.e2e


def ringall() -> Scenario:
    """One ringall queue with 1001 and 1002 (static); the test answers for the agents."""
    return Scenario(
        time_scale=0.2,
        queues=(
            QueueSpec(
                "members",
                exten="8000",
                strategy="ringall",
                members=("1001", "1002"),
                timeout=60.0,
                max_wait=600.0,
            ),
            QueueSpec("support-dyn", exten="8003", members=(), timeout=60.0, max_wait=600.0),
        ),
        agents=tuple(
            AgentSpec(ext, auto_answer=False, auto_hangup=False, ring_time=fixed(0.2))
            for ext in ("1001", "1002")
        ),
        inbound=InboundSpec(patience=fixed(600.0)),
        overrides={LI_WEI: NumberOverride(outcome="answer", ring_time=0.5, talk_time=600.0)},
    )


def member(st: Stack, ext: str, queue: str = "members") -> tuple[bool, str] | None:
    """(paused, reason) of the member in the simulator's queue, None when not a member."""
    m = st.sim.state.queues[queue].member(IFACE[ext])
    return None if m is None else (m.paused, m.paused_reason)


async def test_ringall_pop_is_withdrawn_and_only_the_answerer_wraps_up(engine: Engine) -> None:
    seed(engine)
    async with pbx_stack(engine, ringall()) as st:
        async with Console(st.hub, "1001") as c1, Console(st.hub, "1002") as c2:
            call = await st.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
            call_id = str(call.linkedid)
            await c1.wait_for("screen_pop", lambda d: d["call_id"] == call_id)
            await c2.wait_for("screen_pop", lambda d: d["call_id"] == call_id)
            await st.sim.agent_answer(IFACE["1002"])
            gone = await c1.wait_for("pop_withdrawn", lambda d: d["call_id"] == call_id)
            assert gone["reason"] == "answered_elsewhere"  # the answerer may not be known yet
            up = await c2.wait_for(
                "call_state", lambda d: d["call_id"] == call_id and d["state"] == "up"
            )
            assert up["agent"] == "1002" and up["direction"] == "inbound"
            assert all(not d["wrapup_due"] for d in c1.of("call_state"))
            with pytest.raises(ProtocolError) as err:
                await c1.request("wrapup", call_id=call_id, disposition="satisfied")
            assert err.value.code is ErrorCode.FORBIDDEN

            # mid-call the agent asks for a break: remembered, applied after the wrap-up
            res = await c2.request("pause", reason="break")
            assert res == {"deferred": True}
            await c2.request("hangup", call_id=call_id)
            ended = await c2.wait_for(
                "call_state", lambda d: d["call_id"] == call_id and d["state"] == "ended"
            )
            assert ended["wrapup_due"] is True
            await st.wait(lambda: member(st, "1002") == (True, "wrap-up"), what="wrap-up pause")
            view = st.hub.tracker.agent(IFACE["1002"])
            assert view is not None and view.state is AgentState.WRAP_UP
            assert member(st, "1001") == (False, "")  # the other agent is not touched
            await c2.request("wrapup", call_id=call_id, disposition="satisfied")
            await st.wait(lambda: member(st, "1002") == (True, "break"), what="the break applied")
            assert all(not d["wrapup_due"] for d in c1.of("call_state"))


async def test_wrapup_past_its_maximum_becomes_an_unfinished_call(engine: Engine) -> None:
    seed(engine)
    async with pbx_stack(engine, ringall(), wrapup_max_s=1.0) as st:
        async with Console(st.hub, "1001") as c1, Console(st.hub, "9001") as sup:
            call = await st.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
            call_id = str(call.linkedid)
            await c1.wait_for("screen_pop", lambda d: d["call_id"] == call_id)
            await st.sim.agent_answer(IFACE["1001"])
            await c1.wait_for("call_state", lambda d: d["state"] == "up")
            await c1.request("hangup", call_id=call_id)
            await st.wait(lambda: member(st, "1001") == (True, "wrap-up"), what="wrap-up pause")
            note = await c1.wait_for("notice", lambda d: d.get("kind") == "unfinished", within=4)
            assert note["call_id"] == call_id
            await st.wait(lambda: member(st, "1001") == (False, ""), what="available again")
            mine = (await c1.request("unfinished_calls"))["calls"]
            assert [c["call_id"] for c in mine] == [call_id] and not mine[0]["stale"]
            with pytest.raises(ProtocolError):
                await c1.request("unfinished_calls", agent="1002")
            agents = {a["agent"]: a for a in (await sup.request("agents_list"))["agents"]}
            assert agents["1001"]["unfinished"] == 1 and agents["1002"]["unfinished"] == 0
            await c1.request("wrapup", call_id=call_id, disposition="inquiry")
            assert (await c1.request("unfinished_calls"))["calls"] == []


async def test_pbx_restart_with_early_login_race_reapplies_logins_and_pauses(
    engine: Engine,
) -> None:
    seed(engine)
    scen = ringall()
    async with pbx_stack(engine, scen) as st:
        # app_queue answers "Invalid/unknown command" for 0.4 s after the port reopens
        st.sim.boot_queue_delay, st.sim.boot_fully_delay = 0.4, 0.6
        # and the client stops waiting for FullyBooted after 50 ms (as with a late or filtered
        # FullyBooted): its QueueStatus is refused as unknown and must be retried, not dropped
        st.ami.boot_wait = 0.05
        async with Console(st.hub, "1001") as c1, Console(st.hub, "1002") as c2:
            await c2.request("queue_login", queue="support-dyn")
            await c2.request("pause", reason="lunch")
            await c1.request("pause", reason="break")
            await st.wait(lambda: member(st, "1002") == (True, "lunch"), what="lunch")
            await st.wait(lambda: member(st, "1001") == (True, "break"), what="break")
            await st.wait(lambda: member(st, "1002", "support-dyn") == (True, "lunch"), what="dyn")
            resyncs = st.ami.resyncs
            mark1, mark2 = c1.mark(), c2.mark()
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await st.sim.restart()
            assert member(st, "1001") == (False, "") and member(st, "1002", "support-dyn") is None
            await st.wait(
                lambda: (
                    member(st, "1001") == (True, "break")
                    and member(st, "1002") == (True, "lunch")
                    and member(st, "1002", "support-dyn") == (True, "lunch")
                ),
                within=5.0,
                what="every pause and queue login back",
            )
            assert loop.time() - t0 < 5.0
            assert "RequestBadFormat" in st.sim.event_names()  # the hub hit the race
            assert st.ami.resyncs > resyncs
            s1 = await c1.wait_for("agent_state", lambda d: d["reason"] == "break", after=mark1)
            assert s1["state"] == "paused"
            s2 = await c2.wait_for(
                "agent_state",
                lambda d: d["reason"] == "lunch" and "support-dyn" in d["queues"],
                after=mark2,
            )
            assert s2["state"] == "paused"


async def test_a_campaign_sets_its_own_wrapup_maximum(engine: Engine) -> None:
    """A campaign's ``settings.wrapup_max_s`` beats the queue's (here 1 s against 600 s).
    The hub learns a call's campaign from the runner (``call_origin``, wired in
    ``memberline.stack``); this test wires it to the campaign row directly."""
    from crm_bridge.db import session_scope
    from crm_bridge.models import CampaignKind, DialMode
    from tests.dialer.support import add_campaign

    seed(engine)
    with session_scope(engine) as s:
        camp = add_campaign(s, "quick wrap", CampaignKind.POST_PURCHASE, DialMode.PROGRESSIVE)
        camp.settings = {"wrapup_max_s": 1}
        campaign_id = camp.id
    async with pbx_stack(engine, ringall(), wrapup_max_s=600.0) as st:

        def origin(cid: str) -> dict[str, object] | None:
            rec = st.hub.calls.get(cid)  # the campaign "placed" every call from Li Wei's number
            if rec is None or rec.caller_num != LI_WEI:
                return None
            return {"campaign_id": campaign_id, "campaign": "quick wrap"}

        st.hub.call_origin = origin
        async with Console(st.hub, "1001") as c1:
            call = await st.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
            pop = await c1.wait_for("screen_pop")
            assert pop["call_id"] == str(call.linkedid)
            await st.sim.agent_answer(IFACE["1001"])
            up = await c1.wait_for("call_state", lambda d: d["state"] == "up")
            assert up["direction"] == "outbound" and up["campaign"] == "quick wrap"
            await c1.request("hangup", call_id=up["call_id"])
            await c1.wait_for("notice", lambda d: d.get("kind") == "unfinished", within=4)
            await st.wait(lambda: member(st, "1001") == (False, ""), what="available again")
