"""The regular-member lists: monthly care (once a calendar month, in the member's own zone,
to their maintaining agent) and spend decline (against the member's own past year)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.lists import build_monthly_care_list, build_spend_decline_list, local_month_starts
from crm_bridge.models import CallListEntry, CampaignKind, ComplaintStatus, Member

from .helpers import agent, campaign, complaint, member, purchase

UTC = dt.UTC
D = dt.timedelta(days=1)


def listed(engine: Engine, campaign_id: int) -> dict[str, tuple[str, int | None]]:
    with session_scope(engine) as s:
        rows = s.execute(
            select(Member.name, CallListEntry.status, CallListEntry.assigned_agent_id)
            .join(Member, Member.id == CallListEntry.member_id)
            .where(CallListEntry.campaign_id == campaign_id)
        ).all()
    return {r[0]: (r[1].value, r[2]) for r in rows}


def test_local_month_starts_across_zones_and_dst() -> None:
    # 1 March 02:00 UTC: already March in Shanghai, still February in Los Angeles (PST)
    now = dt.datetime(2028, 3, 1, 2, 0, tzinfo=UTC)
    got = dict(local_month_starts(["Asia/Shanghai", "America/Los_Angeles", "Bad/Zone"], now))
    assert got == {
        "Asia/Shanghai": dt.datetime(2028, 2, 29, 16, 0, tzinfo=UTC),  # leap year: 29 Feb
        "America/Los_Angeles": dt.datetime(2028, 2, 1, 8, 0, tzinfo=UTC),
    }
    # after the November DST change the month still began at midnight PDT (UTC-7)
    nov = dt.datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert local_month_starts(["America/Los_Angeles"], nov) == [
        ("America/Los_Angeles", dt.datetime(2026, 11, 1, 7, 0, tzinfo=UTC))
    ]
    # 31 March -> April in London crosses the spring change: April began at 00:00 BST
    apr = dt.datetime(2026, 4, 1, 0, 30, tzinfo=UTC)
    assert local_month_starts(["Europe/London"], apr) == [
        ("Europe/London", dt.datetime(2026, 3, 31, 23, 0, tzinfo=UTC))
    ]


def test_monthly_care_once_a_local_calendar_month(engine: Engine) -> None:
    jan31 = dt.datetime(2026, 1, 31, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai, 22:00 30 Jan in LA
    with session_scope(engine) as s:
        wang = agent(s, "1001", "王芳")
        sh = member(s, "上海", phones=("+8613800000001",), maintaining_agent_id=wang.id,
                    last_purchase_days_ago=10, now=jan31)  # fmt: skip
        member(s, "洛杉矶", phones=("+13105550001",), timezone="America/Los_Angeles",
               last_purchase_days_ago=10, now=jan31)  # fmt: skip
        member(s, "新会员", phones=("+8613800000002",), joined_days_ago=10,
               last_purchase_days_ago=2, now=jan31)  # new, not regular  # fmt: skip
        member(s, "沉睡", phones=("+8613800000003",), last_purchase_days_ago=91, now=jan31)
        member(s, "无电话", last_purchase_days_ago=5, now=jan31)
        member(s, "拒接", phones=("+8613800000004",), consent_call=False,
               last_purchase_days_ago=5, now=jan31)  # fmt: skip
        comp = member(s, "投诉", phones=("+8613800000005",), maintaining_agent_id=wang.id,
                      last_purchase_days_ago=5, now=jan31)  # fmt: skip
        complaint(s, comp, None, ComplaintStatus.IN_PROGRESS)
        c1 = campaign(s, CampaignKind.MONTHLY_CARE).id
        c2 = campaign(s, CampaignKind.MONTHLY_CARE).id
        c3 = campaign(s, CampaignKind.MONTHLY_CARE).id
        c4 = campaign(s, CampaignKind.MONTHLY_CARE).id
        assert sh.id
    with session_scope(engine) as s:
        r = build_monthly_care_list(s, c1, jan31)
        assert (r.added, r.routed) == (3, 1)
        assert build_monthly_care_list(s, c1, jan31).added == 0  # idempotent
    got = listed(engine, c1)
    assert got == {
        "上海": ("pending", got["上海"][1]),
        "洛杉矶": ("pending", None),  # no maintainer: any agent
        "投诉": ("routed", got["投诉"][1]),
    }
    assert got["上海"][1] == got["投诉"][1] is not None  # the maintainer (and complaint owner)
    with session_scope(engine) as s:  # entries are stamped with the builder's "now"
        assert set(s.scalars(select(CallListEntry.created_at))) == {jan31}
    # 1 Feb 00:30 in Shanghai (31 Jan 16:30 UTC; still 31 Jan 08:30 in LA): only Shanghai again
    feb1_sh = dt.datetime(2026, 1, 31, 16, 30, tzinfo=UTC)
    with session_scope(engine) as s:
        build_monthly_care_list(s, c2, feb1_sh)
    assert set(listed(engine, c2)) == {"上海", "投诉"}
    # 1 Feb 08:30 UTC: February in LA too; Shanghai was already called this February
    feb1_la = dt.datetime(2026, 2, 1, 8, 30, tzinfo=UTC)
    with session_scope(engine) as s:
        build_monthly_care_list(s, c3, feb1_la)
    assert set(listed(engine, c3)) == {"洛杉矶"}
    # 1 March 01:00 UTC: March in Shanghai, still February in LA (called on 1 Feb)
    with session_scope(engine) as s:
        build_monthly_care_list(s, c4, dt.datetime(2026, 3, 1, 1, 0, tzinfo=UTC))
    assert set(listed(engine, c4)) == {"上海", "投诉", "新会员"}  # 新会员 is no longer new
    with session_scope(engine) as s:
        build_monthly_care_list(s, c4, dt.datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    assert set(listed(engine, c4)) == {"上海", "投诉", "新会员", "洛杉矶"}


def test_spend_decline_against_own_year(engine: Engine) -> None:
    now = dt.datetime(2028, 3, 1, 12, 0, tzinfo=UTC)  # the windows cross 29 Feb 2028
    with session_scope(engine) as s:
        wang = agent(s, "1001", "王芳")

        def buyer(name: str, before: list[tuple[int, str]], recent: list[tuple[int, str]], **kw):
            m = member(s, name, phones=(f"+86138{len(name):02d}{abs(hash(name)) % 10**6:06d}",),
                       joined_days_ago=800, now=now, **kw)  # fmt: skip
            for days, amount in before + recent:
                purchase(s, m, now - days * D, amount)
            return m

        year = [(100 + 30 * i, "100.00") for i in range(12)]  # 12 purchases, 1,200 in the year
        # pace per 90 days: 12 * 90/365 = 2.96 purchases, 295.89; declined at <= 60 %: 1.78, 177.53
        buyer("稳定", year, [(10, "100.00"), (40, "100.00"), (70, "100.00")])
        buyer("次数少", year, [(10, "100.00")], maintaining_agent_id=wang.id)  # count down
        buyer("金额少", year, [(10, "50.00"), (40, "50.00"), (70, "50.00")])  # amount 150 <= 177.53
        buyer("边界", year, [(10, "90.00"), (40, "90.00")])  # 2 > 1.78 and 180 > 177.53: steady
        buyer("新客", [], [(10, "20.00")])  # nothing the year before: no baseline
        buyer("流失", year, [])  # nothing recent: dormant, the win-back list's
        c = buyer("有投诉", year, [(10, "10.00")], maintaining_agent_id=wang.id)
        complaint(s, c, None)
        camp = campaign(s, CampaignKind.SPEND_DECLINE).id
        again = campaign(s, CampaignKind.SPEND_DECLINE).id
        stricter = campaign(s, CampaignKind.SPEND_DECLINE).id
        wang_id = wang.id
    with session_scope(engine) as s:
        r = build_spend_decline_list(s, camp, now)
        assert (r.added, r.routed) == (3, 1)
    got = listed(engine, camp)
    assert got == {
        "次数少": ("pending", wang_id),
        "金额少": ("pending", None),
        "有投诉": ("routed", wang_id),  # the complaint (owned by the maintainer) comes first
    }
    with session_scope(engine) as s:  # listed once per decline: no purchase since the entry
        assert build_spend_decline_list(s, again, now + D).added == 0
        assert build_spend_decline_list(s, stricter, now, share=0.9).added == 0
