"""The transactional outbox: ``enqueue`` writes message rows in the caller's transaction.

A row's idempotency key is ``purpose:ref:member:channel`` where ``ref`` is the campaign id
(``c<id>``), an explicit reference given by the caller (``ref=``, e.g. ``"2026"`` for a
yearly birthday greeting or ``"task:42"`` for a callback confirmation) or ``-``. The key is
unique in the table and rows are inserted with ``INSERT … ON CONFLICT DO NOTHING``, so a
second enqueue of the same event is a silent no-op that never aborts the caller's
transaction (SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crm_bridge.models import Channel, Member, MemberPhone, OutboxMessage, OutboxStatus, utcnow
from dialer.fallback.purposes import DEFAULT_POLICIES, OrderPolicy, Purpose

_TABLE = cast(Table, OutboxMessage.__table__)
ORDER_KEY = "_order"
"""Payload key holding the row's :class:`OrderPolicy` (email rows with an SMS sibling)."""


def idempotency_key(
    purpose: str,
    member_id: int,
    channel: Channel | str,
    *,
    campaign_id: int | None = None,
    ref: str | None = None,
) -> str:
    if campaign_id is not None and ref is not None:
        middle = f"c{campaign_id}/{ref}"
    elif campaign_id is not None:
        middle = f"c{campaign_id}"
    else:
        middle = ref or "-"
    return f"{purpose}:{middle}:{member_id}:{Channel(channel).value}"


def sibling_key(key: str, channel: Channel) -> str:
    """The key of the same message on another channel."""
    head, _, _ = key.rpartition(":")
    return f"{head}:{channel.value}"


@dataclass(frozen=True)
class Enqueued:
    """What ``enqueue`` did, per channel: the key and whether a new row was written."""

    key: str
    channel: Channel
    created: bool


def _sms_address(session: Session, member_id: int) -> str | None:
    phones = session.scalars(
        select(MemberPhone).where(MemberPhone.member_id == member_id).order_by(MemberPhone.id)
    ).all()
    mobiles = [p for p in phones if p.kind == "mobile" and not p.invalid]
    others = [p for p in phones if p.kind != "mobile" and not p.invalid]
    chosen = mobiles or others
    return chosen[0].e164 if chosen else None


def _insert(session: Session, values: dict[str, Any]) -> bool:
    dialect = session.get_bind().dialect.name
    ins: Any
    if dialect == "postgresql":
        ins = postgresql.insert(_TABLE)
    elif dialect == "sqlite":
        ins = sqlite.insert(_TABLE)
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database {dialect}")
    stmt = (
        ins.values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(_TABLE.c.id)
    )
    return session.execute(stmt).first() is not None


def enqueue(
    session: Session,
    purpose: Purpose | str,
    member_id: int,
    channels: Channel | str | Iterable[Channel | str] = (Channel.SMS, Channel.EMAIL),
    *,
    campaign_id: int | None = None,
    ref: str | None = None,
    payload: Mapping[str, Any] | None = None,
    order: OrderPolicy | None = None,
    not_before: dt.datetime | None = None,
) -> list[Enqueued]:
    """Queue a message to ``member_id`` in the caller's transaction (no commit here).

    ``channels`` defaults to SMS and email, ordered by ``order`` (default: the purpose's
    policy in :data:`DEFAULT_POLICIES`). ``payload`` holds template fields beyond the
    member's own (``survey_url``, ``callback_at``, ``item``, ``points``…). A member with no
    usable phone or email still gets a row, written as ``skipped`` with the reason, so
    ``memberline outbox`` can show why nothing was sent. Consent, quiet hours and the daily
    cap are checked later, at send time.
    """
    purpose = Purpose(purpose)
    if isinstance(channels, (Channel, str)):
        wanted = [Channel(channels)]
    else:
        wanted = [Channel(c) for c in channels]
    member = session.get(Member, member_id)
    if member is None:
        raise LookupError(f"no member {member_id}")
    policy = order or DEFAULT_POLICIES[purpose]
    now = utcnow()
    due = max(now, not_before) if not_before is not None else now
    results: list[Enqueued] = []
    sms_pending = False
    for channel in _ordered(wanted):
        key = idempotency_key(purpose, member_id, channel, campaign_id=campaign_id, ref=ref)
        address = _sms_address(session, member_id) if channel is Channel.SMS else member.email
        values = _row(key, purpose, campaign_id, member_id, member.locale, channel, address,
                      payload, policy, sms_pending, due, now)  # fmt: skip
        created = _insert(session, values)
        if channel is Channel.SMS and values["status"] is OutboxStatus.PENDING and created:
            sms_pending = True
        results.append(Enqueued(key, channel, created))
    return results


def _ordered(channels: Iterable[Channel]) -> list[Channel]:
    return sorted(set(channels), key=lambda c: 0 if c is Channel.SMS else 1)


def _row(
    key: str,
    purpose: Purpose,
    campaign_id: int | None,
    member_id: int,
    locale: str,
    channel: Channel,
    address: str | None,
    payload: Mapping[str, Any] | None,
    policy: OrderPolicy,
    sms_pending: bool,
    due: dt.datetime,
    now: dt.datetime,
) -> dict[str, Any]:
    """One outbox row's values (shared by :func:`enqueue` and :func:`enqueue_many`): no
    address -> ``skipped`` with the reason; an email whose SMS sibling was just queued is held
    by the order policy."""
    body: dict[str, Any] = dict(payload or {})
    status = OutboxStatus.PENDING
    next_at: dt.datetime | None = due
    error: str | None = None
    if not address:
        status, next_at = OutboxStatus.SKIPPED, None
        error = "no usable phone" if channel is Channel.SMS else "no email address"
    elif channel is Channel.EMAIL and sms_pending and policy is not OrderPolicy.BOTH:
        body[ORDER_KEY] = policy.value
        next_at = None  # held until the SMS sibling has an outcome (see purposes.py)
    return {
        "idempotency_key": key,
        "purpose": purpose.value,
        "campaign_id": campaign_id,
        "member_id": member_id,
        "channel": channel,
        "to_address": address or "",
        "locale": locale,
        "payload": body,
        "status": status,
        "attempts": 0,
        "next_attempt_at": next_at,
        "last_error": error,
        "created_at": now,
        "updated_at": now,
    }


def enqueue_many(
    session: Session,
    purpose: Purpose | str,
    items: Sequence[tuple[int, str | None, Mapping[str, Any] | None]],
    channels: Iterable[Channel | str] = (Channel.SMS, Channel.EMAIL),
    *,
    order: OrderPolicy | None = None,
) -> int:
    """:func:`enqueue` for many members at once (``items``: member id, ref, payload), with the
    same rows and keys: members and phones read in two queries, the rows written with one
    batched ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` per channel. For bulk jobs
    (greetings to every member on a holiday). Returns the number of rows created."""
    purpose = Purpose(purpose)
    wanted = _ordered(Channel(c) for c in channels)
    policy = order or DEFAULT_POLICIES[purpose]
    ids = [mid for mid, _ref, _payload in items]
    if not ids:
        return 0
    members = {
        int(r[0]): (str(r[1]), r[2])
        for r in session.execute(
            select(Member.id, Member.locale, Member.email).where(Member.id.in_(ids))
        )
    }
    phones: dict[int, list[tuple[str, str, bool]]] = {}
    if Channel.SMS in wanted:
        for mid, e164, kind, invalid in session.execute(
            select(MemberPhone.member_id, MemberPhone.e164, MemberPhone.kind, MemberPhone.invalid)
            .where(MemberPhone.member_id.in_(ids))
            .order_by(MemberPhone.id)
        ):
            phones.setdefault(int(mid), []).append((e164, kind, bool(invalid)))
    now = utcnow()
    created = 0
    sms_pending: set[int] = set()
    for channel in wanted:
        rows = []
        for mid, ref, payload in items:
            if mid not in members:
                raise LookupError(f"no member {mid}")
            locale, email = members[mid]
            if channel is Channel.SMS:
                mine = phones.get(mid, [])
                usable = [p for p in mine if p[1] == "mobile" and not p[2]] or [
                    p for p in mine if p[1] != "mobile" and not p[2]
                ]
                address = usable[0][0] if usable else None
            else:
                address = email
            key = idempotency_key(purpose, mid, channel, ref=ref)
            rows.append(_row(key, purpose, None, mid, locale, channel, address, payload, policy,
                             mid in sms_pending, now, now))  # fmt: skip
        dialect = session.get_bind().dialect.name
        ins: Any = (postgresql if dialect == "postgresql" else sqlite).insert(_TABLE)
        stmt = ins.on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(
            _TABLE.c.idempotency_key
        )
        # executemany: SQLAlchemy's "insertmanyvalues" batches the rows without compiling a
        # VALUES clause with thousands of parameters (the cost of .values(rows) in Python)
        new = {str(r[0]) for r in session.execute(stmt, rows)}
        created += len(new)
        if channel is Channel.SMS:
            sms_pending = {
                r["member_id"] for r in rows
                if r["status"] is OutboxStatus.PENDING and r["idempotency_key"] in new
            }  # fmt: skip
    return created
