from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from crm_bridge.auth import verify_password
from crm_bridge.db import make_engine, session_scope
from crm_bridge.demo_seed import DEMO_PASSWORD, seed_demo
from crm_bridge.lookup import build_profile, find_members_by_phone
from crm_bridge.models import Agent, Member, MemberPhone, Role
from crm_bridge.phones import normalise
from crm_bridge.points import ledger_balance

NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
TABLES = ("members", "member_phones", "purchases", "points_ledger", "inquiries", "complaints", "call_attempts",
          "survey_responses", "callback_tasks", "member_segments")  # fmt: skip


def dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        out = {}
        for t in TABLES:
            cols = [
                c
                for c in conn.execute(text(f"SELECT * FROM {t} LIMIT 0")).keys()
                if c != "computed_at"
            ]
            out[t] = [
                tuple(r)
                for r in conn.execute(text(f"SELECT {', '.join(cols)} FROM {t} ORDER BY 1"))
            ]
        return out


def test_demo_data_is_deterministic_and_realistic(db_url: str, tmp_path: Path) -> None:
    summary = seed_demo(db_url, members=300, seed=42, now=NOW)
    assert summary.members == 300 and summary.purchases > 500 and summary.complaints > 0
    other = f"sqlite:///{tmp_path / 'again.db'}"
    seed_demo(other, members=300, seed=42, now=NOW)
    third = f"sqlite:///{tmp_path / 'other-seed.db'}"
    seed_demo(third, members=300, seed=43, now=NOW)
    e1, e2, e3 = make_engine(db_url), make_engine(other), make_engine(third)
    try:
        d1, d2 = dump(e1), dump(e2)
        for t in TABLES:
            assert len(d1[t]) == len(d2[t]), t
            if e1.dialect.name == "sqlite":  # same dialect: every row identical
                assert d1[t] == d2[t], t
        with session_scope(e1) as s1, session_scope(e2) as s2, session_scope(e3) as s3:
            q = select(Member.member_no, Member.name, Member.tier, Member.points_balance, Member.timezone,
                       Member.last_purchase_at).order_by(Member.id)  # fmt: skip
            assert s1.execute(q).all() == s2.execute(q).all()
            assert s1.execute(q).all() != s3.execute(q).all()
            phones = s1.scalars(
                select(MemberPhone.e164).where(MemberPhone.invalid.is_(False))
            ).all()
            assert sum(normalise(p) == p for p in phones) >= 0.99 * len(phones)
            names = s1.scalars(select(Member.name).where(Member.locale == "zh-TW")).all()
            assert names and any(ch in "".join(names) for ch in "陳黃張劉楊許鄭謝蘇葉莊呂蕭羅")
            assert (s1.scalar(select(func.count()).where(Member.locale == "en")) or 0) > 0
            assert {tz for (tz,) in s1.execute(select(Member.timezone).distinct())} >= {
                "Asia/Shanghai"
            }
            supervisor = s1.scalars(select(Agent).where(Agent.code == "9001")).one()
            assert supervisor.role == Role.SUPERVISOR and verify_password(
                supervisor.password_hash, DEMO_PASSWORD
            )
            assert s1.scalar(select(func.count()).select_from(Agent)) == 21
            # Summary columns agree with the detail rows.
            for m in s1.scalars(select(Member).order_by(Member.id).limit(60)):
                assert ledger_balance(s1, m.id) == m.points_balance
            p = build_profile(s1, 1, NOW)
            assert p is not None and p.segment.rfm is not None
            first_phone = s1.scalar(select(MemberPhone.e164).where(MemberPhone.member_id == 1))
            assert 1 in [x.member_id for x in find_members_by_phone(s1, first_phone)]
    finally:
        for e in (e1, e2, e3):
            e.dispose()
