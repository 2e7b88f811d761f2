"""The win-back report: contacts, reached / not reached, reasons, win-back at 30 and 60 days."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine

from crm_bridge.db import session_scope
from crm_bridge.models import CallAttempt, CallListEntry, CampaignKind, Direction, Tier
from crm_bridge.winback import By, format_table, render_html, winback_report
from memberline.config import CareConfig
from tests.chromium import layout, needs_chromium
from tests.crm_bridge.helpers import NOW, agent, campaign, member, purchase

REASONS = CareConfig().winback_reasons
D = dt.timedelta(days=1)


def _call(s, camp, m, at, *, answered=True, reason=None, n=1):
    entry = CallListEntry(campaign_id=camp.id, member_id=m.id, phone_e164="+8613800000000")
    s.add(entry)
    s.flush()
    for i in range(n):
        last = i == n - 1
        s.add(CallAttempt(
            attempt_key=f"entry:{entry.id}:{i + 1}", entry_id=entry.id, campaign_id=camp.id,
            member_id=m.id, direction=Direction.OUTBOUND, started_at=at - (n - 1 - i) * D,
            answered_at=at + dt.timedelta(seconds=10) if answered and last else None,
            outcome="answered" if answered and last else "no_answer",
            reason=reason if answered and last else None,
        ))  # fmt: skip
    s.flush()


def build(engine: Engine) -> None:
    with session_scope(engine) as s:
        a = agent(s, "1001", "王芳")
        win = campaign(s, CampaignKind.DORMANT_WINBACK, "winback-spring")
        other = campaign(s, CampaignKind.POST_PURCHASE, "pp")
        # reached 90 days ago, price, bought 20 days later: won at 30 and 60
        m1 = member(s, "甲", tier=Tier.GOLD, maintaining_agent_id=a.id)
        purchase(s, m1, NOW - 200 * D)
        _call(s, win, m1, NOW - 90 * D, reason="price", n=2)
        purchase(s, m1, NOW - 70 * D)
        # reached 90 days ago, moved, bought 45 days later: won at 60 only
        m2 = member(s, "乙", maintaining_agent_id=a.id)
        _call(s, win, m2, NOW - 90 * D, reason="moved")
        purchase(s, m2, NOW - 45 * D)
        # reached 40 days ago, price, never bought: judged at 30, too young for 60
        m3 = member(s, "丙")
        _call(s, win, m3, NOW - 40 * D, reason="price")
        # not reached 100 days ago, bought anyway 10 days later (the baseline)
        m4 = member(s, "丁")
        _call(s, win, m4, NOW - 100 * D, answered=False, n=3)
        purchase(s, m4, NOW - 90 * D)
        # reached 5 days ago: counted, too young for any rate
        m5 = member(s, "戊")
        _call(s, win, m5, NOW - 5 * D, reason="other")
        # bought before the call only; and a call of another kind: neither counts as won / contact
        m6 = member(s, "己")
        purchase(s, m6, NOW - 95 * D)
        _call(s, win, m6, NOW - 80 * D, reason="quality")
        _call(s, other, m6, NOW - 80 * D)
        # before --since: left out
        m7 = member(s, "庚")
        _call(s, win, m7, NOW - 400 * D, reason="price")


def test_reasons_reach_and_winback_rates(engine: Engine) -> None:
    build(engine)
    with session_scope(engine) as s:
        rep = winback_report(s, (NOW - 365 * D).date(), By.REASON, now=NOW, reasons=REASONS)
    t = rep.total
    assert (t.contacts, t.reached, t.not_reached) == (6, 5, 1)
    assert t.reasons == {"price": 2, "moved": 1, "other": 1, "quality": 1}
    # reached: eligible at 30 d = m1, m2, m3, m6; won = m1 -> 25 %
    assert (t.eligible[(True, 30)], t.won.get((True, 30), 0)) == (4, 1)
    # at 60 d: m1, m2, m6 eligible (m3 is 40 days old); won m1, m2
    assert (t.eligible[(True, 60)], t.won[(True, 60)]) == (3, 2)
    assert t.rate(True, 60) == 200 / 3
    assert (t.eligible[(False, 30)], t.won[(False, 30)]) == (1, 1)
    by = {g.key: g for g in rep.groups}
    assert by["price"].contacts == 2 and by["(not reached)"].contacts == 1
    assert by["price"].label == "Price · 价格"
    table = format_table(rep)
    assert table[0][0] == "Reason" and table[-1][:4] == ["Total", "6", "5", "1"]


def test_grouping_by_tier_maintainer_store_and_empty(engine: Engine) -> None:
    build(engine)
    with session_scope(engine) as s:
        tier = winback_report(s, (NOW - 365 * D).date(), "tier", now=NOW)
        maint = winback_report(s, (NOW - 365 * D).date(), "maintainer", now=NOW)
        store = winback_report(s, (NOW - 365 * D).date(), "store", now=NOW)
        empty = winback_report(s, NOW.date(), "reason", now=NOW)
    assert {g.key: g.contacts for g in tier.groups} == {"Gold": 1, "Standard": 5}
    assert {g.label: g.contacts for g in maint.groups} == {"王芳 (1001)": 2, "(no maintainer)": 4}
    assert {g.key: g.contacts for g in store.groups} == {
        "Shanghai Nanjing Rd": 4,
        "(no purchase)": 2,
    }
    assert empty.total.contacts == 0 and empty.total.rate(True, 30) is None
    html = render_html(empty)
    assert html.count("<svg") == 3 and "Contacts" in html


@needs_chromium
def test_html_lays_out_in_headless_chromium(engine: Engine, tmp_path: Path) -> None:
    build(engine)
    with session_scope(engine) as s:
        html = render_html(
            winback_report(s, (NOW - 365 * D).date(), "reason", now=NOW, reasons=REASONS)
        )
    assert "<script" not in html and "https://" not in html
    got = layout(html, tmp_path)
    assert len(got["charts"]) == 3 and got["tables"] == 2
    for chart in got["charts"]:
        assert chart["overlaps"] == [] and chart["outside"] == [], chart
    reasons = got["charts"][0]
    assert {"Price", "Moved away", "Product quality"} <= set(reasons["labels"])
    assert got["scrollWidth"] <= got["clientWidth"]
