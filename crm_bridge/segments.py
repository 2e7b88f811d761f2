"""Segmentation in SQL: RFM quintiles, lifecycle class, declining spend.

Set-based functions (whole population) run as one or two SQL statements each, never a Python
loop over members; the single-member versions (used by the screen-pop profile) use the same
definitions:

- **lifecycle**: ``new`` if joined less than ``NEW_DAYS`` (30) days ago; otherwise by the time
  since the last purchase (or since joining, for members who never bought): ``lapsed`` at
  >= ``LAPSED_DAYS`` (180), ``dormant`` at >= ``DORMANT_DAYS`` (90), else ``regular``.
  "At >= N days" means ``last_purchase_at <= now - N days`` exactly.
- **declining spend**: spend in ``(now-90d, now]`` is below ``DECLINE_RATIO`` (0.7) times the
  spend in ``(now-180d, now-90d]``, and the earlier window had some spend.
- **RFM**: over purchases in ``(now - period, now]``, recency = time since the last of them,
  frequency = their count, monetary = their sum; each scored 1-5 by ``NTILE(5)`` among the
  members who bought in the period (5 = most recent / most frequent / highest spend; ties
  broken by member id so scores are deterministic). Members with no purchase in the period
  score 1-1-1. :func:`refresh_rfm` stores the scores in ``member_segments`` because a quintile
  needs the whole population -- far too slow to recompute per screen pop at a million members.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from crm_bridge.models import Member, MemberSegment, Purchase, UTCDateTime

__all__ = [
    "DECLINE_RATIO",
    "DORMANT_DAYS",
    "LAPSED_DAYS",
    "NEW_DAYS",
    "RFM_PERIOD_DAYS",
    "Lifecycle",
    "MemberSegmentInfo",
    "Rfm",
    "classify_lifecycle",
    "declining_members",
    "dormant_between",
    "dormant_condition",
    "is_declining",
    "lifecycle_counts",
    "lifecycle_expr",
    "member_statements",
    "members_in_lifecycle",
    "refresh_rfm",
    "rfm_scores",
    "segment_info",
    "spend_params",
]

NEW_DAYS = 30
DORMANT_DAYS = 90
LAPSED_DAYS = 180
DECLINE_WINDOW_DAYS = 90
DECLINE_RATIO = Decimal("0.7")
RFM_PERIOD_DAYS = 365


class Lifecycle(StrEnum):
    NEW = "new"
    REGULAR = "regular"
    DORMANT = "dormant"
    LAPSED = "lapsed"


@dataclass(frozen=True, slots=True)
class Rfm:
    member_id: int
    recency_days: int | None
    frequency: int
    monetary: Decimal
    r: int
    f: int
    m: int

    @property
    def code(self) -> str:
        return f"{self.r}{self.f}{self.m}"


@dataclass(frozen=True, slots=True)
class MemberSegmentInfo:
    """One member's segment as the profile shows it."""

    lifecycle: str
    days_since_purchase: int | None
    """Whole days since the last purchase; None when the member never bought."""
    rfm: str | None
    """``"545"`` from the latest :func:`refresh_rfm` snapshot, None if not computed yet."""
    r_score: int | None
    f_score: int | None
    m_score: int | None
    rfm_computed_at: dt.datetime | None
    spend_last_90: Decimal
    spend_prev_90: Decimal
    declining_spend: bool


def _cutoff_dates(now: dt.datetime, days: int) -> tuple[dt.datetime, dt.date]:
    at = now - dt.timedelta(days=days)
    return at, at.date()


def _ts(value: dt.datetime) -> ColumnElement[Any]:
    return literal(value, UTCDateTime())


def dormant_condition(now: dt.datetime, days: int) -> ColumnElement[bool]:
    """``members`` rows with no purchase for at least ``days`` (never bought: since joining).

    NULL-safe (never NULL itself), so ``~dormant_condition(...)`` is exactly the complement.
    """
    at, on = _cutoff_dates(now, days)
    return or_(
        and_(Member.last_purchase_at.is_not(None), Member.last_purchase_at <= _ts(at)),
        and_(Member.last_purchase_at.is_(None), Member.joined_on <= literal(on, Date())),
    )


def dormant_between(now: dt.datetime, days: int, max_days: int | None) -> ColumnElement[bool]:
    """``dormant_condition(now, days) AND NOT dormant_condition(now, max_days)``, written as
    two bounded ranges so the database scans only that slice of ``ix_members_last_purchase_at``."""
    if max_days is None:
        return dormant_condition(now, days)
    at, on = _cutoff_dates(now, days)
    at_max, on_max = _cutoff_dates(now, max_days)
    return or_(
        and_(Member.last_purchase_at > _ts(at_max), Member.last_purchase_at <= _ts(at)),
        and_(
            Member.last_purchase_at.is_(None),
            Member.joined_on > literal(on_max, Date()),
            Member.joined_on <= literal(on, Date()),
        ),
    )


def lifecycle_expr(now: dt.datetime) -> ColumnElement[str]:
    """A SQL CASE giving the lifecycle class of each ``members`` row at ``now``."""
    new_since = (now - dt.timedelta(days=NEW_DAYS)).date()
    return case(
        (Member.joined_on > literal(new_since, Date()), literal(Lifecycle.NEW.value)),
        (dormant_condition(now, LAPSED_DAYS), literal(Lifecycle.LAPSED.value)),
        (dormant_condition(now, DORMANT_DAYS), literal(Lifecycle.DORMANT.value)),
        else_=literal(Lifecycle.REGULAR.value),
    )


def classify_lifecycle(
    now: dt.datetime, joined_on: dt.date, last_purchase_at: dt.datetime | None
) -> Lifecycle:
    """The pure, single-member version of :func:`lifecycle_expr` (same boundaries)."""
    if joined_on > (now - dt.timedelta(days=NEW_DAYS)).date():
        return Lifecycle.NEW
    for days, cls in ((LAPSED_DAYS, Lifecycle.LAPSED), (DORMANT_DAYS, Lifecycle.DORMANT)):
        at, on = _cutoff_dates(now, days)
        if (last_purchase_at is not None and last_purchase_at <= at) or (
            last_purchase_at is None and joined_on <= on
        ):
            return cls
    return Lifecycle.REGULAR


def lifecycle_counts(session: Session, now: dt.datetime) -> dict[str, int]:
    """How many members are in each lifecycle class (one GROUP BY)."""
    expr = lifecycle_expr(now).label("lifecycle")
    rows = session.execute(select(expr, func.count()).group_by(expr)).all()
    counts = {c.value: 0 for c in Lifecycle}
    counts.update({str(k): int(v) for k, v in rows})
    return counts


def members_in_lifecycle(
    session: Session, lifecycle: Lifecycle | str, now: dt.datetime
) -> list[int]:
    """Member ids in one lifecycle class, ordered by id."""
    stmt = select(Member.id).where(lifecycle_expr(now) == str(lifecycle)).order_by(Member.id)
    return list(session.scalars(stmt))


def is_declining(spend_last: Decimal, spend_prev: Decimal, ratio: Decimal = DECLINE_RATIO) -> bool:
    return spend_prev > 0 and spend_last < spend_prev * ratio


def _spend_windows(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    mid = now - dt.timedelta(days=DECLINE_WINDOW_DAYS)
    return mid, mid - dt.timedelta(days=DECLINE_WINDOW_DAYS)


def _spend_columns(now: dt.datetime) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    mid, _start = _spend_windows(now)
    last = func.coalesce(
        func.sum(case((Purchase.purchased_at > _ts(mid), Purchase.amount), else_=0)), 0
    )
    prev = func.coalesce(
        func.sum(case((Purchase.purchased_at <= _ts(mid), Purchase.amount), else_=0)), 0
    )
    return last, prev


def _spend_where(now: dt.datetime) -> ColumnElement[bool]:
    _mid, start = _spend_windows(now)
    return and_(Purchase.purchased_at > _ts(start), Purchase.purchased_at <= _ts(now))


def declining_members(
    session: Session, now: dt.datetime, ratio: Decimal = DECLINE_RATIO
) -> list[int]:
    """Member ids whose spend fell (see module doc): one GROUP BY ... HAVING over 180 days."""
    last, prev = _spend_columns(now)
    stmt = (
        select(Purchase.member_id)
        .where(_spend_where(now))
        .group_by(Purchase.member_id)
        .having(and_(prev > 0, last < prev * literal(ratio)))
        .order_by(Purchase.member_id)
    )
    return list(session.scalars(stmt))


def _days_since(session: Session, now: dt.datetime, col: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.julianday(_ts(now)) - func.julianday(col), Integer)
    return cast(func.floor(func.extract("epoch", _ts(now) - col) / 86400), Integer)


def _rfm_select(session: Session, now: dt.datetime, period_days: int) -> Any:
    since = now - dt.timedelta(days=period_days)
    agg = (
        select(
            Purchase.member_id.label("member_id"),
            func.max(Purchase.purchased_at).label("last_at"),
            func.count().label("freq"),
            func.sum(Purchase.amount).label("monetary"),
        )
        .where(Purchase.purchased_at > _ts(since), Purchase.purchased_at <= _ts(now))
        .group_by(Purchase.member_id)
        .subquery("agg")
    )
    return select(
        agg.c.member_id,
        _days_since(session, now, agg.c.last_at).label("recency_days"),
        agg.c.freq,
        agg.c.monetary,
        func.ntile(5).over(order_by=(agg.c.last_at, agg.c.member_id)).label("r"),
        func.ntile(5).over(order_by=(agg.c.freq, agg.c.member_id)).label("f"),
        func.ntile(5).over(order_by=(agg.c.monetary, agg.c.member_id)).label("m"),
    )


def rfm_scores(session: Session, now: dt.datetime, period_days: int = RFM_PERIOD_DAYS) -> list[Rfm]:
    """RFM of every member who bought in the period (no writes), ordered by member id."""
    sub = _rfm_select(session, now, period_days).subquery()
    rows = session.execute(select(sub).order_by(sub.c.member_id))
    return [
        Rfm(r.member_id, r.recency_days, int(r.freq), Decimal(r.monetary), r.r, r.f, r.m)
        for r in rows
    ]


def refresh_rfm(session: Session, now: dt.datetime, period_days: int = RFM_PERIOD_DAYS) -> int:
    """Recompute ``member_segments`` for every member; returns the number of rows written.

    Three statements: delete the old snapshot, INSERT ... SELECT the NTILE scores of buyers,
    INSERT ... SELECT 1-1-1 for everyone else.
    """
    session.execute(delete(MemberSegment))
    sub = _rfm_select(session, now, period_days).subquery()
    cols = ["member_id", "computed_at", "period_days", "recency_days", "frequency", "monetary",
            "r_score", "f_score", "m_score"]  # fmt: skip
    ins = insert(MemberSegment)
    session.execute(
        ins.from_select(
            cols,
            select(
                sub.c.member_id,
                _ts(now),
                literal(period_days),
                sub.c.recency_days,
                sub.c.freq,
                sub.c.monetary,
                sub.c.r,
                sub.c.f,
                sub.c.m,
            ),
        )
    )
    have = select(MemberSegment.member_id).where(MemberSegment.member_id == Member.id)
    rest = select(
        Member.id,
        _ts(now),
        literal(period_days),
        case(
            (Member.last_purchase_at.is_(None), None),
            else_=_days_since(session, now, Member.last_purchase_at),
        ),
        literal(0),
        literal(Decimal("0")),
        literal(1),
        literal(1),
        literal(1),
    ).where(~have.exists())
    session.execute(ins.from_select(cols, rest))
    return int(session.scalar(select(func.count()).select_from(MemberSegment)) or 0)


@functools.cache
def member_statements() -> tuple[Any, Any]:
    """One member's segment queries (bind ``mid``; the spend query also ``t_mid``, ``t_start``,
    ``t_now``, see :func:`spend_params`), built once: the RFM snapshot row and the 180-day
    spend. The screen-pop profile runs them as parts of its single statement."""
    snap = select(MemberSegment.r_score, MemberSegment.f_score, MemberSegment.m_score,
                  MemberSegment.computed_at).where(MemberSegment.member_id == bindparam("mid"))  # fmt: skip
    t_mid = bindparam("t_mid", type_=UTCDateTime())
    last = func.coalesce(
        func.sum(case((Purchase.purchased_at > t_mid, Purchase.amount), else_=0)), 0
    )
    prev = func.coalesce(
        func.sum(case((Purchase.purchased_at <= t_mid, Purchase.amount), else_=0)), 0
    )
    spend = select(last, prev).where(
        Purchase.member_id == bindparam("mid"),
        Purchase.purchased_at > bindparam("t_start", type_=UTCDateTime()),
        Purchase.purchased_at <= bindparam("t_now", type_=UTCDateTime()),
    )
    return snap, spend


def spend_params(now: dt.datetime) -> dict[str, dt.datetime]:
    """The spend query's time bounds at ``now``."""
    mid, start = _spend_windows(now)
    return {"t_mid": mid, "t_start": start, "t_now": now}


def segment_info(
    snap: Any,
    spend: Any,
    now: dt.datetime,
    joined_on: dt.date,
    last_purchase_at: dt.datetime | None,
) -> MemberSegmentInfo:
    """One member's segment from the rows of :func:`member_statements` (pure)."""
    spend_last, spend_prev = Decimal(spend[0] or 0), Decimal(spend[1] or 0)
    days = None if last_purchase_at is None else (now - last_purchase_at).days
    return MemberSegmentInfo(
        lifecycle=classify_lifecycle(now, joined_on, last_purchase_at).value,
        days_since_purchase=days,
        rfm=None if snap is None else f"{snap[0]}{snap[1]}{snap[2]}",
        r_score=None if snap is None else snap[0],
        f_score=None if snap is None else snap[1],
        m_score=None if snap is None else snap[2],
        rfm_computed_at=None if snap is None else snap[3],
        spend_last_90=spend_last,
        spend_prev_90=spend_prev,
        declining_spend=is_declining(spend_last, spend_prev),
    )
