"""Survey scores: the formulas (pure) and the SQL that counts what they need.

Definitions (every figure over the responses *started* in the period):

- **CSAT**: share of CSAT answers that are 4 or 5 (``csat_pct``, 0-100) and the mean (1-5).
- **NPS**: % promoters (9-10) minus % detractors (0-6) of the NPS answers, -100..100.
The four counts, defined once and nested (complete <= answered <= started <= invited in
every group, whatever the rows say):

- **invited**: a survey that started playing (a ``survey_responses`` row) or an answered call
  of a survey campaign (``campaigns.kind = survey`` or ``survey_name`` set) that never reached
  the survey;
- **started**: a ``survey_responses`` row;
- **answered**: a started survey with at least one answer: a ``survey_answers`` row or a
  score on the response itself (``csat``, ``nps``, ``callback_requested``; imported and
  seeded responses carry only those);
- **complete**: an answered survey whose status is ``complete`` (a "complete" response with no
  answer at all is counted as started only).

- **Response rate**: answered / invited.
- **Completion rate**: complete / started.

Grouping: by campaign, by agent (the response's agent: the one whose call a post-call survey
followed) or by ISO week (Monday-based, UTC) of ``started_at``. The database does the counting
(one grouped query for responses, one for uninvited-yet-answered calls); Python only divides.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Date, Select, and_, case, cast, exists, func, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from crm_bridge.models import (
    Agent,
    CallAttempt,
    Campaign,
    CampaignKind,
    SurveyAnswer,
    SurveyResponse,
)

__all__ = [
    "By",
    "GroupFigures",
    "csat_percent",
    "group_figures",
    "nps_score",
    "rate",
    "score_distribution",
]


class By(enum.StrEnum):
    CAMPAIGN = "campaign"
    AGENT = "agent"
    WEEK = "week"
    ALL = "all"


def rate(numerator: int, denominator: int) -> float | None:
    """A percentage 0-100, or None when there is nothing to divide by."""
    return None if denominator == 0 else 100.0 * numerator / denominator


def csat_percent(satisfied: int, answers: int) -> float | None:
    return rate(satisfied, answers)


def nps_score(promoters: int, detractors: int, answers: int) -> float | None:
    if answers == 0:
        return None
    return 100.0 * (promoters - detractors) / answers


@dataclass(frozen=True)
class GroupFigures:
    key: str
    """Group id: campaign id, agent id, ISO week (``2026-W47``), or ``all``."""
    label: str
    invitations: int
    started: int
    responded: int
    completed: int
    csat_answers: int
    csat_sum: int
    csat_satisfied: int
    nps_answers: int
    promoters: int
    detractors: int

    @property
    def csat_pct(self) -> float | None:
        return csat_percent(self.csat_satisfied, self.csat_answers)

    @property
    def csat_mean(self) -> float | None:
        return None if self.csat_answers == 0 else self.csat_sum / self.csat_answers

    @property
    def nps(self) -> float | None:
        return nps_score(self.promoters, self.detractors, self.nps_answers)

    @property
    def passives(self) -> int:
        return self.nps_answers - self.promoters - self.detractors

    @property
    def response_rate(self) -> float | None:
        return rate(self.responded, self.invitations)

    @property
    def completion_rate(self) -> float | None:
        return rate(self.completed, self.started)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in (
            "csat_pct",
            "csat_mean",
            "nps",
            "passives",
            "response_rate",
            "completion_rate",
        ):
            out[name] = getattr(self, name)
        return out


def iso_week_label(value: Any) -> str:
    """``2026-W47`` from a week-start value as either database returns it."""
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    if isinstance(day, dt.datetime):
        day = day.date()
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _week_start(session: Session, col: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc("week", func.timezone("UTC", col)), Date)
    # SQLite: the next Sunday (or today if Sunday), minus six days = this week's Monday.
    return func.date(col, "weekday 0", "-6 days")


def _group_col(session: Session, by: By, table: Any) -> ColumnElement[Any]:
    if by is By.CAMPAIGN:
        return table.campaign_id
    if by is By.AGENT:
        return table.agent_id
    if by is By.WEEK:
        return _week_start(session, table.started_at)
    return literal("all")


def _period(col: Any, since: dt.datetime, until: dt.datetime | None) -> ColumnElement[bool]:
    cond = col >= since
    return and_(cond, col < until) if until is not None else cond


def _labels(session: Session, by: By, keys: set[Any]) -> dict[Any, str]:
    ids = [k for k in keys if k is not None]
    if by is By.CAMPAIGN and ids:
        rows = session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids)))
        return {r[0]: r[1] for r in rows}
    if by is By.AGENT and ids:
        agents = session.execute(select(Agent.id, Agent.name, Agent.code).where(Agent.id.in_(ids)))
        return {r[0]: f"{r[1]} ({r[2]})" for r in agents}
    return {}


def group_figures(
    session: Session, since: dt.datetime, by: By, until: dt.datetime | None = None
) -> list[GroupFigures]:
    """Figures per group for responses started in [since, until), sorted by group key."""
    g = _group_col(session, by, SurveyResponse).label("g")
    r = SurveyResponse
    answered = or_(
        r.csat.is_not(None),
        r.nps.is_not(None),
        r.callback_requested.is_not(None),
        exists().where(SurveyAnswer.response_id == r.id),
    )
    resp_q: Select[Any] = select(
        g,
        func.count(),
        func.sum(case((answered, 1), else_=0)),
        func.sum(case((and_(r.status == "complete", answered), 1), else_=0)),
        func.count(r.csat),
        func.coalesce(func.sum(r.csat), 0),
        func.sum(case((r.csat >= 4, 1), else_=0)),
        func.count(r.nps),
        func.sum(case((r.nps >= 9, 1), else_=0)),
        func.sum(case((r.nps <= 6, 1), else_=0)),
    ).where(_period(r.started_at, since, until))
    if by is not By.ALL:
        resp_q = resp_q.group_by(g)
    counts: dict[Any, list[int]] = {}
    for row in session.execute(resp_q):
        counts[row[0]] = [int(v or 0) for v in row[1:]]

    # Answered calls of survey campaigns that never reached the survey: invitations too.
    a = CallAttempt
    ga = _group_col(session, by, a).label("g")
    missed_q: Select[Any] = (
        select(ga, func.count())
        .select_from(a)
        .join(Campaign, Campaign.id == a.campaign_id)
        .where(
            _period(a.started_at, since, until),
            a.answered_at.is_not(None),
            or_(Campaign.kind == CampaignKind.SURVEY, Campaign.survey_name.is_not(None)),
            ~exists().where(SurveyResponse.call_attempt_id == a.id),
        )
    )
    if by is not By.ALL:
        missed_q = missed_q.group_by(ga)
    missed = {row[0]: int(row[1]) for row in session.execute(missed_q)}

    def norm(key: Any) -> Any:
        return iso_week_label(key) if by is By.WEEK and key is not None else key

    merged: dict[Any, tuple[list[int], int]] = {}
    for key, c in counts.items():
        merged[norm(key)] = (c, missed.get(key, 0))
    for key, n in missed.items():
        if norm(key) not in merged:
            merged[norm(key)] = ([0] * 9, n)
    labels = _labels(session, by, set(merged))
    none_label = {By.CAMPAIGN: "(no campaign)", By.AGENT: "(no agent)"}.get(by, "-")
    out = []
    for key, (c, extra) in merged.items():
        label = labels.get(key, str(key)) if key is not None else none_label
        if by is By.CAMPAIGN and key is not None and key not in labels:
            label = f"campaign {key}"
        out.append(
            GroupFigures(
                key="none" if key is None else str(key),
                label=label,
                invitations=c[0] + extra,
                started=c[0],
                responded=c[1],
                completed=c[2],
                csat_answers=c[3],
                csat_sum=c[4],
                csat_satisfied=c[5],
                nps_answers=c[6],
                promoters=c[7],
                detractors=c[8],
            )
        )
    return sorted(
        out, key=lambda f: (f.key == "none", f.key.zfill(12) if f.key.isdigit() else f.key)
    )


def score_distribution(
    session: Session, column: str, since: dt.datetime, until: dt.datetime | None = None
) -> dict[int, int]:
    """How many responses gave each score (``column``: ``csat`` 1-5 or ``nps`` 0-10); every
    score of the scale is present (0 when nobody gave it)."""
    col = {"csat": SurveyResponse.csat, "nps": SurveyResponse.nps}[column]
    lo, hi = (1, 5) if column == "csat" else (0, 10)
    out = dict.fromkeys(range(lo, hi + 1), 0)
    rows = session.execute(
        select(col, func.count())
        .where(_period(SurveyResponse.started_at, since, until), col.is_not(None))
        .group_by(col)
    )
    for score, n in rows:
        if score in out:
            out[int(score)] = int(n)
    return out
