"""Campaigns: list with progress, create from a list builder, and status transitions.

The one place campaign rows change: the hub's supervisor commands and the
``memberline campaign`` CLI both call these. The dialer runner only reads
``campaigns.status`` and follows it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_bridge import lists
from crm_bridge.models import (
    AuditLog,
    CallAttempt,
    CallListEntry,
    Campaign,
    CampaignKind,
    CampaignStatus,
    DialMode,
)


class CampaignError(Exception):
    """A campaign change was refused; ``code`` is ``conflict``, ``not_found`` or ``bad_request``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


S = CampaignStatus
BUILDERS = ("post_purchase", "dormant_winback", "survey")
"""Campaign kinds that have a list builder."""
#: action -> (allowed current statuses, new status)
TRANSITIONS: dict[str, tuple[frozenset[CampaignStatus], CampaignStatus]] = {
    "start": (frozenset({S.DRAFT}), S.RUNNING),
    "pause": (frozenset({S.RUNNING}), S.PAUSED),
    "resume": (frozenset({S.PAUSED}), S.RUNNING),
    "stop": (frozenset({S.DRAFT, S.RUNNING, S.PAUSED}), S.STOPPED),
}


def list_campaigns(s: Session) -> list[dict[str, Any]]:
    entries: dict[int, dict[str, int]] = {}
    for cid, status, n in s.execute(
        select(CallListEntry.campaign_id, CallListEntry.status, func.count()).group_by(
            CallListEntry.campaign_id, CallListEntry.status
        )
    ):
        entries.setdefault(cid, {})[getattr(status, "value", str(status))] = int(n)
    outcomes: dict[int, dict[str, int]] = {}
    dispositions: dict[int, int] = {}
    for ccid, outcome, n, disp in s.execute(
        select(
            CallAttempt.campaign_id,
            CallAttempt.outcome,
            func.count(),
            func.count(CallAttempt.disposition),
        )
        .where(CallAttempt.campaign_id.is_not(None))
        .group_by(CallAttempt.campaign_id, CallAttempt.outcome)
    ):
        if ccid is None:
            continue
        outcomes.setdefault(ccid, {})[outcome or "in_progress"] = int(n)
        dispositions[ccid] = dispositions.get(ccid, 0) + int(disp)
    out = []
    for c in s.scalars(select(Campaign).order_by(Campaign.id)):
        e = entries.get(c.id, {})
        total = sum(e.values())
        finished = sum(e.get(k, 0) for k in ("done", "exhausted", "cancelled", "routed"))
        out.append(
            {
                "campaign_id": c.id,
                "name": c.name,
                "kind": c.kind.value,
                "mode": c.mode.value,
                "status": c.status.value,
                "queue": c.queue,
                "abandon_cap": c.abandon_cap,
                "entries": e,
                "total": total,
                "progress": round(finished / total, 4) if total else 0.0,
                "outcomes": outcomes.get(c.id, {}),
                "dispositions": dispositions.get(c.id, 0),
                "created_at": c.created_at.isoformat() if c.created_at else None,
                "started_at": c.started_at.isoformat() if c.started_at else None,
            }
        )
    return out


def create_campaign(
    s: Session,
    *,
    actor: str,
    agent_id: int | None,
    name: str,
    kind: str,
    mode: str,
    settings: dict[str, Any],
    queue: str,
    abandon_cap: float,
) -> tuple[int, int]:
    if kind not in BUILDERS:
        raise CampaignError("bad_request", f"kind must be one of {', '.join(BUILDERS)}")
    if mode not in {m.value for m in DialMode}:
        raise CampaignError(
            "bad_request", f"mode must be one of {', '.join(m.value for m in DialMode)}"
        )
    if s.scalar(select(Campaign.id).where(Campaign.name == name)) is not None:
        raise CampaignError("conflict", f"a campaign named {name!r} exists")
    now = dt.datetime.now(dt.UTC)
    campaign = Campaign(
        name=name,
        kind=CampaignKind(kind),
        mode=DialMode(mode),
        queue=str(settings.get("queue", queue)),
        abandon_cap=float(settings.get("abandon_cap", abandon_cap)),
        survey_name=settings.get("survey_name"),
        settings=settings,
        created_by=agent_id,
    )
    s.add(campaign)
    try:
        s.flush()
    except IntegrityError:
        raise CampaignError("conflict", f"a campaign named {name!r} exists") from None
    try:
        if kind == "post_purchase":
            result = lists.build_post_purchase_list(
                s, campaign.id, now, int(settings.get("days_ago", lists.POST_PURCHASE_DAYS))
            )
        elif kind == "dormant_winback":
            result = lists.build_dormant_list(s, campaign.id, now, int(settings.get("days", 180)))
        else:
            result = lists.build_survey_list(
                s, campaign.id, now, int(settings.get("size", 500)), int(settings.get("seed", 0))
            )
    except (TypeError, ValueError) as exc:
        raise CampaignError("bad_request", f"settings: {exc}") from None
    s.add(
        AuditLog(
            actor=actor,
            action="campaign.create",
            member_id=None,
            details={"campaign_id": campaign.id, "kind": kind, "entries": result.added},
        )
    )
    return campaign.id, result.added


def control_campaign(s: Session, *, actor: str, campaign_id: int, action: str) -> str:
    c = s.get(Campaign, campaign_id)
    if c is None:
        raise CampaignError("not_found", f"no campaign {campaign_id}")
    if action not in TRANSITIONS:
        raise CampaignError("bad_request", f"unknown action {action!r}")
    allowed, new = TRANSITIONS[action]
    if c.status not in allowed:
        raise CampaignError("conflict", f"cannot {action} a {c.status.value} campaign")
    now = dt.datetime.now(dt.UTC)
    c.status = new
    if action == "start" and c.started_at is None:
        c.started_at = now
    if new is S.STOPPED:
        c.stopped_at = now
    s.add(
        AuditLog(
            actor=actor,
            action=f"campaign.{action}",
            member_id=None,
            details={"campaign_id": campaign_id},
        )
    )
    return new.value
