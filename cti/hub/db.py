"""Database functions the hub runs through ``run_db`` (``fn(session, ...)`` on a worker thread)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_bridge.auth import hash_password, verify_password
from crm_bridge.models import Agent, CallAttempt, Member, Role
from cti.hub.sessions import AgentInfo
from cti.hubproto.messages import ErrorCode, ProtocolError


def _info(a: Agent, interface_template: str) -> AgentInfo:
    return AgentInfo(
        id=a.id,
        code=a.code,
        name=a.name,
        role=a.role.value if isinstance(a.role, Role) else str(a.role),
        extension=a.extension,
        interface=interface_template.format(extension=a.extension),
    )


def load_agents(s: Session, interface_template: str) -> list[AgentInfo]:
    return [
        _info(a, interface_template) for a in s.scalars(select(Agent).where(Agent.active.is_(True)))
    ]


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("not-a-real-password-only-for-constant-time")


def check_login(s: Session, code: str, password: str, interface_template: str) -> AgentInfo | None:
    """The agent if ``password`` is right (argon2 verify, on this worker thread), else None.

    An unknown or inactive agent costs one verify too, so timing does not tell them apart.
    """
    agent = s.scalars(select(Agent).where(Agent.code == code)).one_or_none()
    if agent is None or not agent.active:
        verify_password(_dummy_hash(), password)
        return None
    if not verify_password(agent.password_hash, password):
        return None
    return _info(agent, interface_template)


def agent_day_stats(s: Session, agent_id: int, since: dt.datetime) -> tuple[int, int]:
    """(answered calls, talk seconds) of the agent since ``since``."""
    rows = s.execute(
        select(CallAttempt.answered_at, CallAttempt.ended_at).where(
            CallAttempt.agent_id == agent_id,
            CallAttempt.started_at >= since,
            CallAttempt.answered_at.is_not(None),
        )
    ).all()
    talk = sum(int((e - a).total_seconds()) for a, e in rows if a is not None and e is not None)
    return len(rows), max(0, talk)


def member_owner(s: Session, member_id: int) -> tuple[bool, int | None]:
    """(exists, maintaining agent id)."""
    row = s.execute(
        select(Member.id, Member.maintaining_agent_id).where(Member.id == member_id)
    ).one_or_none()
    if row is None:
        return False, None
    return True, row[1]


def count_members(s: Session) -> int:
    return int(s.scalar(select(func.count()).select_from(Member)) or 0)


# --------------------------------------------------------------------------- calls
def member_dial_info(s: Session, member_id: int) -> tuple[str, list[str], bool] | None:
    """(name, valid phones in order, do-not-call) or None."""
    from crm_bridge.models import MemberPhone

    m = s.get(Member, member_id)
    if m is None:
        return None
    phones = list(
        s.scalars(
            select(MemberPhone.e164)
            .where(MemberPhone.member_id == member_id, MemberPhone.invalid.is_(False))
            .order_by(MemberPhone.id)
        )
    )
    return m.name, phones, bool(m.do_not_call or not m.consent_call)


def create_dial_attempt(s: Session, call_id: str, member_id: int, agent_id: int, e164: str) -> int:
    from crm_bridge.models import Direction

    row = CallAttempt(
        attempt_key=f"call:{call_id}",
        direction=Direction.OUTBOUND,
        member_id=member_id,
        agent_id=agent_id,
        phone_e164=e164,
        channel_id=call_id,
        linkedid=call_id,
    )
    s.add(row)
    s.flush()
    return row.id


def fail_dial_attempt(s: Session, call_id: str, outcome: str) -> None:
    row = s.scalars(
        select(CallAttempt).where(CallAttempt.attempt_key == f"call:{call_id}")
    ).one_or_none()
    if row is not None and row.outcome is None:
        row.outcome = outcome
        row.ended_at = dt.datetime.now(dt.UTC)


def is_winback_campaign(s: Session, campaign_id: int | None) -> bool:
    from crm_bridge.models import Campaign, CampaignKind

    if campaign_id is None:
        return False
    return (
        s.scalar(select(Campaign.kind).where(Campaign.id == campaign_id))
        is CampaignKind.DORMANT_WINBACK
    )


def call_owner(s: Session, call_id: str) -> tuple[bool, int | None]:
    from cti.hub.persist import call_row

    row = call_row(s, call_id)
    return (False, None) if row is None else (True, row.agent_id)


def store_wrapup(
    s: Session,
    call_id: str,
    agent: AgentInfo,
    disposition: str,
    notes: str | None,
    callback_at: dt.datetime | None,
    queue: str | None,
    member_id: int | None,
    reason: str | None = None,
) -> int | None:
    """Disposition, notes and callback time on the call's row; one callback task per call.

    An answered call of a win-back campaign needs a ``reason`` (why the member stopped
    buying): without one nothing is written and ``reason_required`` is raised.
    Idempotent: repeating the wrap-up updates the same row and the same task
    (``callback_tasks.source_ref = wrapup:<attempt id>``). Returns the attempt id,
    or None when the call has no row.
    """
    from crm_bridge import optout
    from crm_bridge.models import AuditLog, CallbackTask, TaskStatus
    from cti.hub.persist import call_row

    row = call_row(s, call_id)
    if row is None:
        return None
    if reason is None and row.answered_at is not None and is_winback_campaign(s, row.campaign_id):
        raise ProtocolError(ErrorCode.REASON_REQUIRED, "a win-back call ends with a reason")
    row.disposition = disposition
    if reason is not None:
        row.reason = reason
    if notes is not None:
        row.notes = notes
    row.callback_at = callback_at
    if row.agent_id is None:
        row.agent_id = agent.id
    if row.member_id is None and member_id is not None:
        row.member_id = member_id
    ref = f"wrapup:{row.id}"
    task = s.scalars(select(CallbackTask).where(CallbackTask.source_ref == ref)).one_or_none()
    if callback_at is not None and row.member_id is not None:
        if task is None:
            task = CallbackTask(
                member_id=row.member_id,
                agent_id=agent.id,
                queue=queue,
                due_at=callback_at,
                reason=f"callback after call ({disposition})"[:200],
                source="agent",
                source_ref=ref,
            )
            s.add(task)
        else:
            task.due_at = callback_at
            task.status = TaskStatus.OPEN
    elif task is not None and task.status is TaskStatus.OPEN:
        task.status = TaskStatus.CANCELLED
    s.add(
        AuditLog(
            actor=agent.actor,
            action="call.wrapup",
            member_id=row.member_id,
            details={"call_id": call_id, "disposition": disposition, "attempt_id": row.id}
            | ({"reason": reason} if reason is not None else {}),
        )
    )
    if row.member_id is not None and disposition in optout.CODES:
        # The member said so on the phone: no campaign calls them (or that number) again.
        details = {"call_id": call_id, "via": "wrapup", "attempt_id": row.id}
        optout.apply(s, disposition, row.member_id, row.phone_e164, agent.actor, details)
    s.flush()
    return row.id


# --------------------------------------------------------------------------- the agent's desk
def load_presence(s: Session, hub: str) -> dict[int, tuple[list[str], str | None]]:
    """agent id -> (queues joined through the hub, requested pause reason), for the agents
    last seated at ``hub`` (another hub's agents belong on that hub's PBX)."""
    from crm_bridge.models import AgentPresence

    rows = s.scalars(select(AgentPresence).where(AgentPresence.hub == hub))
    return {p.agent_id: (list(p.queues or []), p.pause_reason) for p in rows}


def save_presence(
    s: Session, agent_id: int, hub: str, queues: list[str], pause_reason: str | None
) -> None:
    from crm_bridge.models import AgentPresence

    row = s.get(AgentPresence, agent_id)
    if row is None:
        s.add(
            AgentPresence(
                agent_id=agent_id, hub=hub, queues=sorted(queues), pause_reason=pause_reason
            )
        )
    else:
        row.hub = hub
        row.queues = sorted(queues)
        row.pause_reason = pause_reason


def _call_id(row: CallAttempt) -> str:
    """The console's call id of a row: the hub's ``call:<id>`` key, or a dialer's ChannelId."""
    if row.attempt_key.startswith("call:"):
        return row.attempt_key[5:]
    return row.channel_id or row.attempt_key


def unfinished_calls(
    s: Session, agent_id: int | None, stale_before: dt.datetime, limit: int = 200
) -> list[dict[str, object]]:
    """Answered, ended calls with no disposition yet (``agent_id`` None: every agent's),
    oldest first; ``stale``: ended before ``stale_before`` (an earlier shift)."""
    q = (
        select(CallAttempt, Agent.code, Member.name)
        .join(Agent, Agent.id == CallAttempt.agent_id)
        .outerjoin(Member, Member.id == CallAttempt.member_id)
        .where(
            CallAttempt.answered_at.is_not(None),
            CallAttempt.ended_at.is_not(None),
            CallAttempt.disposition.is_(None),
        )
        .order_by(CallAttempt.ended_at, CallAttempt.id)
        .limit(limit)
    )
    if agent_id is not None:
        q = q.where(CallAttempt.agent_id == agent_id)
    out: list[dict[str, object]] = []
    for row, code, name in s.execute(q).all():
        ended = row.ended_at
        out.append(
            {
                "call_id": _call_id(row),
                "attempt_id": row.id,
                "agent": code,
                "direction": row.direction.value,
                "campaign_id": row.campaign_id,
                "member_id": row.member_id,
                "member_name": name,
                "answered_at": row.answered_at.isoformat(timespec="seconds")
                if row.answered_at
                else None,
                "ended_at": ended.isoformat(timespec="seconds") if ended else None,
                "stale": bool(ended is not None and ended < stale_before),
            }
        )
    return out


def unfinished_counts(s: Session, stale_before: dt.datetime) -> dict[str, tuple[int, int]]:
    """agent code -> (unfinished calls, of which stale) over every agent."""
    rows = s.execute(
        select(Agent.code, CallAttempt.ended_at)
        .join(Agent, Agent.id == CallAttempt.agent_id)
        .where(
            CallAttempt.answered_at.is_not(None),
            CallAttempt.ended_at.is_not(None),
            CallAttempt.disposition.is_(None),
        )
    ).all()
    out: dict[str, tuple[int, int]] = {}
    for code, ended in rows:
        n, old = out.get(code, (0, 0))
        out[code] = (n + 1, old + (1 if ended is not None and ended < stale_before else 0))
    return out


def campaign_wrapup_max(s: Session, campaign_id: int) -> float | None:
    """The campaign's ``settings.wrapup_max_s`` (None: the queue's maximum applies)."""
    from crm_bridge.models import Campaign

    settings = s.scalar(select(Campaign.settings).where(Campaign.id == campaign_id))
    value = (settings or {}).get("wrapup_max_s")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
