"""The member database: SQLAlchemy 2 typed ORM models.

Conventions:
- Every timestamp is stored as UTC (``UTCDateTime``: aware in Python, naive UTC in SQLite,
  ``timestamptz`` in PostgreSQL). Local times (calling windows, quiet hours, "exactly 7 days
  ago") are computed from ``Member.timezone`` (IANA) at the edges.
- Phones are stored E.164 in ``member_phones`` (several per member).
- ``Member.last_purchase_at`` / ``purchase_count`` are a denormalised summary kept in step by
  :func:`crm_bridge.purchases.record_purchase` and the bulk loaders, so segment and list SQL
  does not have to aggregate millions of purchases for every member on every run.
- Constraint names follow ``NAMING_CONVENTION`` so Alembic migrations are deterministic.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always UTC-aware in Python, whatever the database stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware (UTC) datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


intpk = Annotated[
    int, mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
]
bigid = Annotated[int, mapped_column(BigInteger().with_variant(Integer, "sqlite"))]
ts = Annotated[dt.datetime, mapped_column(UTCDateTime())]
created_ts = Annotated[dt.datetime, mapped_column(UTCDateTime(), default=utcnow)]
str16 = Annotated[str, mapped_column(String(16))]
str32 = Annotated[str, mapped_column(String(32))]
str64 = Annotated[str, mapped_column(String(64))]
str200 = Annotated[str, mapped_column(String(200))]
money = Annotated[Decimal, mapped_column(Numeric(12, 2))]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON}


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as the value string with a CHECK constraint, portable between SQLite and PostgreSQL.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Tier(enum.StrEnum):
    STANDARD = "Standard"
    SILVER = "Silver"
    GOLD = "Gold"
    PLATINUM = "Platinum"


class Role(enum.StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"


class Gender(enum.StrEnum):
    FEMALE = "F"
    MALE = "M"
    OTHER = "X"
    UNKNOWN = "U"


class ComplaintStatus(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Severity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class InquiryStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class CampaignKind(enum.StrEnum):
    POST_PURCHASE = "post_purchase"
    DORMANT_WINBACK = "dormant_winback"
    SURVEY = "survey"
    GREETING = "greeting"
    CUSTOM = "custom"
    MONTHLY_CARE = "monthly_care"
    """Each regular member once a calendar month, by their maintaining agent."""
    SPEND_DECLINE = "spend_decline"
    """Members whose purchase frequency or amount dropped against their own past year."""


class DialMode(enum.StrEnum):
    """How a campaign's calls are placed (stored on the campaign, read by the pacer)."""

    PREVIEW = "preview"
    """The agent sees the member first and presses dial: one call per request."""
    PROGRESSIVE = "progressive"
    """One call per free agent, never more calls in flight than free agents."""
    PREDICTIVE = "predictive"
    """Calls placed ahead of agents becoming free, holding the abandonment cap."""
    IVR = "ivr"
    """No agent: survey calls to the IVR, bounded by a concurrency cap."""


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FINISHED = "finished"


class EntryStatus(enum.StrEnum):
    PENDING = "pending"
    LEASED = "leased"
    DIALING = "dialing"
    DONE = "done"
    EXHAUSTED = "exhausted"
    CANCELLED = "cancelled"
    ROUTED = "routed"
    """Handed to a complaint owner instead of being dialled."""


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    LEASED = "leased"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    REVIEW = "review"


class Channel(enum.StrEnum):
    SMS = "sms"
    EMAIL = "email"


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[intpk]
    code: Mapped[str32] = mapped_column(unique=True)
    """Login id typed at the console (usually the extension)."""
    extension: Mapped[str32] = mapped_column(unique=True)
    name: Mapped[str200]
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.AGENT)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_ts]


class AgentPresence(Base):
    """What an agent asked the hub for: queue logins and a pause reason (the hub's source of
    truth; re-applied to Asterisk after every (re)connection, which may have lost both)."""

    __tablename__ = "agent_presence"

    agent_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("agents.id", ondelete="CASCADE"),
        primary_key=True,
    )
    hub: Mapped[str] = mapped_column(String(64), default="hub-1", server_default="hub-1")
    """The hub the agent last worked at (its PBX is where the desk is re-applied)."""
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Queues joined through the hub (dynamic members)."""
    pause_reason: Mapped[str | None] = mapped_column(String(32))
    """The pause the agent asked for; NULL = available."""
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Member(Base):
    __tablename__ = "members"

    id: Mapped[intpk]
    member_no: Mapped[str32] = mapped_column(unique=True)
    name: Mapped[str200] = mapped_column(index=True)
    gender: Mapped[Gender] = mapped_column(_enum(Gender, "gender"), default=Gender.UNKNOWN)
    birthday: Mapped[dt.date | None] = mapped_column(Date)
    email: Mapped[str | None] = mapped_column(String(254))
    email_invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    locale: Mapped[str16] = mapped_column(default="zh-CN")
    timezone: Mapped[str64] = mapped_column(default="", index=True)
    """IANA zone; ``''`` = unknown: the contact rules (:mod:`dialer.hours`) take it from the
    member's number, and hold the member when the number says nothing either."""
    tier: Mapped[Tier] = mapped_column(_enum(Tier, "tier"), default=Tier.STANDARD)
    points_balance: Mapped[int] = mapped_column(Integer, default=0)
    joined_on: Mapped[dt.date] = mapped_column(Date)
    maintaining_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    consent_call: Mapped[bool] = mapped_column(Boolean, default=True)
    consent_sms: Mapped[bool] = mapped_column(Boolean, default=True)
    consent_email: Mapped[bool] = mapped_column(Boolean, default=True)
    do_not_call: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str | None] = mapped_column(Text)
    """Marketing notes: preferences, sizes, tastes (free text)."""
    city: Mapped[str | None] = mapped_column(String(64))
    """Where the member lives (the address line the completeness check asks for)."""
    consent_recorded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    """When the member's own consent choices were recorded (NULL: only the defaults)."""
    last_purchase_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    purchase_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[created_ts]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    phones: Mapped[list[MemberPhone]] = relationship(
        back_populates="member", cascade="all, delete-orphan", order_by="MemberPhone.id"
    )
    maintaining_agent: Mapped[Agent | None] = relationship()


class MemberPhone(Base):
    __tablename__ = "member_phones"
    __table_args__ = (
        UniqueConstraint("member_id", "e164", name="uq_member_phones_member_e164"),
        # "the member's first valid phone" (every list builder, per member) in one seek of a
        # covering index: min(e164) right after the (member, invalid) prefix
        Index("ix_member_phones_member_valid", "member_id", "invalid", "e164"),
    )

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    e164: Mapped[str32] = mapped_column(index=True)
    kind: Mapped[str16] = mapped_column(default="mobile")
    invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    """Flagged after a permanent SMS failure (unknown handset, landline...)."""

    member: Mapped[Member] = relationship(back_populates="phones")


class Purchase(Base):
    __tablename__ = "purchases"
    __table_args__ = (
        # covering for the spend-decline aggregate (count and amount per member and period)
        Index("ix_purchases_member_time_amount", "member_id", "purchased_at", "amount"),
        Index("ix_purchases_time", "purchased_at"),
    )

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    purchased_at: Mapped[ts]
    amount: Mapped[money]
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    category: Mapped[str64]
    store: Mapped[str64]
    channel: Mapped[str16] = mapped_column(default="store")


class MemberSegment(Base):
    """Latest RFM snapshot per member, written set-wise by :func:`crm_bridge.segments.refresh_rfm`.

    Quintile scores need the whole population (NTILE over every member), too slow to compute
    per screen pop at a million members; the profile reads this row instead.
    """

    __tablename__ = "member_segments"

    member_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("members.id", ondelete="CASCADE"),
        primary_key=True,
    )
    computed_at: Mapped[ts]
    period_days: Mapped[int] = mapped_column(Integer)
    recency_days: Mapped[int | None] = mapped_column(Integer)
    frequency: Mapped[int] = mapped_column(Integer)
    monetary: Mapped[money]
    r_score: Mapped[int] = mapped_column(Integer)
    f_score: Mapped[int] = mapped_column(Integer)
    m_score: Mapped[int] = mapped_column(Integer)


class PointsLedger(Base):
    __tablename__ = "points_ledger"
    __table_args__ = (Index("ix_points_ledger_member_time", "member_id", "occurred_at"),)

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    occurred_at: Mapped[created_ts]
    delta: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str32]
    """purchase | redeem | adjust | expire | bonus | review"""
    reference: Mapped[str | None] = mapped_column(String(64))
    expires_on: Mapped[dt.date | None] = mapped_column(Date)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))


class RewardItem(Base):
    """The points catalogue agents redeem from by phone."""

    __tablename__ = "reward_items"

    id: Mapped[intpk]
    code: Mapped[str32] = mapped_column(unique=True)
    name: Mapped[str200]
    name_zh: Mapped[str200]
    points_cost: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Inquiry(Base):
    __tablename__ = "inquiries"
    __table_args__ = (
        Index("ix_inquiries_member_status", "member_id", "status"),
        Index("ix_inquiries_created_at", "created_at"),
    )

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    created_at: Mapped[created_ts]
    channel: Mapped[str16] = mapped_column(default="phone")
    category: Mapped[str64]
    subject: Mapped[str200]
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[InquiryStatus] = mapped_column(
        _enum(InquiryStatus, "inquiry_status"), default=InquiryStatus.OPEN
    )
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Complaint(Base):
    __tablename__ = "complaints"
    __table_args__ = (
        Index("ix_complaints_member_status", "member_id", "status"),
        Index("ix_complaints_owner_status", "owner_agent_id", "status"),
        Index("ix_complaints_created_at", "created_at"),
    )

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    created_at: Mapped[created_ts]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "severity"), default=Severity.MEDIUM)
    category: Mapped[str64]
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[ComplaintStatus] = mapped_column(
        _enum(ComplaintStatus, "complaint_status"), default=ComplaintStatus.OPEN
    )
    owner_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    source: Mapped[str16] = mapped_column(default="call")
    """call | survey | sms | email | store"""
    source_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    """Idempotency key of what created it (e.g. ``survey:<response id>``): one complaint per cause."""


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[intpk]
    name: Mapped[str200] = mapped_column(unique=True)
    kind: Mapped[CampaignKind] = mapped_column(_enum(CampaignKind, "campaign_kind"))
    mode: Mapped[DialMode] = mapped_column(_enum(DialMode, "dial_mode"))
    status: Mapped[CampaignStatus] = mapped_column(
        _enum(CampaignStatus, "campaign_status"), default=CampaignStatus.DRAFT
    )
    queue: Mapped[str64] = mapped_column(default="members")
    abandon_cap: Mapped[float] = mapped_column(default=0.03)
    amd_mode: Mapped[str16] = mapped_column(default="auto")
    """Answering-machine detection: ``auto`` (the AMD governor: a trial where every
    "machine" verdict still reaches an agent, then on only while its measured false
    positives fit the abandonment budget), ``on`` or ``off``."""
    survey_name: Mapped[str | None] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """List-builder parameters, retry rules, calling window overrides."""
    created_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[created_ts]
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class CallListEntry(Base):
    __tablename__ = "call_list_entries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "member_id", name="uq_call_list_entries_campaign_member"),
        Index("ix_call_list_entries_due", "campaign_id", "status", "next_attempt_at"),
        # only post-purchase entries name a purchase: the others cost this index nothing
        Index(
            "ix_call_list_entries_purchase_id",
            "purchase_id",
            sqlite_where=text("purchase_id IS NOT NULL"),
            postgresql_where=text("purchase_id IS NOT NULL"),
        ),
    )

    id: Mapped[intpk]
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    phone_e164: Mapped[str32]
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"))
    assigned_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    status: Mapped[EntryStatus] = mapped_column(
        _enum(EntryStatus, "entry_status"), default=EntryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_outcome: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[created_ts]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class CallAttempt(Base):
    """One call, inbound or outbound, with its outcome and the agent's disposition."""

    __tablename__ = "call_attempts"
    __table_args__ = (
        Index("ix_call_attempts_member_time", "member_id", "started_at"),
        Index("ix_call_attempts_campaign_time", "campaign_id", "started_at"),
        Index("ix_call_attempts_started_at", "started_at"),
    )

    id: Mapped[intpk]
    attempt_key: Mapped[str] = mapped_column(String(96), unique=True)
    """Idempotency key: ``entry:<id>:<n>`` for dialer attempts, ``call:<linkedid>`` for others."""
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("call_list_entries.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "direction"))
    phone_e164: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(96), unique=True)
    """The Uniqueid preset with Originate's ChannelId (dialer correlation)."""
    linkedid: Mapped[str | None] = mapped_column(String(96), index=True)
    started_at: Mapped[created_ts]
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(32))
    """answered | no_answer | busy | congestion | failed | machine | abandoned | hung_up"""
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    hangup_by: Mapped[str | None] = mapped_column(String(16))
    bridge_wait_s: Mapped[float | None] = mapped_column(Float)
    """Dialer calls: live answer (AMD's verdict when AMD listened) -> agent bridge, seconds,
    as the call ledger measured it; over the safe harbour (2 s) the call is abandoned."""
    amd_status: Mapped[str | None] = mapped_column(String(16))
    """AMD's verdict when AMD listened (``HUMAN``/``MACHINE``/``NOTSURE``/``HANGUP``)."""
    disposition: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(32))
    """Why the member stopped buying (win-back calls; a code of ``care.winback_reasons``)."""
    notes: Mapped[str | None] = mapped_column(Text)
    callback_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


HOTLINE_OUTCOME = "hotline"
"""``CallAttempt.outcome`` of a self-service hotline leg (``notes``: what the caller heard)."""


class CallbackTask(Base):
    __tablename__ = "callback_tasks"
    __table_args__ = (Index("ix_callback_tasks_agent_status", "agent_id", "status"),)

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    queue: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[ts]
    reason: Mapped[str200]
    source: Mapped[str16] = mapped_column(default="agent")
    source_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"))
    status: Mapped[TaskStatus] = mapped_column(
        _enum(TaskStatus, "task_status"), default=TaskStatus.OPEN
    )
    created_at: Mapped[created_ts]


class SurveyDefinition(Base):
    __tablename__ = "survey_definitions"
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_survey_definitions_name_version"),
    )

    id: Mapped[intpk]
    name: Mapped[str64]
    version: Mapped[int] = mapped_column(Integer)
    source_toml: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[created_ts]


class SurveyResponse(Base):
    __tablename__ = "survey_responses"
    __table_args__ = (Index("ix_survey_responses_member_time", "member_id", "started_at"),)

    id: Mapped[intpk]
    response_key: Mapped[str] = mapped_column(String(96), unique=True)
    """Idempotency key: the channel's Uniqueid (AGI) or CallSid (Twilio)."""
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey_definitions.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    call_attempt_id: Mapped[int | None] = mapped_column(ForeignKey("call_attempts.id"))
    channel: Mapped[str16]
    """agi | twilio"""
    started_at: Mapped[created_ts]
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str16] = mapped_column(default="partial")
    """partial | complete"""
    csat: Mapped[int | None] = mapped_column(Integer)
    nps: Mapped[int | None] = mapped_column(Integer)
    callback_requested: Mapped[bool | None] = mapped_column(Boolean)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class SurveyAnswer(Base):
    __tablename__ = "survey_answers"
    __table_args__ = (
        UniqueConstraint("response_id", "question_id", name="uq_survey_answers_response_question"),
    )

    id: Mapped[intpk]
    response_id: Mapped[int] = mapped_column(ForeignKey("survey_responses.id", ondelete="CASCADE"))
    question_id: Mapped[str64]
    value: Mapped[str16]
    answered_at: Mapped[created_ts]


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "status", "next_attempt_at"),)

    id: Mapped[intpk]
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    """``purpose:campaign:member:channel`` — a second row for the same key is impossible."""
    purpose: Mapped[str32]
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))
    to_address: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str16]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[OutboxStatus] = mapped_column(
        _enum(OutboxStatus, "outbox_status"), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    provider_id: Mapped[str | None] = mapped_column(String(128), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created_ts]
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class MemberGreeting(Base):
    """One row per member, occasion and year: the greeting's idempotency key.

    Written in the same transaction as the outbox rows it queues, so a greeting run that is
    repeated, restarted or run twice at once sends each occasion at most once a year.
    """

    __tablename__ = "member_greetings"
    __table_args__ = (
        UniqueConstraint("member_id", "occasion", "year", name="uq_member_greetings_member_occasion_year"),
        Index("ix_member_greetings_occasion_year", "occasion", "year"),
    )  # fmt: skip

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    occasion: Mapped[str64]
    """``birthday`` or a holiday slug (``spring_festival``, ``mid_autumn``...)."""
    year: Mapped[int] = mapped_column(Integer)
    occasion_date: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[created_ts]


class RfmSnapshot(Base):
    """A member's R and F scores at the first of a month (``memberline report rfm`` compares
    this month's grid with last month's to show movement between segments)."""

    __tablename__ = "rfm_snapshots"

    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    member_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("members.id", ondelete="CASCADE"),
        primary_key=True,
    )
    r_score: Mapped[int] = mapped_column(Integer)
    f_score: Mapped[int] = mapped_column(Integer)
    monetary: Mapped[money]


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_member_time", "member_id", "at"),)

    id: Mapped[intpk]
    at: Mapped[created_ts]
    actor: Mapped[str64]
    """``agent:<code>``, ``supervisor:<code>``, ``system``, ``cli``"""
    action: Mapped[str64]
    """profile.view, member.reveal_phone, member.update, member.reassign, points.redeem, ..."""
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


__all__ = [
    "Agent",
    "AgentPresence",
    "AuditLog",
    "Base",
    "CallAttempt",
    "CallListEntry",
    "CallbackTask",
    "Campaign",
    "CampaignKind",
    "CampaignStatus",
    "Channel",
    "Complaint",
    "ComplaintStatus",
    "DialMode",
    "Direction",
    "EntryStatus",
    "Gender",
    "Inquiry",
    "InquiryStatus",
    "Member",
    "MemberGreeting",
    "MemberPhone",
    "MemberSegment",
    "OutboxMessage",
    "OutboxStatus",
    "PointsLedger",
    "Purchase",
    "RewardItem",
    "RfmSnapshot",
    "Role",
    "Severity",
    "SurveyAnswer",
    "SurveyDefinition",
    "SurveyResponse",
    "TaskStatus",
    "Tier",
    "UTCDateTime",
    "func",
    "utcnow",
]


@event.listens_for(Member, "before_insert")
def _zone_from_number(mapper: Any, connection: Any, target: Member) -> None:
    """A member added without a zone gets the one their first number names, when it names
    exactly one (``''`` = unknown otherwise; see :mod:`dialer.hours`)."""
    if target.timezone:
        return
    from crm_bridge.phones import zone_for_number

    for phone in target.phones:
        if tz := zone_for_number(phone.e164):
            target.timezone = tz
            return
    target.timezone = ""
