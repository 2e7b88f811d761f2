"""Call-list entries in the database: leasing, attempts and outcomes.

Crash safety rests on one ordering rule: **an attempt row is committed before the
Originate is sent**. Its ``attempt_key`` (``entry:<id>:<n>``) is unique and its
``channel_id`` is the Uniqueid preset with Originate's ``ChannelId``, so

* a hub that dies after committing and before (or after) originating comes back,
  finds the entry in ``dialing`` with an attempt that has no outcome
  (:func:`dialer.leasing.open_attempts`), and its call ledger resolves it from the
  PBX's channel list (CoreShowChannels): re-attached to the live call, or
  ``interrupted`` — it never sends a second Originate for the same attempt number;
* two hubs never lease the same entry: PostgreSQL uses ``FOR UPDATE SKIP LOCKED``,
  SQLite (single writer) a conditional ``UPDATE … RETURNING``; leases expire so a
  dead hub's entries return to the pool.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from crm_bridge import optout
from crm_bridge.models import (
    CallAttempt,
    CallListEntry,
    Direction,
    EntryStatus,
    Member,
    MemberPhone,
)
from dialer import hours
from dialer.dial_rules import Candidate, DialOutcome, DialRetryPolicy, after_attempt

ExhaustedHook = Callable[[Session, CallListEntry], None]
"""Called in the same transaction when an entry runs out of attempts (the SMS/email fallback)."""


@dataclass(frozen=True)
class LeasedEntry:
    id: int
    campaign_id: int
    member_id: int
    phone_e164: str
    attempts: int
    assigned_agent_id: int | None


@dataclass(frozen=True)
class StartedAttempt:
    entry_id: int
    attempt_id: int
    attempt_no: int
    attempt_key: str
    channel_id: str
    member_id: int
    phone_e164: str


def _due(now: dt.datetime) -> object:
    return or_(
        and_(
            CallListEntry.status == EntryStatus.PENDING,
            or_(CallListEntry.next_attempt_at.is_(None), CallListEntry.next_attempt_at <= now),
        ),
        and_(CallListEntry.status == EntryStatus.LEASED, CallListEntry.lease_expires_at < now),
    )


def lease_entries(
    session: Session, campaign_id: int, owner: str, limit: int, now: dt.datetime, lease_s: int = 120
) -> list[LeasedEntry]:
    """Lease up to ``limit`` due entries of a campaign for ``owner``; safe across hubs."""
    if limit <= 0:
        return []
    expires = now + dt.timedelta(seconds=lease_s)
    pick = (
        select(CallListEntry.id)
        .where(CallListEntry.campaign_id == campaign_id, _due(now))  # type: ignore[arg-type]
        .order_by(CallListEntry.priority.desc(), CallListEntry.next_attempt_at, CallListEntry.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.scalars(pick.with_for_update(skip_locked=True)))
        if not ids:
            return []
        where = CallListEntry.id.in_(ids)
    else:
        where = CallListEntry.id.in_(pick.scalar_subquery())
    stmt = (
        update(CallListEntry)
        .where(where, _due(now))  # type: ignore[arg-type]
        .values(
            status=EntryStatus.LEASED, lease_owner=owner, lease_expires_at=expires, updated_at=now
        )
        .returning(
            CallListEntry.id,
            CallListEntry.campaign_id,
            CallListEntry.member_id,
            CallListEntry.phone_e164,
            CallListEntry.attempts,
            CallListEntry.assigned_agent_id,
        )
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(stmt).all()
    return [LeasedEntry(*row) for row in sorted(rows)]


def candidates(
    session: Session, entries: Sequence[LeasedEntry], now: dt.datetime
) -> dict[int, Candidate]:
    """Fresh dial-time facts for leased entries (two queries, whatever the batch size)."""
    if not entries:
        return {}
    member_ids = {e.member_id for e in entries}
    members = {
        m.id: m
        for m in session.execute(
            select(Member.id, Member.timezone, Member.do_not_call, Member.consent_call).where(
                Member.id.in_(member_ids)
            )
        )
    }
    valid_phones: set[tuple[int, str]] = set(
        session.execute(
            select(MemberPhone.member_id, MemberPhone.e164).where(
                MemberPhone.member_id.in_(member_ids), MemberPhone.invalid.is_(False)
            )
        )
    )
    since = now - dt.timedelta(hours=72)
    recent = session.execute(
        select(CallAttempt.member_id, CallAttempt.started_at, CallAttempt.outcome).where(
            CallAttempt.member_id.in_(member_ids),
            CallAttempt.direction == Direction.OUTBOUND,
            CallAttempt.started_at >= since,
        )
    ).all()
    out: dict[int, Candidate] = {}
    for e in entries:
        m = members.get(e.member_id)
        if m is None:
            continue
        others = sorted(p for mid, p in valid_phones if mid == e.member_id and p != e.phone_e164)
        phones = (e.phone_e164, *others)
        zones = hours.member_zones(m.timezone, phones)
        # Unknown zone: the rules refuse to dial; count from UTC midnight meanwhile.
        local_midnight = (
            hours.local_day_start(now, zones)
            if zones
            else dt.datetime.combine(now.date(), dt.time(0), tzinfo=dt.UTC)
        )
        mine = [r for r in recent if r.member_id == e.member_id]
        abandoned = [r.started_at for r in mine if r.outcome == DialOutcome.ABANDONED]
        out[e.id] = Candidate(
            timezone=m.timezone,
            do_not_call=m.do_not_call,
            consent_call=m.consent_call,
            phone_valid=(e.member_id, e.phone_e164) in valid_phones,
            attempts=e.attempts,
            attempts_today_all_campaigns=sum(1 for r in mine if r.started_at >= local_midnight),
            last_abandoned_at=max(abandoned) if abandoned else None,
            phones=phones,
        )
    return out


def release(
    session: Session,
    entry_id: int,
    owner: str,
    *,
    retry_at: dt.datetime | None,
    cancel: bool,
    reason: str,
) -> None:
    """Give a leased entry back: due again at ``retry_at``, or cancelled for good."""
    session.execute(
        update(CallListEntry)
        .where(CallListEntry.id == entry_id, CallListEntry.lease_owner == owner)
        .values(
            status=EntryStatus.CANCELLED if cancel else EntryStatus.PENDING,
            next_attempt_at=retry_at,
            lease_owner=None,
            lease_expires_at=None,
            last_outcome=reason[:32] if cancel else CallListEntry.last_outcome,
        )
    )


def skip_entry(
    session: Session,
    entry_id: int,
    owner: str,
    *,
    reason: str,
    retry_at: dt.datetime | None,
    actor: str,
) -> bool:
    """An agent skipped a preview card: give the entry back, with what the reason means.

    ``later`` / ``other``: due again at ``retry_at``. ``wrong-number`` / ``do-not-call``
    (:mod:`crm_bridge.optout`): the entry is cancelled, and the number is flagged invalid or
    the member goes on the do-not-call list, for every campaign. One transaction. Returns
    True when the entry was cancelled.
    """
    row = session.execute(
        select(CallListEntry.member_id, CallListEntry.phone_e164).where(
            CallListEntry.id == entry_id
        )
    ).first()
    cancel = reason in optout.CODES
    release(
        session,
        entry_id,
        owner,
        retry_at=None if cancel else retry_at,
        cancel=cancel,
        reason=f"skipped: {reason}",
    )
    if row is not None and cancel:
        details = {"entry_id": entry_id, "via": "preview_skip"}
        optout.apply(session, reason, row[0], row[1], actor, details)
    return cancel


def begin_attempt(
    session: Session, entry: LeasedEntry, owner: str, now: dt.datetime, agent_id: int | None = None
) -> StartedAttempt | None:
    """Record attempt n+1 durably; the caller commits, THEN originates. None if the lease was lost."""
    n = entry.attempts + 1
    res = session.execute(
        update(CallListEntry)
        .where(
            CallListEntry.id == entry.id,
            CallListEntry.lease_owner == owner,
            CallListEntry.status == EntryStatus.LEASED,
            CallListEntry.attempts == entry.attempts,
        )
        .values(status=EntryStatus.DIALING, attempts=n, updated_at=now)
    )
    if res.rowcount != 1:  # type: ignore[attr-defined]
        return None
    channel_id = f"ml-{entry.id}-{n}-{secrets.token_hex(4)}"
    attempt = CallAttempt(
        attempt_key=f"entry:{entry.id}:{n}",
        entry_id=entry.id,
        campaign_id=entry.campaign_id,
        member_id=entry.member_id,
        agent_id=agent_id,
        direction=Direction.OUTBOUND,
        phone_e164=entry.phone_e164,
        channel_id=channel_id,
        linkedid=channel_id,
        started_at=now,
    )
    session.add(attempt)
    session.flush()
    return StartedAttempt(
        entry.id, attempt.id, n, attempt.attempt_key, channel_id, entry.member_id, entry.phone_e164
    )


def finish_attempt(
    session: Session,
    channel_id: str,
    outcome: DialOutcome,
    now: dt.datetime,
    policy: DialRetryPolicy,
    *,
    hangup_cause: int | None = None,
    answered_at: dt.datetime | None = None,
    agent_id: int | None = None,
    bridge_wait_s: float | None = None,
    amd_status: str | None = None,
    on_exhausted: ExhaustedHook | None = None,
) -> bool:
    """Store an attempt's outcome and schedule the entry; idempotent (False if already stored).

    ``bridge_wait_s`` (live answer -> agent) and ``amd_status`` are the ledger's
    measurements; they are kept even when the outcome was stored before (they only grow
    more precise: a wait known at the decision is final, an unbridged one ends with the call).
    """
    attempt = session.scalars(
        select(CallAttempt).where(CallAttempt.channel_id == channel_id).with_for_update()
    ).one_or_none()
    if attempt is None:
        return False
    if bridge_wait_s is not None:
        attempt.bridge_wait_s = round(bridge_wait_s, 3)
    if amd_status is not None:
        attempt.amd_status = amd_status
    if attempt.outcome is not None:
        return False
    attempt.outcome = outcome.value
    attempt.ended_at = now if outcome is not DialOutcome.ANSWERED else None
    attempt.answered_at = answered_at or (
        now if outcome in (DialOutcome.ANSWERED, DialOutcome.ABANDONED) else None
    )
    attempt.hangup_cause = hangup_cause
    if agent_id is not None:
        attempt.agent_id = agent_id
    if attempt.entry_id is None:
        return True
    entry = session.get(CallListEntry, attempt.entry_id, with_for_update=True)
    if entry is None:
        return True
    status, due = after_attempt(outcome, entry.attempts, now, policy)
    entry.status = EntryStatus(status)
    entry.next_attempt_at = due
    entry.last_outcome = outcome.value
    entry.lease_owner = None
    entry.lease_expires_at = None
    if entry.status is EntryStatus.EXHAUSTED and on_exhausted is not None:
        on_exhausted(session, entry)
    return True


def progress(session: Session, campaign_id: int) -> dict[str, int]:
    """Entry counts by status for a campaign."""
    rows = session.execute(
        select(CallListEntry.status, func.count())
        .where(CallListEntry.campaign_id == campaign_id)
        .group_by(CallListEntry.status)
    ).all()
    return {str(status.value if hasattr(status, "value") else status): int(n) for status, n in rows}
