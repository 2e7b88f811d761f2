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

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_bridge.models import CallAttempt
from dialer import entries
from dialer.dial_rules import DialOutcome, DialRetryPolicy
from dialer.ledger import CallKind, Fact, FactKind
from dialer.pacing import OutcomeEstimator

log = logging.getLogger(__name__)


def store_facts(
    s: Session,
    facts: list[Fact],
    policy: DialRetryPolicy,
    on_exhausted: entries.ExhaustedHook | None = None,
) -> None:
    """One transaction for a batch of facts, in their order."""
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
    out = {cid: {"timed": 0, "mean_s": None, "max_s": None, "over_rule": 0} for cid in campaign_ids}
    for cid, n, mean, longest, over in rows:
        out[cid] = {
            "timed": int(n),
            "mean_s": round(float(mean), 3),
            "max_s": round(float(longest), 3),
            "over_rule": int(over),
        }
    return out


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)
