from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, event

from crm_bridge.db import session_scope
from crm_bridge.lookup import build_profile, find_members_by_phone, search_members
from crm_bridge.models import (
    CallAttempt,
    CallbackTask,
    ComplaintStatus,
    Direction,
    Inquiry,
    PointsLedger,
    SurveyDefinition,
    SurveyResponse,
    Tier,
)
from crm_bridge.phones import mask, normalise
from crm_bridge.profile import PROFILE_QUERY_BUDGET

from .helpers import NOW, agent, complaint, member, purchase

CN = "+8613800138000"


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("13800138000", "CN", CN),
        ("138 0013 8000", "CN", CN),
        ("138-0013-8000", "CN", CN),
        ("+86 138 0013 8000", "CN", CN),
        ("+86 138 0013 8000", "US", CN),
        ("008613800138000", "US", CN),
        ("00 86 138-0013-8000", "GB", CN),
        ("8613800138000", "CN", CN),
        ("(415) 555-2671", "US", "+14155552671"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+852 9123 4567", "CN", "+85291234567"),
        ("0911 234 567", "TW", "+886911234567"),
        ("<unknown>", "CN", None),
        ("anonymous", "CN", None),
        ("Anonymous", "CN", None),
        ("", "CN", None),
        ("   ", "CN", None),
        (None, "CN", None),
        ("abc", "CN", None),
        ("12345", "CN", None),
        ("+", "CN", None),
        ("00", "CN", None),
        ("1380013800012345678901234567890123456789012345", "CN", None),
        ("138\x00001380", "CN", None),
        ("李伟", "CN", None),
    ],
)
def test_normalise(raw: str | None, region: str, expected: str | None) -> None:
    assert normalise(raw, region) == expected


def test_mask_hides_the_middle() -> None:
    assert mask(CN) == "+86 138****8000"
    assert mask(None) == ""


def test_phone_lookup_finds_every_member_on_a_number(engine: Engine) -> None:
    with session_scope(engine) as s:
        a = member(s, "李伟", phones=(CN,))
        b = member(s, "王芳", phones=("+85291234567", CN))
        member(s, "Someone Else", phones=("+8613900139000",))
    with session_scope(engine) as s:
        found = find_members_by_phone(s, "138 0013 8000", "CN")
        assert [f.member_id for f in found] == [a.id, b.id]
        assert {f.phone_e164 for f in found} == {CN}
        assert [f.name for f in found] == ["李伟", "王芳"]
        assert find_members_by_phone(s, "0085291234567")[0].member_id == b.id
        for raw in ("<unknown>", "anonymous", "", "garbage", "+8613700000000"):
            assert find_members_by_phone(s, raw) == []
        json.dumps([f.to_dict() for f in found], ensure_ascii=False)


def test_search_by_number_name_and_member_no(engine: Engine) -> None:
    with session_scope(engine) as s:
        li = member(s, "李伟", phones=(CN,), member_no="M0000001")
        li2 = member(s, "李娜", phones=("+8613900139000",))
        wei = member(s, "Wei Zhang", phones=("+14155552671",))
        chan = member(s, "陳大文", phones=("+85291234567",), locale="zh-TW")
    with session_scope(engine) as s:
        assert [r.member_id for r in search_members(s, "M0000001")] == [li.id]
        assert [r.member_id for r in search_members(s, "m0000001")] == [li.id]
        assert [r.member_id for r in search_members(s, "13800138000")] == [li.id]
        assert [r.member_id for r in search_members(s, "李")] == [li.id, li2.id]
        assert [r.member_id for r in search_members(s, "伟")] == [li.id]
        assert [r.member_id for r in search_members(s, "wei")] == [wei.id]
        assert [r.member_id for r in search_members(s, "大文")] == [chan.id]
        assert search_members(s, "陳")[0].phone_e164 == "+85291234567"
        assert search_members(s, "李", limit=1) == search_members(s, "李")[:1]
        assert search_members(s, "") == []
        assert search_members(s, "100%_") == []


@contextmanager
def count_queries(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _rich_member(engine: Engine, n_history: int) -> int:
    with session_scope(engine) as s:
        owner = agent(s, f"10{n_history:02d}", "王芳")
        m = member(s, "李伟", phones=(CN, "+85291234567"), tier=Tier.GOLD, points_balance=1200,
                   maintaining_agent_id=owner.id, birthday=dt.date(1990, 11, 25))  # fmt: skip
        survey = SurveyDefinition(name="csat", version=1, source_toml="", sha256="0" * 64)
        s.add(survey)
        s.flush()
        for i in range(n_history):
            when = NOW - dt.timedelta(days=100 + i)
            purchase(s, m, when, "50.00")
            s.add(Inquiry(member_id=m.id, category="stock", subject=f"Q{i}", created_at=when))
            s.add(CallAttempt(attempt_key=f"call:{n_history}:{i}", member_id=m.id, agent_id=owner.id,
                              direction=Direction.INBOUND, started_at=when, outcome="answered"))  # fmt: skip
            s.add(PointsLedger(member_id=m.id, occurred_at=when, delta=10, balance_after=10 * (i + 1),
                               reason="purchase", expires_on=dt.date(2027, 1, 31)))  # fmt: skip
            s.add(SurveyResponse(response_key=f"r{n_history}:{i}", survey_id=survey.id, member_id=m.id,
                                 channel="agi", started_at=when, csat=5, nps=9))  # fmt: skip
            s.add(CallbackTask(member_id=m.id, agent_id=owner.id, due_at=NOW - dt.timedelta(hours=1),
                               reason=f"call back {i}"))  # fmt: skip
            complaint(s, m, owner, ComplaintStatus.OPEN if i == 0 else ComplaintStatus.RESOLVED)
        s.add(SurveyResponse(response_key=f"r{n_history}:last", survey_id=survey.id, member_id=m.id,
                             channel="agi", started_at=NOW - dt.timedelta(days=1), csat=1, nps=2))  # fmt: skip
        return m.id


@pytest.mark.parametrize("n_history", [1, 30])
def test_profile_bounded_queries_and_content(engine: Engine, n_history: int) -> None:
    member_id = _rich_member(engine, n_history)
    with count_queries(engine) as seen, session_scope(engine) as s:
        p = build_profile(s, member_id, NOW)
    assert p is not None
    assert len(seen) == PROFILE_QUERY_BUDGET, seen
    assert p.member.name == "李伟" and p.member.tier == "Gold"
    assert [ph.e164 for ph in p.phones] == [CN, "+85291234567"]
    assert len(p.purchases) == min(n_history, 10)
    assert p.purchases == tuple(sorted(p.purchases, key=lambda x: x.purchased_at, reverse=True))
    assert len(p.calls) == min(n_history, 10)
    assert len(p.open_inquiries) == min(n_history, 20)
    assert len(p.open_complaints) == 1 and p.complaints[0].owner_name == "王芳"
    assert p.surveys[0].csat == 1
    assert p.points_expiring is not None and p.points_expiring.expires_on == dt.date(2027, 1, 31)
    assert p.points_expiring.points == min(10 * n_history, 1200)
    assert p.segment.lifecycle == "dormant" and p.segment.days_since_purchase == 100
    codes = [h.code for h in p.hints]
    assert codes[0] in ("open_complaint", "callback_due")
    for code in ("open_complaint", "callback_due", "priority_tier", "low_survey", "dormant",
                 "birthday", "points", "open_inquiry"):  # fmt: skip
        assert code in codes, (code, codes)
    assert [h.priority for h in p.hints] == sorted(h.priority for h in p.hints)
    dormant = next(h for h in p.hints if h.code == "dormant")
    assert "100 days" in dormant.text
    payload = json.dumps(p.to_dict(), ensure_ascii=False)
    assert "李伟" in payload and '"tier": "Gold"' in payload


def test_profile_values_are_typed_alike_on_every_database(engine: Engine) -> None:
    """The one-statement profile reads its parts as JSON: each value must come back exactly as
    the column's type gives it when selected directly (money with its two places, aware UTC
    times, dates, booleans, enums), on SQLite and PostgreSQL alike."""
    member_id = _rich_member(engine, 2)
    with session_scope(engine) as s:
        d = build_profile(s, member_id, NOW).to_dict()  # type: ignore[union-attr]
    assert d["member"]["birthday"] == "1990-11-25" and d["member"]["email_invalid"] is False
    assert d["phones"] == [
        {"e164": CN, "kind": "mobile", "invalid": False},
        {"e164": "+85291234567", "kind": "mobile", "invalid": False},
    ]
    newest = NOW - dt.timedelta(days=100)
    assert d["purchases"][0]["amount"] == "50.00"
    assert d["purchases"][0]["purchased_at"] == newest.isoformat().replace("+00:00", "Z")
    assert [c["direction"] for c in d["calls"]] == ["inbound", "inbound"]
    assert d["calls"][0]["agent_name"] == "王芳"
    assert d["complaints"][0]["status"] == "open" and d["complaints"][1]["status"] == "resolved"
    assert d["surveys"][0]["csat"] == 1 and d["surveys"][0]["completed_at"] is None
    assert d["ledger"][0]["expires_on"] == "2027-01-31" and d["ledger"][0]["delta"] == 10
    assert d["points_expiring"] == {"expires_on": "2027-01-31", "points": 20}
    assert len(d["callbacks"]) == 2 and d["callbacks"][0]["due_at"].endswith("Z")
    assert d["segment"]["spend_last_90"] == "0" and d["segment"]["spend_prev_90"] == "100.00"


def test_profile_unknown_member_and_declining_spend(engine: Engine) -> None:
    with session_scope(engine) as s:
        assert build_profile(s, 12345, NOW) is None
        m = member(
            s, "Emily Chen", phones=("+447700900123",), locale="en", timezone="Europe/London"
        )
        purchase(s, m, NOW - dt.timedelta(days=120), "1000.00")
        purchase(s, m, NOW - dt.timedelta(days=10), "100.00")
        mid = m.id
    with session_scope(engine) as s:
        p = build_profile(s, mid, NOW)
        assert p is not None
        assert p.segment.declining_spend and p.segment.lifecycle == "regular"
        assert "declining_spend" in [h.code for h in p.hints]
        assert p.segment.rfm is None
