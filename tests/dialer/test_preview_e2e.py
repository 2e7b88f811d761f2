"""Preview campaigns and maintainer-first calls end to end: PBX simulator <-> AMI <-> hub
<-> runner, consoles over real sockets (HubClient), SQLite.

The runner offers a card to an available agent with a console; the agent dials it
(their phone rings first, then the member) or skips it. Maintainer-first: a progressive
campaign rings an available maintaining agent first instead of sending the call to the queue.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.models import (
    AuditLog,
    CallAttempt,
    CallListEntry,
    Campaign,
    CampaignStatus,
    DialMode,
    EntryStatus,
    Member,
    MemberPhone,
)
from cti.hubproto import ErrorCode, ProtocolError
from cti.pbxsim import Scenario
from cti.pbxsim.scenario import NumberOverride
from dialer.runner import CampaignRunner
from tests.cti.hub_stack import IFACE, Stack, pbx_stack, scenario
from tests.cti.hub_support import LI_WEI, Console, Seed, seed
from tests.dialer.support import desk_runner, running_campaign

pytestmark = pytest.mark.e2e

BUSY = "+8613500135000"
PLAIN = "+8613400134000"  # a member nobody maintains: goes to the queue


def _scenario() -> Scenario:
    return scenario(
        overrides={
            BUSY: NumberOverride(outcome="busy"),
            PLAIN: NumberOverride(outcome="answer", ring_time=0.5, talk_time=600.0),
        }
    )


@dataclass
class Rig:
    st: Stack
    runner: CampaignRunner
    ids: Seed


@contextlib.asynccontextmanager
async def rig(engine: Engine) -> AsyncIterator[Rig]:
    ids = seed(engine)
    async with (
        pbx_stack(engine, _scenario()) as st,
        desk_runner(engine, st.hub, st.ami, owner="hub-preview") as runner,
    ):
        yield Rig(st, runner, ids)


def add_member(engine: Engine, name: str, phone: str, maintainer: int | None = None) -> int:
    with session_scope(engine) as s:
        m = Member(
            member_no=f"X{phone[-6:]}",
            name=name,
            joined_on=dt.date(2025, 1, 1),
            maintaining_agent_id=maintainer,
        )
        m.phones.append(MemberPhone(e164=phone))
        s.add(m)
        s.flush()
        return m.id


def attempts(engine: Engine) -> list[CallAttempt]:
    with session_scope(engine) as s:
        rows = list(s.scalars(select(CallAttempt).order_by(CallAttempt.id)))
        s.expunge_all()
        return rows


def entry(engine: Engine, entry_id: int) -> CallListEntry:
    with session_scope(engine) as s:
        e = s.get(CallListEntry, entry_id)
        assert e is not None
        s.expunge(e)
        return e


async def test_preview_offered_dialled_answered_and_wrapped_up(engine: Engine) -> None:
    async with rig(engine) as r, Console(r.st.hub, "1001") as c1:
        st = r.st
        liwei = r.ids.members["liwei"]
        _, entries_ = running_campaign(engine, [liwei])
        await r.runner.start()
        card = await c1.wait_for("preview", lambda d: not d["withdrawn"])
        assert card["entry_id"] == entries_[liwei]
        assert card["member"]["name"] == "李伟" and card["member"]["tier"] == "Gold"
        assert card["member"]["phone_masked"] == "+86 138****8000"
        assert LI_WEI not in str(card)
        assert card["reason"].startswith("post-purchase follow-up")
        # the card holds the entry (long lease); nothing dialled yet
        assert entry(engine, card["entry_id"]).status is EntryStatus.LEASED
        assert st.sim.stats.calls_originated == 0

        res = await c1.request("preview_dial", entry_id=card["entry_id"])
        call_id = res["call_id"]
        rows = attempts(engine)
        assert len(rows) == 1 and rows[0].channel_id == call_id  # durable before the Originate
        assert rows[0].attempt_key == f"entry:{card['entry_id']}:1"
        await st.wait(lambda: st.sim.stats.calls_originated >= 1, what="Originate")
        first = [
            e
            for e in st.sim.events
            if e.get("Event") == "Newchannel" and e.get("Uniqueid") == call_id
        ]
        assert first and (first[0].get("Channel") or "").startswith("Local/1001@agents-")
        await c1.wait_for(
            "call_state", lambda d: d["call_id"] == call_id and d["state"] == "ringing"
        )
        await st.sim.agent_answer(IFACE["1001"])
        await st.wait(lambda: not r.runner.pending(call_id), within=8, what="member answered")
        await c1.request("hangup", call_id=call_id)
        await c1.wait_for("call_state", lambda d: d["call_id"] == call_id and d["state"] == "ended")
        out = await c1.request("wrapup", call_id=call_id, disposition="satisfied", notes="ok")
        await r.runner.stop()
    rows = attempts(engine)
    assert len(rows) == 1  # the hub's call row IS the dialer's attempt row
    row = rows[0]
    assert out["attempt_id"] == row.id
    assert row.entry_id == entries_[liwei] and row.agent_id == r.ids.agents["1001"]
    assert row.outcome == "answered" and row.disposition == "satisfied" and row.notes == "ok"
    assert row.answered_at is not None and row.ended_at is not None
    assert entry(engine, entries_[liwei]).status is EntryStatus.DONE


async def test_preview_member_busy_is_stored_on_the_attempt(engine: Engine) -> None:
    async with rig(engine) as r, Console(r.st.hub, "1001") as c1:
        busy = add_member(engine, "Busy Bee", BUSY)
        _, entries_ = running_campaign(engine, [busy])
        await r.runner.start()
        card = await c1.wait_for("preview", lambda d: not d["withdrawn"])
        res = await c1.request("preview_dial", entry_id=card["entry_id"])
        await r.st.sim.agent_answer(IFACE["1001"])
        await r.st.wait(lambda: not r.runner.pending(res["call_id"]), within=8, what="busy")
        await r.runner.stop()
    (row,) = attempts(engine)
    assert row.outcome == "busy" and row.agent_id == r.ids.agents["1001"]
    assert row.answered_at is None  # the agent answered; the member never did
    e = entry(engine, entries_[busy])
    assert e.status is EntryStatus.PENDING and e.attempts == 1 and e.next_attempt_at is not None


async def test_preview_skip_and_forbidden_dial_of_another_agents_card(engine: Engine) -> None:
    async with (
        rig(engine) as r,
        Console(r.st.hub, "1001") as c1,
        Console(r.st.hub, "1002") as c2,
    ):
        liwei, other = r.ids.members["liwei"], r.ids.members["other"]
        _, entries_ = running_campaign(engine, [liwei, other])
        await r.runner.start()
        card = await c1.wait_for("preview", lambda d: not d["withdrawn"])
        # 1002 is not in the campaign's queue: never offered, and may not act on 1001's card
        for cmd, extra in (("preview_dial", {}), ("preview_skip", {"reason": "later"})):
            with pytest.raises(ProtocolError) as err:
                await c2.request(cmd, entry_id=card["entry_id"], **extra)
            assert err.value.code is ErrorCode.FORBIDDEN
        assert not c2.of("preview")
        with pytest.raises(ProtocolError) as err:  # an entry never offered to anyone
            await c1.request("preview_dial", entry_id=999_999)
        assert err.value.code is ErrorCode.FORBIDDEN

        first = card["entry_id"]
        mark = c1.mark()
        res = await c1.request("preview_skip", entry_id=first, reason="later")
        assert res == {"entry_status": "pending"}
        nxt = await c1.wait_for("preview", lambda d: not d["withdrawn"], after=mark)
        assert nxt["entry_id"] != first
        res = await c1.request("preview_skip", entry_id=nxt["entry_id"], reason="wrong-number")
        assert res == {"entry_status": "cancelled"}
        with pytest.raises(ProtocolError) as err:  # a card is answered once
            await c1.request("preview_dial", entry_id=first)
        assert err.value.code is ErrorCode.FORBIDDEN
        await r.runner.stop()
    skipped = entry(engine, first)
    assert skipped.status is EntryStatus.PENDING and skipped.attempts == 0
    assert skipped.next_attempt_at is not None
    cancelled = entry(engine, nxt["entry_id"])
    assert cancelled.status is EntryStatus.CANCELLED and cancelled.attempts == 0
    assert not attempts(engine) and r.st.sim.stats.calls_originated == 0
    assert set(entries_.values()) == {first, nxt["entry_id"]}
    # "wrong number": that number is flagged invalid for every campaign, and audited
    with session_scope(engine) as s:
        phone = s.scalars(
            select(MemberPhone).where(
                MemberPhone.member_id == cancelled.member_id,
                MemberPhone.e164 == cancelled.phone_e164,
            )
        ).one()
        assert phone.invalid
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "member.phone_invalid")).one()
        assert audit.member_id == cancelled.member_id and audit.actor == "agent:1001"
        assert audit.details["entry_id"] == nxt["entry_id"]


async def test_preview_skip_do_not_call_puts_the_member_on_the_dnc_list(engine: Engine) -> None:
    async with rig(engine) as r, Console(r.st.hub, "1001") as c1:
        liwei = r.ids.members["liwei"]
        _, entries_ = running_campaign(engine, [liwei])
        await r.runner.start()
        card = await c1.wait_for("preview", lambda d: not d["withdrawn"])
        res = await c1.request("preview_skip", entry_id=card["entry_id"], reason="do-not-call")
        assert res == {"entry_status": "cancelled"}
        await r.runner.stop()
    with session_scope(engine) as s:
        member = s.get(Member, liwei)
        assert member is not None and member.do_not_call
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "member.do_not_call")).one()
        assert audit.member_id == liwei and audit.details["via"] == "preview_skip"
    assert entry(engine, entries_[liwei]).status is EntryStatus.CANCELLED
    assert not attempts(engine)


async def test_dnc_set_after_list_build_is_never_offered(engine: Engine) -> None:
    async with rig(engine) as r, Console(r.st.hub, "1001") as c1:
        liwei, other = r.ids.members["liwei"], r.ids.members["other"]
        _, entries_ = running_campaign(engine, [liwei, other])
        with session_scope(engine) as s:
            m = s.get(Member, liwei)
            assert m is not None
            m.do_not_call = True
        await r.runner.start()
        card = await c1.wait_for("preview", lambda d: not d["withdrawn"])
        assert card["member"]["member_id"] == other
        # DNC set while the card is on screen: the dial-time re-check refuses
        with session_scope(engine) as s:
            m = s.get(Member, other)
            assert m is not None
            m.do_not_call = True
        with pytest.raises(ProtocolError) as err:
            await c1.request("preview_dial", entry_id=card["entry_id"])
        assert err.value.code is ErrorCode.CONFLICT
        await r.runner.stop()
    assert all(d["member"]["member_id"] != liwei for d in c1.of("preview"))
    for mid in (liwei, other):
        e = entry(engine, entries_[mid])
        assert e.status is EntryStatus.CANCELLED and e.attempts == 0
    assert not attempts(engine) and r.st.sim.stats.calls_originated == 0


async def test_maintainer_first_rings_the_maintainer(engine: Engine) -> None:
    async with rig(engine) as r, Console(r.st.hub, "1001") as c1:
        st = r.st
        liwei = r.ids.members["liwei"]  # maintained by 1001
        campaign_id, entries_ = running_campaign(engine, [liwei], mode=DialMode.PROGRESSIVE)
        await r.runner.start()
        await st.wait(lambda: st.sim.stats.calls_originated >= 1, what="Originate")
        (row,) = attempts(engine)
        assert row.agent_id == r.ids.agents["1001"]  # recorded before the Originate
        first = await _first_channel(st, engine)
        assert first and (first[0].get("Channel") or "").startswith("Local/1001@agents-")
        ringing = await c1.wait_for(
            "call_state", lambda d: d["call_id"] == row.channel_id and d["state"] == "ringing"
        )
        # a campaign's call: outbound, with its campaign (issue 12: never "inbound")
        assert ringing["direction"] == "outbound" and ringing["campaign_id"] == campaign_id
        await st.sim.agent_answer(IFACE["1001"])
        await st.wait(lambda: not r.runner.pending(str(row.channel_id)), within=8, what="answer")
        await r.runner.stop()
    (row,) = attempts(engine)
    assert row.outcome == "answered" and row.agent_id == r.ids.agents["1001"]
    assert not c1.of("preview")
    assert entry(engine, entries_[liwei]).status is EntryStatus.DONE


async def test_without_an_available_maintainer_the_call_goes_to_the_queue(engine: Engine) -> None:
    async with rig(engine) as r:  # 1001 maintains Li Wei but has no console
        st = r.st
        liwei = r.ids.members["liwei"]
        running_campaign(engine, [liwei], mode=DialMode.PROGRESSIVE)
        await r.runner.start()
        await st.wait(lambda: st.sim.stats.calls_originated >= 1, what="Originate")
        (row,) = attempts(engine)
        assert row.agent_id is None
        first = await _first_channel(st, engine)
        assert first and (first[0].get("Channel") or "").startswith(f"Local/{LI_WEI}@members-out-")
        await r.runner.stop()


async def test_card_withdrawn_when_the_campaign_is_paused(engine: Engine) -> None:
    async with rig(engine) as r, Console(r.st.hub, "1001") as c1:
        liwei = r.ids.members["liwei"]
        camp_id, entries_ = running_campaign(engine, [liwei])
        await r.runner.start()
        card = await c1.wait_for("preview", lambda d: not d["withdrawn"])
        with session_scope(engine) as s:
            c = s.get(Campaign, camp_id)
            assert c is not None
            c.status = CampaignStatus.PAUSED
        gone = await c1.wait_for("preview", lambda d: d["withdrawn"])
        assert gone["entry_id"] == card["entry_id"]
        with pytest.raises(ProtocolError) as err:
            await c1.request("preview_dial", entry_id=card["entry_id"])
        assert err.value.code is ErrorCode.FORBIDDEN
        await r.runner.stop()
    e = entry(engine, entries_[liwei])
    assert e.status is EntryStatus.PENDING and e.lease_owner is None and e.attempts == 0


async def _first_channel(st: Any, engine: Engine) -> list[dict[str, Any]]:
    """The Newchannel of the only attempt's first leg (the simulator emits it just after it
    counts the Originate, so wait for it rather than read the event list at once)."""

    def found() -> list[dict[str, Any]]:
        (row,) = attempts(engine)
        return [
            e
            for e in st.sim.events
            if e.get("Event") == "Newchannel" and e.get("Uniqueid") == row.channel_id
        ]

    await st.wait(lambda: bool(found()), what="the call's Newchannel")
    return found()


async def test_entry_assigned_agent_is_rung_first(engine: Engine) -> None:
    async with rig(engine) as r, Console(r.st.hub, "1001") as c1:
        st = r.st
        plain = add_member(engine, "Nobody's", PLAIN)  # no maintainer; the entry names 1001
        running_campaign(engine, [plain], mode=DialMode.PREDICTIVE, assigned=r.ids.agents["1001"])
        await r.runner.start()
        await st.wait(lambda: st.sim.stats.calls_originated >= 1, what="Originate")
        (row,) = attempts(engine)
        assert row.agent_id == r.ids.agents["1001"]
        first = await _first_channel(st, engine)
        assert first and (first[0].get("Channel") or "").startswith("Local/1001@agents-")
        await c1.wait_for("call_state", lambda d: d["call_id"] == row.channel_id)
        # while 1001 rings for it, the pacer does not count them as free
        camp = next(iter(r.runner.campaigns.values()))
        assert r.runner.snapshot(camp).agents_free == 0
        await r.runner.stop()


async def test_winback_wrapup_needs_a_reason_and_other_needs_a_note(engine: Engine) -> None:
    from crm_bridge.models import CampaignKind

    async with rig(engine) as r, Console(r.st.hub, "1001") as c1:
        st = r.st
        liwei = r.ids.members["liwei"]
        running_campaign(engine, [liwei], kind=CampaignKind.DORMANT_WINBACK)
        await r.runner.start()
        card = await c1.wait_for("preview", lambda d: not d["withdrawn"])
        res = await c1.request("preview_dial", entry_id=card["entry_id"])
        call_id = res["call_id"]
        await st.sim.agent_answer(IFACE["1001"])
        await st.wait(lambda: not r.runner.pending(call_id), within=8, what="member answered")
        await c1.request("hangup", call_id=call_id)
        await c1.wait_for("call_state", lambda d: d["call_id"] == call_id and d["state"] == "ended")
        for extra, code in (
            ({}, ErrorCode.REASON_REQUIRED),
            ({"reason": "other"}, ErrorCode.REASON_REQUIRED),  # other needs a note
            ({"reason": "other", "notes": "  "}, ErrorCode.REASON_REQUIRED),
            ({"reason": "aliens"}, ErrorCode.BAD_REQUEST),
        ):
            with pytest.raises(ProtocolError) as err:
                await c1.request("wrapup", call_id=call_id, disposition="satisfied", **extra)
            assert err.value.code is code, extra
        assert attempts(engine)[0].disposition is None  # nothing written by a refused wrap-up
        await c1.request(
            "wrapup", call_id=call_id, disposition="satisfied", reason="other", notes="new baby"
        )
        await r.runner.stop()
    (row,) = attempts(engine)
    assert (row.disposition, row.reason, row.notes) == ("satisfied", "other", "new baby")
