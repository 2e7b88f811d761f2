"""invited / started / answered / complete: defined once, nested in every group, on the edge
cases that made the report contradict itself (seeded 'complete' responses without answer
rows: "Invited 126 · Answered 0 · Complete 126")."""

from __future__ import annotations

import datetime as dt
import itertools
import random

from sqlalchemy import Engine

from crm_bridge.db import session_scope
from crm_bridge.models import (
    CallAttempt,
    Campaign,
    CampaignKind,
    DialMode,
    Direction,
    SurveyAnswer,
    SurveyDefinition,
    SurveyResponse,
)
from surveys.report import format_table, survey_report
from surveys.scoring import By, GroupFigures

UTC = dt.UTC
T = dt.datetime(2026, 11, 10, 10, 0, tzinfo=UTC)
_keys = itertools.count(1)


def _setup(s) -> tuple[int, int]:
    camp = Campaign(name="ivr", kind=CampaignKind.SURVEY, mode=DialMode.IVR)
    sd = SurveyDefinition(name="satisfaction", version=1, source_toml="", sha256="0" * 64)
    s.add_all([camp, sd])
    s.flush()
    return camp.id, sd.id


def _response(s, camp: int, sd: int, *, status="partial", csat=None, nps=None, callback=None,
              answers=(), at=T, call=True):  # fmt: skip
    n = next(_keys)
    attempt_id = None
    if call:
        a = CallAttempt(attempt_key=f"entry:{n}:1", campaign_id=camp, direction=Direction.OUTBOUND,
                        started_at=at, answered_at=at)  # fmt: skip
        s.add(a)
        s.flush()
        attempt_id = a.id
    r = SurveyResponse(response_key=f"k{n}", survey_id=sd, campaign_id=camp, channel="agi",
                       started_at=at, status=status, csat=csat, nps=nps,
                       callback_requested=callback, call_attempt_id=attempt_id)  # fmt: skip
    s.add(r)
    s.flush()
    for q, v in answers:
        s.add(SurveyAnswer(response_id=r.id, question_id=q, value=v))


def _missed(s, camp: int, *, answered: bool = True, at=T) -> None:
    n = next(_keys)
    s.add(CallAttempt(attempt_key=f"entry:{n}:1", campaign_id=camp, direction=Direction.OUTBOUND,
                      started_at=at, answered_at=at if answered else None))  # fmt: skip


def _nested(g: GroupFigures) -> None:
    assert g.completed <= g.responded <= g.started <= g.invitations, g


def test_edge_cases(engine: Engine) -> None:
    with session_scope(engine) as s:
        camp, sd = _setup(s)
        # seeded/imported: complete with scores on the row, no answer rows -> answered, complete
        _response(s, camp, sd, status="complete", csat=5, nps=10)
        # "complete" with nothing answered at all -> started only
        _response(s, camp, sd, status="complete")
        # partial with one answer row -> answered, not complete
        _response(s, camp, sd, answers=[("q1", "4")], csat=4)
        # only the callback question answered (no score) -> answered
        _response(s, camp, sd, callback=True)
        # hung up on the greeting -> started only
        _response(s, camp, sd)
        # answered call that never reached the survey -> invited only
        _missed(s, camp)
        # the dialled member never answered -> not invited
        _missed(s, camp, answered=False)
        # a response without a call row (Twilio web): still started once, not double counted
        _response(s, camp, sd, status="complete", answers=[("q1", "5"), ("q2", "9")], csat=5,
                  nps=9, call=False)  # fmt: skip
        # outside the period
        _response(s, camp, sd, status="complete", csat=5, at=T - dt.timedelta(days=30))
    with session_scope(engine) as s:
        rep = survey_report(s, T.date() - dt.timedelta(days=7), By.CAMPAIGN, now=T)
    t = rep.total
    assert (t.invitations, t.started, t.responded, t.completed) == (7, 6, 4, 2)
    assert t.response_rate == 100 * 4 / 7 and t.completion_rate == 100 * 2 / 6
    for g in (*rep.groups, *rep.weekly, t):
        _nested(g)
    assert format_table(rep)[-1][1:5] == ["7", "6", "4", "2"]


def test_nested_on_random_rows(engine: Engine) -> None:
    rng = random.Random(7)
    with session_scope(engine) as s:
        camp, sd = _setup(s)
        for _ in range(150):
            if rng.random() < 0.2:
                _missed(
                    s,
                    camp,
                    answered=rng.random() < 0.7,
                    at=T + dt.timedelta(days=rng.randint(-20, 0)),
                )
                continue
            answers = [("q1", "3")] if rng.random() < 0.4 else []
            _response(
                s, camp, sd,
                status=rng.choice(["partial", "complete"]),
                csat=rng.choice([None, 1, 3, 5]), nps=rng.choice([None, 0, 8, 10]),
                callback=rng.choice([None, None, True, False]), answers=answers,
                at=T + dt.timedelta(days=rng.randint(-20, 0), hours=rng.randint(0, 23)),
                call=rng.random() < 0.8,
            )  # fmt: skip
    with session_scope(engine) as s:
        for by in By:
            rep = survey_report(s, T.date() - dt.timedelta(days=30), by, now=T)
            for g in (*rep.groups, *rep.weekly, rep.total):
                _nested(g)
            assert sum(g.invitations for g in rep.weekly) == rep.total.invitations
