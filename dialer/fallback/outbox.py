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
from collections.abc import Iterable, Mapping
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
    for channel in sorted(set(wanted), key=lambda c: 0 if c is Channel.SMS else 1):
        key = idempotency_key(purpose, member_id, channel, campaign_id=campaign_id, ref=ref)
        address = _sms_address(session, member_id) if channel is Channel.SMS else member.email
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
        created = _insert(
            session,
            {
                "idempotency_key": key,
                "purpose": purpose.value,
                "campaign_id": campaign_id,
                "member_id": member_id,
                "channel": channel,
                "to_address": address or "",
                "locale": member.locale,
                "payload": body,
                "status": status,
                "attempts": 0,
                "next_attempt_at": next_at,
                "last_error": error,
                "created_at": now,
                "updated_at": now,
            },
        )
        if channel is Channel.SMS and status is OutboxStatus.PENDING and created:
            sms_pending = True
        results.append(Enqueued(key, channel, created))
    return results
