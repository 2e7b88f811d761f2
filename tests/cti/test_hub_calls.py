"""End to end over real sockets: PBX simulator <-> hub <-> protocol-level consoles."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.models import AuditLog, CallAttempt, CallbackTask, Member, MemberPhone
from cti.hubproto import ErrorCode, ProtocolError
from tests.cti.hub_stack import IFACE, pbx_stack
from tests.cti.hub_support import LI_WEI, SHARED, UNKNOWN, Console, seed

pytestmark = pytest.mark.e2e


def _rows(engine: Engine) -> list[CallAttempt]:
    with session_scope(engine) as s:
        return list(s.scalars(select(CallAttempt).order_by(CallAttempt.id)))


async def test_inbound_pop_answer_hangup_wrapup(sqlite_url: str) -> None:
    from crm_bridge.db import make_engine

    engine = make_engine(sqlite_url)
    ids = seed(engine)
    async with (
        pbx_stack(engine) as st,
        Console(st.hub, "1001") as c1,
        Console(st.hub, "1002") as c2,
    ):
        call = await st.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
        pop = await c1.wait_for("screen_pop")
        assert pop["call_id"] == call.linkedid and pop["kind"] == "member"
        assert pop["caller"]["number_masked"] == "+86 138****8000"
        assert pop["profile"]["member"]["name"] == "李伟"
        assert LI_WEI not in json.dumps(pop, ensure_ascii=False)
        # The pop came before the agent answered; the other agent saw nothing of it.
        assert not [d for n, d in c1.pushes if n == "call_state" and d["state"] == "up"]
        await c1.wait_for("call_state", lambda d: d["state"] == "ringing")
        assert not c2.of("screen_pop") and not c2.of("call_state")

        await st.sim.agent_answer(IFACE["1001"])
        await c1.wait_for("call_state", lambda d: d["state"] == "up")
        await c1.wait_for("agent_state", lambda d: d["state"] == "on_call")
        # Not 1002's call: forbidden, and a supervisor-only command stays forbidden.
        with pytest.raises(ProtocolError) as err:
            await c2.request("hangup", call_id=call.linkedid)
        assert err.value.code is ErrorCode.FORBIDDEN
        with pytest.raises(ProtocolError) as err:
            await c2.request("wrapup", call_id=call.linkedid, disposition="satisfied")
        assert err.value.code is ErrorCode.FORBIDDEN

        await c1.request("hangup", call_id=call.linkedid)
        ended = await c1.wait_for("call_state", lambda d: d["state"] == "ended")
        assert ended["hangup_by"] == "agent"
        await c1.wait_for("agent_state", lambda d: d["state"] == "wrap_up")
        assert (await call.done) in ("agent", "caller")

        due = "2030-05-01T10:00:00+08:00"
        res = await c1.request(
            "wrapup",
            call_id=call.linkedid,
            disposition="follow-up",
            notes="想换积分 · wants a mug",
            callback_at=due,
        )
        again = await c1.request(
            "wrapup",
            call_id=call.linkedid,
            disposition="follow-up",
            notes="想换积分 · wants a mug",
            callback_at=due,
        )
        assert again == res
        avail = await c1.wait_for(
            "agent_state", lambda d: d["state"] == "available" and d["calls_today"] == 1
        )
        assert avail["talk_s_today"] >= 0
        # While wrapping up the agent was paused in the queue (reason wrap-up), then unpaused.
        pauses = [
            (m.get("Paused"), m.get("PausedReason") or m.get("Reason") or "")
            for m in st.sim.events
            if m.name == "QueueMemberPause" and m.get("Interface") == IFACE["1001"]
        ]
        assert ("1", "wrap-up") in pauses and pauses[-1][0] == "0"
        with pytest.raises(ProtocolError) as err:
            await c1.request("wrapup", call_id=call.linkedid, disposition="no-such-code")
        assert err.value.code is ErrorCode.BAD_REQUEST
        await st.hub.writer.flush()

    rows = _rows(engine)
    assert len(rows) == 1
    row = rows[0]
    assert row.attempt_key == f"call:{call.linkedid}" and row.direction.value == "inbound"
    assert row.member_id == ids.members["liwei"] and row.agent_id == ids.agents["1001"]
    assert row.phone_e164 == LI_WEI and row.outcome == "answered" and row.hangup_by == "agent"
    assert row.answered_at is not None and row.ended_at is not None
    assert row.disposition == "follow-up" and row.notes == "想换积分 · wants a mug"
    assert row.callback_at == dt.datetime(2030, 5, 1, 2, 0, tzinfo=dt.UTC)
    with session_scope(engine) as s:
        tasks = list(s.scalars(select(CallbackTask)))
        audits = [(a.actor, a.action, a.member_id) for a in s.scalars(select(AuditLog))]
    assert [(t.member_id, t.source_ref) for t in tasks] == [
        (ids.members["liwei"], f"wrapup:{row.id}")
    ]
    assert ("agent:1001", "profile.pop", ids.members["liwei"]) in audits
    engine.dispose()


async def test_chooser_and_unknown_caller(engine: Engine) -> None:
    ids = seed(engine)
    async with pbx_stack(engine) as st, Console(st.hub, "1001") as c1:
        call = await st.sim.inbound_call(SHARED, "", queue="members")
        pop = await c1.wait_for("screen_pop", lambda d: d["call_id"] == call.linkedid)
        assert pop["kind"] == "chooser" and pop["profile"] is None
        assert sorted(m["member_id"] for m in pop["matches"]) == sorted(
            [ids.members["twin_a"], ids.members["twin_b"]]
        )
        assert {m["phone_e164"] for m in pop["matches"]} == {"+86 139****9000"}
        # The chooser puts both members in reach, even the one 1002 maintains.
        prof = await c1.request("member_profile", member_id=ids.members["twin_a"])
        assert prof["profile"]["member"]["name"] == "Wang Fang"
        await st.sim.agent_answer(IFACE["1001"])
        await c1.request("hangup", call_id=call.linkedid)
        await c1.wait_for(
            "call_state", lambda d: d["call_id"] == call.linkedid and d["state"] == "ended"
        )
        await c1.request("wrapup", call_id=call.linkedid, disposition="inquiry")

        for number in (UNKNOWN, "<unknown>"):
            call = await st.sim.inbound_call(number, "", queue="members")
            pop = await c1.wait_for("screen_pop", lambda d, c=call: d["call_id"] == c.linkedid)
            assert pop["kind"] == "unknown" and pop["matches"] == [] and pop["profile"] is None
            await st.sim.agent_answer(IFACE["1001"])
            await c1.request("hangup", call_id=call.linkedid)
            await c1.wait_for(
                "call_state", lambda d, c=call: d["call_id"] == c.linkedid and d["state"] == "ended"
            )
            await c1.request("wrapup", call_id=call.linkedid, disposition="wrong-number")
    assert len(_rows(engine)) == 3


async def test_click_to_dial(engine: Engine) -> None:
    ids = seed(engine)
    async with pbx_stack(engine) as st, Console(st.hub, "1001") as c1:
        with pytest.raises(ProtocolError) as err:  # maintained by 1002, never offered to 1001
            await c1.request("dial", member_id=ids.members["other"])
        assert err.value.code is ErrorCode.FORBIDDEN
        res = await c1.request("dial", member_id=ids.members["liwei"])
        call_id = res["call_id"]
        await st.wait(lambda: st.sim.stats.calls_originated >= 1, what="Originate at the PBX")
        orig = [
            e
            for e in st.sim.events
            if e.get("Event") == "Newchannel" and e.get("Uniqueid") == call_id
        ]
        assert orig and (orig[0].get("Channel") or "").startswith("Local/1001@agents-")
        await c1.wait_for(
            "call_state", lambda d: d["call_id"] == call_id and d["state"] == "ringing"
        )
        with pytest.raises(ProtocolError) as err:
            await c1.request("dial", member_id=ids.members["liwei"])
        assert err.value.code is ErrorCode.CONFLICT  # already on a call
        await st.sim.agent_answer(IFACE["1001"])
        await c1.wait_for("call_state", lambda d: d["call_id"] == call_id and d["state"] == "up")
        await c1.request("hangup", call_id=call_id)
        await c1.wait_for("call_state", lambda d: d["call_id"] == call_id and d["state"] == "ended")
        await c1.request("wrapup", call_id=call_id, disposition="satisfied", notes="ok")
    rows = _rows(engine)
    assert len(rows) == 1
    row = rows[0]
    assert row.direction.value == "outbound" and row.channel_id == call_id
    assert row.member_id == ids.members["liwei"] and row.agent_id == ids.agents["1001"]
    assert row.outcome == "answered" and row.disposition == "satisfied" and row.ended_at is not None


async def test_pause_with_reason_and_queue_membership(engine: Engine) -> None:
    seed(engine)
    async with pbx_stack(engine) as st, Console(st.hub, "1001") as c1:
        await c1.wait_for("agent_state", lambda d: d["state"] == "available")
        with pytest.raises(ProtocolError) as err:
            await c1.request("pause", reason="nap")
        assert err.value.code is ErrorCode.BAD_REQUEST
        with pytest.raises(ProtocolError) as err:
            await c1.request("unpause")
        assert err.value.code is ErrorCode.CONFLICT
        mark = c1.mark()
        await c1.request("pause", reason="lunch")
        st_ = await c1.wait_for("agent_state", lambda d: d["state"] == "paused", after=mark)
        assert st_["reason"] == "lunch"
        assert any(
            e.get("Event") == "QueueMemberPause" and e.get("PausedReason") == "lunch"
            for e in st.sim.events
        )
        mark = c1.mark()
        await c1.request("unpause")
        back = await c1.wait_for("agent_state", lambda d: d["state"] != "paused", after=mark)
        assert back["state"] == "available" and back["reason"] is None
        await c1.request("queue_logout")
        await c1.wait_for("agent_state", lambda d: d["state"] == "logged_out")
        mark = c1.mark()
        await c1.request("queue_login")
        await c1.wait_for("agent_state", lambda d: d["state"] == "available", after=mark)


async def test_blind_transfer_to_a_queue_pops_for_the_next_agent(engine: Engine) -> None:
    ids = seed(engine)
    async with (
        pbx_stack(engine, transfer_context="queues") as st,
        Console(st.hub, "1001") as c1,
        Console(st.hub, "1002") as c2,
    ):
        call = await st.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
        await c1.wait_for("screen_pop", lambda d: d["call_id"] == call.linkedid)
        await st.sim.agent_answer(IFACE["1001"])
        await c1.wait_for("call_state", lambda d: d["state"] == "up")
        with pytest.raises(ProtocolError) as err:
            await c1.request("transfer", call_id=call.linkedid, target="support;rm -rf")
        assert err.value.code is ErrorCode.BAD_REQUEST
        await c1.request("transfer", call_id=call.linkedid, target="support")
        # The member lands in queue "support": 1002 gets the same member's pop.
        pop = await c2.wait_for("screen_pop", lambda d: d["call_id"] == call.linkedid)
        assert pop["profile"]["member"]["id"] == ids.members["liwei"]
        await c1.wait_for("call_state", lambda d: d["state"] == "ended")
        await st.sim.agent_answer(IFACE["1002"])
        await c2.wait_for("call_state", lambda d: d["state"] == "up")
        # Both agents wrap up their part; 1001 may no longer hang the call up.
        await c1.request("wrapup", call_id=call.linkedid, disposition="inquiry", notes="to support")
        with pytest.raises(ProtocolError):
            await c1.request("hangup", call_id=call.linkedid)
        await c2.request("hangup", call_id=call.linkedid)
        await c2.wait_for("call_state", lambda d: d["state"] == "ended")
        await c2.request("wrapup", call_id=call.linkedid, disposition="satisfied")
        await st.hub.writer.flush()
    rows = _rows(engine)
    assert len(rows) == 1 and rows[0].agent_id == ids.agents["1002"]
    assert rows[0].disposition == "satisfied"


async def test_postcall_survey_redirect_on_agent_hangup(engine: Engine) -> None:
    seed(engine)
    async with (
        pbx_stack(engine, postcall_survey_queues=("members",)) as st,
        Console(st.hub, "1001") as c1,
    ):
        call = await st.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
        await c1.wait_for("screen_pop", lambda d: d["call_id"] == call.linkedid)
        await st.sim.agent_answer(IFACE["1001"])
        await c1.wait_for("call_state", lambda d: d["state"] == "up")
        await c1.request("hangup", call_id=call.linkedid)
        await c1.wait_for("call_state", lambda d: d["state"] == "ended")
        rec = st.hub.calls.get(call.linkedid)
        assert rec is not None and rec.survey_sent
        assert await call.done == "redirect"


async def test_wrapup_do_not_call_and_wrong_number_take_effect(engine: Engine) -> None:
    """The member asked not to be called: on the DNC list. The number is someone else's:
    flagged invalid for that member. Both audited, both in the wrap-up's transaction."""
    ids = seed(engine)
    liwei = ids.members["liwei"]
    async with pbx_stack(engine) as st, Console(st.hub, "1001") as c1:
        for disposition in ("wrong-number", "do-not-call"):
            call = await st.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
            await c1.wait_for("screen_pop", lambda d, c=call: d["call_id"] == c.linkedid)
            await st.sim.agent_answer(IFACE["1001"])
            await c1.request("hangup", call_id=call.linkedid)
            await c1.wait_for(
                "call_state", lambda d, c=call: d["call_id"] == c.linkedid and d["state"] == "ended"
            )
            await c1.request("wrapup", call_id=call.linkedid, disposition=disposition)
            with session_scope(engine) as s:
                member = s.get(Member, liwei)
                phone = s.scalars(select(MemberPhone).where(MemberPhone.e164 == LI_WEI)).one()
                assert member is not None and phone.invalid
                assert member.do_not_call is (disposition == "do-not-call")
    with session_scope(engine) as s:
        actions = [
            (a.action, a.details.get("via"))
            for a in s.scalars(
                select(AuditLog).where(AuditLog.member_id == liwei).order_by(AuditLog.id)
            )
            if a.action.startswith("member.")
        ]
    assert actions == [("member.phone_invalid", "wrapup"), ("member.do_not_call", "wrapup")]
