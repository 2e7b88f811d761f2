"""Handover (``reassign_members``): open complaints and callbacks move with the members,
each audited, and the new maintainer's console hears of it — over real hub sockets."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.models import (
    AuditLog,
    CallbackTask,
    CallListEntry,
    Campaign,
    CampaignKind,
    Complaint,
    ComplaintStatus,
    DialMode,
    EntryStatus,
    Member,
    TaskStatus,
)
from cti.hubproto import ErrorCode, ProtocolError
from tests.cti.hub_support import Console, Seed, running_hub, seed

DUE = dt.datetime(2099, 1, 1, 2, 0, tzinfo=dt.UTC)


def _work(engine: Engine, ids: Seed) -> dict[str, int]:
    """Complaints and callbacks of 1002's members: open/closed, held by 1002 or by others."""
    other, twin_a, liwei = ids.members["other"], ids.members["twin_a"], ids.members["liwei"]
    a1002, a9001, a1001 = ids.agents["1002"], ids.agents["9001"], ids.agents["1001"]
    out: dict[str, int] = {}
    with session_scope(engine) as s:

        def complaint(key: str, member: int, owner: int | None, status: ComplaintStatus) -> None:
            c = Complaint(
                member_id=member, category="service", description=key, owner_agent_id=owner,
                status=status,
            )  # fmt: skip
            s.add(c)
            s.flush()
            out[key] = c.id

        def task(key: str, member: int, agent: int | None, status: TaskStatus) -> None:
            t = CallbackTask(
                member_id=member, agent_id=agent, due_at=DUE, reason=key, status=status
            )
            s.add(t)
            s.flush()
            out[key] = t.id

        complaint("c_open", other, a1002, ComplaintStatus.OPEN)
        complaint("c_progress", twin_a, a1002, ComplaintStatus.IN_PROGRESS)
        complaint("c_resolved", other, a1002, ComplaintStatus.RESOLVED)  # history stays
        complaint("c_supervisor", other, a9001, ComplaintStatus.OPEN)  # someone else's
        complaint("c_not_moved", liwei, a1001, ComplaintStatus.OPEN)  # member not moved
        task("t_open", other, a1002, TaskStatus.OPEN)
        task("t_done", twin_a, a1002, TaskStatus.DONE)
        task("t_queue", twin_a, None, TaskStatus.OPEN)  # the queue's, not the leaver's
        camp = Campaign(name="care", kind=CampaignKind.MONTHLY_CARE, mode=DialMode.PREVIEW)
        s.add(camp)
        s.flush()

        def entry(key: str, member: int, agent: int | None, status: EntryStatus) -> None:
            e = CallListEntry(
                campaign_id=camp.id, member_id=member, phone_e164="+8613600136000",
                assigned_agent_id=agent, status=status,
            )  # fmt: skip
            s.add(e)
            s.flush()
            out[key] = e.id

        entry("e_routed", other, a1002, EntryStatus.ROUTED)  # open complaint: 1002's to call
        entry("e_done", twin_a, a1002, EntryStatus.DONE)  # history stays
        entry("e_free", liwei, None, EntryStatus.PENDING)  # not a moved member
    return out


@pytest.mark.parametrize("by", ["from_agent", "member_ids"])
async def test_handover_moves_open_work_and_tells_the_new_maintainer(
    engine: Engine, by: str
) -> None:
    ids = seed(engine)
    work = _work(engine, ids)
    args: dict[str, object] = (
        {"from_agent": "1002"}
        if by == "from_agent"
        else {"member_ids": [ids.members["other"], ids.members["twin_a"]]}
    )
    async with (
        running_hub(engine) as hub,
        Console(hub, "1001") as new,
        Console(hub, "1002") as old,
        Console(hub, "9001") as sup,
    ):
        result = await sup.request("reassign_members", to_agent="1001", **args)
        assert result == {"moved": 2, "complaints": 2, "callbacks": 1, "entries": 1}
        notice = await new.wait_for("notice", lambda d: d.get("kind") == "handover")
        assert (notice["moved"], notice["complaints"], notice["callbacks"]) == (2, 2, 1)
        assert notice["by"] == "9001"
        assert "2 member(s) handed over to you" in notice["text"] and "移交给您" in notice["text"]
        assert not [d for d in old.of("notice") if d.get("kind") == "handover"]
        # The new maintainer can open the member and sees the complaint as theirs.
        prof = (await new.request("member_profile", member_id=ids.members["other"]))["profile"]
        owners = {c["id"]: c["owner_agent_id"] for c in prof["complaints"]}
        assert owners[work["c_open"]] == ids.agents["1001"]
        # Again: nothing of 1002's is left to move.
        again = await sup.request("reassign_members", to_agent="1001", **args)
        assert again == {
            "moved": 0 if by == "from_agent" else 2,
            "complaints": 0,
            "callbacks": 0,
            "entries": 0,
        }
    with session_scope(engine) as s:
        owner = {c.id: c.owner_agent_id for c in s.scalars(select(Complaint))}
        agent = {t.id: t.agent_id for t in s.scalars(select(CallbackTask))}
        maint = {m.id: m.maintaining_agent_id for m in s.scalars(select(Member))}
        assigned = {e.id: e.assigned_agent_id for e in s.scalars(select(CallListEntry))}
        audit = [
            (a.action, a.member_id, a.details)
            for a in s.scalars(select(AuditLog).order_by(AuditLog.id))
        ]
    a1001, a1002 = ids.agents["1001"], ids.agents["1002"]
    assert maint[ids.members["other"]] == maint[ids.members["twin_a"]] == a1001
    assert owner[work["c_open"]] == owner[work["c_progress"]] == a1001
    assert owner[work["c_resolved"]] == a1002
    assert owner[work["c_supervisor"]] == ids.agents["9001"]
    assert owner[work["c_not_moved"]] == a1001
    assert agent[work["t_open"]] == a1001
    assert agent[work["t_done"]] == a1002 and agent[work["t_queue"]] is None
    assert assigned[work["e_routed"]] == a1001
    assert assigned[work["e_done"]] == a1002 and assigned[work["e_free"]] is None
    moved_complaints = sorted(
        d["complaint_id"] for act, _, d in audit if act == "complaint.reassign"
    )
    assert moved_complaints == sorted([work["c_open"], work["c_progress"]])
    task_rows = [(m, d) for act, m, d in audit if act == "callback.reassign"]
    assert task_rows == [
        (
            ids.members["other"],
            {"task_id": work["t_open"], "from_agent": "1002", "to_agent": "1001"},
        )
    ]
    bulk = [d for act, _, d in audit if act == "member.reassign_bulk"]
    assert (bulk[0]["moved"], bulk[0]["complaints"], bulk[0]["callbacks"]) == (2, 2, 1)
    assert bulk[0]["call_list_entries"] == 1


async def test_handover_to_unknown_agent_changes_nothing(engine: Engine) -> None:
    ids = seed(engine)
    work = _work(engine, ids)
    async with running_hub(engine) as hub, Console(hub, "9001") as sup:
        with pytest.raises(ProtocolError) as err:
            await sup.request("reassign_members", to_agent="nosuch", from_agent="1002")
        assert err.value.code is ErrorCode.NOT_FOUND
    with session_scope(engine) as s:
        assert s.get(Complaint, work["c_open"]).owner_agent_id == ids.agents["1002"]  # type: ignore[union-attr]
        assert not list(s.scalars(select(AuditLog).where(AuditLog.action.like("%reassign%"))))
