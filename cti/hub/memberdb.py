"""Member-side writes the hub's commands make (run through ``run_db``), each audited."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.orm import Session

from crm_bridge import points
from crm_bridge.models import (
    Agent,
    AuditLog,
    CallbackTask,
    CallListEntry,
    Complaint,
    ComplaintStatus,
    EntryStatus,
    Inquiry,
    Member,
    MemberPhone,
    RewardItem,
    Severity,
    TaskStatus,
)
from crm_bridge.points import Redemption
from cti.hub.sessions import AgentInfo


class Refused(Exception):
    """A business rule refused the change (mapped to ``conflict`` / ``not_found``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _audit(s: Session, who: AgentInfo, action: str, member_id: int | None, **details: Any) -> None:
    s.add(AuditLog(actor=who.actor, action=action, member_id=member_id, details=details))


def audit_view(s: Session, who: AgentInfo, action: str, member_id: int, **details: Any) -> None:
    _audit(s, who, action, member_id, **details)


def reveal(s: Session, who: AgentInfo, member_id: int, field: str, reason: str) -> list[str]:
    m = s.get(Member, member_id)
    if m is None:
        raise Refused("not_found", f"no member {member_id}")
    if field == "phone":
        values = list(
            s.scalars(
                select(MemberPhone.e164)
                .where(MemberPhone.member_id == member_id)
                .order_by(MemberPhone.id)
            )
        )
    else:
        values = [m.email] if m.email else []
    _audit(s, who, f"member.reveal_{field}", member_id, reason=reason)
    return values


def _new_member_no(s: Session) -> str:
    for _ in range(20):
        no = "Q" + secrets.token_hex(5).upper()
        if s.scalar(select(Member.id).where(Member.member_no == no)) is None:
            return no
    raise Refused("conflict", "could not allocate a member number")


def create_member(
    s: Session, who: AgentInfo, name: str, e164: str, locale: str, email: str | None
) -> tuple[int, str]:
    member = Member(
        member_no=_new_member_no(s),
        name=name,
        locale=locale,
        email=email,
        joined_on=dt.datetime.now(dt.UTC).date(),
        maintaining_agent_id=None if who.is_supervisor else who.id,
    )
    member.phones.append(MemberPhone(e164=e164, kind="mobile"))
    s.add(member)
    s.flush()
    _audit(s, who, "member.create", member.id, source="console")
    return member.id, member.member_no


def update_member_field(s: Session, who: AgentInfo, member_id: int, item: str, value: str) -> None:
    """The agent fills in a missing item during the call (crm_bridge.completeness); audited
    as ``member.update`` with the item's name only (the value stays in the member row)."""
    from crm_bridge.completeness import apply_value, parse_value

    member = s.get(Member, member_id)
    if member is None:
        raise Refused("not_found", f"no member {member_id}")
    now = dt.datetime.now(dt.UTC)
    try:
        parsed = parse_value(item, value, now.date())
    except ValueError as exc:
        raise Refused("bad_request", str(exc)) from None
    apply_value(member, item, parsed, now)
    s.flush()
    _audit(s, who, "member.update", member_id, field=item, source="call")


def create_inquiry(
    s: Session, who: AgentInfo, member_id: int, category: str, subject: str, body: str | None
) -> int:
    row = Inquiry(
        member_id=member_id, category=category, subject=subject, body=body, agent_id=who.id
    )
    s.add(row)
    s.flush()
    _audit(s, who, "inquiry.create", member_id, inquiry_id=row.id)
    return row.id


def create_complaint(
    s: Session, who: AgentInfo, member_id: int, severity: str, category: str, description: str
) -> int:
    owner = s.scalar(select(Member.maintaining_agent_id).where(Member.id == member_id))
    row = Complaint(
        member_id=member_id,
        severity=Severity(severity),
        category=category,
        description=description,
        owner_agent_id=owner if owner is not None else who.id,
        source="call",
    )
    s.add(row)
    s.flush()
    _audit(s, who, "complaint.create", member_id, complaint_id=row.id, severity=severity)
    return row.id


def create_callback(
    s: Session, who: AgentInfo, member_id: int, due_at: dt.datetime, reason: str, queue: str
) -> int:
    row = CallbackTask(
        member_id=member_id, agent_id=who.id, queue=queue, due_at=due_at, reason=reason
    )
    s.add(row)
    s.flush()
    _audit(s, who, "callback.create", member_id, task_id=row.id)
    return row.id


def catalogue(s: Session) -> list[dict[str, Any]]:
    return [
        {"code": r.code, "name": r.name, "name_zh": r.name_zh, "points_cost": r.points_cost}
        for r in s.scalars(
            select(RewardItem).where(RewardItem.active.is_(True)).order_by(RewardItem.points_cost)
        )
    ]


RedemptionHook = Callable[[Session, Redemption], None]
"""Called in the redemption's transaction (the composition root queues the confirmation
SMS/email through the outbox here; ``cti`` itself may not import ``dialer``)."""


def redeem(
    s: Session,
    who: AgentInfo,
    member_id: int,
    item_code: str,
    confirm: bool,
    hook: RedemptionHook | None = None,
) -> dict[str, Any]:
    """Quote, or (``confirm``) redeem in one transaction: ``crm_bridge.points.redeem``
    (guarded balance update + ledger row + audit row), then ``hook``."""
    item = s.execute(
        select(RewardItem.points_cost).where(
            RewardItem.code == item_code, RewardItem.active.is_(True)
        )
    ).first()
    if item is None:
        raise Refused("not_found", f"no catalogue item {item_code!r}")
    balance = s.scalar(select(Member.points_balance).where(Member.id == member_id))
    if balance is None:
        raise Refused("not_found", f"no member {member_id}")
    cost = int(item[0])
    if balance < cost:
        raise Refused("conflict", f"not enough points: {balance} < {cost}")
    if not confirm:
        return {
            "balance_before": balance,
            "cost": cost,
            "balance_after": balance - cost,
            "confirmed": False,
        }
    try:
        done = points.redeem(s, member_id, item_code, who.id, actor=who.actor)
    except points.InsufficientPoints as exc:
        raise Refused("conflict", str(exc)) from None
    except points.PointsError as exc:
        raise Refused("not_found", str(exc)) from None
    if hook is not None:
        hook(s, done)
    return {
        "balance_before": done.balance_after + done.points_cost,
        "cost": done.points_cost,
        "balance_after": done.balance_after,
        "confirmed": True,
    }


@dataclass(frozen=True)
class Reassigned:
    """What a handover moved: members, and their open complaints and callback tasks."""

    moved: int
    complaints: int
    callbacks: int
    entries: int = 0
    """Call-list entries (routed or pending) that were assigned to the previous maintainer."""


OPEN_COMPLAINT = (ComplaintStatus.OPEN, ComplaintStatus.IN_PROGRESS)


def reassign(
    s: Session,
    who: AgentInfo,
    to_code: str,
    member_ids: list[int] | None,
    from_code: str | None,
) -> Reassigned:
    """Move members to a new maintainer; their open complaints and open callback tasks held
    by the previous maintainer move with them (those held by someone else stay). Every
    moved member, complaint and task gets its own audit row."""
    to_id = s.scalar(select(Agent.id).where(Agent.code == to_code))
    if to_id is None:
        raise Refused("not_found", f"no agent {to_code!r}")
    chosen: ColumnElement[bool]
    if member_ids is not None:
        chosen = Member.id.in_(member_ids)
    else:
        from_id = s.scalar(select(Agent.id).where(Agent.code == from_code))
        if from_id is None:
            raise Refused("not_found", f"no agent {from_code!r}")
        chosen = Member.maintaining_agent_id == from_id
    # Before the members move: each member's current maintainer is the holder to match.
    members = select(Member.id, Member.maintaining_agent_id).where(chosen).subquery()
    complaints = s.execute(
        select(Complaint.id, Complaint.member_id, Complaint.owner_agent_id)
        .join(
            members,
            (members.c.id == Complaint.member_id)
            & (members.c.maintaining_agent_id == Complaint.owner_agent_id),
        )
        .where(Complaint.status.in_(OPEN_COMPLAINT), Complaint.owner_agent_id != to_id)
        .order_by(Complaint.id)
    ).all()
    tasks = s.execute(
        select(CallbackTask.id, CallbackTask.member_id, CallbackTask.agent_id)
        .join(
            members,
            (members.c.id == CallbackTask.member_id)
            & (members.c.maintaining_agent_id == CallbackTask.agent_id),
        )
        .where(CallbackTask.status == TaskStatus.OPEN, CallbackTask.agent_id != to_id)
        .order_by(CallbackTask.id)
    ).all()
    # Call-list entries routed to the previous maintainer (open complaint) or assigned to
    # them and not dialled yet: the new maintainer's work now. Unassigned entries follow
    # the member's maintainer at dial time by themselves.
    entries = list(
        s.scalars(
            select(CallListEntry.id)
            .join(
                members,
                (members.c.id == CallListEntry.member_id)
                & (members.c.maintaining_agent_id == CallListEntry.assigned_agent_id),
            )
            .where(
                CallListEntry.status.in_((EntryStatus.PENDING, EntryStatus.ROUTED)),
                CallListEntry.assigned_agent_id != to_id,
            )
        )
    )
    for start in range(0, len(entries), 1000):
        s.execute(
            update(CallListEntry)
            .where(CallListEntry.id.in_(entries[start : start + 1000]))
            .values(assigned_agent_id=to_id)
            .execution_options(synchronize_session=False)
        )
    moved_ids = list(s.scalars(select(Member.id).where(chosen).order_by(Member.id)))
    result = s.execute(
        update(Member)
        .where(chosen)
        .values(maintaining_agent_id=to_id)
        .execution_options(synchronize_session=False)
    )
    moved = int(result.rowcount or 0)  # type: ignore[attr-defined]
    codes: dict[int, str] = {}
    if complaints or tasks:
        codes = {row[0]: row[1] for row in s.execute(select(Agent.id, Agent.code))}
    for start in range(0, len(complaints), 1000):
        ids = [c.id for c in complaints[start : start + 1000]]
        s.execute(
            update(Complaint)
            .where(Complaint.id.in_(ids))
            .values(owner_agent_id=to_id)
            .execution_options(synchronize_session=False)
        )
    for start in range(0, len(tasks), 1000):
        ids = [t.id for t in tasks[start : start + 1000]]
        s.execute(
            update(CallbackTask)
            .where(CallbackTask.id.in_(ids))
            .values(agent_id=to_id)
            .execution_options(synchronize_session=False)
        )
    _audit(
        s,
        who,
        "member.reassign_bulk",
        None,
        to_agent=to_code,
        from_agent=from_code,
        moved=moved,
        complaints=len(complaints),
        callbacks=len(tasks),
        call_list_entries=len(entries),
    )
    now = dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = [
        {
            "actor": who.actor,
            "action": "member.reassign",
            "member_id": mid,
            "details": {"to_agent": to_code, "from_agent": from_code},
            "at": now,
        }
        for mid in moved_ids
    ]
    rows += [
        {
            "actor": who.actor,
            "action": "complaint.reassign",
            "member_id": c.member_id,
            "details": {
                "complaint_id": c.id,
                "from_agent": codes.get(c.owner_agent_id),
                "to_agent": to_code,
            },
            "at": now,
        }
        for c in complaints
    ]
    rows += [
        {
            "actor": who.actor,
            "action": "callback.reassign",
            "member_id": t.member_id,
            "details": {"task_id": t.id, "from_agent": codes.get(t.agent_id), "to_agent": to_code},
            "at": now,
        }
        for t in tasks
    ]
    # One row per member too, so `memberline audit` on a member shows who moved it.
    for start in range(0, len(rows), 5000):
        s.execute(insert(AuditLog), rows[start : start + 5000])
    return Reassigned(moved, len(complaints), len(tasks), len(entries))
