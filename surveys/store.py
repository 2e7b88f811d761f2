"""Survey storage: versioned definitions, responses and answers (the only writer of them).

Both call paths (FastAGI and Twilio) use :class:`SurveyRecorder`, so an answer is stored
the same way whichever way it came in: one ``survey_answers`` row per question (a re-answer
overwrites), the response's ``csat`` / ``nps`` / ``callback_requested`` columns updated in the
same transaction, and escalation (:mod:`surveys.escalation`) in that transaction too.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_bridge.db import run_db
from crm_bridge.models import (
    Agent,
    CallAttempt,
    Campaign,
    Member,
    SurveyAnswer,
    SurveyDefinition,
    SurveyResponse,
    utcnow,
)
from surveys.definitions import (
    Field,
    Question,
    Survey,
    builtin_names,
    builtin_source,
    parse_survey,
    sha256_of,
)
from surveys.escalation import Escalation, escalate, needs_escalation

log = logging.getLogger(__name__)

__all__ = [
    "CallContext",
    "OpenResponse",
    "SurveyCatalog",
    "SurveyRecorder",
    "UnknownSurvey",
    "publish_definition",
]


class UnknownSurvey(LookupError):
    pass


def publish_definition(session: Session, survey: Survey) -> SurveyDefinition:
    """Store ``survey`` (its exact TOML source): same text as the latest version -> that
    version; new or changed text -> version + 1."""
    digest = sha256_of(survey.source)
    latest = session.scalars(
        select(SurveyDefinition)
        .where(SurveyDefinition.name == survey.name)
        .order_by(SurveyDefinition.version.desc())
        .limit(1)
    ).first()
    if latest is not None and latest.sha256 == digest:
        return latest
    row = SurveyDefinition(
        name=survey.name,
        version=(latest.version + 1) if latest is not None else 1,
        source_toml=survey.source,
        sha256=digest,
    )
    session.add(row)
    session.flush()
    log.info("survey %s version %s stored (sha256 %s)", row.name, row.version, digest[:12])
    return row


def list_definitions(session: Session) -> list[tuple[str, int, str, dt.datetime]]:
    """(name, version, sha256, created_at) of every stored version."""
    rows = session.execute(
        select(
            SurveyDefinition.name,
            SurveyDefinition.version,
            SurveyDefinition.sha256,
            SurveyDefinition.created_at,
        ).order_by(SurveyDefinition.name, SurveyDefinition.version)
    ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


class SurveyCatalog:
    """Name -> (definition row id, parsed survey): the latest stored version; a built-in
    survey not stored yet is stored as version 1 on first use. Parsed surveys are cached by
    sha256 (definitions are immutable once stored)."""

    def __init__(self) -> None:
        self._parsed: dict[str, Survey] = {}

    def resolve(self, session: Session, name: str) -> tuple[int, Survey]:
        row = session.scalars(
            select(SurveyDefinition)
            .where(SurveyDefinition.name == name)
            .order_by(SurveyDefinition.version.desc())
            .limit(1)
        ).first()
        if row is None:
            if name not in builtin_names():
                raise UnknownSurvey(f"no survey named {name!r}")
            row = publish_definition(
                session, parse_survey(builtin_source(name), source=f"surveys/data/{name}.toml")
            )
        survey = self._parsed.get(row.sha256)
        if survey is None:
            survey = parse_survey(row.source_toml, source=f"survey_definitions#{row.id}")
            self._parsed[row.sha256] = survey
        return row.id, survey

    def get(self, session: Session, definition_id: int) -> Survey:
        row = session.get(SurveyDefinition, definition_id)
        if row is None:
            raise UnknownSurvey(f"no survey definition #{definition_id}")
        survey = self._parsed.get(row.sha256)
        if survey is None:
            survey = parse_survey(row.source_toml, source=f"survey_definitions#{row.id}")
            self._parsed[row.sha256] = survey
        return survey


@dataclass(frozen=True)
class CallContext:
    """Who and what a survey call is about, as the call path found it (ids may be unknown)."""

    response_key: str
    channel: str
    """agi | twilio"""
    member_id: int | None = None
    campaign_id: int | None = None
    agent_id: int | None = None
    locale: str | None = None
    """Locale hint from the call (AGI arg / channel language / URL); the member's wins."""
    channel_uniqueid: str | None = None
    """Uniqueid of the channel, to find the dialer's call attempt (its preset ChannelId)."""


@dataclass(frozen=True)
class OpenResponse:
    response_id: int
    survey_id: int
    survey: Survey
    locale: str
    status: str
    member_id: int | None
    answered: dict[str, str] = field(default_factory=dict)
    resumed: bool = False


def _existing_id(session: Session, model: type, ident: int | None) -> int | None:
    if ident is None:
        return None
    return ident if session.get(model, ident) is not None else None


def _open(
    session: Session, catalog: SurveyCatalog, survey_name: str, ctx: CallContext
) -> OpenResponse:
    existing = session.scalars(
        select(SurveyResponse).where(SurveyResponse.response_key == ctx.response_key)
    ).first()
    if existing is not None:
        survey = catalog.get(session, existing.survey_id)
        answered = {
            row[0]: row[1]
            for row in session.execute(
                select(SurveyAnswer.question_id, SurveyAnswer.value).where(
                    SurveyAnswer.response_id == existing.id
                )
            )
        }
        member = session.get(Member, existing.member_id) if existing.member_id else None
        locale = survey.pick_locale(member.locale if member else ctx.locale)
        return OpenResponse(
            existing.id,
            existing.survey_id,
            survey,
            locale,
            existing.status,
            existing.member_id,
            answered,
            resumed=True,
        )
    survey_id, survey = catalog.resolve(session, survey_name)
    member_id = _existing_id(session, Member, ctx.member_id)
    campaign_id = _existing_id(session, Campaign, ctx.campaign_id)
    agent_id = _existing_id(session, Agent, ctx.agent_id)
    for name, given, found in (
        ("member", ctx.member_id, member_id),
        ("campaign", ctx.campaign_id, campaign_id),
        ("agent", ctx.agent_id, agent_id),
    ):
        if given is not None and found is None:
            log.warning("survey call %s: unknown %s id %s ignored", ctx.response_key, name, given)
    attempt = None
    if ctx.channel_uniqueid:
        attempt = session.scalars(
            select(CallAttempt).where(CallAttempt.channel_id == ctx.channel_uniqueid)
        ).first()
    if attempt is not None:
        member_id = member_id or attempt.member_id
        campaign_id = campaign_id or attempt.campaign_id
        agent_id = agent_id or attempt.agent_id
    member = session.get(Member, member_id) if member_id else None
    locale = survey.pick_locale(member.locale if member else ctx.locale)
    row = SurveyResponse(
        response_key=ctx.response_key,
        survey_id=survey_id,
        member_id=member_id,
        campaign_id=campaign_id,
        agent_id=agent_id,
        call_attempt_id=attempt.id if attempt is not None else None,
        channel=ctx.channel,
        started_at=utcnow(),
        status="partial",
    )
    session.add(row)
    session.flush()
    return OpenResponse(row.id, survey_id, survey, locale, row.status, member_id)


def _record(
    session: Session, response_id: int, question: Question, value: str, now: dt.datetime
) -> tuple[int | None, int | None, bool | None]:
    r = session.get(SurveyResponse, response_id)
    if r is None:
        raise LookupError(f"no survey response {response_id}")
    ans = session.scalars(
        select(SurveyAnswer).where(
            SurveyAnswer.response_id == response_id, SurveyAnswer.question_id == question.id
        )
    ).first()
    if ans is None:
        session.add(
            SurveyAnswer(
                response_id=response_id, question_id=question.id, value=value, answered_at=now
            )
        )
    else:
        ans.value, ans.answered_at = value, now
    if question.field is Field.CSAT:
        r.csat = int(value)
    elif question.field is Field.NPS:
        r.nps = int(value)
    elif question.field is Field.CALLBACK:
        r.callback_requested = value == question.yes
    return r.csat, r.nps, r.callback_requested


def _record_and_escalate(
    session: Session,
    response_id: int,
    question: Question,
    value: str,
    now: dt.datetime,
    default_queue: str,
) -> Escalation:
    csat, nps, callback = _record(session, response_id, question, value, now)
    if not needs_escalation(csat, nps, callback):
        return Escalation()
    session.flush()
    return escalate(session, response_id, now, default_queue=default_queue)


def _finish(session: Session, response_id: int, completed: bool, now: dt.datetime) -> None:
    r = session.get(SurveyResponse, response_id)
    if r is None:
        raise LookupError(f"no survey response {response_id}")
    if completed and r.status != "complete":
        r.status = "complete"
        r.completed_at = now


class SurveyRecorder:
    """The async storage facade both call paths use (every call runs on a worker thread)."""

    def __init__(
        self,
        engine: Engine,
        catalog: SurveyCatalog | None = None,
        *,
        default_queue: str = "members",
    ) -> None:
        self.engine = engine
        self.catalog = catalog or SurveyCatalog()
        self.default_queue = default_queue

    async def open(self, survey_name: str, ctx: CallContext) -> OpenResponse:
        """Get or create the response for ``ctx.response_key`` (idempotent per call)."""
        try:
            return await run_db(self.engine, _open, self.catalog, survey_name, ctx)
        except IntegrityError:
            # Two requests for one call raced; the other one created it.
            return await run_db(self.engine, _open, self.catalog, survey_name, ctx)

    async def answer(self, response_id: int, question: Question, value: str) -> Escalation:
        """Store one answer and, when it calls for it, the complaint / inquiry and callback
        task, in one transaction (a unique-key race with another writer is retried once: the
        answer upsert and the escalation are both idempotent)."""
        now = utcnow()
        for attempt in (1, 2):
            try:
                return await run_db(
                    self.engine,
                    _record_and_escalate,
                    response_id,
                    question,
                    value,
                    now,
                    self.default_queue,
                )
            except IntegrityError:
                if attempt == 2:
                    raise
                log.info("answer to response %s raced another writer; retrying", response_id)
        raise AssertionError("unreachable")

    async def finish(self, response_id: int, *, completed: bool) -> None:
        await run_db(self.engine, _finish, response_id, completed, utcnow())

    async def survey_by_id(self, definition_id: int) -> Survey:
        return await run_db(self.engine, lambda s: self.catalog.get(s, definition_id))
