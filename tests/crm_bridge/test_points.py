from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select

from crm_bridge.db import make_engine, session_scope
from crm_bridge.models import AuditLog, Member, PointsLedger, Tier
from crm_bridge.points import (
    InsufficientPoints,
    UnknownMember,
    UnknownReward,
    ledger_balance,
    points_for,
    redeem,
    seed_rewards,
)
from crm_bridge.purchases import record_purchase

from .helpers import NOW, agent, member


def test_points_for_tiers() -> None:
    assert [points_for(Decimal("99.99"), t) for t in Tier] == [99, 119, 149, 199]


def test_record_purchase_keeps_summary_and_ledger_in_step(engine: Engine) -> None:
    with session_scope(engine) as s:
        m = member(s, "李伟", tier=Tier.GOLD)
        later = NOW - dt.timedelta(days=1)
        r1 = record_purchase(s, m.id, "200.00", later, "apparel", "Shanghai")
        cst = dt.timezone(dt.timedelta(hours=8))
        r2 = record_purchase(
            s, m.id, Decimal("100.50"), dt.datetime(2026, 11, 1, 9, 0, tzinfo=cst), "food", "SH"
        )
        assert (r1.points_earned, r1.points_balance) == (300, 300)
        assert (r2.points_earned, r2.points_balance) == (150, 450)
        with pytest.raises(ValueError):
            record_purchase(s, m.id, "-1", NOW, "x", "y")
        with pytest.raises(UnknownMember):
            record_purchase(s, 999999, "1", NOW, "x", "y")
        mid = m.id
    with session_scope(engine) as s:
        m2 = s.get(Member, mid)
        assert m2 is not None
        # The older purchase does not move last_purchase_at backwards.
        assert (m2.purchase_count, m2.points_balance, m2.last_purchase_at) == (2, 450, later)
        assert ledger_balance(s, mid) == 450
        rows = s.scalars(select(PointsLedger).order_by(PointsLedger.id)).all()
        assert [(r.delta, r.balance_after, r.reason) for r in rows] == [
            (300, 300, "purchase"),
            (150, 450, "purchase"),
        ]
        assert rows[1].expires_on == dt.date(2028, 10, 31) and rows[1].occurred_at == dt.datetime(
            2026, 11, 1, 1, tzinfo=dt.UTC
        )


def test_redeem(engine: Engine) -> None:
    with session_scope(engine) as s:
        assert seed_rewards(s) == 7
        assert seed_rewards(s) == 0
        a = agent(s, "1001")
        m = member(s, "王芳", points_balance=0)
        record_purchase(s, m.id, "600", NOW, "apparel", "SH")
        mid, aid = m.id, a.id
    with session_scope(engine) as s:
        r = redeem(s, mid, "COUPON50", aid, NOW)
        assert (r.points_cost, r.balance_after, r.item_code) == (500, 100, "COUPON50")
    with session_scope(engine) as s:
        with pytest.raises(InsufficientPoints, match="balance 100, cost 500"):
            redeem(s, mid, "COUPON50", aid, NOW)
        with pytest.raises(UnknownReward):
            redeem(s, mid, "NOPE", aid, NOW)
        with pytest.raises(UnknownMember):
            redeem(s, 424242, "COFFEE", aid, NOW)
    with session_scope(engine) as s:
        m2 = s.get(Member, mid)
        assert m2 is not None and m2.points_balance == 100 == ledger_balance(s, mid)
        audit = s.scalars(select(AuditLog)).all()
        assert [(x.action, x.actor, x.details["item"]) for x in audit] == [
            ("points.redeem", f"agent:{aid}", "COUPON50")
        ]


def test_concurrent_redemptions_never_overdraw(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            seed_rewards(s)
            mid = member(s, "陈静", points_balance=0).id
            record_purchase(s, mid, "700", NOW, "apparel", "SH")  # 700 points: one COUPON50 only
        results: list[str] = []
        barrier = threading.Barrier(4)

        def worker() -> None:
            barrier.wait()
            try:
                with session_scope(engine) as s:
                    redeem(s, mid, "COUPON50", None, NOW)
                results.append("ok")
            except InsufficientPoints:
                results.append("refused")

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(results) == ["ok", "refused", "refused", "refused"]
        with session_scope(engine) as s:
            m = s.get(Member, mid)
            assert m is not None and m.points_balance == 200 == ledger_balance(s, mid)
    finally:
        engine.dispose()
