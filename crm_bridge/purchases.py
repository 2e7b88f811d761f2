"""Recording a purchase keeps the member summary and the points ledger in step."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, literal, select, update
from sqlalchemy.orm import Session

from crm_bridge.models import Member, PointsLedger, Purchase, Tier, UTCDateTime
from crm_bridge.points import POINTS_VALIDITY_DAYS, UnknownMember, points_for

__all__ = ["PurchaseResult", "record_purchase"]


@dataclass(frozen=True, slots=True)
class PurchaseResult:
    purchase_id: int
    points_earned: int
    points_balance: int


def record_purchase(
    session: Session,
    member_id: int,
    amount: Decimal | str | int,
    purchased_at: dt.datetime,
    category: str,
    store: str,
    channel: str = "store",
    currency: str = "CNY",
) -> PurchaseResult:
    """Insert a purchase, credit points at the member's tier multiplier (ledger row with an
    expiry date), and update ``last_purchase_at`` (never moving it backwards),
    ``purchase_count`` and ``points_balance`` in one guarded UPDATE. Negative amounts
    (refunds) are rejected: record them as a points adjustment instead."""
    amount = Decimal(amount)
    if amount < 0:
        raise ValueError(f"purchase amount must not be negative: {amount}")
    if purchased_at.tzinfo is None:
        raise ValueError("purchased_at must be timezone-aware")
    tier = session.scalar(select(Member.tier).where(Member.id == member_id).with_for_update())
    if tier is None:
        raise UnknownMember(f"no member with id {member_id}")
    earned = points_for(amount, Tier(tier))
    at = literal(purchased_at.astimezone(dt.UTC), UTCDateTime())
    p = Purchase(member_id=member_id, purchased_at=purchased_at, amount=amount, currency=currency,
                 category=category, store=store, channel=channel)  # fmt: skip
    session.add(p)
    session.flush()
    balance = session.scalar(
        update(Member)
        .where(Member.id == member_id)
        .values(
            purchase_count=Member.purchase_count + 1,
            points_balance=Member.points_balance + earned,
            last_purchase_at=case(
                (Member.last_purchase_at.is_(None), at),
                (Member.last_purchase_at < at, at),
                else_=Member.last_purchase_at,
            ),
        )
        .returning(Member.points_balance)
    )
    if earned:
        session.add(PointsLedger(member_id=member_id, occurred_at=purchased_at, delta=earned,
                                 balance_after=int(balance or 0), reason="purchase",
                                 reference=f"purchase:{p.id}",
                                 expires_on=purchased_at.date() + dt.timedelta(days=POINTS_VALIDITY_DAYS)))  # fmt: skip
        session.flush()
    return PurchaseResult(p.id, earned, int(balance or 0))
