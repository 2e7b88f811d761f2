from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.models import Member, MemberSegment
from crm_bridge.profile import build_profile
from crm_bridge.segments import (
    Lifecycle,
    classify_lifecycle,
    declining_members,
    lifecycle_counts,
    members_in_lifecycle,
    refresh_rfm,
    rfm_scores,
)

from .helpers import NOW, member, purchase


def test_lifecycle_boundaries_sql_and_python_agree(engine: Engine) -> None:
    cases = {
        "joined29": dict(joined_days_ago=29, last_purchase_days_ago=None),
        "joined29_bought_long_ago": dict(joined_days_ago=29, last_purchase_days_ago=200),
        "joined30_never": dict(joined_days_ago=30, last_purchase_days_ago=None),
        "never_joined89": dict(joined_days_ago=89, last_purchase_days_ago=None),
        "never_joined90": dict(joined_days_ago=90, last_purchase_days_ago=None),
        "never_joined180": dict(joined_days_ago=180, last_purchase_days_ago=None),
        "d0": dict(last_purchase_days_ago=0),
        "d89": dict(last_purchase_days_ago=89),
        "d89_99": dict(last_purchase_days_ago=89.99),
        "d90": dict(last_purchase_days_ago=90),
        "d179": dict(last_purchase_days_ago=179),
        "d180": dict(last_purchase_days_ago=180),
        "d500": dict(last_purchase_days_ago=500),
    }
    expected = {
        "joined29": "new", "joined29_bought_long_ago": "new", "joined30_never": "regular",
        "never_joined89": "regular", "never_joined90": "dormant", "never_joined180": "lapsed",
        "d0": "regular", "d89": "regular", "d89_99": "regular", "d90": "dormant", "d179": "dormant",
        "d180": "lapsed", "d500": "lapsed",
    }  # fmt: skip
    with session_scope(engine) as s:
        ids = {name: member(s, name, **kw).id for name, kw in cases.items()}  # type: ignore[arg-type]
    with session_scope(engine) as s:
        names = {v: k for k, v in ids.items()}
        sql = {names[i]: cls.value for cls in Lifecycle for i in members_in_lifecycle(s, cls, NOW)}
        assert sql == expected
        for m in s.scalars(select(Member)):
            assert (
                classify_lifecycle(NOW, m.joined_on, m.last_purchase_at).value == expected[m.name]
            )
        counts = lifecycle_counts(s, NOW)
        assert counts == {"new": 2, "regular": 5, "dormant": 3, "lapsed": 3}


def test_declining_spend_windows(engine: Engine) -> None:
    day = dt.timedelta(days=1)
    with session_scope(engine) as s:
        falling = member(s, "falling")
        purchase(s, falling, NOW - 100 * day, "1000")
        purchase(s, falling, NOW - 10 * day, "699.99")
        steady = member(s, "steady_at_ratio")
        purchase(s, steady, NOW - 100 * day, "1000")
        purchase(s, steady, NOW - 10 * day, "700")
        stopped = member(s, "stopped")
        purchase(s, stopped, NOW - 90 * day, "50")  # exactly 90 days ago: the earlier window
        too_old = member(s, "outside_windows")
        purchase(s, too_old, NOW - 180 * day, "5000")
        purchase(s, too_old, NOW - 5 * day, "1")
        new_buyer = member(s, "only_recent")
        purchase(s, new_buyer, NOW - 5 * day, "10")
        want = [falling.id, stopped.id]
    with session_scope(engine) as s:
        assert declining_members(s, NOW) == want
        for mid in want:
            p = build_profile(s, mid, NOW)
            assert p is not None and p.segment.declining_spend
        p = build_profile(s, too_old.id, NOW)
        assert p is not None and not p.segment.declining_spend
        assert p.segment.spend_prev_90 == Decimal("0") and p.segment.spend_last_90 == Decimal("1")


def test_rfm_quintiles(engine: Engine) -> None:
    day = dt.timedelta(days=1)
    with session_scope(engine) as s:
        ids = []
        # Ten buyers: member k bought k times, the last k days... so recency, frequency and
        # monetary all rise with k; two members with no purchase in the period.
        for k in range(1, 11):
            m = member(s, f"m{k}")
            for j in range(k):
                purchase(s, m, NOW - (300 - 25 * k + j) * day, str(10 * k))
            ids.append(m.id)
        old = member(s, "old_buyer")
        purchase(s, old, NOW - 400 * day, "99999")
        never = member(s, "never")
    with session_scope(engine) as s:
        scores = rfm_scores(s, NOW)
        assert [r.member_id for r in scores] == ids
        assert [r.r for r in scores] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
        assert [r.f for r in scores] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
        assert [r.m for r in scores] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
        assert [r.frequency for r in scores] == list(range(1, 11))
        assert scores[0].recency_days == 275 and scores[-1].recency_days == 50
        assert scores[-1].monetary == Decimal("1000.00") and scores[-1].code == "555"
        assert refresh_rfm(s, NOW) == 12
        assert refresh_rfm(s, NOW) == 12  # replaces, never duplicates
    with session_scope(engine) as s:
        rows = {r.member_id: r for r in s.scalars(select(MemberSegment))}
        assert (rows[old.id].r_score, rows[old.id].frequency, rows[old.id].recency_days) == (
            1,
            0,
            400,
        )
        assert rows[never.id].recency_days is None
        p = build_profile(s, ids[-1], NOW)
        assert p is not None and p.segment.rfm == "555" and p.segment.rfm_computed_at == NOW
