"""The screen-pop profile: everything an agent needs about one member, in one SQL statement
(each part an indexed subquery returning JSON, see :mod:`crm_bridge.jsonrows`), whatever the
member's history size, and as plain frozen values.

``build_profile(session, member_id, now)`` returns a :class:`Profile` (or None for an unknown
id); ``profile.to_dict()`` is JSON-serialisable (datetimes ISO 8601 UTC, dates ISO, money as
strings). Next-best-action hints (:class:`Hint`) are derived from the same rows, purely.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Date, bindparam, case, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, aliased

from crm_bridge.completeness import FILLABLE, LABELS, missing_fields
from crm_bridge.jsonrows import RowsDecoder, json_row, json_rows
from crm_bridge.models import (
    Agent,
    CallAttempt,
    CallbackTask,
    Complaint,
    ComplaintStatus,
    Inquiry,
    InquiryStatus,
    Member,
    MemberPhone,
    PointsLedger,
    Purchase,
    SurveyResponse,
    TaskStatus,
    Tier,
)
from crm_bridge.segments import (
    Lifecycle,
    MemberSegmentInfo,
    member_statements,
    segment_info,
    spend_params,
)

__all__ = [
    "PROFILE_QUERY_BUDGET",
    "CallItem",
    "CallbackItem",
    "ComplaintItem",
    "Hint",
    "InquiryItem",
    "LedgerItem",
    "MemberInfo",
    "PhoneItem",
    "PointsExpiry",
    "Profile",
    "PurchaseItem",
    "SurveyScore",
    "build_profile",
    "hints_for",
    "jsonable",
]

PROFILE_QUERY_BUDGET = 1
"""build_profile issues this many SQL statements (asserted by the tests)."""

RECENT_PURCHASES = 10
RECENT_CALLS = 10
RECENT_LEDGER = 10
RECENT_SURVEYS = 3
MAX_OPEN_ITEMS = 20
LOW_CSAT = 2
"""A CSAT (1-5) at or below this is low."""
LOW_NPS = 6
"""An NPS answer (0-10) at or below this is a detractor."""
OPEN_COMPLAINT = (ComplaintStatus.OPEN, ComplaintStatus.IN_PROGRESS)


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}
"""Per type: its dataclass field names, or None when it is not a dataclass (looked up once)."""


def _field_names(t: type) -> tuple[str, ...] | None:
    try:
        return _FIELD_NAMES[t]
    except KeyError:
        names = (
            tuple(f.name for f in dataclasses.fields(t)) if dataclasses.is_dataclass(t) else None
        )
        _FIELD_NAMES[t] = names
        return names


def jsonable(value: Any) -> Any:
    """Dataclasses, datetimes, dates, Decimals and enums to JSON-compatible values."""
    t = type(value)
    if t in _PLAIN:
        return value
    names = _field_names(t)
    if names is not None:
        return {n: jsonable(getattr(value, n)) for n in names}
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _v(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


@dataclass(frozen=True, slots=True)
class MemberInfo:
    id: int
    member_no: str
    name: str
    gender: str
    birthday: dt.date | None
    email: str | None
    email_invalid: bool
    locale: str
    timezone: str
    tier: str
    points_balance: int
    joined_on: dt.date
    maintaining_agent_id: int | None
    maintaining_agent_code: str | None
    maintaining_agent_name: str | None
    consent_call: bool
    consent_sms: bool
    consent_email: bool
    do_not_call: bool
    notes: str | None
    last_purchase_at: dt.datetime | None
    purchase_count: int
    city: str | None = None
    consent_recorded_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class PhoneItem:
    e164: str
    kind: str
    invalid: bool


@dataclass(frozen=True, slots=True)
class PurchaseItem:
    id: int
    purchased_at: dt.datetime
    amount: Decimal
    currency: str
    category: str
    store: str
    channel: str


@dataclass(frozen=True, slots=True)
class InquiryItem:
    id: int
    created_at: dt.datetime
    channel: str
    category: str
    subject: str
    status: str
    agent_id: int | None


@dataclass(frozen=True, slots=True)
class ComplaintItem:
    id: int
    created_at: dt.datetime
    severity: str
    category: str
    description: str
    status: str
    owner_agent_id: int | None
    owner_name: str | None
    resolution: str | None
    resolved_at: dt.datetime | None

    @property
    def is_open(self) -> bool:
        return self.status in (s.value for s in OPEN_COMPLAINT)


@dataclass(frozen=True, slots=True)
class CallItem:
    id: int
    started_at: dt.datetime
    direction: str
    outcome: str | None
    disposition: str | None
    agent_id: int | None
    agent_name: str | None
    campaign_id: int | None
    notes: str | None


@dataclass(frozen=True, slots=True)
class SurveyScore:
    response_id: int
    started_at: dt.datetime
    completed_at: dt.datetime | None
    status: str
    csat: int | None
    nps: int | None


@dataclass(frozen=True, slots=True)
class LedgerItem:
    occurred_at: dt.datetime
    delta: int
    balance_after: int
    reason: str
    reference: str | None
    expires_on: dt.date | None


@dataclass(frozen=True, slots=True)
class CallbackItem:
    id: int
    due_at: dt.datetime
    reason: str
    agent_id: int | None
    queue: str | None
    complaint_id: int | None


@dataclass(frozen=True, slots=True)
class PointsExpiry:
    """The soonest-expiring earned points (capped at the balance: an estimate, see hints)."""

    expires_on: dt.date
    points: int


@dataclass(frozen=True, slots=True)
class Hint:
    """A next-best-action hint. ``priority`` 1 (act first) .. 5 (nice to know)."""

    code: str
    """open_complaint | priority_tier | dormant | lapsed | new_member | points | points_expiring |
    birthday | low_survey | declining_spend | callback_due | open_inquiry | missing_data"""
    priority: int
    text: str
    text_zh: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Profile:
    member: MemberInfo
    phones: tuple[PhoneItem, ...]
    purchases: tuple[PurchaseItem, ...]
    """Last 10, newest first."""
    open_inquiries: tuple[InquiryItem, ...]
    complaints: tuple[ComplaintItem, ...]
    """Open ones first, then the most recent (at most 20)."""
    calls: tuple[CallItem, ...]
    """Last 10 call attempts, inbound and outbound, newest first."""
    surveys: tuple[SurveyScore, ...]
    """Latest survey responses (at most 3), newest first."""
    ledger: tuple[LedgerItem, ...]
    """Last 10 points-ledger rows, newest first."""
    points_expiring: PointsExpiry | None
    callbacks: tuple[CallbackItem, ...]
    """Open callback tasks, soonest due first."""
    segment: MemberSegmentInfo
    hints: tuple[Hint, ...]
    """Sorted by priority."""
    generated_at: dt.datetime

    @property
    def open_complaints(self) -> tuple[ComplaintItem, ...]:
        return tuple(c for c in self.complaints if c.is_open)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = jsonable(self)
        return out


@dataclass(frozen=True)
class _ProfileStatement:
    stmt: Any
    """One row: the member's columns, then each part as JSON (see :mod:`crm_bridge.jsonrows`)."""
    parts: tuple[RowsDecoder, ...]
    """Decoders of the JSON columns, in order: phones, purchases, inquiries, complaints,
    calls, surveys, ledger, callbacks (rows); expiry, RFM snapshot, spend (one row each)."""
    member_columns: int


@functools.lru_cache(maxsize=4)
def _profile_statement(dialect: Dialect) -> _ProfileStatement:
    """The whole profile as one statement for ``dialect``, built once (bind parameters ``mid``,
    ``today`` and the spend window's bounds): per pop only execution and decoding remain."""
    d = dialect.name
    mid: Any = bindparam("mid")
    maint = aliased(Agent)
    owner = aliased(Agent)
    call_agent = aliased(Agent)
    is_open = case((Complaint.status.in_(OPEN_COMPLAINT), 0), else_=1)
    member_cols = (
        Member.id, Member.member_no, Member.name, Member.gender, Member.birthday, Member.email,
        Member.email_invalid, Member.locale, Member.timezone, Member.tier, Member.points_balance,
        Member.joined_on, Member.maintaining_agent_id, maint.code, maint.name, Member.consent_call,
        Member.consent_sms, Member.consent_email, Member.do_not_call, Member.notes,
        Member.last_purchase_at, Member.purchase_count, Member.city, Member.consent_recorded_at,
    )  # fmt: skip
    many: list[tuple[Any, tuple[Any, ...]]] = [
        (select(MemberPhone.e164, MemberPhone.kind, MemberPhone.invalid)
         .where(MemberPhone.member_id == mid), (MemberPhone.id,)),
        (select(Purchase.id, Purchase.purchased_at, Purchase.amount, Purchase.currency,
                Purchase.category, Purchase.store, Purchase.channel)
         .where(Purchase.member_id == mid).limit(RECENT_PURCHASES),
         (Purchase.purchased_at.desc(), Purchase.id.desc())),
        (select(Inquiry.id, Inquiry.created_at, Inquiry.channel, Inquiry.category,
                Inquiry.subject, Inquiry.status, Inquiry.agent_id)
         .where(Inquiry.member_id == mid, Inquiry.status == InquiryStatus.OPEN)
         .limit(MAX_OPEN_ITEMS), (Inquiry.created_at.desc(),)),
        (select(Complaint.id, Complaint.created_at, Complaint.severity, Complaint.category,
                Complaint.description, Complaint.status, Complaint.owner_agent_id, owner.name,
                Complaint.resolution, Complaint.resolved_at)
         .outerjoin(owner, owner.id == Complaint.owner_agent_id)
         .where(Complaint.member_id == mid).limit(MAX_OPEN_ITEMS),
         (is_open, Complaint.created_at.desc())),
        (select(CallAttempt.id, CallAttempt.started_at, CallAttempt.direction, CallAttempt.outcome,
                CallAttempt.disposition, CallAttempt.agent_id, call_agent.name,
                CallAttempt.campaign_id, CallAttempt.notes)
         .outerjoin(call_agent, call_agent.id == CallAttempt.agent_id)
         .where(CallAttempt.member_id == mid).limit(RECENT_CALLS),
         (CallAttempt.started_at.desc(), CallAttempt.id.desc())),
        (select(SurveyResponse.id, SurveyResponse.started_at, SurveyResponse.completed_at,
                SurveyResponse.status, SurveyResponse.csat, SurveyResponse.nps)
         .where(SurveyResponse.member_id == mid).limit(RECENT_SURVEYS),
         (SurveyResponse.started_at.desc(), SurveyResponse.id.desc())),
        (select(PointsLedger.occurred_at, PointsLedger.delta, PointsLedger.balance_after,
                PointsLedger.reason, PointsLedger.reference, PointsLedger.expires_on)
         .where(PointsLedger.member_id == mid).limit(RECENT_LEDGER),
         (PointsLedger.occurred_at.desc(), PointsLedger.id.desc())),
        (select(CallbackTask.id, CallbackTask.due_at, CallbackTask.reason, CallbackTask.agent_id,
                CallbackTask.queue, CallbackTask.complaint_id)
         .where(CallbackTask.member_id == mid, CallbackTask.status == TaskStatus.OPEN)
         .limit(MAX_OPEN_ITEMS), (CallbackTask.due_at,)),
    ]  # fmt: skip
    snap, spend = member_statements()
    one: list[Any] = [
        select(PointsLedger.expires_on, func.sum(PointsLedger.delta))
        .where(PointsLedger.member_id == mid, PointsLedger.delta > 0,
               PointsLedger.expires_on >= bindparam("today", type_=Date()))
        .group_by(PointsLedger.expires_on).order_by(PointsLedger.expires_on),
        snap,
        spend,
    ]  # fmt: skip
    stmt = (
        select(
            *member_cols,
            *(json_rows(d, q, order).label(f"p{i}") for i, (q, order) in enumerate(many)),
            *(json_row(d, q).label(f"r{i}") for i, q in enumerate(one)),
        )
        .outerjoin(maint, maint.id == Member.maintaining_agent_id)
        .where(Member.id == mid)
    )
    parts = tuple(RowsDecoder(q, dialect) for q, _ in many) + tuple(
        RowsDecoder(q, dialect, numbered=False) for q in one
    )
    return _ProfileStatement(stmt, parts, len(member_cols))


def build_profile(
    session: Session, member_id: int, now: dt.datetime | None = None
) -> Profile | None:
    """The screen-pop profile of one member (one SQL statement), or None if there is no
    such member."""
    now = now or dt.datetime.now(dt.UTC)
    conn = session.connection()
    q = _profile_statement(conn.dialect)
    params = {"mid": member_id, "today": now.date(), **spend_params(now)}
    r = conn.execute(q.stmt, params).first()
    if r is None:
        return None
    member = MemberInfo(
        id=r[0], member_no=r[1], name=r[2], gender=_v(r[3]), birthday=r[4], email=r[5],
        email_invalid=bool(r[6]), locale=r[7], timezone=r[8], tier=_v(r[9]), points_balance=r[10],
        joined_on=r[11], maintaining_agent_id=r[12], maintaining_agent_code=r[13],
        maintaining_agent_name=r[14], consent_call=bool(r[15]), consent_sms=bool(r[16]),
        consent_email=bool(r[17]), do_not_call=bool(r[18]), notes=r[19], last_purchase_at=r[20],
        purchase_count=r[21], city=r[22], consent_recorded_at=r[23],
    )  # fmt: skip
    n = q.member_columns
    (ph, pu, inq, co, ca, su, le, cb, exp, snap, spend) = (
        dec.rows(r[n + i]) if i < 8 else dec.first(r[n + i]) for i, dec in enumerate(q.parts)
    )
    phones = tuple(PhoneItem(x[0], x[1], bool(x[2])) for x in ph)
    purchases = tuple(PurchaseItem(*x) for x in pu)
    inquiries = tuple(InquiryItem(x[0], x[1], x[2], x[3], x[4], _v(x[5]), x[6]) for x in inq)
    complaints = tuple(
        ComplaintItem(x[0], x[1], _v(x[2]), x[3], x[4], _v(x[5]), x[6], x[7], x[8], x[9])
        for x in co
    )
    calls = tuple(CallItem(x[0], x[1], _v(x[2]), x[3], x[4], x[5], x[6], x[7], x[8]) for x in ca)
    surveys = tuple(SurveyScore(*x) for x in su)
    ledger = tuple(LedgerItem(*x) for x in le)
    points_expiring = None
    if exp is not None and exp[0] is not None and member.points_balance > 0:
        points_expiring = PointsExpiry(exp[0], min(int(exp[1]), member.points_balance))
    callbacks = tuple(CallbackItem(*x) for x in cb)
    segment = segment_info(
        snap, spend if spend is not None else (0, 0), now, member.joined_on,
        member.last_purchase_at,
    )  # fmt: skip
    profile = Profile(
        member=member, phones=phones, purchases=purchases, open_inquiries=inquiries,
        complaints=complaints, calls=calls, surveys=surveys, ledger=ledger,
        points_expiring=points_expiring, callbacks=callbacks, segment=segment, hints=(),
        generated_at=now,
    )  # fmt: skip
    return dataclasses.replace(profile, hints=hints_for(profile, now))


def _local_today(now: dt.datetime, tz: str) -> dt.date:
    try:
        return now.astimezone(ZoneInfo(tz)).date()
    except (ZoneInfoNotFoundError, ValueError):
        return now.date()


def _birthday_offset(birthday: dt.date, today: dt.date) -> int:
    """Days from ``today`` to the nearest birthday (negative: it was N days ago)."""
    best: int | None = None
    for year in (today.year - 1, today.year, today.year + 1):
        try:
            day = birthday.replace(year=year)
        except ValueError:  # 29 February in a common year: celebrate on 28 February
            day = dt.date(year, 2, 28)
        delta = (day - today).days
        if best is None or abs(delta) < abs(best):
            best = delta
    assert best is not None
    return best


def hints_for(p: Profile, now: dt.datetime) -> tuple[Hint, ...]:
    """Next-best-action hints for the agent, from a profile's data (pure)."""
    hints: list[Hint] = []
    m = p.member
    for c in p.open_complaints:
        who = c.owner_name or "unassigned"
        hints.append(Hint("open_complaint", 1,
                          f"Open complaint #{c.id} ({c.severity}, {c.category}) - owner {who}",
                          f"未结投诉 #{c.id}（{c.severity}，{c.category}）- 负责人 {who}",
                          {"complaint_id": c.id, "owner_agent_id": c.owner_agent_id}))  # fmt: skip
    due = [cb for cb in p.callbacks if cb.due_at <= now]
    if due:
        hints.append(Hint("callback_due", 1, f"{len(due)} callback(s) due: {due[0].reason}",
                          f"{len(due)} 个待回电：{due[0].reason}", {"task_ids": [c.id for c in due]}))  # fmt: skip
    if m.tier in (Tier.GOLD.value, Tier.PLATINUM.value):
        hints.append(Hint("priority_tier", 2, f"{m.tier} member: priority service",
                          f"{m.tier} 会员：优先服务", {"tier": m.tier}))  # fmt: skip
    low = next((s for s in p.surveys if s.csat is not None or s.nps is not None), None)
    if low is not None and (
        (low.csat is not None and low.csat <= LOW_CSAT)
        or (low.nps is not None and low.nps <= LOW_NPS)
    ):
        hints.append(Hint("low_survey", 2,
                          f"Last survey score low (CSAT {low.csat}, NPS {low.nps}): ask what went wrong",
                          f"上次满意度评分低（CSAT {low.csat}，NPS {low.nps}）：请了解原因",
                          {"response_id": low.response_id, "csat": low.csat, "nps": low.nps}))  # fmt: skip
    seg = p.segment
    days = seg.days_since_purchase
    if seg.lifecycle in (Lifecycle.DORMANT.value, Lifecycle.LAPSED.value):
        since = f"{days} days" if days is not None else "never bought"
        since_zh = f"{days} 天未消费" if days is not None else "从未消费"
        hints.append(Hint(seg.lifecycle, 2, f"{seg.lifecycle.capitalize()}: {since} - ask why, plan a win-back",
                          f"{'沉睡' if seg.lifecycle == 'dormant' else '流失'}会员：{since_zh}，了解原因",
                          {"days_since_purchase": days}))  # fmt: skip
    elif seg.lifecycle == Lifecycle.NEW.value:
        hints.append(Hint("new_member", 3, f"New member since {m.joined_on.isoformat()}: welcome",
                          f"新会员（{m.joined_on.isoformat()} 入会）：欢迎", {"joined_on": m.joined_on}))  # fmt: skip
    if seg.declining_spend:
        hints.append(Hint("declining_spend", 3,
                          f"Spend falling: {seg.spend_last_90} in the last 90 days vs {seg.spend_prev_90} before",
                          f"消费下降：近 90 天 {seg.spend_last_90}，之前 90 天 {seg.spend_prev_90}",
                          {"last_90": seg.spend_last_90, "prev_90": seg.spend_prev_90}))  # fmt: skip
    if m.birthday is not None:
        offset = _birthday_offset(m.birthday, _local_today(now, m.timezone))
        if -3 <= offset <= 7:
            when = (
                "today"
                if offset == 0
                else (f"in {offset} days" if offset > 0 else f"{-offset} days ago")
            )
            hints.append(Hint("birthday", 3, f"Birthday {when} ({m.birthday.strftime('%m-%d')}): wish them well",
                              f"生日 {m.birthday.strftime('%m-%d')}：送上祝福", {"offset_days": offset}))  # fmt: skip
    if m.points_balance > 0:
        text = f"{m.points_balance:,} points"
        text_zh = f"积分 {m.points_balance:,}"
        data: dict[str, Any] = {"balance": m.points_balance}
        if p.points_expiring is not None:
            text += f"; {p.points_expiring.points:,} expire on {p.points_expiring.expires_on.isoformat()}"
            text_zh += f"，其中 {p.points_expiring.points:,} 将于 {p.points_expiring.expires_on.isoformat()} 过期"
            data["expiring"] = p.points_expiring.points
            data["expires_on"] = p.points_expiring.expires_on
        soon = (
            p.points_expiring is not None and (p.points_expiring.expires_on - now.date()).days <= 30
        )
        hints.append(
            Hint("points_expiring" if soon else "points", 3 if soon else 4, text, text_zh, data)
        )
    missing = missing_fields(
        has_valid_phone=any(not ph.invalid for ph in p.phones), birthday=m.birthday,
        gender=m.gender, city=m.city, email=m.email, email_invalid=m.email_invalid,
        consent_recorded_at=m.consent_recorded_at, maintaining_agent_id=m.maintaining_agent_id,
    )  # fmt: skip
    if missing:
        ask = [f for f in missing if f in FILLABLE]
        en = ", ".join(LABELS[f][0] for f in missing)
        zh = "、".join(LABELS[f][1] for f in missing)
        hints.append(Hint("missing_data", 4,
                          f"{en[0].upper()}{en[1:]} missing" + (" - ask (F10 to fill in)" if ask else ""),
                          f"资料缺少：{zh}" + ("，请询问（F10 填写）" if ask else ""),
                          {"missing": list(missing), "fillable": ask}))  # fmt: skip
    if p.open_inquiries:
        hints.append(Hint("open_inquiry", 4, f"{len(p.open_inquiries)} open inquiry(ies): {p.open_inquiries[0].subject}",
                          f"{len(p.open_inquiries)} 个未结咨询：{p.open_inquiries[0].subject}",
                          {"inquiry_ids": [i.id for i in p.open_inquiries]}))  # fmt: skip
    return tuple(sorted(hints, key=lambda h: h.priority))
