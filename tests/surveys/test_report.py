"""Report figures on a hand-built data set (exact CSAT / NPS / rates), and the HTML report."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine

from crm_bridge.db import make_engine, session_scope
from crm_bridge.models import (
    Agent,
    CallAttempt,
    Campaign,
    CampaignKind,
    DialMode,
    Direction,
    SurveyAnswer,
    SurveyDefinition,
    SurveyResponse,
)
from surveys.report import survey_figures, survey_report
from surveys.report_html import render_html
from surveys.scoring import nps_score

UTC = dt.UTC
W45 = dt.datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # Tuesday of ISO week 2026-W45
W46 = dt.datetime(2026, 11, 15, 23, 30, tzinfo=UTC)  # Sunday of ISO week 2026-W46


def build(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as s:
        agent = Agent(code="2001", extension="2001", name="Zhang Min", password_hash="x")
        ca = Campaign(name="Autumn survey A", kind=CampaignKind.SURVEY, mode=DialMode.IVR)
        cb = Campaign(
            name="回访 B",
            kind=CampaignKind.POST_PURCHASE,
            mode=DialMode.PREDICTIVE,
            survey_name="satisfaction",
        )
        sd = SurveyDefinition(name="satisfaction", version=1, source_toml="", sha256="0" * 64)
        s.add_all([agent, ca, cb, sd])
        s.flush()
        attempt_b = CallAttempt(
            attempt_key="entry:1:1",
            campaign_id=cb.id,
            direction=Direction.OUTBOUND,
            started_at=W46,
            answered_at=W46,
        )
        missed_a = CallAttempt(  # answered, never reached the survey: an invitation
            attempt_key="entry:2:1",
            campaign_id=ca.id,
            direction=Direction.OUTBOUND,
            started_at=W45,
            answered_at=W45,
        )
        unanswered_a = CallAttempt(
            attempt_key="entry:3:1",
            campaign_id=ca.id,
            direction=Direction.OUTBOUND,
            started_at=W45,
            outcome="no_answer",
        )
        s.add_all([attempt_b, missed_a, unanswered_a])
        s.flush()
        rows = [
            # key, campaign, agent, started, csat, nps, status, attempt
            ("r1", ca.id, None, W45, 5, 10, "complete", None),
            ("r2", ca.id, None, W45, 4, 9, "complete", None),
            ("r3", ca.id, None, W45, 2, 3, "complete", None),
            ("r4", ca.id, None, W45, 3, None, "partial", None),
            ("r5", cb.id, agent.id, W46, 1, 0, "complete", attempt_b.id),
            ("r6", cb.id, agent.id, W46, 5, 8, "complete", None),
            ("r7", cb.id, agent.id, W46, None, None, "partial", None),  # hung up in the intro
            ("r8", None, agent.id, W46, 4, 9, "complete", None),  # post-call, no campaign
            ("old", ca.id, None, dt.datetime(2026, 10, 1, tzinfo=UTC), 1, 0, "complete", None),
        ]
        for key, camp, ag, started, csat, nps, status, att in rows:
            r = SurveyResponse(
                response_key=key,
                survey_id=sd.id,
                campaign_id=camp,
                agent_id=ag,
                channel="agi",
                started_at=started,
                status=status,
                csat=csat,
                nps=nps,
                call_attempt_id=att,
            )
            s.add(r)
            s.flush()
            for qid, v in (("q_csat", csat), ("q_nps", nps)):
                if v is not None:
                    s.add(
                        SurveyAnswer(
                            response_id=r.id, question_id=qid, value=str(v), answered_at=started
                        )
                    )
        return {"agent": agent.id, "a": ca.id, "b": cb.id}


SINCE = dt.date(2026, 11, 1)


def test_totals(engine: Engine) -> None:
    build(engine)
    with session_scope(engine) as s:
        rep = survey_report(s, SINCE, "campaign")
    t = rep.total
    assert (t.invitations, t.started, t.responded, t.completed) == (9, 8, 7, 6)
    assert t.csat_answers == 7 and t.csat_satisfied == 4
    assert t.csat_pct == pytest.approx(400 / 7)  # 57.14 %
    assert t.csat_mean == pytest.approx(24 / 7)
    assert (t.nps_answers, t.promoters, t.passives, t.detractors) == (6, 3, 1, 2)
    assert t.nps == pytest.approx(100 / 6)  # 16.67
    assert t.response_rate == pytest.approx(700 / 9)
    assert t.completion_rate == pytest.approx(75.0)
    assert rep.csat_distribution == {1: 1, 2: 1, 3: 1, 4: 2, 5: 2}
    assert rep.nps_distribution == {
        0: 1,
        1: 0,
        2: 0,
        3: 1,
        4: 0,
        5: 0,
        6: 0,
        7: 0,
        8: 1,
        9: 2,
        10: 1,
    }


def test_by_campaign(engine: Engine) -> None:
    ids = build(engine)
    with session_scope(engine) as s:
        groups = {g.label: g for g in survey_report(s, SINCE, "campaign").groups}
    assert set(groups) == {"Autumn survey A", "回访 B", "(no campaign)"}
    a, b, none = groups["Autumn survey A"], groups["回访 B"], groups["(no campaign)"]
    assert a.key == str(ids["a"])
    assert (a.invitations, a.started, a.responded, a.completed) == (5, 4, 4, 3)
    assert (a.csat_pct, a.csat_mean, a.nps) == (50.0, 3.5, pytest.approx(100 / 3))
    assert (a.response_rate, a.completion_rate) == (80.0, 75.0)
    assert (b.invitations, b.started, b.responded, b.completed) == (3, 3, 2, 2)
    assert (b.csat_pct, b.csat_mean, b.nps) == (50.0, 3.0, -50.0)
    assert b.response_rate == pytest.approx(200 / 3)
    assert (none.invitations, none.csat_pct, none.nps) == (1, 100.0, 100.0)


def test_by_week_and_agent(engine: Engine) -> None:
    ids = build(engine)
    with session_scope(engine) as s:
        weeks = {g.key: g for g in survey_report(s, SINCE, "week").groups}
        agents = {g.key: g for g in survey_report(s, SINCE, "agent").groups}
    assert set(weeks) == {"2026-W45", "2026-W46"}  # Sunday 23:30 UTC still belongs to W46
    w45, w46 = weeks["2026-W45"], weeks["2026-W46"]
    assert (w45.invitations, w45.started, w45.completed, w45.nps) == (
        5,
        4,
        3,
        pytest.approx(100 / 3),
    )
    assert (w46.started, w46.responded, w46.csat_pct, w46.nps) == (
        4,
        3,
        pytest.approx(200 / 3),
        0.0,
    )
    x = agents[str(ids["agent"])]
    assert x.label == "Zhang Min (2001)" and (x.started, x.responded) == (4, 3)
    assert agents["none"].invitations == 5


def test_figures_as_plain_data_and_until(engine: Engine) -> None:
    build(engine)
    with session_scope(engine) as s:
        data = survey_figures(s, SINCE, "week")
        only_w45 = survey_report(s, SINCE, "week", until=dt.date(2026, 11, 9))
    assert data["total"]["nps"] == pytest.approx(100 / 6)
    assert data["csat_distribution"]["4"] == 2
    assert [w["key"] for w in data["weekly"]] == ["2026-W45", "2026-W46"]
    assert [g.key for g in only_w45.groups] == ["2026-W45"]


def test_nps_formula_edges() -> None:
    assert nps_score(0, 0, 0) is None
    assert nps_score(10, 0, 10) == 100.0
    assert nps_score(0, 10, 10) == -100.0


def test_html_is_self_contained(engine: Engine, tmp_path: Path) -> None:
    build(engine)
    with session_scope(engine) as s:
        html = render_html(survey_report(s, SINCE, "campaign"))
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    assert html.count("<svg") == 4 and "<polyline" in html  # two trend lines, two histograms
    assert "回访 B" in html and "57.1%" in html and "16.7" in html


CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)


@pytest.mark.e2e
@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium); CI installs it"
)
def test_html_renders_in_headless_chromium(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    build(engine)
    with session_scope(engine) as s:
        html = render_html(survey_report(s, SINCE, "campaign"))
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / "report.png"
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--hide-scrollbars",
            "--window-size=1240,1100",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1240, 1100)
    assert len(data) > 20_000  # a blank page compresses to a few KB; charts and text do not
    keep = Path("/tmp/memberline-survey-report.png")
    shutil.copy(shot, keep)


@pytest.mark.e2e
def test_week_labels_readable_in_headless_chromium(sqlite_url: str, tmp_path: Path) -> None:
    """40 weeks across New Year, some without responses: Chromium lays the charts out and no
    two labels overlap; weeks read W52, W01 with the year underneath; gaps stay gaps."""
    from tests.chromium import CHROMIUM, layout

    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install -y chromium); CI installs it")
    engine = make_engine(sqlite_url)
    start = dt.datetime(2026, 7, 20, 10, 0, tzinfo=UTC)  # Monday of 2026-W30
    with session_scope(engine) as s:
        sd = SurveyDefinition(name="satisfaction", version=1, source_toml="", sha256="0" * 64)
        s.add(sd)
        s.flush()
        for week in range(40):
            if week in (5, 6, 23):
                continue  # no survey those weeks
            s.add(SurveyResponse(
                response_key=f"w{week}", survey_id=sd.id, channel="agi", status="complete",
                started_at=start + dt.timedelta(weeks=week), csat=1 + week % 5, nps=week % 11,
            ))  # fmt: skip
    with session_scope(engine) as s:
        report = survey_report(s, start.date(), "week", now=start + dt.timedelta(weeks=41))
    html = render_html(report)
    got = layout(html, tmp_path)
    trends = [
        c for c in got["charts"] if c["title"].endswith("per week") or "per week" in c["title"]
    ]
    assert len(trends) == 2
    for chart in got["charts"]:
        assert chart["overlaps"] == [] and chart["outside"] == [], chart
    labels = trends[0]["labels"]
    assert "2026" in labels and "2027" in labels
    assert not any("-W" in label for label in labels)  # short labels, the year underneath
    assert got["scrollWidth"] <= got["clientWidth"]
    engine.dispose()
