"""Points: tier multipliers, the reward catalogue, and redemption by phone.

Every change of ``members.points_balance`` writes a ``points_ledger`` row with the balance
after it, in the same transaction. :func:`redeem` is one ledger transaction: the balance is
decremented with a guarded ``UPDATE ... WHERE points_balance >= cost`` (after a
``SELECT ... FOR UPDATE`` row lock on PostgreSQL), so it can never go negative, even with two
agents redeeming for the same member at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm_bridge.models import AuditLog, Member, PointsLedger, RewardItem, Tier

__all__ = [
    "DEFAULT_REWARDS",
    "POINTS_VALIDITY_DAYS",
    "TIER_MULTIPLIER",
    "InsufficientPoints",
    "PointsError",
    "Redemption",
    "UnknownMember",
    "UnknownReward",
    "points_for",
    "redeem",
    "seed_rewards",
]

TIER_MULTIPLIER: dict[Tier, Decimal] = {
    Tier.STANDARD: Decimal("1.0"),
    Tier.SILVER: Decimal("1.2"),
    Tier.GOLD: Decimal("1.5"),
    Tier.PLATINUM: Decimal("2.0"),
}
"""Points per currency unit of qualifying spend, by tier."""

POINTS_VALIDITY_DAYS = 730
"""Earned points expire this many days after they were earned."""

DEFAULT_REWARDS: tuple[tuple[str, str, str, int], ...] = (
    ("COUPON50", "CNY 50 voucher", "50元代金券", 500),
    ("COUPON100", "CNY 100 voucher", "100元代金券", 950),
    ("COFFEE", "Coffee for two", "双人咖啡券", 300),
    ("GIFTBOX", "Member gift box", "会员礼盒", 2000),
    ("PARKING", "Free parking (1 day)", "免费停车一天", 200),
    ("SPA", "Spa treatment", "水疗护理", 5000),
    ("UPGRADE", "Room/seat upgrade", "升级服务", 8000),
)
"""(code, name, name_zh, points cost)"""


class PointsError(ValueError):
    """A redemption was refused; the message says why (shown to the agent)."""


class UnknownMember(PointsError):
    pass


class UnknownReward(PointsError):
    pass


class InsufficientPoints(PointsError):
    def __init__(self, balance: int, cost: int) -> None:
        super().__init__(f"insufficient points: balance {balance}, cost {cost}")
        self.balance = balance
        self.cost = cost


@dataclass(frozen=True, slots=True)
class Redemption:
    ledger_id: int
    member_id: int
    item_code: str
    item_name: str
    points_cost: int
    balance_after: int


def points_for(amount: Decimal, tier: Tier | str) -> int:
    """Points earned on ``amount`` of spend at ``tier`` (rounded down)."""
    mult = TIER_MULTIPLIER[Tier(tier)]
    return int((Decimal(amount) * mult).to_integral_value(rounding=ROUND_FLOOR))


def seed_rewards(session: Session) -> int:
    """Insert the default catalogue items that are missing; returns how many were added."""
    have = set(session.scalars(select(RewardItem.code)))
    added = 0
    for code, name, name_zh, cost in DEFAULT_REWARDS:
        if code not in have:
            session.add(RewardItem(code=code, name=name, name_zh=name_zh, points_cost=cost))
            added += 1
    session.flush()
    return added


def redeem(
    session: Session,
    member_id: int,
    item_code: str,
    agent_id: int | None,
    now: dt.datetime | None = None,
    actor: str | None = None,
) -> Redemption:
    """Redeem one catalogue item for a member: ledger row + balance + audit row, atomically
    (in the caller's transaction). Raises :class:`PointsError` subclasses when refused."""
    now = now or dt.datetime.now(dt.UTC)
    item = session.execute(
        select(RewardItem.code, RewardItem.name, RewardItem.points_cost).where(
            RewardItem.code == item_code, RewardItem.active.is_(True)
        )
    ).first()
    if item is None:
        raise UnknownReward(f"no active reward item {item_code!r}")
    cost = int(item.points_cost)
    balance = session.scalar(
        select(Member.points_balance).where(Member.id == member_id).with_for_update()
    )
    if balance is None:
        raise UnknownMember(f"no member with id {member_id}")
    new_balance = session.scalar(
        update(Member)
        .where(Member.id == member_id, Member.points_balance >= cost)
        .values(points_balance=Member.points_balance - cost, updated_at=now)
        .returning(Member.points_balance)
    )
    if new_balance is None:
        raise InsufficientPoints(int(balance), cost)
    entry = PointsLedger(member_id=member_id, occurred_at=now, delta=-cost, balance_after=int(new_balance),
                         reason="redeem", reference=f"reward:{item.code}", agent_id=agent_id)  # fmt: skip
    session.add(entry)
    session.add(AuditLog(at=now, actor=actor or (f"agent:{agent_id}" if agent_id else "system"),
                         action="points.redeem", member_id=member_id,
                         details={"item": item.code, "cost": cost, "balance_after": int(new_balance)}))  # fmt: skip
    session.flush()
    return Redemption(entry.id, member_id, item.code, item.name, cost, int(new_balance))


def ledger_balance(session: Session, member_id: int) -> int:
    """The sum of the member's ledger deltas (equals ``points_balance`` when in step)."""
    return int(session.scalar(select(func.coalesce(func.sum(PointsLedger.delta), 0)).where(
        PointsLedger.member_id == member_id)) or 0)  # fmt: skip
