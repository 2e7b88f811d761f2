"""Campaigns: list with progress, create from a list builder, and status transitions.

The one place campaign rows change: the hub's supervisor commands and the
``memberline campaign`` CLI both call these. The dialer runner only reads
``campaigns.status`` and follows it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
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
    SurveyDefinition,
)


class CampaignError(Exception):
    """A campaign change was refused; ``code`` is ``conflict``, ``not_found`` or ``bad_request``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


S = CampaignStatus
BUILDERS = (
    "post_purchase",
    "dormant_winback",
    "survey",
    "monthly_care",
    "spend_decline",
    "custom",
)
"""Campaign kinds that have a list builder."""
DEFAULT_MODES = {"monthly_care": "preview", "spend_decline": "preview", "custom": "preview"}
"""Kinds whose calls are personal (the maintaining agent reads the member first): preview
unless the supervisor chooses another mode."""
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


MAX_ABANDON_CAP = 0.05
"""The highest abandonment cap a campaign may have (regulators allow 3 %; 5 % is already lax)."""
SETTINGS_KEYS: dict[str, tuple[str, ...]] = {
    "post_purchase": ("days_ago",),
    "dormant_winback": ("days",),
    "survey": ("size", "seed"),
    "monthly_care": (),
    "spend_decline": ("share",),
    "custom": ("segment",),
}
"""The list-builder parameters each kind understands (besides the common keys below)."""
COMMON_SETTINGS = ("queue", "abandon_cap", "survey_name", "wrapup_max_s")
"""Settings every kind takes; ``wrapup_max_s``: the after-call work maximum of this
campaign's calls (seconds, 0 = until the disposition is saved; default: the queue's)."""


def _whole(settings: dict[str, Any], key: str, default: int, minimum: int) -> int:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CampaignError("bad_request", f"settings.{key} must be a whole number, got {value!r}")
    if value < minimum:
        raise CampaignError("bad_request", f"settings.{key} must be >= {minimum}, got {value}")
    return value


def validate_campaign(
    s: Session,
    *,
    name: str,
    kind: str,
    mode: str,
    settings: Any,
    queue: str,
    abandon_cap: float,
    known_queues: Collection[str] | None = None,
) -> tuple[str, str, float, dict[str, Any]]:
    """Check a new campaign completely before anything is written; returns the stripped name,
    the queue, the cap and the settings. Raises :class:`CampaignError` (``bad_request`` or
    ``conflict``) naming the first thing wrong."""
    from surveys.definitions import builtin_names  # pure; crm_bridge does not import surveys

    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise CampaignError("bad_request", "the campaign name must not be empty")
    if len(name) > 200:
        raise CampaignError("bad_request", "the campaign name is longer than 200 characters")
    if kind not in BUILDERS:
        raise CampaignError("bad_request", f"kind must be one of {', '.join(BUILDERS)}")
    if mode not in {m.value for m in DialMode}:
        raise CampaignError(
            "bad_request", f"mode must be one of {', '.join(m.value for m in DialMode)}"
        )
    if not isinstance(settings, dict):
        raise CampaignError("bad_request", "settings must be a JSON object")
    unknown = sorted(set(settings) - set(COMMON_SETTINGS) - set(SETTINGS_KEYS[kind]))
    if unknown:
        allowed = ", ".join((*SETTINGS_KEYS[kind], *COMMON_SETTINGS))
        raise CampaignError(
            "bad_request", f"unknown setting(s) {', '.join(unknown)} for {kind} (known: {allowed})"
        )
    queue = settings.get("queue", queue)
    if not isinstance(queue, str) or not queue:
        raise CampaignError("bad_request", "the queue must be a non-empty name")
    if known_queues is not None and queue not in known_queues:
        raise CampaignError(
            "bad_request", f"no queue {queue!r} (known: {', '.join(sorted(known_queues))})"
        )
    cap = settings.get("abandon_cap", abandon_cap)
    if isinstance(cap, bool) or not isinstance(cap, (int, float)) or not 0 < cap <= MAX_ABANDON_CAP:
        raise CampaignError(
            "bad_request",
            f"the abandon cap must be a fraction in (0, {MAX_ABANDON_CAP}], e.g. 0.03; got {cap!r}",
        )
    wrap = settings.get("wrapup_max_s")
    if wrap is not None and (
        isinstance(wrap, bool) or not isinstance(wrap, (int, float)) or not 0 <= wrap <= 3600
    ):
        raise CampaignError(
            "bad_request", f"settings.wrapup_max_s must be seconds in [0, 3600]; got {wrap!r}"
        )
    survey_name = settings.get("survey_name")
    if survey_name is not None:
        if not isinstance(survey_name, str) or not survey_name:
            raise CampaignError("bad_request", "settings.survey_name must be a non-empty name")
        stored = s.scalar(
            select(SurveyDefinition.id).where(SurveyDefinition.name == survey_name).limit(1)
        )
        if stored is None and survey_name not in builtin_names():
            raise CampaignError("bad_request", f"no survey named {survey_name!r}")
    if kind == "custom":
        from crm_bridge.rfm import SEGMENTS

        if settings.get("segment") not in SEGMENTS:
            raise CampaignError(
                "bad_request",
                f"settings.segment must be an RFM segment: {', '.join(SEGMENTS)}",
            )
    if kind == "spend_decline":
        share = settings.get("share", lists.SPEND_DECLINE_SHARE)
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1:
            raise CampaignError(
                "bad_request",
                f"settings.share must be a fraction in (0, 1), e.g. 0.4; got {share!r}",
            )
    if kind == "post_purchase":
        _whole(settings, "days_ago", lists.POST_PURCHASE_DAYS, 0)
    elif kind == "dormant_winback":
        _whole(settings, "days", 180, 1)
    elif kind == "survey":
        _whole(settings, "size", 500, 1)
        _whole(settings, "seed", 0, -(2**63))
    if s.scalar(select(Campaign.id).where(Campaign.name == name)) is not None:
        raise CampaignError("conflict", f"a campaign named {name!r} exists")
    return name, queue, float(cap), settings


def create_campaign(
    s: Session,
    *,
    actor: str,
    agent_id: int | None,
    name: str,
    kind: str,
    mode: str | None,
    settings: dict[str, Any],
    queue: str,
    abandon_cap: float,
    known_queues: Collection[str] | None = None,
) -> tuple[int, int]:
    if mode is None:
        mode = DEFAULT_MODES.get(kind, "predictive")
    """Create a campaign (status draft) and build its call list; everything is validated
    (:func:`validate_campaign`) before the first row is written. ``known_queues``: the queues
    that exist (None: any)."""
    name, queue, abandon_cap, settings = validate_campaign(
        s,
        name=name,
        kind=kind,
        mode=mode,
        settings=settings,
        queue=queue,
        abandon_cap=abandon_cap,
        known_queues=known_queues,
    )
    now = dt.datetime.now(dt.UTC)
    campaign = Campaign(
        name=name,
        kind=CampaignKind(kind),
        mode=DialMode(mode),
        queue=queue,
        abandon_cap=abandon_cap,
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
        elif kind == "monthly_care":
            result = lists.build_monthly_care_list(s, campaign.id, now)
        elif kind == "spend_decline":
            share = float(settings.get("share", lists.SPEND_DECLINE_SHARE))
            result = lists.build_spend_decline_list(s, campaign.id, now, share)
        elif kind == "custom":
            result = lists.build_rfm_segment_list(s, campaign.id, now, str(settings["segment"]))
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
