"""Database side of the outbox worker: leasing, send-time rules, results, consent (sync).

Every function takes a ``Session`` and runs inside the caller's transaction (the worker calls
them through ``run_db``). State machine of a row::

    pending ──lease──▶ leased ──mark_sending──▶ sending ──▶ sent ──callback──▶ delivered
       ▲                 │ rules: defer/skip        │               └──────▶ undelivered
       └─ transient / deferred / expired lease ◀────┤ (30003: back to pending, retried)
                                                    ├──▶ failed (permanent / gave up)
                                                    └──▶ review (in flight at a crash, unprovable)

Leasing on PostgreSQL uses ``SELECT … FOR UPDATE SKIP LOCKED``; on SQLite a conditional
``UPDATE … WHERE status='pending'`` (SQLite has one writer, the UPDATE is atomic) followed by
a read of the rows carrying this batch's lease token. The send-time rules run in the same
transaction, after the write lock is taken (SQLite) / the members are locked ``FOR UPDATE``
(PostgreSQL), so two workers cannot both pass the daily cap for one member.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from crm_bridge.models import (
    AuditLog,
    Channel,
    Member,
    MemberPhone,
    OutboxMessage,
    OutboxStatus,
)
from dialer.fallback.content import ContentSettings, email_message, sms_body
from dialer.fallback.email import OutgoingEmail
from dialer.fallback.outbox import ORDER_KEY, sibling_key
from dialer.fallback.purposes import OrderPolicy
from dialer.fallback.results import SendOutcome, SendResult
from dialer.fallback.send_rules import RulesConfig
from dialer.hours import (
    NEVER_OPEN,
    UNKNOWN_ZONE,
    local_day_start,
    member_zones,
    next_local_day,
    next_open,
)

log = logging.getLogger(__name__)

T = cast(Table, OutboxMessage.__table__)
M = cast(Table, Member.__table__)
P = cast(Table, MemberPhone.__table__)
_ROW_COLS = (
    T.c.id,
    T.c.idempotency_key,
    T.c.purpose,
    T.c.member_id,
    T.c.channel,
    T.c.to_address,
    T.c.locale,
    T.c.payload,
    T.c.attempts,
)
_MEMBER_COLS = (
    M.c.id,
    M.c.name,
    M.c.member_no,
    M.c.tier,
    M.c.points_balance,
    M.c.timezone,
    M.c.consent_sms,
    M.c.consent_email,
    M.c.email_invalid,
)
BODY_KEY = "_body"
"""Payload key: the SMS text as sent (recovery matches the provider's copy against it)."""


def sms_reference(outbox_id: int) -> str:
    """The outbox id as carried in the SMS text: Twilio's Message resource has no client
    reference field, and the status-callback URL (``?o=<id>``) is not listed back, so the
    text itself must name the row for recovery to tell this message from an earlier one
    with the same words."""
    return f"[#{outbox_id}]"


def with_reference(body: str, outbox_id: int) -> str:
    return f"{body} {sms_reference(outbox_id)}"


COUNTED = (
    OutboxStatus.LEASED,
    OutboxStatus.SENDING,
    OutboxStatus.SENT,
    OutboxStatus.DELIVERED,
    OutboxStatus.UNDELIVERED,
)
"""Statuses that count towards the member's daily cap (by ``sent_at``)."""
OPEN = (OutboxStatus.PENDING, OutboxStatus.LEASED, OutboxStatus.SENDING)


@dataclass(frozen=True)
class SendRetryPolicy:
    max_attempts: int = 6
    base_s: float = 30.0
    max_s: float = 6 * 3600.0
    jitter: float = 0.5
    """Full back-off is ``base * 2**(attempt-1)`` capped, times a random factor in [1-j, 1+j]."""

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        r = rng or random
        raw = min(self.max_s, self.base_s * (2 ** max(0, attempts - 1)))
        return raw * (1 - self.jitter + 2 * self.jitter * r.random())


@dataclass(frozen=True)
class Job:
    """A leased row ready to send: everything the channel needs, nothing lazy."""

    id: int
    key: str
    channel: Channel
    member_id: int
    to: str
    attempts: int
    """Attempts before this one."""
    sms_body: str | None = None
    email: OutgoingEmail | None = None
    payload: dict[str, Any] | None = None
    """The row's payload with the SMS text as sent (stored with the "sending" mark)."""


def _audit(
    session: Session, action: str, member_id: int | None, actor: str, **details: Any
) -> None:
    session.add(AuditLog(actor=actor, action=action, member_id=member_id, details=details))


# ---------------------------------------------------------------- leasing and rules
@dataclass(frozen=True)
class Leased:
    """A row the send-time rules let through, leased, with what building its message needs
    (the message is built outside the leasing transaction: :func:`build_jobs`)."""

    row: Any
    """The outbox row's columns (``_ROW_COLS``)."""
    member: Any
    """The member's columns (``_MEMBER_COLS``)."""


Verdict = tuple[str, dt.datetime | None, str] | None
"""None = send now; else ("skip" | "defer", when, reason)."""


@dataclass
class _BatchFacts:
    """What the rules need about the members of one leased batch, read in four queries."""

    members: dict[int, Any]
    phones: dict[int, list[str]]
    """Each member's numbers (their zone comes from them when the record has none)."""
    bad_phones: set[tuple[int, str]]
    sent_times: dict[int, list[dt.datetime]]
    """Sends counting towards each member's daily cap (other rows than this batch's)."""
    siblings: dict[str, Any]
    """The SMS rows the batch's ordered email rows wait for, by idempotency key."""
    busy: set[str]
    """Keys of such SMS rows another transaction was updating (PostgreSQL): not read."""


@dataclass(frozen=True)
class LeasedBatch:
    claimed: int
    """Due rows taken (fewer than asked: nothing more is due now)."""
    rows: list[Leased]
    """Those the rules let through."""


def lease_batch(
    session: Session,
    owner: str,
    now: dt.datetime,
    limit: int,
    lease_s: float,
    rules: RulesConfig,
) -> LeasedBatch:
    """Lease up to ``limit`` due rows for ``owner`` (a unique batch token) and apply the
    send-time rules; rows a rule holds or skips are written back with their reason, the
    others returned leased (``sent_at`` set: they count towards the daily cap from now).

    Four steps: claim the due rows (one ``UPDATE … RETURNING``), read the facts the rules
    need for the whole batch, decide every row (hours worked out once per distinct set of
    zones), write the decisions (one statement per kind)."""
    rows = _claim_due(session, owner, now, limit, lease_s)
    if not rows:
        return LeasedBatch(0, [])
    facts = _batch_facts(session, rows, now)
    verdicts = _decide_batch(rows, facts, now, rules)
    return LeasedBatch(len(rows), _record_verdicts(session, rows, facts, verdicts, now))


def _claim_due(
    session: Session, owner: str, now: dt.datetime, limit: int, lease_s: float
) -> list[Any]:
    """``pending`` rows due now -> ``leased`` by ``owner``, oldest due first; their columns.

    PostgreSQL: the candidates are picked ``FOR UPDATE SKIP LOCKED`` (concurrent workers
    take different rows). SQLite: the ``UPDATE`` itself takes the one write lock.

    The outer ``UPDATE`` has no ``status`` condition of its own: the pick already is one
    (under SQLite's write lock / re-checked by PostgreSQL on the locked row), and with one
    SQLite (no ANALYZE statistics) walks every pending row instead of the picked ids."""
    due = and_(T.c.status == OutboxStatus.PENDING.value, T.c.next_attempt_at <= now)
    pick = select(T.c.id).where(due).order_by(T.c.next_attempt_at).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    claimed = session.execute(
        update(T)
        .where(T.c.id.in_(pick))
        .values(
            status=OutboxStatus.LEASED.value,
            lease_owner=owner,
            lease_expires_at=now + dt.timedelta(seconds=lease_s),
        )
        .returning(*_ROW_COLS)
    ).all()
    return sorted(claimed, key=lambda r: r.id)


def _batch_facts(session: Session, rows: Sequence[Any], now: dt.datetime) -> _BatchFacts:
    """Members (locked ``FOR UPDATE`` on PostgreSQL, so two workers cannot both pass one
    member's cap), their phones, their recent sends and the SMS rows ordered emails wait for."""
    member_ids = sorted({r.member_id for r in rows})
    pg = session.get_bind().dialect.name == "postgresql"
    q = select(*_MEMBER_COLS).where(M.c.id.in_(member_ids)).order_by(M.c.id)
    if pg:
        q = q.with_for_update()
    members = {m.id: m for m in session.execute(q)}
    phones: dict[int, list[str]] = defaultdict(list)
    bad_phones: set[tuple[int, str]] = set()
    for mid, e164, invalid in session.execute(
        select(P.c.member_id, P.c.e164, P.c.invalid)
        .where(P.c.member_id.in_(member_ids))
        .order_by(P.c.member_id, P.c.id)
    ):
        phones[mid].append(e164)
        if invalid:
            bad_phones.add((mid, e164))
    sent_times: dict[int, list[dt.datetime]] = defaultdict(list)
    row_ids = {r.id for r in rows}
    for mid, rid, at in session.execute(
        select(T.c.member_id, T.c.id, T.c.sent_at).where(
            T.c.member_id.in_(member_ids),
            T.c.status.in_([s.value for s in COUNTED]),
            T.c.sent_at >= now - dt.timedelta(days=2),
        )
    ):
        if rid not in row_ids and at is not None:
            sent_times[mid].append(at if at.tzinfo else at.replace(tzinfo=dt.UTC))
    gated = [
        sibling_key(r.idempotency_key, Channel.SMS)
        for r in rows
        if r.channel is Channel.EMAIL and (r.payload or {}).get(ORDER_KEY)
    ]
    siblings: dict[str, Any] = {}
    busy: set[str] = set()
    if gated:
        sq = select(T.c.idempotency_key, T.c.status, T.c.sent_at).where(
            T.c.idempotency_key.in_(gated)
        )
        if pg:
            # Share-lock the SMS rows read: a status callback or a result resolving one
            # of them then waits for this transaction, and its release of the email finds
            # it pending. A row being updated right now is skipped (never waited for: the
            # updater may wait for our email rows) and its email looked at again shortly.
            exists = set(
                session.scalars(select(T.c.idempotency_key).where(T.c.idempotency_key.in_(gated)))
            )
            sq = sq.with_for_update(read=True, skip_locked=True)
        siblings = {s.idempotency_key: s for s in session.execute(sq)}
        if pg:
            busy = exists - siblings.keys()
    return _BatchFacts(members, phones, bad_phones, sent_times, siblings, busy)


class _Hours:
    """The hour rules for one batch: zones and openings worked out once per distinct input
    (a batch of a thousand rows has a handful of zone sets)."""

    def __init__(self, now: dt.datetime, rules: RulesConfig) -> None:
        self.now = now
        self.window = rules.window
        self._zones: dict[tuple[str | None, tuple[str, ...]], tuple[ZoneInfo, ...]] = {}
        self._open: dict[tuple[ZoneInfo, ...], dt.datetime | None] = {}
        self._day: dict[tuple[ZoneInfo, ...], tuple[dt.datetime, dt.datetime | None]] = {}

    def zones(self, record: str | None, numbers: Sequence[str]) -> tuple[ZoneInfo, ...]:
        key = (record, tuple(numbers))
        if key not in self._zones:
            self._zones[key] = member_zones(record, numbers)
        return self._zones[key]

    def next_open(self, zones: tuple[ZoneInfo, ...]) -> dt.datetime | None:
        if zones not in self._open:
            self._open[zones] = next_open(self.now, zones, self.window)
        return self._open[zones]

    def day(self, zones: tuple[ZoneInfo, ...]) -> tuple[dt.datetime, dt.datetime | None]:
        """(start of the member's local day, first allowed instant of the next one)."""
        if zones not in self._day:
            self._day[zones] = (
                local_day_start(self.now, zones),
                next_open(next_local_day(self.now, zones), zones, self.window),
            )
        return self._day[zones]


def _decide_batch(
    rows: Sequence[Any], facts: _BatchFacts, now: dt.datetime, rules: RulesConfig
) -> dict[int, Verdict]:
    """Every row's verdict, in id order; a row let through counts towards its member's cap
    for the rows after it."""
    hours = _Hours(now, rules)
    verdicts: dict[int, Verdict] = {}
    for row in rows:
        member = facts.members.get(row.member_id)
        verdict = _decide(row, member, now, rules, facts, hours)
        verdicts[row.id] = verdict
        if verdict is None:
            facts.sent_times[row.member_id].append(now)
    return verdicts


def _record_verdicts(
    session: Session,
    rows: Sequence[Any],
    facts: _BatchFacts,
    verdicts: dict[int, Verdict],
    now: dt.datetime,
) -> list[Leased]:
    """Held and skipped rows back with their reason (one executemany), ``sent_at`` on the
    rows let through (another); email rows behind a skipped SMS are released."""
    undecided: list[dict[str, Any]] = []
    skipped_sms: list[str] = []
    through: list[Leased] = []
    for row in rows:
        verdict = verdicts[row.id]
        if verdict is None:
            through.append(Leased(row, facts.members[row.member_id]))
            continue
        kind, when, reason = verdict
        skip = kind == "skip"
        undecided.append(
            {
                "b_id": row.id,
                "b_status": (OutboxStatus.SKIPPED if skip else OutboxStatus.PENDING).value,
                "b_next": None if skip else when,
                "b_err": reason,
            }
        )
        if skip and row.channel is Channel.SMS:
            skipped_sms.append(row.idempotency_key)
    conn = session.connection()
    if undecided:
        conn.execute(
            update(T)
            .where(T.c.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                next_attempt_at=bindparam("b_next"),
                last_error=bindparam("b_err"),
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            ),
            undecided,
        )
    if through:
        conn.execute(
            update(T).where(T.c.id == bindparam("b_id")).values(sent_at=now, updated_at=now),
            [{"b_id": j.row.id} for j in through],
        )
    if skipped_sms:
        release_email_siblings(session, skipped_sms, now)
    return through


def build_jobs(
    leased: Sequence[Leased], content: ContentSettings, now: dt.datetime
) -> tuple[list[Job], list[tuple[Leased, str]]]:
    """Build the messages of leased rows (no database): (jobs, rows that cannot be built
    with the reason). A row that cannot be built (template error, an address
    ``email-validator`` rejects) fails alone: :func:`fail_unbuildable`."""
    jobs: list[Job] = []
    poisoned: list[tuple[Leased, str]] = []
    for item in leased:
        row, member = item.row, item.member
        try:
            if row.channel is Channel.SMS:
                body = with_reference(sms_body(content, member, row), row.id)
                job = Job(row.id, row.idempotency_key, row.channel, row.member_id,
                          row.to_address, row.attempts, sms_body=body,
                          payload={**(row.payload or {}), BODY_KEY: body})  # fmt: skip
            else:
                msg = email_message(content, member, row, now)
                job = Job(row.id, row.idempotency_key, row.channel, row.member_id,
                          row.to_address, row.attempts, email=msg)  # fmt: skip
        except Exception as exc:
            log.warning("outbox row %d cannot be built: %s: %s", row.id, type(exc).__name__, exc)
            poisoned.append((item, f"cannot build: {exc}"[:500]))
            continue
        jobs.append(job)
    return jobs, poisoned


def fail_unbuildable(
    session: Session, poisoned: Sequence[tuple[Leased, str]], now: dt.datetime
) -> None:
    """Leased rows whose message cannot be built -> ``failed`` with the reason (the email
    behind such an SMS is released: its gate sees the SMS failed)."""
    if not poisoned:
        return
    session.connection().execute(
        update(T)
        .where(T.c.id == bindparam("b_id"), T.c.status == OutboxStatus.LEASED.value)
        .values(
            status=OutboxStatus.FAILED.value,
            next_attempt_at=None,
            last_error=bindparam("b_err"),
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        ),
        [{"b_id": item.row.id, "b_err": reason} for item, reason in poisoned],
    )
    sms = [item.row.idempotency_key for item, _ in poisoned if item.row.channel is Channel.SMS]
    if sms:
        release_email_siblings(session, sms, now)


def _decide(
    row: Any,
    member: Any,
    now: dt.datetime,
    rules: RulesConfig,
    facts: _BatchFacts,
    hours: _Hours,
) -> Verdict:
    """``row``: an outbox row (Core row), ``member``: a members row or None."""
    if member is None:
        return ("skip", None, "member gone")
    if row.channel is Channel.SMS:
        if not member.consent_sms:
            return ("skip", None, "no SMS consent")
        if (member.id, row.to_address) in facts.bad_phones:
            return ("skip", None, "phone flagged invalid")
    else:
        if not member.consent_email:
            return ("skip", None, "no email consent")
        if member.email_invalid:
            return ("skip", None, "email flagged invalid")
        order = (row.payload or {}).get(ORDER_KEY)
        if order and sibling_key(row.idempotency_key, Channel.SMS) in facts.busy:
            return ("defer", now + dt.timedelta(seconds=1), "waiting for the SMS (being updated)")
        if order:
            gate = _gate(row, OrderPolicy(order), facts.siblings, now, rules)
            if gate is not None:
                return gate
    numbers = list(facts.phones.get(member.id, ()))
    if row.channel is Channel.SMS:
        numbers.insert(0, row.to_address)
    zones = hours.zones(member.timezone, numbers)
    if not zones:  # fail closed: an hour we cannot check is not a quiet hour we may skip
        return ("defer", now + dt.timedelta(seconds=rules.unknown_zone_retry_s), UNKNOWN_ZONE)
    allowed = hours.next_open(zones)
    if allowed is None:
        return ("defer", now + dt.timedelta(seconds=rules.unknown_zone_retry_s), NEVER_OPEN)
    if allowed > now:
        return ("defer", allowed, f"quiet hours until {allowed.astimezone(zones[0]).isoformat()}")
    if rules.daily_cap > 0:
        day_start, next_day = hours.day(zones)
        if sum(1 for t in facts.sent_times.get(member.id, ()) if t >= day_start) >= rules.daily_cap:
            return ("defer", next_day, f"daily cap {rules.daily_cap} reached")
    return None


def _gate(
    row: Any,
    order: OrderPolicy,
    siblings: dict[str, Any],
    now: dt.datetime,
    rules: RulesConfig,
) -> tuple[str, dt.datetime | None, str] | None:
    sms = siblings.get(sibling_key(row.idempotency_key, Channel.SMS))
    if sms is None or order is OrderPolicy.BOTH:
        return None
    if sms.status in OPEN:
        return ("defer", None, "waiting for the SMS")
    if order is OrderPolicy.SMS_THEN_EMAIL:
        return None
    if sms.status is OutboxStatus.DELIVERED:
        return ("skip", None, "SMS delivered")
    if sms.status is OutboxStatus.REVIEW:
        return ("defer", None, "SMS under review")
    if sms.status is OutboxStatus.SENT and sms.sent_at is not None:
        wait_until = sms.sent_at + dt.timedelta(seconds=rules.fallback_wait_s)
        if now < wait_until:
            return ("defer", wait_until, "waiting for the SMS delivery receipt")
    return None


def release_email_siblings(session: Session, sms_keys: Iterable[str], now: dt.datetime) -> None:
    """Make held email rows of these SMS rows due now (their gate decides what happens).

    Found by their unique key first, then updated by id: with ``status`` and
    ``next_attempt_at`` in one statement, SQLite (no ANALYZE statistics) walks the
    ``(status, next_attempt_at)`` index over every pending row instead."""
    keys = [sibling_key(k, Channel.EMAIL) for k in sms_keys]
    if not keys:
        return
    held = [
        {"b_id": rid}
        for rid, status, due in session.execute(
            select(T.c.id, T.c.status, T.c.next_attempt_at).where(T.c.idempotency_key.in_(keys))
        )
        if status == OutboxStatus.PENDING and (due is None or _aware(due) > now)
    ]
    if held:
        session.connection().execute(
            update(T)
            .where(
                T.c.id == bindparam("b_id"),
                T.c.status == OutboxStatus.PENDING.value,
                or_(T.c.next_attempt_at.is_(None), T.c.next_attempt_at > now),
            )
            .values(next_attempt_at=now),
            held,
        )


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


# ---------------------------------------------------------------- sending and results
def mark_sending(
    session: Session, jobs: Sequence[Job], owner_prefix: str, now: dt.datetime, lease_s: float
) -> set[int]:
    """Record the attempts *before* the provider is called (``sending``, ``attempts+1``, the
    SMS text as sent); returns the ids still ours (an expired lease may have been taken)."""
    if not jobs:
        return set()
    res = session.execute(
        update(T)
        .where(
            T.c.id.in_([j.id for j in jobs]),
            T.c.status == OutboxStatus.LEASED.value,
            T.c.lease_owner.like(f"{owner_prefix}%"),
        )
        .values(
            status=OutboxStatus.SENDING.value,
            attempts=T.c.attempts + 1,
            sent_at=now,
            lease_expires_at=now + dt.timedelta(seconds=lease_s),
            updated_at=now,
        )
        .returning(T.c.id)
    )
    ours = {r[0] for r in res}
    bodies = [{"b_id": j.id, "b_payload": j.payload} for j in jobs if j.payload and j.id in ours]
    if bodies:
        session.connection().execute(
            update(T).where(T.c.id == bindparam("b_id")).values(payload=bindparam("b_payload")),
            bodies,
        )
    return ours


def record_results(
    session: Session,
    results: Sequence[tuple[Job, SendResult]],
    now: dt.datetime,
    retry: SendRetryPolicy,
    rng: random.Random | None = None,
) -> None:
    """Apply provider outcomes in one transaction (grouped: one executemany per kind)."""
    sent: list[dict[str, Any]] = []
    again: list[dict[str, Any]] = []
    released: list[str] = []
    for job, result in results:
        attempts = job.attempts + 1
        if result.outcome is SendOutcome.SENT:
            sent.append({"b_id": job.id, "b_pid": result.provider_id, "b_err": None})
            if job.channel is Channel.SMS:
                released.append(job.key)
        elif result.outcome is SendOutcome.TRANSIENT:
            if attempts >= retry.max_attempts:
                _fail(session, job, f"gave up after {attempts} attempts: {result.detail}", now)
                if job.channel is Channel.SMS:
                    released.append(job.key)
            else:
                again.append(
                    {
                        "b_id": job.id,
                        "b_err": result.detail,
                        "b_next": now + dt.timedelta(seconds=retry.delay(attempts, rng)),
                    }
                )
        elif result.outcome is SendOutcome.PERMANENT:
            _fail(session, job, result.detail, now)
            apply_permanent(session, job.member_id, job.channel, job.to, result, now)
            if job.channel is Channel.SMS:
                released.append(job.key)
        else:  # AMBIGUOUS: stays SENDING, lease expired at once so recovery asks the provider
            session.execute(
                update(T)
                .where(T.c.id == job.id, T.c.status == OutboxStatus.SENDING.value)
                .values(
                    lease_expires_at=now, last_error=f"in doubt: {result.detail}", updated_at=now
                )
            )
    conn = session.connection()
    if again:  # transient: back to pending with back-off
        conn.execute(
            update(T)
            .where(T.c.id == bindparam("b_id"), T.c.status == OutboxStatus.SENDING.value)
            .values(
                status=OutboxStatus.PENDING.value,
                lease_owner=None,
                lease_expires_at=None,
                last_error=bindparam("b_err"),
                updated_at=now,
                next_attempt_at=bindparam("b_next"),
            ),
            again,
        )
    if sent:
        conn.execute(
            update(T)
            .where(T.c.id == bindparam("b_id"), T.c.status == OutboxStatus.SENDING.value)
            .values(
                status=OutboxStatus.SENT.value,
                provider_id=bindparam("b_pid"),
                last_error=bindparam("b_err"),
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            ),
            sent,
        )
        # A status callback may have overtaken us (row already delivered): keep its status,
        # but make sure the provider id is recorded.
        conn.execute(
            update(T)
            .where(T.c.id == bindparam("b_id"), T.c.provider_id.is_(None))
            .values(provider_id=bindparam("b_pid")),
            sent,
        )
    if released:
        release_email_siblings(session, released, now)


def _fail(session: Session, job: Job, reason: str, now: dt.datetime) -> None:
    session.execute(
        update(T)
        .where(T.c.id == job.id, T.c.status == OutboxStatus.SENDING.value)
        .values(
            status=OutboxStatus.FAILED.value,
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=None,
            last_error=reason,
            updated_at=now,
        )
    )


def apply_permanent(
    session: Session,
    member_id: int,
    channel: Channel,
    address: str,
    result: SendResult,
    now: dt.datetime,
) -> None:
    """Flag the address or revoke consent after a permanent failure (audited)."""
    if result.revoke_consent and channel is Channel.SMS:
        set_sms_consent_for_phone(
            session,
            address,
            False,
            actor="system",
            reason=f"twilio {result.code}: recipient opted out",
        )
    if not result.flag_address:
        return
    if channel is Channel.SMS:
        session.execute(
            update(MemberPhone)
            .where(MemberPhone.member_id == member_id, MemberPhone.e164 == address)
            .values(invalid=True)
        )
        _audit(
            session, "member.phone_flagged", member_id, "system", phone=address, code=result.code
        )
    else:
        session.execute(update(Member).where(Member.id == member_id).values(email_invalid=True))
        _audit(session, "member.email_flagged", member_id, "system", code=result.code)


# ---------------------------------------------------------------- status callbacks
@dataclass(frozen=True)
class StatusCallback:
    """One Twilio status callback, as the webhook received it (signature already checked)."""

    outbox_id: int | None
    """``?o=`` of the callback URL: finds the row before the worker recorded the sid."""
    sid: str
    status: str
    error_code: str | None = None


_CALLBACK_COLS = (
    T.c.id,
    T.c.channel,
    T.c.status,
    T.c.provider_id,
    T.c.attempts,
    T.c.idempotency_key,
    T.c.member_id,
    T.c.to_address,
    T.c.lease_owner,
    T.c.lease_expires_at,
    T.c.last_error,
    T.c.next_attempt_at,
)
_FINAL = (OutboxStatus.DELIVERED, OutboxStatus.UNDELIVERED, OutboxStatus.FAILED)


def lock_for_write(session: Session) -> bool:
    """Take the write lock before reading rows that will be written back (SQLite: ``BEGIN
    IMMEDIATE``, so nobody writes between the read and the write). Returns True on
    PostgreSQL, where the caller locks its rows with ``FOR UPDATE`` instead."""
    if session.get_bind().dialect.name == "postgresql":
        return True
    conn = session.connection()
    if not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    return False


def apply_status_callbacks(
    session: Session,
    callbacks: Sequence[StatusCallback],
    now: dt.datetime,
    retry: SendRetryPolicy,
) -> list[str]:
    """Apply many status callbacks in one transaction; one outcome per callback, in order
    (for logs and tests). The webhook answers Twilio only after this has committed.

    The rows are read once, under the write lock (SQLite) / ``FOR UPDATE`` (PostgreSQL),
    the callbacks applied to them in arrival order (two callbacks of one message in one
    batch: the second sees the first), and the changed rows written back in one statement;
    email rows behind a resolved SMS are released with one more."""
    pg = lock_for_write(session)
    rows = _callback_rows(session, callbacks, pg)
    by_sid = {r["provider_id"]: r for r in rows.values() if r["provider_id"]}
    changed: dict[int, dict[str, Any]] = {}
    released: list[str] = []
    outcomes: list[str] = []
    for cb in callbacks:
        row = rows.get(cb.outbox_id) if cb.outbox_id is not None else None
        if row is not None and row["provider_id"] not in (None, cb.sid):
            row = None  # the query id and the sid disagree: trust the sid
        row = row or by_sid.get(cb.sid)
        if row is None or row["channel"] != Channel.SMS:
            outcomes.append("unknown message")
            continue
        if row["provider_id"] is None:
            row["provider_id"] = cb.sid
            by_sid[cb.sid] = row
            changed[row["id"]] = row
        outcome, moved, release = _callback_transition(row, cb, now, retry)
        if moved:
            changed[row["id"]] = row
        if release:
            released.append(row["idempotency_key"])
        if outcome == "undelivered":
            code = cb.error_code or ""
            result = SendResult(
                SendOutcome.PERMANENT,
                code=code,
                detail=row["last_error"],
                flag_address=code in ("30005", "30006"),
            )
            apply_permanent(session, row["member_id"], Channel.SMS, row["to_address"], result, now)
        outcomes.append(outcome)
    if changed:
        session.connection().execute(
            update(T)
            .where(T.c.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                provider_id=bindparam("b_pid"),
                lease_owner=bindparam("b_owner"),
                lease_expires_at=bindparam("b_expires"),
                last_error=bindparam("b_err"),
                next_attempt_at=bindparam("b_next"),
                updated_at=now,
            ),
            [
                {
                    "b_id": r["id"],
                    "b_status": r["status"],
                    "b_pid": r["provider_id"],
                    "b_owner": r["lease_owner"],
                    "b_expires": r["lease_expires_at"],
                    "b_err": r["last_error"],
                    "b_next": r["next_attempt_at"],
                }
                for r in sorted(changed.values(), key=lambda r: r["id"])
            ],
        )
    if released:
        release_email_siblings(session, released, now)
    return outcomes


def _callback_rows(
    session: Session, callbacks: Sequence[StatusCallback], pg: bool
) -> dict[int, dict[str, Any]]:
    """The rows the callbacks name, by id (``?o=``), else by sid; locked on PostgreSQL."""

    def read(cond: Any) -> dict[int, dict[str, Any]]:
        q = select(*_CALLBACK_COLS).where(cond).order_by(T.c.id)
        if pg:
            q = q.with_for_update()
        return {r.id: dict(r._mapping) for r in session.execute(q)}

    ids = {cb.outbox_id for cb in callbacks if cb.outbox_id is not None}
    rows = read(T.c.id.in_(ids)) if ids else {}
    sids = {
        cb.sid
        for cb in callbacks
        if cb.sid
        and not (cb.outbox_id in rows and rows[cb.outbox_id]["provider_id"] in (None, cb.sid))
    } - {r["provider_id"] for r in rows.values()}
    if sids:
        rows.update(read(T.c.provider_id.in_(sids)))
    return rows


def _callback_transition(
    row: dict[str, Any], cb: StatusCallback, now: dt.datetime, retry: SendRetryPolicy
) -> tuple[str, bool, bool]:
    """Move one row (a dict of its columns) on one callback: (outcome, row changed, release
    the email held behind it)."""
    status = row["status"]
    if cb.status in ("queued", "accepted", "sending", "sent"):
        if status not in (OutboxStatus.SENDING, OutboxStatus.REVIEW):
            return "sent", False, False
        row.update(status=OutboxStatus.SENT, lease_owner=None, lease_expires_at=None)
        return "sent", True, True
    if cb.status == "delivered":
        if status in _FINAL:
            return "delivered", False, False
        # The "sent" callback may have been lost (our webhook was down): the email behind
        # this SMS must not wait for it.
        row.update(
            status=OutboxStatus.DELIVERED, lease_owner=None, lease_expires_at=None, last_error=None
        )
        return "delivered", True, True
    if cb.status in ("undelivered", "failed"):
        if status in _FINAL:
            return "already final", False, False
        code = cb.error_code or ""
        row.update(
            lease_owner=None, lease_expires_at=None, last_error=f"{cb.status} {code}".strip()
        )
        if code == "30003" and row["attempts"] < retry.max_attempts:
            # Unreachable handset: Twilio advises retrying later; a resend is not a duplicate
            # for the member because the first one never reached the phone.
            row.update(
                status=OutboxStatus.PENDING,
                next_attempt_at=now + dt.timedelta(seconds=retry.delay(row["attempts"])),
            )
            return "retry", True, False
        row["status"] = OutboxStatus.UNDELIVERED
        return "undelivered", True, True
    return "ignored", False, False


# ---------------------------------------------------------------- consent
def set_sms_consent_for_phone(
    session: Session, phone: str, consent: bool, *, actor: str, reason: str
) -> list[int]:
    """Revoke/grant SMS consent of every member with ``phone``; returns their ids (audited)."""
    ids = sorted(
        set(session.scalars(select(MemberPhone.member_id).where(MemberPhone.e164 == phone)))
    )
    for mid in ids:
        member = session.get(Member, mid)
        if member is None or member.consent_sms == consent:
            continue
        member.consent_sms = consent
        _audit(
            session,
            "consent.sms_granted" if consent else "consent.sms_revoked",
            mid,
            actor,
            phone=phone,
            reason=reason,
        )
    return ids


def revoke_email_consent(session: Session, member_id: int, *, actor: str, reason: str) -> bool:
    member = session.get(Member, member_id)
    if member is None:
        return False
    if member.consent_email:
        member.consent_email = False
        _audit(session, "consent.email_revoked", member_id, actor, reason=reason)
    return True


# ---------------------------------------------------------------- recovery
@dataclass(frozen=True)
class InDoubt:
    id: int
    channel: Channel
    to: str
    key: str
    provider_id: str | None
    sms_body: str | None
    sent_at: dt.datetime | None
    waiting_until: dt.datetime | None = None
    """Set when an earlier recovery pass found no copy and started waiting out the
    provider's listing lag (until then)."""


WAITING = "in doubt: waiting out the provider's listing lag until "


def expire_leased(session: Session, now: dt.datetime, owner_prefix: str | None = None) -> int:
    """Leased rows never reached the provider: back to pending (expired, or ours at startup)."""
    cond = T.c.lease_expires_at < now
    if owner_prefix is not None:
        cond = or_(cond, T.c.lease_owner.like(f"{owner_prefix}%"))
    res = session.execute(
        update(T)
        .where(T.c.status == OutboxStatus.LEASED.value, cond)
        .values(
            status=OutboxStatus.PENDING.value,
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=now,
        )
    )
    return int(getattr(res, "rowcount", 0) or 0)


def claim_in_doubt(
    session: Session,
    owner: str,
    now: dt.datetime,
    lease_s: float,
    owner_prefix: str | None = None,
    limit: int = 500,
) -> list[InDoubt]:
    """Claim SENDING rows whose lease expired (or that our previous incarnation left)."""
    cond = T.c.lease_expires_at < now
    if owner_prefix is not None:
        cond = or_(cond, and_(T.c.lease_owner.like(f"{owner_prefix}%"), T.c.lease_owner != owner))
    ids = list(
        session.scalars(
            select(T.c.id)
            .where(T.c.status == OutboxStatus.SENDING.value, cond)
            .order_by(T.c.id)
            .limit(limit)
        )
    )
    if not ids:
        return []
    claimed = set(
        session.scalars(
            update(T)
            .where(T.c.id.in_(ids), T.c.status == OutboxStatus.SENDING.value, cond)
            .values(lease_owner=owner, lease_expires_at=now + dt.timedelta(seconds=lease_s))
            .returning(T.c.id)
        )
    )
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(claimed)))
    return [
        InDoubt(
            r.id,
            r.channel,
            r.to_address,
            r.idempotency_key,
            r.provider_id,
            (r.payload or {}).get(BODY_KEY),
            r.sent_at,
            _waiting_until(r.last_error),
        )
        for r in rows
    ]


def _waiting_until(reason: str | None) -> dt.datetime | None:
    if not reason or not reason.startswith(WAITING):
        return None
    try:
        return dt.datetime.fromisoformat(reason.removeprefix(WAITING))
    except ValueError:
        return None


def resolve_in_doubt(
    session: Session,
    row_id: int,
    owner: str,
    verdict: str,
    now: dt.datetime,
    provider_id: str | None = None,
    reason: str = "",
    until: dt.datetime | None = None,
) -> None:
    """verdict: ``sent`` (proved), ``pending`` (proved not sent), ``review`` (unknown),
    ``wait`` (not provable yet: stays ``sending``, looked at again after ``until``)."""
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
    if verdict == "wait":
        values.update(lease_expires_at=until or now, last_error=reason or None)
    elif verdict == "sent":
        values.update(status=OutboxStatus.SENT.value, last_error=reason or None)
        if provider_id:
            values["provider_id"] = provider_id
    elif verdict == "pending":
        values.update(
            status=OutboxStatus.PENDING.value,
            next_attempt_at=now,
            last_error=reason or "recovered: provider has no copy, resending",
        )
    else:
        values.update(
            status=OutboxStatus.REVIEW.value, last_error=reason or "in doubt: needs review"
        )
    res = session.execute(
        update(T)
        .where(T.c.id == row_id, T.c.status == OutboxStatus.SENDING.value, T.c.lease_owner == owner)
        .values(**values)
        .returning(T.c.idempotency_key, T.c.channel)
    )
    hit = res.first()
    if hit is not None and hit[1] == Channel.SMS.value and verdict in ("sent", "review"):
        release_email_siblings(session, [hit[0]], now)


def review_count(session: Session) -> int:
    """Messages that may have been sent and need a person (supervisors' wallboard)."""
    from sqlalchemy import func

    return int(
        session.scalar(
            select(func.count()).select_from(T).where(T.c.status == OutboxStatus.REVIEW.value)
        )
        or 0
    )


def retry_row(session: Session, row_id: int, actor: str, now: dt.datetime) -> OutboxMessage:
    """Operator retry of a failed / review row (audited). Raises ValueError otherwise."""
    row = session.get(OutboxMessage, row_id)
    if row is None:
        raise LookupError(f"no outbox message {row_id}")
    if row.status not in (OutboxStatus.FAILED, OutboxStatus.REVIEW):
        raise ValueError(
            f"message {row_id} is {row.status.value}: only failed or review messages can be retried"
        )
    previous = row.status.value
    row.status = OutboxStatus.PENDING
    row.next_attempt_at = now
    row.lease_owner = row.lease_expires_at = None
    row.last_error = f"retry by {actor} (was {previous}: {row.last_error or ''})"
    _audit(session, "outbox.retry", row.member_id, actor, outbox_id=row_id, previous=previous)
    return row
