"""Leasing for the campaign runner: which entries may be dialled now, in one transaction.

Every function here runs inside one database session (``run_db``), so an attempt row is
committed before its Originate is sent (see :mod:`dialer.entries`). Entries the dial-time
rules (:mod:`dialer.dial_rules`) refuse are given back with their due time, or cancelled.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.models import CallAttempt, CallListEntry, Campaign, CampaignStatus, Direction
from dialer import agentfirst, entries, outcomes
from dialer.dial_rules import CallingWindow, DialRetryPolicy, Verdict, check

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseRules:
    owner: str
    window: CallingWindow
    policy: DialRetryPolicy
    lease_s: int
    preview_lease_s: int


@dataclass(frozen=True)
class OpenAttempt:
    """An attempt recorded without outcome (found after a restart)."""

    channel_id: str
    entry_id: int
    campaign_id: int
    member_id: int
    agent_id: int | None
    """Set at dial time: an agent-first call (preview, maintainer first)."""
    started_at: dt.datetime


def rule_of(reason: str) -> str:
    """A rule's name from a decision's reason, without its figures ("3 attempts made (max 3)"
    -> "attempts made (max)"), so held-back counts add up per rule."""
    return " ".join(re.sub(r"\d+", "", reason).split())


def check_leased(
    s: Session, rules: LeaseRules, leased: list[entries.LeasedEntry], now: dt.datetime
) -> tuple[list[entries.LeasedEntry], Counter[str]]:
    """The dial-time rules: (entries that may be dialled, entries given back or cancelled
    per rule)."""
    facts = entries.candidates(s, leased, now)
    ok = []
    skipped: Counter[str] = Counter()
    for e in leased:
        c = facts.get(e.id)
        decision = check(c, now, rules.window, rules.policy) if c else None
        if decision is None or decision.verdict is not Verdict.DIAL:
            reason = decision.reason if decision else "member gone"
            cancel = decision is None or decision.verdict is Verdict.NEVER
            entries.release(
                s,
                e.id,
                rules.owner,
                retry_at=decision.retry_at if decision else None,
                cancel=cancel,
                reason=reason,
            )
            skipped[rule_of(reason)] += 1
            log.info("entry %d not dialled: %s", e.id, reason)
            continue
        ok.append(e)
    return ok, skipped


Claimed = tuple[entries.StartedAttempt, agentfirst.DeskAgent | None, str]
"""An attempt to originate now, the agent to ring first (maintainer-first) and the name."""


def claim(
    s: Session,
    rules: LeaseRules,
    campaign_id: int,
    n: int,
    now: dt.datetime,
    free: dict[int, agentfirst.DeskAgent] | None = None,
) -> tuple[list[Claimed], Counter[str]]:
    """Lease, check and record up to ``n`` attempts (committed before any Originate)."""
    leased = entries.lease_entries(s, campaign_id, rules.owner, n, now, rules.lease_s)
    ok, skipped = check_leased(s, rules, leased, now)
    preferred = agentfirst.preferred_agents(s, ok) if free else {}
    out: list[Claimed] = []
    for e in ok:
        target, name = preferred.get(e.id, (None, ""))
        agent = free.pop(target, None) if free and target is not None else None
        att = entries.begin_attempt(s, e, rules.owner, now, agent_id=agent.id if agent else None)
        if att is not None:
            out.append((att, agent, name))
    return out, skipped


PreviewCard = tuple[entries.LeasedEntry, str, dict[str, Any], int | None]
"""A leased entry, the member's name, the card shown to the agent, the preferred agent."""


def claim_previews(
    s: Session, rules: LeaseRules, campaign_id: int, n: int, now: dt.datetime
) -> tuple[list[PreviewCard], Counter[str]]:
    leased = entries.lease_entries(s, campaign_id, rules.owner, n, now, rules.preview_lease_s)
    ok, skipped = check_leased(s, rules, leased, now)
    shown = agentfirst.cards(s, campaign_id, ok)
    preferred = agentfirst.preferred_agents(s, ok)
    out: list[PreviewCard] = []
    for e in ok:
        if e.id not in shown:
            entries.release(s, e.id, rules.owner, retry_at=None, cancel=True, reason="member gone")
            continue
        name, card = shown[e.id]
        pref = preferred.get(e.id)
        out.append((e, name, card, pref[0] if pref else None))
    return out, skipped


def begin_offered(
    s: Session,
    rules: LeaseRules,
    leased: entries.LeasedEntry,
    agent_id: int,
    now: dt.datetime,
) -> tuple[entries.StartedAttempt | None, str]:
    """The agent pressed dial on a preview card: re-check and record the attempt."""
    ok, _ = check_leased(s, rules, [leased], now)
    if not ok:
        return None, "the dial-time rules do not allow this call now"
    att = entries.begin_attempt(s, leased, rules.owner, now, agent_id=agent_id)
    return att, "ok" if att is not None else "the entry's lease was lost"


def open_attempts(s: Session, owner: str) -> list[OpenAttempt]:
    """This hub's attempts recorded without an outcome (the calls in flight at a restart)."""
    rows = s.execute(
        select(
            CallAttempt.channel_id,
            CallAttempt.entry_id,
            CallAttempt.campaign_id,
            CallAttempt.member_id,
            CallAttempt.agent_id,
            CallAttempt.started_at,
        )
        .join(CallListEntry, CallListEntry.id == CallAttempt.entry_id)
        .where(
            CallAttempt.direction == Direction.OUTBOUND,
            CallAttempt.outcome.is_(None),
            CallAttempt.channel_id.is_not(None),
            CallListEntry.lease_owner == owner,
        )
    ).all()
    return [
        OpenAttempt(str(a), int(b), int(c), int(d), e, f)
        for a, b, c, d, e, f in rows
        if a is not None and b is not None and c is not None and d is not None
    ]


def campaign_rows(
    s: Session,
    since: dt.datetime | None,
    amd_dispositions: tuple[str, ...] = outcomes.AMD_DISPOSITIONS,
) -> list[dict[str, Any]]:
    """Running and paused campaigns; with ``since``, their abandonment counts since then
    (``window``: :class:`dialer.ledger.WindowCounts`)."""
    rows = s.execute(
        select(
            Campaign.id,
            Campaign.name,
            Campaign.mode,
            Campaign.queue,
            Campaign.abandon_cap,
            Campaign.survey_name,
            Campaign.status,
            Campaign.amd_mode,
        ).where(Campaign.status.in_([CampaignStatus.RUNNING, CampaignStatus.PAUSED]))
    ).all()
    out: list[dict[str, Any]] = [
        {
            "id": r[0],
            "name": r[1],
            "mode": r[2].value,
            "queue": r[3],
            "cap": r[4],
            "survey": r[5],
            "status": r[6].value,
            "amd": r[7],
        }
        for r in rows
    ]
    if since is not None and out:
        counts = outcomes.window_counts(s, [r["id"] for r in out], since, amd_dispositions)
        for r in out:
            r["window"] = counts[r["id"]]
    return out


def dispositions(s: Session, call_ids: list[str]) -> dict[str, str]:
    """Agents' dispositions saved so far for these calls (channel id -> disposition)."""
    rows = s.execute(
        select(CallAttempt.channel_id, CallAttempt.disposition).where(
            CallAttempt.channel_id.in_(call_ids), CallAttempt.disposition.is_not(None)
        )
    ).all()
    return {str(c): str(d) for c, d in rows if c is not None and d is not None}
