"""Closing the loop: exactly one complaint / inquiry / callback task per response."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import Engine, func, select

from crm_bridge.db import session_scope
from crm_bridge.models import CallbackTask, Complaint, Inquiry, Severity
from surveys.escalation import escalate_with_retry
from surveys.postcall import postcall_actions, redirect_action
from surveys.store import CallContext, SurveyRecorder
from tests.surveys.conftest import Seed, sqlite_only

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def counts(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as s:
        return tuple(  # type: ignore[return-value]
            int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Complaint, Inquiry, CallbackTask)
        )


async def _answer(
    rec: SurveyRecorder,
    key: str,
    member_id: int | None,
    campaign_id: int | None,
    answers: dict[str, str],
) -> int:
    opened = await rec.open(
        "satisfaction", CallContext(key, "agi", member_id=member_id, campaign_id=campaign_id)
    )
    for q, v in answers.items():
        await rec.answer(opened.response_id, opened.survey.question(q), v)
    return opened.response_id


async def test_low_score_creates_one_complaint_and_one_callback_even_if_triggered_twice(
    engine: Engine, seeded: Seed
) -> None:
    rec = SurveyRecorder(engine)
    rid = await _answer(
        rec, "u1", seeded.member_id, None, {"q_csat": "1", "q_nps": "2", "q_callback": "1"}
    )
    assert counts(engine) == (1, 0, 1)
    again = escalate_with_retry(engine, rid, NOW)
    assert again.created == () and counts(engine) == (1, 0, 1)
    # two more triggers at once, from two threads
    results = await asyncio.gather(
        asyncio.to_thread(escalate_with_retry, engine, rid, NOW),
        asyncio.to_thread(escalate_with_retry, engine, rid, NOW),
    )
    assert all(r.created == () for r in results) and counts(engine) == (1, 0, 1)
    with session_scope(engine) as s:
        c = s.scalars(select(Complaint)).one()
        t = s.scalars(select(CallbackTask)).one()
        assert (c.severity, c.source, c.source_ref, c.owner_agent_id) == (
            Severity.HIGH,
            "survey",
            f"survey:{rid}",
            seeded.agent_id,
        )
        assert "CSAT 1/5" in c.description
        assert (t.agent_id, t.queue, t.complaint_id, t.source_ref) == (
            seeded.agent_id,
            None,
            c.id,
            f"survey:{rid}",
        )
        assert abs((t.due_at - dt.datetime.now(dt.UTC)).total_seconds()) < 60  # due at once


async def test_callback_only_creates_inquiry_for_campaign_queue(
    engine: Engine, seeded: Seed
) -> None:
    rec = SurveyRecorder(engine)
    await _answer(
        rec,
        "u2",
        seeded.orphan_member_id,
        seeded.campaign_id,
        {"q_csat": "5", "q_nps": "9", "q_callback": "1"},
    )
    assert counts(engine) == (0, 1, 1)
    with session_scope(engine) as s:
        t = s.scalars(select(CallbackTask)).one()
        i = s.scalars(select(Inquiry)).one()
        assert (t.agent_id, t.queue, t.complaint_id) == (None, "care", None)  # campaign's queue
        assert (i.category, i.channel, i.member_id) == (
            "callback-request",
            "ivr",
            seeded.orphan_member_id,
        )


@sqlite_only
async def test_good_scores_and_nps_boundary(engine: Engine, seeded: Seed) -> None:
    rec = SurveyRecorder(engine)
    await _answer(
        rec, "u3", seeded.member_id, None, {"q_csat": "3", "q_nps": "7", "q_callback": "2"}
    )
    assert counts(engine) == (0, 0, 0)
    await _answer(rec, "u4", seeded.member_id, None, {"q_csat": "3", "q_nps": "6"})
    assert counts(engine) == (1, 0, 1)  # NPS 6 is a detractor


@sqlite_only
async def test_callback_first_then_low_score_links_the_task(engine: Engine, seeded: Seed) -> None:
    rec = SurveyRecorder(engine)
    await _answer(rec, "u5", seeded.member_id, None, {"q_callback": "1", "q_csat": "2"})
    assert counts(engine) == (1, 1, 1)
    with session_scope(engine) as s:
        c = s.scalars(select(Complaint)).one()
        assert s.scalars(select(CallbackTask)).one().complaint_id == c.id


@sqlite_only
async def test_unknown_member_is_not_escalated(engine: Engine, seeded: Seed) -> None:
    rec = SurveyRecorder(engine)
    await _answer(rec, "u6", 999_999, None, {"q_csat": "1"})
    assert counts(engine) == (0, 0, 0)


def test_postcall_actions() -> None:
    assert redirect_action("PJSIP/trunk-0000002a") == {
        "Action": "Redirect",
        "Channel": "PJSIP/trunk-0000002a",
        "Context": "survey",
        "Exten": "start",
        "Priority": "1",
    }
    acts = postcall_actions("Local/8000@from-pstn-00000001;2", member_id=42, agent_id=7)
    assert [(a["Action"], a.get("Variable"), a.get("Value")) for a in acts] == [
        ("Setvar", "SURVEY_NAME", "satisfaction"),
        ("Setvar", "MEMBER_ID", "42"),
        ("Setvar", "AGENT_ID", "7"),
        ("Redirect", None, None),
    ]
    assert all(a["Channel"] == "Local/8000@from-pstn-00000001;2" for a in acts)
