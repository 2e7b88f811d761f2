"""Closing the loop: a bad answer reaches a person the same minute.

Rules (evaluated on the response's columns after every stored answer):

- CSAT <= 2 or NPS <= 6 -> one **complaint** (``source="survey"``,
  ``source_ref="survey:<response id>"``, owner = the member's maintaining agent) and one
  **callback task** for that agent, or for the campaign's queue when the member has none;
- "callback: yes" alone -> one **inquiry** (category ``callback-request``) and one callback task.

Idempotent: ``complaints.source_ref`` and ``callback_tasks.source_ref`` are unique, so running
:func:`escalate` twice (or from two processes at once) never makes a second row; the inquiry is
only ever created in the same transaction as the callback task, so it is exactly-once too.
Unknown members (no member id on the call) cannot be escalated and are only logged.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_bridge.db import session_scope
from crm_bridge.models import (
    CallbackTask,
    Campaign,
    Complaint,
    Inquiry,
    Member,
    Severity,
    SurveyResponse,
)

log = logging.getLogger(__name__)

__all__ = ["Escalation", "escalate", "escalate_with_retry", "needs_escalation"]

CSAT_LOW = 2
NPS_LOW = 6


@dataclass(frozen=True)
class Escalation:
    complaint_id: int | None = None
    inquiry_id: int | None = None
    callback_task_id: int | None = None
    created: tuple[str, ...] = ()
    """What this call created: "complaint", "inquiry", "callback" (empty when nothing new)."""


def low_score(csat: int | None, nps: int | None) -> bool:
    return (csat is not None and csat <= CSAT_LOW) or (nps is not None and nps <= NPS_LOW)


def needs_escalation(csat: int | None, nps: int | None, callback: bool | None) -> bool:
    return low_score(csat, nps) or callback is True


def source_ref(response_id: int) -> str:
    return f"survey:{response_id}"


def _describe(r: SurveyResponse) -> str:
    parts = []
    if r.csat is not None:
        parts.append(f"CSAT {r.csat}/5")
    if r.nps is not None:
        parts.append(f"NPS {r.nps}/10")
    if r.callback_requested is not None:
        parts.append("callback requested" if r.callback_requested else "no callback wanted")
    return f"Survey response #{r.id} ({r.channel}): " + ", ".join(parts)


def escalate(
    session: Session, response_id: int, now: dt.datetime, *, default_queue: str = "members"
) -> Escalation:
    """Create what response ``response_id`` calls for and is not there yet (one transaction)."""
    r = session.get(SurveyResponse, response_id)
    if r is None:
        raise LookupError(f"no survey response {response_id}")
    low = low_score(r.csat, r.nps)
    if not (low or r.callback_requested is True):
        return Escalation()
    if r.member_id is None:
        log.warning("survey response %s needs escalation but has no member", response_id)
        return Escalation()
    member = session.get(Member, r.member_id)
    if member is None:
        return Escalation()
    ref = source_ref(response_id)
    owner = member.maintaining_agent_id
    queue = None
    if owner is None:
        campaign = session.get(Campaign, r.campaign_id) if r.campaign_id else None
        queue = campaign.queue if campaign is not None else default_queue
    created: list[str] = []

    complaint = session.scalars(select(Complaint).where(Complaint.source_ref == ref)).first()
    if low and complaint is None:
        worst = (r.csat is not None and r.csat <= 1) or (r.nps is not None and r.nps <= 3)
        complaint = Complaint(
            member_id=member.id,
            created_at=now,
            updated_at=now,
            severity=Severity.HIGH if worst else Severity.MEDIUM,
            category="survey-low-score",
            description=_describe(r),
            owner_agent_id=owner,
            source="survey",
            source_ref=ref,
        )
        session.add(complaint)
        session.flush()
        created.append("complaint")

    task = session.scalars(select(CallbackTask).where(CallbackTask.source_ref == ref)).first()
    inquiry_id = None
    if task is None:
        if complaint is None:
            inquiry = Inquiry(
                member_id=member.id,
                created_at=now,
                channel="ivr" if r.channel == "agi" else r.channel,
                category="callback-request",
                subject="Callback requested in a survey",
                body=_describe(r),
                agent_id=owner,
            )
            session.add(inquiry)
            session.flush()
            inquiry_id = inquiry.id
            created.append("inquiry")
        task = CallbackTask(
            member_id=member.id,
            agent_id=owner,
            queue=queue,
            due_at=now,
            reason=("Low survey score: " if low else "Callback requested: ") + _describe(r),
            source="survey",
            source_ref=ref,
            complaint_id=complaint.id if complaint is not None else None,
            created_at=now,
        )
        session.add(task)
        session.flush()
        created.append("callback")
    elif complaint is not None and task.complaint_id is None:
        task.complaint_id = complaint.id  # the callback came first, the low score later
    if created and r.escalated_at is None:
        r.escalated_at = now
    if created:
        log.info("survey response %s escalated: %s", response_id, ", ".join(created))
    return Escalation(
        complaint_id=complaint.id if complaint is not None else None,
        inquiry_id=inquiry_id,
        callback_task_id=task.id,
        created=tuple(created),
    )


def escalate_with_retry(
    engine: Engine, response_id: int, now: dt.datetime, *, default_queue: str = "members"
) -> Escalation:
    """:func:`escalate` in its own transaction; a unique-key race is retried once (then it
    sees the other writer's rows and creates nothing)."""
    for attempt in (1, 2):
        try:
            with session_scope(engine) as s:
                return escalate(s, response_id, now, default_queue=default_queue)
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("escalation of response %s raced another writer; retrying", response_id)
    raise AssertionError("unreachable")
