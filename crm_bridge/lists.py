"""Call-list builders: each one a couple of ``INSERT ... SELECT`` statements, never a loop.

Every builder writes ``call_list_entries`` for one campaign and returns a :class:`ListResult`.
Common rules (:func:`_eligible`):

- excluded: ``do_not_call``, no call consent (``consent_call``), no valid phone (every
  ``member_phones`` row flagged invalid, or none);
- a member with an open complaint (``open``/``in_progress``) is not dialled by the campaign:
  their entry is written with status ``routed`` and ``assigned_agent_id`` = the complaint's
  owner (the member's maintaining agent when the complaint has no owner);
- idempotent: a member already on the campaign is skipped (``uq_call_list_entries_campaign_member``
  plus ``ON CONFLICT DO NOTHING``), so re-running a builder adds nothing twice. Because of that
  unique key a campaign holds a member at most once: run the post-purchase builder into a
  campaign per day or week.

Entries get ``next_attempt_at = now`` (due at once; the dialer applies calling windows) and a
priority by tier (Platinum 3, Gold 2, Silver 1, Standard 0).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    Date,
    Integer,
    Select,
    String,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from crm_bridge.models import (
    CallAttempt,
    CallListEntry,
    Campaign,
    CampaignKind,
    Complaint,
    ComplaintStatus,
    Direction,
    EntryStatus,
    Inquiry,
    Member,
    MemberPhone,
    MemberSegment,
    Purchase,
    SurveyResponse,
    Tier,
    UTCDateTime,
)
from crm_bridge.rfm import SEGMENTS
from crm_bridge.segments import DORMANT_DAYS, LAPSED_DAYS, NEW_DAYS, dormant_between

__all__ = [
    "GreetingCandidate",
    "ListResult",
    "build_dormant_list",
    "build_monthly_care_list",
    "build_post_purchase_list",
    "build_rfm_segment_list",
    "build_spend_decline_list",
    "build_survey_list",
    "dormant_greeting_candidates",
    "local_day_windows",
    "local_month_starts",
    "member_zones",
]

log = logging.getLogger(__name__)

POST_PURCHASE_DAYS = 7
SURVEY_CONTACT_DAYS = 30
SURVEY_QUIET_DAYS = 90
OPEN_COMPLAINT = (ComplaintStatus.OPEN, ComplaintStatus.IN_PROGRESS)


@dataclass(frozen=True, slots=True)
class ListResult:
    campaign_id: int
    added: int
    """Entries written by this run (pending + routed)."""
    routed: int
    """Of those, how many went to a complaint owner instead of the campaign."""

    @property
    def pending(self) -> int:
        return self.added - self.routed


@dataclass(frozen=True, slots=True)
class GreetingCandidate:
    """A dormant member to greet by SMS or email (the outbox sends; this only selects)."""

    member_id: int
    channel: str
    """``sms`` or ``email``"""
    address: str
    locale: str
    last_purchase_at: dt.datetime | None


def _ts(value: dt.datetime) -> ColumnElement[Any]:
    return literal(value, UTCDateTime())


def _valid_phone() -> Any:
    return (
        select(func.min(MemberPhone.e164))
        .where(MemberPhone.member_id == Member.id, MemberPhone.invalid.is_(False))
        .correlate(Member)
        .scalar_subquery()
    )


def _open_complaint_owner() -> Any:
    return (
        select(func.coalesce(Complaint.owner_agent_id, Member.maintaining_agent_id))
        .where(Complaint.member_id == Member.id, Complaint.status.in_(OPEN_COMPLAINT))
        .order_by(Complaint.created_at.desc(), Complaint.id.desc())
        .limit(1)
        .correlate(Member)
        .scalar_subquery()
    )


def _has_open_complaint() -> ColumnElement[bool]:
    """Whether the member has an open complaint. An ``IN`` over the (few) members with one:
    the database builds that set once (SQLite: an ephemeral index; PostgreSQL: a hashed
    subplan) and probes it per candidate, instead of seeking the complaints index twice per
    member (one seek per status)."""
    return Member.id.in_(select(Complaint.member_id).where(Complaint.status.in_(OPEN_COMPLAINT)))


def _callable(campaign_id: int) -> list[ColumnElement[bool]]:
    """Conditions every dialled member meets (see module doc)."""
    return [
        Member.do_not_call.is_(False),
        Member.consent_call.is_(True),
        exists().where(MemberPhone.member_id == Member.id, MemberPhone.invalid.is_(False)),
        ~exists().where(
            CallListEntry.campaign_id == campaign_id, CallListEntry.member_id == Member.id
        ),
    ]


def _priority() -> ColumnElement[int]:
    return case(
        (Member.tier == Tier.PLATINUM, 3),
        (Member.tier == Tier.GOLD, 2),
        (Member.tier == Tier.SILVER, 1),
        else_=0,
    )


_ENTRY_COLS = ["campaign_id", "member_id", "phone_e164", "purchase_id", "assigned_agent_id", "status",
               "attempts", "next_attempt_at", "priority", "created_at", "updated_at"]  # fmt: skip


def _entry_columns(campaign_id: int, now: dt.datetime, purchase_id: Any = None) -> list[Any]:
    routed = _has_open_complaint()
    return [
        literal(campaign_id, Integer),
        Member.id,
        _valid_phone(),
        purchase_id if purchase_id is not None else literal(None, Integer),
        case((routed, _open_complaint_owner()), else_=None),
        case((routed, literal(EntryStatus.ROUTED.value)), else_=literal(EntryStatus.PENDING.value)),
        literal(0, Integer),
        _ts(now),
        _priority(),
        _ts(now),
        _ts(now),
    ]


def _routed(session: Session, campaign_id: int) -> int:
    """Routed entries of a campaign: a count over the (campaign, status) prefix of
    ``ix_call_list_entries_due`` -- the routed few, not the whole campaign."""
    return int(
        session.scalar(
            select(func.count()).where(
                CallListEntry.campaign_id == campaign_id,
                CallListEntry.status == EntryStatus.ROUTED,
            )
        )
        or 0
    )


def _insert(
    session: Session, campaign_id: int, now: dt.datetime, select_stmt: Select[Any]
) -> ListResult:
    dialect = session.get_bind().dialect.name
    table = CallListEntry
    ins: Any
    if dialect == "postgresql":
        ins = (
            postgresql.insert(table).from_select(_ENTRY_COLS, select_stmt).on_conflict_do_nothing()
        )
    elif dialect == "sqlite":
        ins = sqlite.insert(table).from_select(_ENTRY_COLS, select_stmt).on_conflict_do_nothing()
    else:  # pragma: no cover - the schema targets SQLite and PostgreSQL
        raise NotImplementedError(f"list builders need SQLite or PostgreSQL, not {dialect}")
    routed_before = _routed(session, campaign_id)
    # rows inserted (SQLite changes(), PostgreSQL's INSERT count): conflicts skipped not counted
    res = session.execute(ins, execution_options={"preserve_rowcount": True})
    added = cast(CursorResult[Any], res).rowcount
    routed = _routed(session, campaign_id) - routed_before
    return ListResult(campaign_id, added, routed)


def local_day_windows(
    timezones: list[str], now: dt.datetime, days_ago: int
) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """For each IANA zone: the UTC window ``[start, end)`` of the local day ``days_ago`` days
    before the local today at ``now``. Unknown zones are logged and left out."""
    out = []
    for tz in sorted(set(timezones)):
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("skipping members with unknown time zone %r", tz)
            continue
        day = now.astimezone(zone).date() - dt.timedelta(days=days_ago)
        start = dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
        out.append((tz, start, end))
    return out


def build_post_purchase_list(
    session: Session, campaign_id: int, now: dt.datetime, days_ago: int = POST_PURCHASE_DAYS
) -> ListResult:
    """Members who bought exactly ``days_ago`` (7) local days ago, in their own time zone.

    The member's zone follows the calling-hours rule (:func:`dialer.hours.member_zones`): the
    record's zone, else the zones of their number. A member whose number spans several zones
    is listed the first day the purchase is ``days_ago`` local days old in any of them (the
    follow-up check below keeps them from being listed again the next day); when they may be
    called is the dialer's calling window, in all of their zones. Nothing known: not listed.

    1. the local-day UTC windows of every zone on record (zones from a loose index scan);
    2. one INSERT ... SELECT joining the purchases of that widest range to them, one entry
       per member (their latest purchase that day), skipping members with a purchase of that
       day already on a post-purchase campaign; 3. the few buyers with no usable zone on
       record: their numbers' zones in Python, windows keyed by member, a second INSERT.
    """
    windows = local_day_windows(member_zones(session), now, days_ago)
    result = ListResult(campaign_id, 0, 0)
    if windows:
        win = union_all(
            *(
                select(literal(tz, String).label("tz"), _ts(lo).label("lo"), _ts(hi).label("hi"))
                for tz, lo, hi in windows
            )
        ).subquery("windows")
        # coalesce() of a NOT NULL column: the same match, but no zone index for a planner to
        # drive the join from (it then read every member of each zone); the purchases' time
        # index drives it.
        on_zone = win.c.tz == func.coalesce(Member.timezone, "")
        result = _post_purchase_insert(session, campaign_id, now, win, on_zone)
    by_number = _windows_from_numbers(session, now, days_ago, {tz for tz, _lo, _hi in windows})
    # A UNION ALL per batch of members (SQLite caps a compound SELECT at 500 terms and has no
    # column list on a VALUES alias); a member's windows stay in one batch.
    batch: list[tuple[int, dt.datetime, dt.datetime]] = []
    for i, row in enumerate(by_number):
        batch.append(row)
        last_of_member = i + 1 == len(by_number) or by_number[i + 1][0] != row[0]
        if last_of_member and (len(batch) >= 400 or i + 1 == len(by_number)):
            member_win = union_all(
                *(
                    select(
                        literal(mid, Integer).label("member_id"),
                        _ts(lo).label("lo"),
                        _ts(hi).label("hi"),
                    )
                    for mid, lo, hi in batch
                )
            ).subquery("windows")
            more = _post_purchase_insert(
                session, campaign_id, now, member_win, member_win.c.member_id == Member.id
            )
            result = ListResult(campaign_id, result.added + more.added, result.routed + more.routed)
            batch = []
    return result


def _windows_from_numbers(
    session: Session, now: dt.datetime, days_ago: int, known: set[str]
) -> list[tuple[int, dt.datetime, dt.datetime]]:
    """(member id, lo, hi) local-day windows for the buyers around that day whose record
    names no usable zone, from the zones of their valid numbers (the dialer's rule, the
    numbers in the dialer's order)."""
    from dialer.hours import member_zones as zones_of

    widest_lo = now - dt.timedelta(days=days_ago + 2)
    widest_hi = now - dt.timedelta(days=days_ago - 2)
    # Driven by the purchases' time index (IN, not a join: planners otherwise scan members).
    buyers = select(Purchase.member_id).where(
        Purchase.purchased_at >= _ts(widest_lo), Purchase.purchased_at < _ts(widest_hi)
    )
    rows = session.execute(
        select(MemberPhone.member_id, Member.timezone, MemberPhone.e164)
        .join(Member, Member.id == MemberPhone.member_id)
        .where(
            MemberPhone.member_id.in_(
                select(Member.id).where(Member.id.in_(buyers), Member.timezone.not_in(known))
            ),
            MemberPhone.invalid.is_(False),
        )
        .order_by(MemberPhone.member_id, MemberPhone.e164)
    ).all()
    phones: dict[int, tuple[str, list[str]]] = {}
    for member_id, tz, e164 in rows:
        phones.setdefault(member_id, (tz, []))[1].append(e164)
    out = []
    for member_id, (tz, numbers) in phones.items():
        zones = zones_of(tz, numbers)
        for _tz, lo, hi in local_day_windows([z.key for z in zones], now, days_ago):
            out.append((member_id, lo, hi))
    return out


def _post_purchase_insert(
    session: Session,
    campaign_id: int,
    now: dt.datetime,
    win: Any,
    matches: ColumnElement[bool],
) -> ListResult:
    """The post-purchase INSERT ... SELECT for one windows table (``lo``, ``hi`` columns;
    ``matches`` ties a window row to a member)."""
    # Followed up already: a post-purchase entry for one of this member's purchases that day.
    earlier = aliased(CallListEntry)
    pp_campaign = aliased(Campaign)
    earlier_purchase = aliased(Purchase)
    followed_up = exists().where(
        earlier.member_id == Member.id,
        earlier.purchase_id == earlier_purchase.id,
        earlier_purchase.purchased_at >= win.c.lo,
        earlier_purchase.purchased_at < win.c.hi,
        pp_campaign.id == earlier.campaign_id,
        pp_campaign.kind == CampaignKind.POST_PURCHASE,
    )
    stmt = (
        select(*_entry_columns(campaign_id, now, func.max(Purchase.id)))
        .select_from(Purchase)
        .join(Member, Member.id == Purchase.member_id)
        .join(win, matches)
        .where(Purchase.purchased_at >= win.c.lo, Purchase.purchased_at < win.c.hi, ~followed_up)
        .where(*_callable(campaign_id))
        .group_by(Member.id)
    )
    return _insert(session, campaign_id, now, stmt)


WINBACK_MAX_DAYS = 365


def build_dormant_list(
    session: Session,
    campaign_id: int,
    now: dt.datetime,
    days: int = LAPSED_DAYS,
    max_days: int | None = WINBACK_MAX_DAYS,
) -> ListResult:
    """Win-back calls ("call at 6 months without purchase"): members with no purchase for
    >= ``days`` (180; never bought: since joining) but < ``max_days`` (365; None: no limit --
    members gone longer are a reactivation-offer audience, not a call list), who were not put
    on a win-back campaign since their last purchase (so each lapse gets one call campaign,
    not one per run). One INSERT ... SELECT.
    """
    winback_entry = aliased(CallListEntry)
    winback_campaign = aliased(Campaign)
    called_since = exists().where(
        winback_entry.member_id == Member.id,
        winback_campaign.id == winback_entry.campaign_id,
        winback_campaign.kind == CampaignKind.DORMANT_WINBACK,
        or_(Member.last_purchase_at.is_(None), winback_entry.created_at > Member.last_purchase_at),
    )
    # The first-ever run meets the whole 180-365-day backlog (188k of 1M members): see
    # _insert_candidates for how the insert is kept cheap.
    cand_q = (
        select(*_candidate_columns())
        .where(
            dormant_between(now, days, max_days),
            ~called_since,
            *_may_call(),
        )
        .order_by(Member.id)
    )
    return _insert_candidates(session, campaign_id, now, cand_q)


def _candidate_columns() -> list[Any]:
    """The columns :func:`_insert_candidates` reads from a candidate SELECT over members."""
    return [
        Member.id.label("member_id"),
        Member.maintaining_agent_id.label("maint"),
        _valid_phone().label("phone"),
        _priority().label("priority"),
        _has_open_complaint().label("routed"),
    ]


def _insert_candidates(
    session: Session,
    campaign_id: int,
    now: dt.datetime,
    cand_q: Select[Any],
    *,
    to_maintainer: bool = False,
) -> ListResult:
    """Write the entries of a candidate SELECT (:func:`_candidate_columns`, ordered by member
    id): members with a valid phone; an open complaint routes the entry to its owner (else the
    maintainer); ``to_maintainer`` assigns the other entries to the member's maintaining agent.

    Large first runs meet hundreds of thousands of candidates, so every per-member probe
    counts: the candidates are read in member order (every index of call_list_entries then
    grows at its end instead of taking random inserts, and SQLite reads members and their
    phones front to back), and each member's phone and open-complaint flag are looked up once
    (the subquery is kept whole: SQLite would otherwise copy those subqueries into the outer
    query). A join to the set of open complaints was tried: SQLite scans that set once per
    candidate when it builds no automatic index (the spend-decline plan), 88k x thousands.
    """
    if session.get_bind().dialect.name == "sqlite":
        cand_q = cand_q.limit(-1)  # "no limit", and SQLite's fence against flattening
    cand = cand_q.subquery("cand")
    routed = cand.c.routed.is_(True)
    owner = (
        select(func.coalesce(Complaint.owner_agent_id, cand.c.maint))
        .where(Complaint.member_id == cand.c.member_id, Complaint.status.in_(OPEN_COMPLAINT))
        .order_by(Complaint.created_at.desc(), Complaint.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        select(
            literal(campaign_id, Integer),
            cand.c.member_id,
            cand.c.phone,
            literal(None, Integer),
            case((routed, owner), else_=cand.c.maint if to_maintainer else None),
            case(
                (routed, literal(EntryStatus.ROUTED.value)),
                else_=literal(EntryStatus.PENDING.value),
            ),
            literal(0, Integer),
            _ts(now),
            cand.c.priority,
            _ts(now),
            _ts(now),
        )
        .select_from(cand)
        .where(cand.c.phone.is_not(None))
    )
    return _insert(session, campaign_id, now, stmt)


def dormant_greeting_candidates(
    session: Session,
    now: dt.datetime,
    days: int = DORMANT_DAYS,
    until_days: int | None = LAPSED_DAYS,
) -> Iterator[GreetingCandidate]:
    """Members dormant for >= ``days`` (90) but < ``until_days`` (180; None: no upper bound),
    each with the channel to greet them on: SMS when they consent to SMS, are not do-not-call
    and have a valid phone, otherwise email when they consent and have a deliverable address.
    Members with an open complaint (their owner calls them instead) or no usable channel are
    left out. One streamed SELECT, ordered by member id; the outbox decides what to send.
    """
    email_ok = and_(
        Member.consent_email.is_(True), Member.email.is_not(None), Member.email != "",
        Member.email_invalid.is_(False),
    )  # fmt: skip
    sms_possible = and_(Member.consent_sms.is_(True), Member.do_not_call.is_(False))
    # The valid phone is looked up once per member that may get an SMS (a fenced subquery:
    # written inline, SQLite evaluated the same correlated subquery up to four times a row).
    base = (
        select(
            Member.id.label("member_id"),
            case((sms_possible, _valid_phone()), else_=None).label("phone"),
            email_ok.label("email_ok"),
            Member.email.label("email"),
            Member.locale.label("locale"),
            Member.last_purchase_at.label("last_purchase_at"),
        )
        .where(
            dormant_between(now, days, until_days),
            ~_has_open_complaint(),
            or_(sms_possible, email_ok),
        )
        .order_by(Member.id)
    )
    sqlite_db = session.get_bind().dialect.name == "sqlite"
    if sqlite_db:
        base = base.limit(-1)  # "no limit": SQLite's fence against flattening the subquery
    cand = base.subquery("cand")
    sms_ok = cand.c.phone.is_not(None)
    stmt = (
        select(
            cand.c.member_id,
            case((sms_ok, literal("sms")), else_=literal("email")),
            case((sms_ok, cand.c.phone), else_=cand.c.email),
            cand.c.locale,
            cand.c.last_purchase_at,
        )
        .where(or_(sms_ok, cand.c.email_ok.is_(True)))
        .execution_options(yield_per=5000)
    )
    if not sqlite_db:
        # SQLite runs the fenced subquery as a co-routine and yields its rows in its order;
        # sorting them again there costs a temporary B-tree of every candidate.
        stmt = stmt.order_by(cand.c.member_id)
    for row in session.execute(stmt):
        yield GreetingCandidate(row[0], row[1], row[2], row[3], row[4])


def _sample_key(seed: int) -> ColumnElement[int]:
    # A portable integer hash (Knuth's multiplicative constant): a seeded, deterministic shuffle.
    return (Member.id * 2654435761 + seed * 40503 + 12345) % 4294967291


def build_survey_list(
    session: Session,
    campaign_id: int,
    now: dt.datetime,
    size: int,
    seed: int = 0,
    contact_days: int = SURVEY_CONTACT_DAYS,
    quiet_days: int = SURVEY_QUIET_DAYS,
) -> ListResult:
    """A deterministic sample of ``size`` members who bought or had a service contact (inquiry,
    complaint, inbound call) in the last ``contact_days`` (30) and were not surveyed (a survey
    response, or an entry on a survey campaign) in the last ``quiet_days`` (90).

    ``size`` is the campaign's total: a re-run only tops the campaign up to ``size``.
    The candidates come from a UNION of four indexed time-range scans; the sample is the first
    ``size`` by a seeded hash of the member id (same seed + same data -> same members).
    """
    already = session.scalar(
        select(func.count())
        .select_from(CallListEntry)
        .where(CallListEntry.campaign_id == campaign_id)
    )
    remaining = size - int(already or 0)
    if remaining <= 0:
        return ListResult(campaign_id, 0, 0)
    since = _ts(now - dt.timedelta(days=contact_days))
    quiet = _ts(now - dt.timedelta(days=quiet_days))
    contacts = union(
        select(Member.id.label("member_id")).where(Member.last_purchase_at > since),
        select(Inquiry.member_id).where(Inquiry.created_at > since),
        select(Complaint.member_id).where(Complaint.created_at > since),
        select(CallAttempt.member_id).where(
            CallAttempt.started_at > since,
            CallAttempt.direction == Direction.INBOUND,
            CallAttempt.member_id.is_not(None),
        ),
    ).subquery("contacts")
    surveyed_entry = aliased(CallListEntry)
    survey_campaign = aliased(Campaign)
    recently_surveyed = or_(
        exists().where(SurveyResponse.member_id == Member.id, SurveyResponse.started_at > quiet),
        exists().where(
            surveyed_entry.member_id == Member.id,
            surveyed_entry.created_at > quiet,
            survey_campaign.id == surveyed_entry.campaign_id,
            survey_campaign.kind == CampaignKind.SURVEY,
        ),
    )
    # Sample the ids first, then compute the entry columns (phone, complaint routing) for the
    # sample only: a sorter would otherwise evaluate them for every candidate.
    sample = (
        select(Member.id.label("member_id"))
        .select_from(contacts)
        .join(Member, Member.id == contacts.c.member_id)
        .where(~recently_surveyed, *_callable(campaign_id))
        .order_by(_sample_key(seed), Member.id)
        .limit(remaining)
        .subquery("sample")
    )
    stmt = (
        select(*_entry_columns(campaign_id, now))
        .select_from(sample)
        .join(Member, Member.id == sample.c.member_id)
    )
    return _insert(session, campaign_id, now, stmt)


def local_month_starts(timezones: list[str], now: dt.datetime) -> list[tuple[str, dt.datetime]]:
    """For each IANA zone: the UTC instant its current calendar month began at ``now``.
    Unknown zones are logged and left out."""
    out = []
    for tz in sorted(set(timezones)):
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("skipping members with unknown time zone %r", tz)
            continue
        local = now.astimezone(zone)
        first = dt.datetime.combine(local.date().replace(day=1), dt.time(), zone)
        out.append((tz, first.astimezone(dt.UTC)))
    return out


def member_zones(session: Session) -> list[str]:
    """Every distinct non-empty ``members.timezone``, by a loose scan of ``ix_members_timezone``: a
    recursive query that seeks the next zone after the last one found (one index seek per
    zone, instead of reading a million members)."""
    other = aliased(Member)
    z = select(func.min(Member.timezone).label("tz")).cte("zones", recursive=True)
    step = select(
        select(func.min(other.timezone)).where(other.timezone > z.c.tz).scalar_subquery()
    ).where(z.c.tz.is_not(None))
    z = z.union_all(step)
    return [tz for tz in session.scalars(select(z.c.tz).where(z.c.tz.is_not(None))) if tz]


def _may_call() -> list[ColumnElement[bool]]:
    """Call consent and not do-not-call (the phone is checked by the insert). A member already
    on the campaign is skipped by the insert's ``ON CONFLICT DO NOTHING`` on the
    campaign-member key, so no per-member probe is spent on that here."""
    return [Member.do_not_call.is_(False), Member.consent_call.is_(True)]


def _regular(now: dt.datetime) -> list[ColumnElement[bool]]:
    """Regular members who buy: joined at least ``NEW_DAYS`` ago and bought within the last
    ``DORMANT_DAYS`` (an indexed range of ``members.last_purchase_at``)."""
    return [
        Member.last_purchase_at > _ts(now - dt.timedelta(days=DORMANT_DAYS)),
        Member.joined_on <= literal((now - dt.timedelta(days=NEW_DAYS)).date(), Date()),
    ]


def build_monthly_care_list(session: Session, campaign_id: int, now: dt.datetime) -> ListResult:
    """The monthly care call ("a call every month with personal care"): every regular member
    (see :func:`_regular`) not yet on a ``monthly_care`` campaign this calendar month -- the
    month of the member's own time zone -- assigned to their maintaining agent.

    Run it into a new campaign each month, or again into the same one (idempotent): a member
    is listed once a calendar month whichever campaign holds them. Two statements: the zones
    of the regular members, then one INSERT ... SELECT joining their month starts.
    """
    starts = local_month_starts(member_zones(session), now)
    if not starts:
        return ListResult(campaign_id, 0, 0)
    # Each member's month start as a CASE on their zone; NULL for a zone left out above, which
    # leaves the member out. A join to a derived table of (zone, start) rows cost a scan of
    # that table per member on SQLite (0.8 s of CPU at 1M members).
    month_start = case({tz: _ts(lo) for tz, lo in starts}, value=Member.timezone)
    earlier = aliased(CallListEntry)
    care_campaign = aliased(Campaign)
    cared_this_month = exists().where(
        earlier.member_id == Member.id,
        earlier.created_at >= month_start,
        care_campaign.id == earlier.campaign_id,
        care_campaign.kind == CampaignKind.MONTHLY_CARE,
    )
    cand_q = (
        select(*_candidate_columns())
        .where(
            *_regular(now),
            *_may_call(),
            month_start.is_not(None),
            ~cared_this_month,
        )
        .order_by(Member.id)
    )
    return _insert_candidates(session, campaign_id, now, cand_q, to_maintainer=True)


SPEND_DECLINE_SHARE = 0.4
DECLINE_RECENT_DAYS = 90
DECLINE_BASELINE_DAYS = 365


def build_spend_decline_list(
    session: Session, campaign_id: int, now: dt.datetime, share: float = SPEND_DECLINE_SHARE
) -> ListResult:
    """Regular members whose buying dropped: over the last 90 days their purchase count or
    amount is at least ``share`` (0.4) below their own pace over the 12 months before
    (that year's count or amount x 90/365), who bought at all in that year. Members who
    stopped completely are dormant (the win-back list), not here. A member is listed again
    only after a purchase since their last ``spend_decline`` entry (one call per decline).

    Open complaints route the entry to the complaint's owner (the member's maintaining agent
    when the complaint has none) -- they hear about the complaint before anyone calls.
    One aggregate over the purchases of the regular members (the member-time index), one
    INSERT ... SELECT.
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be between 0 and 1, got {share}")
    mid = now - dt.timedelta(days=DECLINE_RECENT_DAYS)
    start = mid - dt.timedelta(days=DECLINE_BASELINE_DAYS)
    recent = Purchase.purchased_at > _ts(mid)
    pace = DECLINE_RECENT_DAYS / DECLINE_BASELINE_DAYS
    keep = 1.0 - share
    # Per purchase row as few expressions as exact sums allow (this aggregate reads ~2M rows
    # at 1M members, from the covering index on (member, time, amount)): the year's count is
    # the total less the recent one; amounts keep a sum each (a difference of float sums on
    # SQLite could tip a member sitting exactly on the threshold).
    n_recent = func.sum(case((recent, 1), else_=0))
    n_before = func.count() - n_recent
    amt_recent = func.sum(case((recent, Purchase.amount), else_=0))
    amt_before = func.sum(case((recent, 0), else_=Purchase.amount))
    declined = (
        select(Purchase.member_id.label("member_id"))
        .where(
            Purchase.member_id.in_(select(Member.id).where(*_regular(now))),
            Purchase.purchased_at > _ts(start),
            Purchase.purchased_at <= _ts(now),
        )
        .group_by(Purchase.member_id)
        .having(
            n_before > 0,
            or_(
                n_recent <= n_before * literal(pace * keep),
                amt_recent <= amt_before * literal(pace * keep),
            ),
        )
        .subquery("declined")
    )
    earlier = aliased(CallListEntry)
    decline_campaign = aliased(Campaign)
    listed_since_purchase = exists().where(
        earlier.member_id == Member.id,
        earlier.created_at > Member.last_purchase_at,
        decline_campaign.id == earlier.campaign_id,
        decline_campaign.kind == CampaignKind.SPEND_DECLINE,
    )
    cand_q = (
        select(*_candidate_columns())
        .select_from(declined)
        .join(Member, Member.id == declined.c.member_id)
        .where(~listed_since_purchase, *_may_call())
        .order_by(declined.c.member_id)  # the aggregate's order: it drives the join
    )
    return _insert_candidates(session, campaign_id, now, cand_q, to_maintainer=True)


def build_rfm_segment_list(
    session: Session, campaign_id: int, now: dt.datetime, segment: str
) -> ListResult:
    """Every member of one RFM segment (:data:`crm_bridge.rfm.SEGMENTS`, from the latest
    ``member_segments`` scores) for a supervisor's campaign, assigned to their maintaining
    agent; the common rules apply (consent, a valid phone, open complaints routed)."""
    if segment not in SEGMENTS:
        raise ValueError(f"unknown segment {segment!r} (one of {', '.join(SEGMENTS)})")
    (rlo, rhi), (flo, fhi), _en, _zh = SEGMENTS[segment]
    cand_q = (
        select(*_candidate_columns())
        .join(MemberSegment, MemberSegment.member_id == Member.id)
        .where(
            MemberSegment.r_score.between(rlo, rhi),
            MemberSegment.f_score.between(flo, fhi),
            *_may_call(),
        )
        .order_by(Member.id)
    )
    return _insert_candidates(session, campaign_id, now, cand_q, to_maintainer=True)
