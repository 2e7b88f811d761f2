"""Seed data for survey tests: an agent, members with and without a maintaining agent, a
survey campaign."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from crm_bridge.db import session_scope
from crm_bridge.models import Agent, Campaign, CampaignKind, DialMode, Member


@dataclass(frozen=True)
class Seed:
    agent_id: int
    member_id: int
    """Maintained by ``agent_id``; locale zh-CN."""
    orphan_member_id: int
    """No maintaining agent; locale en."""
    campaign_id: int


def seed(engine: Engine) -> Seed:
    with session_scope(engine) as s:
        agent = Agent(code="1001", extension="1001", name="王芳", password_hash="x")
        s.add(agent)
        s.flush()
        m1 = Member(
            member_no="M0042",
            name="李伟",
            locale="zh-CN",
            joined_on=dt.date(2024, 1, 5),
            maintaining_agent_id=agent.id,
        )
        m2 = Member(member_no="M0043", name="Amy Chen", locale="en", joined_on=dt.date(2024, 2, 1))
        camp = Campaign(
            name="Q4 satisfaction",
            kind=CampaignKind.SURVEY,
            mode=DialMode.IVR,
            queue="care",
            survey_name="satisfaction",
        )
        s.add_all([m1, m2, camp])
        s.flush()
        return Seed(agent.id, m1.id, m2.id, camp.id)


@pytest.fixture
def seeded(engine: Engine) -> Seed:
    return seed(engine)


sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
"""For tests whose subject does not depend on the database engine (the pg runs of the same
path are covered by their siblings): keeps the suite fast on a shared machine."""
