"""Hand-built fixtures for crm_bridge tests: tiny factories that insert exactly what a test needs."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from crm_bridge.models import (
    Agent,
    Campaign,
    CampaignKind,
    Complaint,
    ComplaintStatus,
    DialMode,
    Member,
    MemberPhone,
    Purchase,
    Role,
    Tier,
)

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
"""A fixed 'now' for every test: Monday 23 November 2026, 12:00 UTC (20:00 in Shanghai)."""

_seq = itertools.count(1)


def agent(s: Session, code: str, name: str = "王芳", role: Role = Role.AGENT) -> Agent:
    a = Agent(code=code, extension=code, name=name, role=role, password_hash="x")
    s.add(a)
    s.flush()
    return a


def member(
    s: Session,
    name: str = "李伟",
    *,
    phones: tuple[str, ...] = (),
    joined_days_ago: int = 400,
    last_purchase_days_ago: float | None = None,
    now: dt.datetime = NOW,
    **kw: Any,
) -> Member:
    n = next(_seq)
    kw.setdefault("member_no", f"T{n:07d}")
    m = Member(name=name, joined_on=(now - dt.timedelta(days=joined_days_ago)).date(), **kw)
    if last_purchase_days_ago is not None:
        m.last_purchase_at = now - dt.timedelta(days=last_purchase_days_ago)
        m.purchase_count = 1
    m.phones = [MemberPhone(e164=p) for p in phones]
    s.add(m)
    s.flush()
    return m


def purchase(
    s: Session, m: Member, when: dt.datetime, amount: str | Decimal = "100.00", *, sync: bool = True
) -> Purchase:
    p = Purchase(member_id=m.id, purchased_at=when, amount=Decimal(amount), category="apparel",
                 store="Shanghai Nanjing Rd")  # fmt: skip
    s.add(p)
    if sync:
        m.purchase_count = (m.purchase_count or 0) + 1
        if m.last_purchase_at is None or m.last_purchase_at < when:
            m.last_purchase_at = when
    s.flush()
    return p


def complaint(
    s: Session,
    m: Member,
    owner: Agent | None,
    status: ComplaintStatus = ComplaintStatus.OPEN,
    **kw: Any,
) -> Complaint:
    kw.setdefault("created_at", NOW - dt.timedelta(days=3))
    c = Complaint(member_id=m.id, owner_agent_id=owner.id if owner else None, status=status,
                  category="service", description="rude staff", **kw)  # fmt: skip
    s.add(c)
    s.flush()
    return c


def campaign(s: Session, kind: CampaignKind, name: str | None = None) -> Campaign:
    c = Campaign(name=name or f"{kind.value}-{next(_seq)}", kind=kind, mode=DialMode.PROGRESSIVE)
    s.add(c)
    s.flush()
    return c


__all__ = ["NOW", "Tier", "agent", "campaign", "complaint", "member", "purchase"]
