"""Outcomes: what the ledger decided, stored on the attempt rows and fed to the estimators.

The ledger (:mod:`dialer.ledger`) produces two facts per call: ``DECIDED`` (the outcome is
fixed: the attempt row gets it, the entry its next due time or ``done``/``exhausted`` — an
exhausted entry goes to the SMS/email fallback in the same transaction) and ``ENDED``
(every channel is gone: ``ended_at`` and ``hangup_by``; IVR calls never reach a queue, so
this is the only place their end is written). Storing is idempotent
(:func:`dialer.entries.finish_attempt` keeps the first outcome).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from crm_bridge.db import lock_call_attempts
from crm_bridge.models import CallAttempt
from dialer import entries
from dialer.dial_rules import DialOutcome, DialRetryPolicy
from dialer.ledger import CallKind, Fact, FactKind, WindowCounts, window_abandons
from dialer.pacing import OutcomeEstimator

log = logging.getLogger(__name__)


def store_facts(
    s: Session,
    facts: list[Fact],
    policy: DialRetryPolicy,
    on_exhausted: entries.ExhaustedHook | None = None,
) -> None:
    """One transaction for a batch of facts, in their order; the attempt rows are locked
    first, in id order, as the hub's writer does (:func:`crm_bridge.db.lock_call_attempts`)."""
    lock_call_attempts(s, channel_ids=[f.call.call_id for f in facts])
    for fact in facts:
        rec = fact.call
        if fact.kind is FactKind.DECIDED:
            assert rec.outcome is not None and rec.decided_at is not None
            entries.finish_attempt(
                s,
                rec.call_id,
                rec.outcome,
                _utc(rec.decided_at),
                policy,
                hangup_cause=rec.cause,
                answered_at=_utc(rec.answered_at) if rec.answered_at is not None else None,
                agent_id=rec.agent_id,
                bridge_wait_s=rec.answer_wait_s,
                amd_status=rec.amd_status,
                on_exhausted=on_exhausted,
            )
            continue
        row = s.scalars(
            select(CallAttempt).where(CallAttempt.channel_id == rec.call_id)
        ).one_or_none()
        if row is None or rec.ended_at is None:
            continue
        wait = rec.answer_wait_s
        if wait is not None:
            row.bridge_wait_s = round(wait, 3)  # final: bridged, or waited until the end
        if rec.amd_status is not None:
            row.amd_status = rec.amd_status
        if row.ended_at is None or rec.outcome is not DialOutcome.ANSWERED:
            row.ended_at = _utc(rec.ended_at)
        if row.hangup_by is None:
            row.hangup_by = rec.hung_up_by


def feed_estimator(est: OutcomeEstimator, fact: Fact) -> None:
    """A decided dialer call (queue campaigns) teaches the pacer's outcome model."""
    rec = fact.call
    if fact.kind is not FactKind.DECIDED or rec.kind is not CallKind.QUEUE:
        return
    if rec.outcome is DialOutcome.INTERRUPTED:
        return  # cut by a restart: says nothing about the list
    reached = rec.reached
    end = rec.answered_at if rec.answered_at is not None else rec.decided_at
    delay = max(0.0, (end or rec.placed_at) - rec.placed_at)
    est.record_attempt(reached_queue=reached, reach_delay_s=delay if reached else None)
    if reached:
        est.record_connection(live=True)


def describe(fact: Fact) -> str:
    """One log line for a decided call."""
    rec = fact.call
    bits = [f"call {rec.call_id}: {rec.outcome}"]
    if rec.bridge_wait_s is not None:
        bits.append(f"agent after {rec.bridge_wait_s:.2f} s")
    if rec.outcome is DialOutcome.ABANDONED:
        bits.append("safe harbour played" if rec.safe_harbour else "NO safe-harbour message seen")
    if rec.amd_status:
        bits.append(f"AMD {rec.amd_status}")
    return ", ".join(bits)


def answer_to_agent(
    s: Session, campaign_ids: list[int], safe_harbour_s: float = 2.0
) -> dict[int, dict[str, Any]]:
    """Per campaign, the 2-second rule as the ledger measured it on the attempt rows
    (``bridge_wait_s``): how many live answers were timed, the mean and the longest wait,
    and how many waited longer than the safe harbour (each of those is an abandoned call)."""
    if not campaign_ids:
        return {}
    w = CallAttempt.bridge_wait_s
    rows = s.execute(
        select(
            CallAttempt.campaign_id,
            func.count(w),
            func.avg(w),
            func.max(w),
            func.count(w).filter(w > safe_harbour_s),
        )
        .where(CallAttempt.campaign_id.in_(campaign_ids), w.is_not(None))
        .group_by(CallAttempt.campaign_id)
    ).all()
    out: dict[int, dict[str, Any]] = {
        cid: {"timed": 0, "mean_s": None, "max_s": None, "over_rule": 0} for cid in campaign_ids
    }
    for cid, n, mean, longest, over in rows:
        out[cid] = {
            "timed": int(n),
            "mean_s": round(float(mean), 3),
            "max_s": round(float(longest), 3),
            "over_rule": int(over),
        }
    return out


AMD_DISPOSITIONS = ("voicemail", "answering-machine")
"""Agents' dispositions that mean "this was an answering machine" (the default)."""


def window_counts(
    s: Session,
    campaign_ids: list[int],
    since: dt.datetime | None = None,
    amd_dispositions: tuple[str, ...] = AMD_DISPOSITIONS,
) -> dict[int, WindowCounts]:
    """Per campaign, the stored calls the abandonment statistic is made of (attempts started
    at or after ``since``): live answers and abandons, machine hang-ups, and the machine
    verdicts agents verified. A verification call (AMD said machine, an agent took it)
    counts as a live answer only once its disposition says a person was there; until then,
    and when it was a machine, it is a verified sample only
    (:func:`dialer.ledger.window_abandons` turns these into the rate)."""
    if not campaign_ids:
        return {}
    a = CallAttempt
    reached = a.outcome.in_([DialOutcome.ANSWERED.value, DialOutcome.ABANDONED.value])
    verif = and_(reached, a.amd_status == "MACHINE")
    seen = and_(verif, a.disposition.is_not(None))
    found_live = and_(seen, a.disposition.not_in(amd_dispositions))
    counted = or_(and_(reached, ~verif), found_live)
    q = select(
        a.campaign_id,
        func.count().filter(counted),
        func.count().filter(and_(counted, a.outcome == DialOutcome.ABANDONED.value)),
        func.count().filter(a.outcome == DialOutcome.MACHINE.value),
        func.count().filter(seen),
        func.count().filter(found_live),
    ).where(a.campaign_id.in_(campaign_ids))
    if since is not None:
        q = q.where(a.started_at >= since)
    out = {cid: WindowCounts() for cid in campaign_ids}
    for cid, live, abandoned, machine, verified, verified_live in s.execute(
        q.group_by(a.campaign_id)
    ):
        if cid is None:
            continue
        out[cid] = WindowCounts(
            abandoned=float(abandoned),
            live=float(live),
            machine=float(machine),
            verified=float(verified),
            verified_live=float(verified_live),
        )
    return out


def abandonment(w: WindowCounts) -> dict[str, Any]:
    """The abandonment statistic of a report (AMD false positives counted as abandoned)."""
    abandoned, live, fp, share = window_abandons(w)
    return {
        "rate": round(abandoned / live, 4) if live else 0.0,
        "abandoned": round(abandoned, 2),
        "live": round(live, 2),
        "amd_machine_hangups": int(w.machine),
        "amd_verified": int(w.verified),
        "amd_verified_live": int(w.verified_live),
        "amd_false_positive_share": round(share, 4),
        "amd_false_positives_counted": round(fp, 2),
    }


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)
