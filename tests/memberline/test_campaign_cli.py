from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm_bridge.db import make_engine, session_scope
from crm_bridge.models import AuditLog, Campaign, CampaignStatus, Member, MemberPhone
from memberline.cli import main


def test_campaign_lifecycle_from_the_cli(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(sqlite_url)
    with session_scope(engine) as s:
        joined = dt.date.today() - dt.timedelta(
            days=200
        )  # dormant 180-365 days: the win-back call list
        m = Member(member_no="C1", name="周杰", joined_on=joined, timezone="Asia/Shanghai")
        m.phones.append(MemberPhone(e164="+8613911112222"))
        s.add(m)
    db = ["--db", sqlite_url]
    assert main(["campaign", "create", "win", "--kind", "dormant_winback", *db]) == 0
    assert "created with 1 entries" in capsys.readouterr().out
    assert main(["campaign", "create", "win", "--kind", "dormant_winback", *db]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["campaign", "resume", "1", *db]) == 1  # a draft cannot be resumed
    for action, status in (
        ("start", "running"),
        ("pause", "paused"),
        ("resume", "running"),
        ("stop", "stopped"),
    ):
        assert main(["campaign", action, "1", *db]) == 0
        assert status in capsys.readouterr().out
    assert main(["campaign", "list", *db]) == 0
    assert "win" in capsys.readouterr().out
    with session_scope(engine) as s:
        assert s.scalars(select(Campaign)).one().status is CampaignStatus.STOPPED
        actions = [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions == [
        "campaign.create",
        "campaign.start",
        "campaign.pause",
        "campaign.resume",
        "campaign.stop",
    ]
    engine.dispose()


def test_bad_kind_is_a_clear_error(sqlite_url: str) -> None:
    with pytest.raises(SystemExit):
        main(["campaign", "create", "x", "--kind", "nonsense", "--db", sqlite_url])


def test_care_campaign_kinds_default_to_preview(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(sqlite_url)
    now = dt.datetime.now(dt.UTC)
    with session_scope(engine) as s:
        m = Member(member_no="C2", name="常客", joined_on=dt.date.today() - dt.timedelta(days=400),
                   last_purchase_at=now - dt.timedelta(days=3), purchase_count=5)  # fmt: skip
        m.phones.append(MemberPhone(e164="+8613911113333"))
        s.add(m)
    db = ["--db", sqlite_url]
    assert main(["campaign", "create", "care-12", "--kind", "monthly_care", *db]) == 0
    assert "created with 1 entries" in capsys.readouterr().out
    assert main(["campaign", "create", "drop", "--kind", "spend_decline", "--mode", "progressive",
                 "--settings", '{"share": 0.5}', *db]) == 0  # fmt: skip
    assert main(["campaign", "create", "bad", "--kind", "spend_decline",
                 "--settings", '{"share": 1.5}', *db]) == 2  # fmt: skip
    assert "share" in capsys.readouterr().err
    with session_scope(engine) as s:
        modes = dict(s.execute(select(Campaign.name, Campaign.mode)).all())
    assert {k: v.value for k, v in modes.items()} == {"care-12": "preview", "drop": "progressive"}
