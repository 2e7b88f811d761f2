from __future__ import annotations

import datetime as dt

from sqlalchemy import inspect, select

from crm_bridge import migrate
from crm_bridge.db import make_engine, session_scope
from crm_bridge.models import Agent, Member, MemberPhone, Role, Tier


def test_migrate_from_empty_and_no_drift(db_url: str) -> None:
    # db_url is already upgraded to head by the fixture; upgrading again is a no-op.
    migrate.upgrade(db_url)
    migrate.check(db_url)
    eng = make_engine(db_url)
    tables = set(inspect(eng).get_table_names())
    assert {
        "members",
        "member_phones",
        "purchases",
        "points_ledger",
        "inquiries",
        "complaints",
        "agents",
        "campaigns",
        "call_list_entries",
        "call_attempts",
        "survey_responses",
        "outbox_messages",
        "audit_log",
    } <= tables
    eng.dispose()


def test_downgrade_to_base_and_back(db_url: str) -> None:
    migrate.downgrade(db_url, "base")
    eng = make_engine(db_url)
    assert "members" not in inspect(eng).get_table_names()
    eng.dispose()
    migrate.upgrade(db_url)


def test_chinese_names_and_utc_round_trip(db_url: str) -> None:
    eng = make_engine(db_url)
    when = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with session_scope(eng) as s:
        a = Agent(code="1001", extension="1001", name="王芳", role=Role.AGENT, password_hash="x")
        s.add(a)
        s.flush()
        m = Member(
            member_no="M0001",
            name="李伟",
            joined_on=dt.date(2025, 1, 1),
            tier=Tier.GOLD,
            maintaining_agent_id=a.id,
            last_purchase_at=when,
            locale="zh-CN",
        )
        m.phones.append(MemberPhone(e164="+8613800138000"))
        s.add(m)
    with session_scope(eng) as s:
        got = s.scalars(select(Member).where(Member.member_no == "M0001")).one()
        assert got.name == "李伟"
        assert got.tier is Tier.GOLD
        assert got.last_purchase_at == when
        assert got.last_purchase_at is not None and got.last_purchase_at.tzinfo is not None
        assert [p.e164 for p in got.phones] == ["+8613800138000"]
    eng.dispose()


def test_new_campaign_kinds_pass_the_check_constraint(db_url: str) -> None:
    """0002 widens the campaign-kind CHECK: the care kinds insert, an unknown kind does not."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    eng = make_engine(db_url)
    with eng.begin() as conn:
        for kind in ("monthly_care", "spend_decline"):
            conn.execute(
                text(
                    "INSERT INTO campaigns (name, kind, mode, status, queue, abandon_cap, amd_mode,"
                    " settings, created_at) VALUES (:n, :k, 'preview', 'draft', 'q', 0.03, 'off',"
                    " '{}', CURRENT_TIMESTAMP)"
                ),
                {"n": kind, "k": kind},
            )
    try:
        with eng.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO campaigns (name, kind, mode, status, queue, abandon_cap, amd_mode,"
                    " settings, created_at) VALUES ('x', 'bogus', 'preview', 'draft', 'q', 0.03,"
                    " 'off', '{}', CURRENT_TIMESTAMP)"
                )
            )
        raise AssertionError("an unknown kind was accepted")
    except IntegrityError:
        pass
    eng.dispose()


def test_0003_fills_time_zones_from_numbers(db_url: str) -> None:
    """Members written before 0003 (everyone Asia/Shanghai) get the zone their number gives."""
    from sqlalchemy import text

    migrate.downgrade(db_url, "0002")
    eng = make_engine(db_url)
    rows = [
        # member_no, stored zone, numbers
        ("UK", "Asia/Shanghai", ["+447911123456"]),  # old default, UK number -> London
        ("CN", "Asia/Shanghai", ["+8613800138000"]),  # agrees: kept
        ("RU", "Asia/Shanghai", ["+79161234567"]),  # several zones: unknown (rules use all)
        ("NY", "America/New_York", ["+8613800138001"]),  # explicit other zone: kept
        ("NOPHONE", "Asia/Shanghai", []),  # nothing better known: kept
        ("BOGUS", "Asia/Shanghai", ["+447700900123"]),  # number gives no zone: kept
    ]
    with eng.begin() as conn:
        for i, (no, tz, phones) in enumerate(rows, start=1):
            conn.execute(
                text(
                    "INSERT INTO members (id, member_no, name, gender, email_invalid, locale,"
                    " timezone, tier, points_balance, joined_on, consent_call, consent_sms,"
                    " consent_email, do_not_call, purchase_count, created_at, updated_at)"
                    " VALUES (:id, :no, :no, 'U', false, 'en', :tz, 'Standard', 0,"
                    " '2025-01-01', true, true, true, false, 0, CURRENT_TIMESTAMP,"
                    " CURRENT_TIMESTAMP)"
                ),
                {"id": i, "no": no, "tz": tz},
            )
            for p in phones:
                conn.execute(
                    text(
                        "INSERT INTO member_phones (member_id, e164, kind, invalid)"
                        " VALUES (:m, :p, 'mobile', false)"
                    ),
                    {"m": i, "p": p},
                )
    migrate.upgrade(db_url)
    with eng.connect() as conn:
        got = {no: tz for no, tz in conn.execute(text("SELECT member_no, timezone FROM members"))}
        n_phones = conn.execute(text("SELECT count(*) FROM member_phones")).scalar_one()
    eng.dispose()
    assert got == {
        "UK": "Europe/London",
        "CN": "Asia/Shanghai",
        "RU": "",
        "NY": "America/New_York",
        "NOPHONE": "Asia/Shanghai",
        "BOGUS": "Asia/Shanghai",
    }
    assert n_phones == 5  # nothing rebuilt or cascaded
