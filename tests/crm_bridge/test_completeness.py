"""Member data completeness: the seven items, the report per maintainer / store, the value
checks of the console's fill-in, and the fill-in over a real hub connection (audited)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from crm_bridge.completeness import (
    FIELDS,
    By,
    completeness_report,
    format_table,
    missing_fields,
    parse_value,
    render_html,
)
from crm_bridge.db import session_scope
from crm_bridge.models import AuditLog, Gender, Member, MemberPhone
from tests.chromium import layout, needs_chromium

from .helpers import NOW, agent, member, purchase

TODAY = NOW.date()


def test_missing_fields_pure() -> None:
    full = dict(has_valid_phone=True, birthday=dt.date(1990, 1, 1), gender="F", city="上海",
                email="a@example.com", email_invalid=False, consent_recorded_at=NOW,
                maintaining_agent_id=1)  # fmt: skip
    assert missing_fields(**full) == ()  # type: ignore[arg-type]
    bare = dict(has_valid_phone=False, birthday=None, gender="U", city="  ", email="x@y.z",
                email_invalid=True, consent_recorded_at=None, maintaining_agent_id=None)  # fmt: skip
    assert missing_fields(**bare) == FIELDS  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("item", "value", "expected"),
    [
        ("birthday", "2000-02-29", dt.date(2000, 2, 29)),
        ("gender", " f ", Gender.FEMALE),
        ("city", "深圳", "深圳"),
        ("email", "Li.Wei@Example.COM", "Li.Wei@example.com"),
        ("consent", "sms, call", frozenset({"sms", "call"})),
        ("consent", "none", frozenset()),
    ],
)
def test_parse_value_accepts(item: str, value: str, expected: object) -> None:
    assert parse_value(item, value, TODAY) == expected


@pytest.mark.parametrize(
    ("item", "value"),
    [
        ("birthday", "2001-02-29"),  # no such day
        ("birthday", "2099-01-01"),  # the future
        ("birthday", "01/02/1990"),
        ("gender", "U"),
        ("city", ""),
        ("email", "not-an-address"),
        ("consent", "fax"),
        ("phone", "123"),
    ],
)
def test_parse_value_refuses(item: str, value: str) -> None:
    with pytest.raises(ValueError, match=item):
        parse_value(item, value, TODAY)


def build(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as s:
        wang = agent(s, "1001", "王芳")
        full = member(s, "全", phones=("+8613800000001",), birthday=dt.date(1990, 1, 1),
                      gender=Gender.MALE, city="上海", email="q@example.com",
                      consent_recorded_at=NOW, maintaining_agent_id=wang.id)  # fmt: skip
        purchase(s, full, NOW - dt.timedelta(days=3))
        half = member(s, "半", phones=("+8613800000002",), birthday=dt.date(1991, 1, 1),
                      gender=Gender.FEMALE, maintaining_agent_id=wang.id)  # fmt: skip
        bare = member(s, "空")  # no phone, nothing
        bad_phone = member(s, "坏", phones=("+8613800000003",), maintaining_agent_id=wang.id)
        s.execute(update(MemberPhone).where(MemberPhone.member_id == bad_phone.id)
                  .values(invalid=True))  # fmt: skip
        return {"full": full.id, "half": half.id, "bare": bare.id, "wang": wang.id}


def test_report_by_maintainer_and_store(engine: Engine) -> None:
    build(engine)
    with session_scope(engine) as s:
        rep = completeness_report(s, By.MAINTAINER, now=NOW)
        store = completeness_report(s, By.STORE, now=NOW)
        whole = completeness_report(s, "all", now=NOW)
    t = rep.total
    assert t.members == 4 and t.complete == 1
    # present: full 7, half 4 (phone, birthday, gender, maintainer), bare 0, bad_phone 1
    assert sum(t.present.values()) == 12 and t.score == pytest.approx(100 * 12 / 28)
    assert t.missing_pct("phone") == 50.0 and t.missing_pct("maintainer") == 25.0
    groups = {g.label: g for g in rep.groups}
    assert set(groups) == {"王芳 (1001)", "(no maintainer)"}
    assert groups["(no maintainer)"].score == 0.0 and rep.groups[0].label == "(no maintainer)"
    assert {g.label: g.members for g in store.groups} == {
        "Shanghai Nanjing Rd": 1,
        "(no purchase)": 3,
    }
    assert whole.total.members == 4 and whole.groups[0].members == 4
    table = format_table(rep)
    assert table[0][:4] == ["Maintainer", "Members", "Score", "All 7"]
    assert table[-1][:4] == ["Total", "4", "42.9%", "1"]
    assert json.loads(json.dumps(rep.to_dict()))["total"]["members"] == 4


def test_profile_hint_names_what_is_missing(engine: Engine) -> None:
    from crm_bridge.profile import build_profile

    ids = build(engine)
    with session_scope(engine) as s:
        half = build_profile(s, ids["half"], NOW)
        full = build_profile(s, ids["full"], NOW)
    assert half is not None and full is not None
    hint = next(h for h in half.hints if h.code == "missing_data")
    assert hint.text == "City, email, consent missing - ask (F10 to fill in)"
    assert hint.text_zh == "资料缺少：城市、邮箱、授权，请询问（F10 填写）"
    assert hint.data["fillable"] == ["city", "email", "consent"]
    assert not any(h.code == "missing_data" for h in full.hints)


async def test_fill_in_over_the_hub_is_audited(engine: Engine) -> None:
    from cti.hubproto import ErrorCode, ProtocolError
    from tests.cti.hub_support import Console, running_hub, seed

    ids = seed(engine)
    liwei = ids.members["liwei"]
    async with running_hub(engine) as hub, Console(hub, "1001") as a1:
        before = (await a1.request("member_profile", member_id=liwei))["profile"]
        missing = next(h for h in before["hints"] if h["code"] == "missing_data")["data"]["missing"]
        assert "city" in missing
        out = await a1.request("member_update", member_id=liwei, field="city", value="杭州")
        hints = {h["code"]: h for h in out["profile"]["hints"]}
        assert "city" not in hints.get("missing_data", {"data": {"missing": []}})["data"]["missing"]
        await a1.request("member_update", member_id=liwei, field="consent", value="call,sms")
        with pytest.raises(ProtocolError) as err:
            await a1.request("member_update", member_id=liwei, field="birthday", value="1990-13-01")
        assert err.value.code is ErrorCode.BAD_REQUEST and "birthday" in err.value.message
        with pytest.raises(ProtocolError) as err:  # not one of the fillable items
            await a1.request("member_update", member_id=liwei, field="maintainer", value="1002")
        assert err.value.code is ErrorCode.BAD_REQUEST
        with pytest.raises(ProtocolError) as err:  # another agent's member
            await a1.request("member_update", member_id=ids.members["other"], field="city",
                             value="x")  # fmt: skip
        assert err.value.code is ErrorCode.FORBIDDEN
    with session_scope(engine) as s:
        m = s.get(Member, liwei)
        assert m is not None and m.city == "杭州" and m.consent_recorded_at is not None
        assert (m.consent_call, m.consent_sms, m.consent_email) == (True, True, False)
        audit = [(a.action, a.details.get("field")) for a in s.scalars(
            select(AuditLog).where(AuditLog.member_id == liwei, AuditLog.action == "member.update")
            .order_by(AuditLog.id))]  # fmt: skip
    assert audit == [("member.update", "city"), ("member.update", "consent")]


@needs_chromium
def test_html_lays_out_in_headless_chromium(engine: Engine, tmp_path: Path) -> None:
    build(engine)
    with session_scope(engine) as s:
        html = render_html(completeness_report(s, By.MAINTAINER, now=NOW))
    assert "<script" not in html
    got = layout(html, tmp_path)
    assert len(got["charts"]) == 2 and got["tables"] == 1
    for chart in got["charts"]:
        assert chart["overlaps"] == [] and chart["outside"] == [], chart
    assert got["scrollWidth"] <= got["clientWidth"]


def test_cli_report_completeness(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crm_bridge.db import make_engine
    from memberline.cli import main

    engine = make_engine(sqlite_url)
    build(engine)
    engine.dispose()
    html = tmp_path / "c.html"
    assert main(["report", "completeness", "--db", sqlite_url, "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "王芳 (1001)" in out and "(no maintainer)" in out and html.exists()
    assert main(["report", "completeness", "--by", "store", "--json", "--db", sqlite_url]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["members"] == 4
    assert main(["report", "winback", "--json", "--db", sqlite_url]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["contacts"] == 0
