from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, delete, select, update

from crm_bridge.db import session_scope
from crm_bridge.lists import (
    build_dormant_list,
    build_post_purchase_list,
    build_survey_list,
    dormant_greeting_candidates,
    local_day_windows,
)
from crm_bridge.models import (
    CallAttempt,
    CallListEntry,
    CampaignKind,
    ComplaintStatus,
    Direction,
    EntryStatus,
    Inquiry,
    MemberPhone,
    SurveyDefinition,
    SurveyResponse,
    Tier,
)

from .helpers import NOW, agent, campaign, complaint, member, purchase

UTC = dt.UTC


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, tzinfo=UTC)


def entries(engine: Engine, campaign_id: int) -> dict[str, tuple[str, int | None, int | None]]:
    """member name -> (status, assigned agent, purchase id)"""
    from crm_bridge.models import Member

    with session_scope(engine) as s:
        rows = s.execute(
            select(
                Member.name,
                CallListEntry.status,
                CallListEntry.assigned_agent_id,
                CallListEntry.purchase_id,
            )
            .join(Member, Member.id == CallListEntry.member_id)
            .where(CallListEntry.campaign_id == campaign_id)
        ).all()
    return {r[0]: (r[1].value, r[2], r[3]) for r in rows}


def test_local_day_windows_follow_each_zone() -> None:
    w = {tz: (lo, hi) for tz, lo, hi in local_day_windows(
        ["Asia/Shanghai", "America/Los_Angeles", "Pacific/Kiritimati", "Not/AZone"], NOW, 7)}  # fmt: skip
    assert w["Asia/Shanghai"] == (at(15, 16), at(16, 16))
    assert w["America/Los_Angeles"] == (at(16, 8), at(17, 8))
    # Kiritimati is UTC+14: at 12:00 UTC it is already 24 November there.
    assert w["Pacific/Kiritimati"] == (at(16, 10), at(17, 10))
    assert "Not/AZone" not in w


def test_post_purchase_zone_from_the_number(engine: Engine) -> None:
    """No zone on record: the zones of the member's number (the #14 rule). An Australian
    mobile spans UTC+6:30 (Cocos) to UTC+11 (Lord Howe, Sydney in summer): the purchase is
    listed the first day it is 7 local days old in any of them, once; the dialer then calls
    only in the hours allowed in all of them. A number with no zone: never listed."""
    from dialer.dial_rules import CallingWindow, DialRetryPolicy, Verdict, check
    from dialer.entries import candidates, lease_entries
    from dialer.hours import member_zones as zones_of

    with session_scope(engine) as s:
        au = ("+61412345678",)
        purchase(s, member(s, "au_day7", phones=au, timezone=""), at(16, 10))
        # 17 Nov 02:00 in Sydney (day 6) but 16 Nov 21:30 on Cocos (day 7)
        purchase(s, member(s, "au_edge", phones=("+61412345679",), timezone=""), at(16, 15))
        purchase(s, member(s, "au_day8", phones=("+61412345670",), timezone=""), at(15, 5))
        purchase(s, member(s, "bad_record", phones=("+8613800138000",), timezone="Not/AZone"),
                 at(16, 10))  # fmt: skip
        purchase(s, member(s, "no_zone", phones=("+15555550100",), timezone=""), at(16, 10))
        camp = campaign(s, CampaignKind.POST_PURCHASE).id
        nxt = campaign(s, CampaignKind.POST_PURCHASE).id
    with session_scope(engine) as s:
        result = build_post_purchase_list(s, camp, NOW)
    assert set(entries(engine, camp)) == {"au_day7", "au_edge", "bad_record"}
    assert (result.added, result.routed) == (3, 0)
    with session_scope(engine) as s:  # the next day au_edge is day 7 in Sydney: done already
        assert build_post_purchase_list(s, nxt, NOW + dt.timedelta(days=1)).added == 0

    window = CallingWindow()
    with session_scope(engine) as s:
        leased = lease_entries(s, camp, "test", 10, NOW)
        facts = candidates(s, leased, NOW)
        by_phone = {c.phones[0]: c for c in facts.values()}
        au_day7 = by_phone["+61412345678"]
        decision = check(au_day7, NOW, window, DialRetryPolicy())
    # 12:00 UTC is 23:00 in Sydney: later, at 02:30 UTC (09:00 on Cocos, 13:30 on Lord Howe)
    assert decision.verdict is Verdict.LATER
    assert decision.retry_at == dt.datetime(2026, 11, 24, 2, 30, tzinfo=UTC)
    zones = zones_of("", au)
    assert len(zones) > 1
    for z in zones:
        assert dt.time(9) <= decision.retry_at.astimezone(z).time() < dt.time(21)


def test_post_purchase_exactly_seven_local_days(engine: Engine) -> None:
    with session_scope(engine) as s:
        owner = agent(s, "1001", "王芳")
        keeper = agent(s, "1002", "张敏")
        ph = iter(f"+86139{n:08d}" for n in range(100))

        def buyer(name: str, when: dt.datetime, tz: str = "Asia/Shanghai", **kw: object) -> int:
            phones = kw.pop("phones", (next(ph),))
            m = member(s, name, phones=phones, timezone=tz, **kw)  # type: ignore[arg-type]
            return purchase(s, m, when).id

        buyer("sh_day7", at(16, 10))
        buyer("sh_day7_early_local", at(15, 17))  # 01:00 on the 16th in Shanghai
        buyer("sh_day8", at(15, 15))  # 23:00 on the 15th in Shanghai
        buyer("sh_day6", at(17, 1))
        buyer("la_day7", at(17, 7), "America/Los_Angeles")  # 23:00 on the 16th in LA
        buyer("la_day8", at(16, 7), "America/Los_Angeles")  # UTC date 16th, LA date 15th
        buyer("kiri_day7", at(16, 11), "Pacific/Kiritimati")  # 01:00 on the 17th there
        buyer("dnc", at(16, 10), do_not_call=True)
        buyer("no_consent", at(16, 10), consent_call=False)
        buyer("no_phone", at(16, 10), phones=())
        m = member(s, "invalid_phone", phones=("+8613000000001",))
        s.execute(update(MemberPhone).where(MemberPhone.member_id == m.id).values(invalid=True))
        purchase(s, m, at(16, 10))
        c1 = member(s, "complaint_owner", phones=(next(ph),), maintaining_agent_id=keeper.id)
        purchase(s, c1, at(16, 10))
        complaint(s, c1, owner)
        c2 = member(s, "complaint_no_owner", phones=(next(ph),), maintaining_agent_id=keeper.id)
        purchase(s, c2, at(16, 10))
        complaint(s, c2, None, ComplaintStatus.IN_PROGRESS)
        c3 = member(s, "complaint_resolved", phones=(next(ph),), maintaining_agent_id=keeper.id)
        purchase(s, c3, at(16, 10))
        complaint(s, c3, owner, ComplaintStatus.RESOLVED)
        two = member(s, "two_purchases", phones=(next(ph),), tier=Tier.GOLD)
        purchase(s, two, at(16, 3))
        later = purchase(s, two, at(16, 9)).id
        done = member(s, "already_followed", phones=(next(ph),))
        done_purchase = purchase(s, done, at(16, 10))
        old = campaign(s, CampaignKind.POST_PURCHASE)
        s.add(CallListEntry(campaign_id=old.id, member_id=done.id, phone_e164="+8613900000000",
                            purchase_id=done_purchase.id))  # fmt: skip
        camp = campaign(s, CampaignKind.POST_PURCHASE).id
        owner_id, keeper_id = owner.id, keeper.id

    with session_scope(engine) as s:
        result = build_post_purchase_list(s, camp, NOW)
    got = entries(engine, camp)
    assert set(got) == {"sh_day7", "sh_day7_early_local", "la_day7", "kiri_day7", "complaint_owner",
                        "complaint_no_owner", "complaint_resolved", "two_purchases"}  # fmt: skip
    assert got["complaint_owner"] == ("routed", owner_id, got["complaint_owner"][2])
    assert got["complaint_no_owner"][:2] == ("routed", keeper_id)
    assert got["complaint_resolved"][:2] == ("pending", None)
    assert got["two_purchases"][2] == later
    assert (result.added, result.routed, result.pending) == (8, 2, 6)
    with session_scope(engine) as s:
        again = build_post_purchase_list(s, camp, NOW)
        assert (again.added, again.routed) == (0, 0)
        gold = s.execute(select(CallListEntry.priority, CallListEntry.phone_e164, CallListEntry.next_attempt_at)
                         .where(CallListEntry.campaign_id == camp, CallListEntry.purchase_id == later)).one()  # fmt: skip
        assert gold[0] == 2 and gold[1].startswith("+86139") and gold[2] == NOW
    # A new post-purchase campaign does not repeat purchases already followed up.
    with session_scope(engine) as s:
        nxt = campaign(s, CampaignKind.POST_PURCHASE).id
        assert build_post_purchase_list(s, nxt, NOW).added == 0


def test_dormant_call_list_boundaries(engine: Engine) -> None:
    with session_scope(engine) as s:
        owner = agent(s, "1001")
        n = iter(range(100))

        def mk(name: str, days: float | None, **kw: object) -> None:
            member(s, name, phones=(f"+86138{next(n):08d}",), last_purchase_days_ago=days, **kw)  # type: ignore[arg-type]

        mk("d179", 179)
        mk("d180", 180)
        mk("d179_99", 179.99)
        mk("d400", 400)
        mk("never_old", None, joined_days_ago=200)
        mk("never_recent", None, joined_days_ago=100)
        mk("d200_dnc", 200, do_not_call=True)
        mk("d200_noconsent", 200, consent_call=False)
        member(s, "d200_nophone", last_purchase_days_ago=200)
        mk("d200_complaint", 200)
        from crm_bridge.models import Member

        cm = s.scalars(select(Member).where(Member.name == "d200_complaint")).one()
        complaint(s, cm, owner)
        mk("d364", 364)
        mk("d365", 365)
        mk("called_before", 250)
        mk("called_then_bought", 200)
        cb = s.scalars(select(Member).where(Member.name == "called_before")).one()
        ctb = s.scalars(select(Member).where(Member.name == "called_then_bought")).one()
        earlier = campaign(s, CampaignKind.DORMANT_WINBACK)
        for m, days_ago in ((cb, 40), (ctb, 230)):
            s.add(CallListEntry(campaign_id=earlier.id, member_id=m.id, phone_e164="+8613800000000",
                                created_at=NOW - dt.timedelta(days=days_ago)))  # fmt: skip
        camp = campaign(s, CampaignKind.DORMANT_WINBACK).id
        unlimited = campaign(s, CampaignKind.DORMANT_WINBACK).id
    with session_scope(engine) as s:
        result = build_dormant_list(s, camp, NOW)
    got = entries(engine, camp)
    assert set(got) == {"d180", "never_old", "d200_complaint", "d364", "called_then_bought"}
    assert got["d200_complaint"][0] == "routed"
    assert (result.added, result.routed) == (5, 1)
    with session_scope(engine) as s:
        assert build_dormant_list(s, camp, NOW).added == 0
        assert (
            build_dormant_list(s, unlimited, NOW, max_days=None).added == 2
        )  # d365, d400 (others: called)
    assert set(entries(engine, unlimited)) == {"d365", "d400"}


def test_dormant_greeting_candidates(engine: Engine) -> None:
    with session_scope(engine) as s:
        owner = agent(s, "1001")
        n = iter(range(100))

        def mk(name: str, days: float, phone: bool = True, **kw: object) -> None:
            phones = (f"+86138{next(n):08d}",) if phone else ()
            member(s, name, phones=phones, last_purchase_days_ago=days, **kw)  # type: ignore[arg-type]

        mk("d89", 89)
        mk("d90", 90, email="d90@example.com")
        mk("d179", 179)
        mk("d180", 180)
        mk("no_sms_consent", 120, consent_sms=False, email="a@example.com")
        mk("dnc_email", 120, do_not_call=True, email="b@example.com")
        mk("no_channel", 120, consent_sms=False, consent_email=False, email="c@example.com")
        mk("bad_email", 120, phone=False, email="d@example.com", email_invalid=True)
        mk("email_only", 120, phone=False, email="e@example.com")
        member(s, "never_bought_joined120", phones=("+8613811112222",), joined_days_ago=120)
        member(s, "never_bought_joined200", phones=("+8613811113333",), joined_days_ago=200)
        mk("complaint", 120)
        from crm_bridge.models import Member

        cm = s.scalars(select(Member).where(Member.name == "complaint")).one()
        complaint(s, cm, owner)
    with session_scope(engine) as s:
        names = {m.id: m.name for m in s.scalars(select(Member))}
        got = {
            names[c.member_id]: (c.channel, c.address) for c in dormant_greeting_candidates(s, NOW)
        }
    assert set(got) == {
        "d90",
        "d179",
        "no_sms_consent",
        "dnc_email",
        "email_only",
        "never_bought_joined120",
    }
    assert got["d90"][0] == "sms" and got["d90"][1].startswith("+86138")
    assert got["no_sms_consent"] == ("email", "a@example.com")
    assert got["dnc_email"] == ("email", "b@example.com")
    assert got["email_only"] == ("email", "e@example.com")


def test_survey_sample(engine: Engine) -> None:
    with session_scope(engine) as s:
        n = iter(range(100))

        def mk(name: str, days: float | None = None) -> int:
            return member(s, name, phones=(f"+86138{next(n):08d}",), last_purchase_days_ago=days).id

        mk("bought29", 29)
        mk("bought31", 31)
        inq = mk("inquiry10")
        s.add(
            Inquiry(
                member_id=inq,
                category="stock",
                subject="size?",
                created_at=NOW - dt.timedelta(days=10),
            )
        )
        inq_old = mk("inquiry40")
        s.add(
            Inquiry(
                member_id=inq_old, category="x", subject="y", created_at=NOW - dt.timedelta(days=40)
            )
        )
        call_in = mk("inbound5")
        s.add(CallAttempt(attempt_key="c1", member_id=call_in, direction=Direction.INBOUND,
                          started_at=NOW - dt.timedelta(days=5)))  # fmt: skip
        call_out = mk("outbound5")
        s.add(CallAttempt(attempt_key="c2", member_id=call_out, direction=Direction.OUTBOUND,
                          started_at=NOW - dt.timedelta(days=5)))  # fmt: skip
        survey = SurveyDefinition(name="csat", version=1, source_toml="", sha256="0" * 64)
        s.add(survey)
        s.flush()
        for name, days in (("surveyed60", 60), ("surveyed100", 100)):
            mid = mk(name, 3)
            s.add(SurveyResponse(response_key=name, survey_id=survey.id, member_id=mid, channel="agi",
                                 started_at=NOW - dt.timedelta(days=days)))  # fmt: skip
        listed = mk("listed30", 3)
        prev = campaign(s, CampaignKind.SURVEY)
        s.add(CallListEntry(campaign_id=prev.id, member_id=listed, phone_e164="+8613800000000",
                            created_at=NOW - dt.timedelta(days=30)))  # fmt: skip
        dnc = member(
            s, "dnc", phones=("+8613912345678",), last_purchase_days_ago=3, do_not_call=True
        )
        assert dnc.id
        big = campaign(s, CampaignKind.SURVEY, "all").id
        a = campaign(s, CampaignKind.SURVEY, "a").id
        b = campaign(s, CampaignKind.SURVEY, "b").id
    expected = {"bought29", "inquiry10", "inbound5", "surveyed100"}
    with session_scope(engine) as s:
        assert build_survey_list(s, big, NOW, size=100, seed=7).added == 4
    assert set(entries(engine, big)) == expected
    # Same seed, same data -> the same sample; a re-run tops up to size, never duplicates.
    with session_scope(engine) as s:
        s.execute(delete(CallListEntry).where(CallListEntry.campaign_id == big))
        assert build_survey_list(s, a, NOW, size=2, seed=7).added == 2
        assert build_survey_list(s, a, NOW, size=2, seed=7).added == 0
    sample_a = set(entries(engine, a))
    with session_scope(engine) as s:
        s.execute(delete(CallListEntry).where(CallListEntry.campaign_id == a))
        build_survey_list(s, b, NOW, size=2, seed=7)
    assert set(entries(engine, b)) == sample_a
    assert len(sample_a) == 2 and sample_a <= expected
    assert all(v[0] == EntryStatus.PENDING.value for v in entries(engine, b).values())
