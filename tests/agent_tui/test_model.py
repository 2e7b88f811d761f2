"""Parsing the hub's dicts (the shapes crm_bridge and cti.hub really send) and formatting."""

from __future__ import annotations

import datetime as dt

from agent_tui.model import (
    AgentState,
    Campaign,
    MemberSummary,
    Profile,
    ScreenPop,
    Session,
    SurveyRow,
    Wallboard,
    format_duration,
    format_pct,
    parse_time,
)
from agent_tui.widgets.charts import bar, survey_chart
from agent_tui.widgets.member import header_lines
from agent_tui.widgets.status import state_line
from tests.agent_tui import recorded as R

HUB_PROFILE = {  # crm_bridge.profile.Profile.to_dict(), masked by cti.screenpop
    "member": {
        "id": 7,
        "member_no": "M000007",
        "name": "李伟",
        "tier": "Gold",
        "points_balance": 5598,
        "joined_on": "2022-05-01",
        "timezone": "Asia/Shanghai",
        "locale": "zh-CN",
        "maintaining_agent_id": 1,
        "maintaining_agent_code": "1001",
        "maintaining_agent_name": "王芳",
    },
    "phones": [{"e164": "+86 138****8000", "kind": "mobile", "invalid": False}],
    "purchases": [{"purchased_at": "2026-11-15T09:00:00+00:00", "amount": "399.00"}],
    "open_inquiries": [{"subject": "积分", "status": "open"}],
    "complaints": [],
    "calls": [],
    "surveys": [{"completed_at": "2026-11-01T00:00:00+00:00", "csat": 4, "nps": 8}],
    "ledger": [{"occurred_at": "2026-11-15T09:00:00+00:00", "delta": 598, "balance_after": 5598}],
    "segment": {"lifecycle": "regular", "rfm": "545"},
    "hints": [{"code": "points", "priority": 3, "text": "Has points", "text_zh": "可兑换积分"}],
}


def test_profile_from_the_hub_shape() -> None:
    p = Profile.parse(HUB_PROFILE)
    assert (p.member_id, p.member_no, p.name, p.points) == (7, "M000007", "李伟", 5598)
    assert p.phone_masked == "+86 138****8000"
    assert (p.lifecycle, p.rfm, p.maintaining_agent) == ("regular", "545", "王芳 (1001)")
    assert p.next_best_actions == ("可兑换积分",)  # the member's language
    assert len(p.inquiries) == 1 and len(p.ledger) == 1 and p.member_since == "2022-05-01"
    first, second = header_lines(p)
    assert "李伟" in first and "☎ +86 138****8000" in first
    assert "Points 5,598" in second and "RFM 545" in second
    after = p.with_points(4398, {"delta": -1200, "balance_after": 4398})
    assert after.points == 4398 and after.ledger[0]["delta"] == -1200 and p.points == 5598


def test_pop_session_and_summaries() -> None:
    pop = ScreenPop.parse(R.POP_MEMBER)
    assert pop.kind == "member" and pop.profile is not None and pop.profile.name == "李伟"
    assert (pop.your_member, pop.ivr) == (False, "")
    chooser = ScreenPop.parse({"call_id": "c", "kind": "chooser", "matches": R.MATCHES})
    assert chooser.profile is None and [m.name for m in chooser.matches] == ["李伟", "李娜"]
    heard = ScreenPop.parse(
        {**R.POP_MEMBER, "your_member": True, "ivr": "Hotline heard: tier Gold"}
    )
    assert (heard.your_member, heard.ivr) == (True, "Hotline heard: tier Gold")
    assert ScreenPop.parse({**R.POP_MEMBER, "your_member": "yes"}).your_member is False
    s = Session.parse(R.LOGIN_SUPERVISOR)
    assert s.agent.is_supervisor and s.dispositions[0] == ("s", "satisfied")
    m = MemberSummary.parse({"member_id": 3, "phone_e164": "+86 139****9000", "points_balance": 5})
    assert (m.phone_masked, m.points, m.maintaining_agent) == ("+86 139****9000", 5, "")


def test_campaign_wallboard_agent_survey() -> None:
    c = Campaign.parse(
        {"campaign_id": 1, "entries": {"pending": 3, "done": 1}, "total": 4, "progress": 0.25}
    )
    assert (c.total, c.done, c.progress) == (4, 1, 0.25)
    wb = Wallboard.parse(R.WALLBOARD)
    assert wb.waiting == 3 and len(wb.history["waiting"]) == 60 and wb.agents[2].reason == "lunch"
    a = AgentState.parse({"agent": "1001", "state": "paused", "reason": "lunch", "since": R.at(75)})
    assert state_line(a, R.NOW.timestamp()).startswith("PAUSED (lunch) 01:15")
    assert state_line(None, None) == "WAITING FOR HUB"
    assert SurveyRow.parse({"week": "2026-W45", "responses": 4, "csat": 4.5}).nps is None
    # the hub's survey_summary rows (surveys.report.survey_figures "weekly")
    hub_row = {
        "key": "2026-W36",
        "label": "2026-W36",
        "started": 4,
        "completed": 4,
        "csat_pct": 25.0,
        "csat_mean": 2.75,
        "nps": -75.0,
    }
    assert SurveyRow.parse(hub_row) == SurveyRow("2026-W36", 4, 25.0, -75.0)


def test_formatting() -> None:
    assert format_duration(75) == "01:15" and format_duration(3723) == "1:02:03"
    assert format_pct(0.021) == "2.1%" and format_pct(None) == "—"
    assert parse_time("2026-11-23T09:30:00") == dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
    assert parse_time("nonsense") is None
    assert bar(1, 2, 4) == "██  " and bar(0, 0, 3) == "   "
    chart = survey_chart([SurveyRow("W1", 3, 4.0, -20.0)])
    assert "$error" in chart and "-20" in chart and "4.0" in chart


def test_nps_bar_diverges_from_zero() -> None:
    """-100 fills the left half, +100 the right: never the same full bar (as abs() drew)."""
    from agent_tui.widgets.charts import diverging_bar

    assert diverging_bar(-100, 100, 20) == ("█" * 10, " " * 10)
    assert diverging_bar(100, 100, 20) == (" " * 10, "█" * 10)
    assert diverging_bar(0, 100, 20) == (" " * 10, " " * 10)
    assert diverging_bar(-25, 100, 20) == (" " * 7 + "▐██", " " * 10)  # 2.5 cells
    assert diverging_bar(-250, 100, 4) == ("██", "  ")  # clamped
    worst = survey_chart([SurveyRow("W1", 3, 1.0, -100.0)]).splitlines()[-1]
    best = survey_chart([SurveyRow("W2", 3, 5.0, 100.0)]).splitlines()[-1]
    assert "[$error]██████████[/]│[$success]          [/] -100" in worst
    assert "[$error]          [/]│[$success]██████████[/] +100" in best
