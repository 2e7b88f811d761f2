"""Demo data: realistic members, purchases and service history, bulk-loaded fast.

``seed_demo(url, members=N, seed=S)`` migrates the database, then loads, chunk by chunk
(``CHUNK`` members at a time, constant memory):

- agents ``1001``..``1020`` (role agent) and ``9001`` (supervisor), password ``demo`` for all;
- the default reward catalogue;
- members from mainland China (80 %, simplified Chinese names, +86 mobiles, Asia/Shanghai),
  Hong Kong and Taiwan (traditional names, zh-TW), Singapore, the US and the UK (English
  names), with matching locales and time zones; about 0.5 % share a phone with the previous
  member (family numbers), 10 % have a second phone; a few without consent or do-not-call;
  each has a maintaining agent;
- two years of purchases with seasonality (Double 11, 618, Spring Festival, Christmas,
  weekends) and per-member rates, so some members are dormant or lapsed, some never bought;
  tiers by spend over the last year; a points ledger row per purchase and some redemptions;
- inquiries, complaints (some open, with owners and callback tasks), past calls and survey
  scores.

Rows are generated as plain tuples and written with ``executemany`` on the raw SQLite
connection or ``COPY`` on PostgreSQL; secondary indexes are dropped first and rebuilt after.
The same ``seed`` and ``now`` give the same database.
"""

from __future__ import annotations

import abc
import bisect
import dataclasses
import datetime as dt
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Index, func, select, text

from crm_bridge.auth import hash_password
from crm_bridge.db import make_engine, normalise_url, session_scope
from crm_bridge.demo_names import (
    CATEGORIES,
    NOTES_EN,
    NOTES_ZH,
    REGIONS,
    STORES,
    person_name,
    phone_number,
)
from crm_bridge.migrate import upgrade
from crm_bridge.models import (
    Agent,
    Base,
    Member,
    Role,
    SurveyDefinition,
)
from crm_bridge.points import POINTS_VALIDITY_DAYS, TIER_MULTIPLIER, seed_rewards
from crm_bridge.segments import refresh_rfm

__all__ = ["DEMO_PASSWORD", "DemoSummary", "seed_demo"]

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo"
AGENT_CODES = tuple(str(1001 + i) for i in range(20))
SUPERVISOR_CODE = "9001"
CHUNK = 20_000
HISTORY_DAYS = 730
DAY = 86_400

AGENT_NAMES = (
    "王芳", "李娜", "张伟", "刘洋", "陈静", "杨磊", "黄敏", "赵强", "吴婷", "周杰",
    "Emily Chen", "James Wong", "徐丽", "孙浩", "马超", "朱琳", "胡军", "郭佳", "何雪", "高明",
)  # fmt: skip

TIER_THRESHOLDS = ((30_000.0, "Platinum"), (10_000.0, "Gold"), (3_000.0, "Silver"))
"""Spend over the last 365 days -> tier (else Standard)."""


@dataclass
class DemoSummary:
    members: int = 0
    phones: int = 0
    purchases: int = 0
    ledger: int = 0
    inquiries: int = 0
    complaints: int = 0
    open_complaints: int = 0
    calls: int = 0
    surveys: int = 0
    callbacks: int = 0
    agents: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------- calendar (pure)


_SPRING_FESTIVAL = {
    2023: dt.date(2023, 1, 22), 2024: dt.date(2024, 2, 10), 2025: dt.date(2025, 1, 29),
    2026: dt.date(2026, 2, 17), 2027: dt.date(2027, 2, 6), 2028: dt.date(2028, 1, 26),
    2029: dt.date(2029, 2, 13), 2030: dt.date(2030, 2, 3),
}  # fmt: skip


def day_weight(day: dt.date) -> float:
    """Relative purchase volume of a calendar day (shopping festivals, weekends)."""
    w = 1.3 if day.weekday() >= 5 else 1.0
    md = (day.month, day.day)
    if md == (11, 11):
        w *= 8.0  # Double 11
    elif day.month == 11 and day.day < 11:
        w *= 1.5
    elif md == (6, 18):
        w *= 5.0  # 618
    elif day.month == 6 and day.day < 18:
        w *= 1.3
    elif day.month == 12 and 18 <= day.day <= 25:
        w *= 2.5  # Christmas
    sf = _SPRING_FESTIVAL.get(day.year) or _SPRING_FESTIVAL.get(day.year + 1)
    if sf is not None:
        before = (sf - day).days
        if 0 < before <= 14:
            w *= 2.2  # new-year shopping
        elif -6 <= before <= 0:
            w *= 0.4  # the holiday itself
    return w


_HOUR_WEIGHTS = (0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.6, 1.0, 1.5, 2.5, 3.0, 3.0, 2.8, 2.6, 2.6, 2.8,
                 3.0, 3.2, 3.6, 3.8, 3.2, 2.0, 0.8)  # fmt: skip
_HOUR_CDF = [sum(_HOUR_WEIGHTS[: i + 1]) for i in range(24)]


@dataclass(frozen=True)
class _Calendar:
    start_day: int
    """Epoch day of the first day of the history window."""
    cdf: list[float]

    @classmethod
    def build(cls, now: dt.datetime) -> _Calendar:
        first = now.date() - dt.timedelta(days=HISTORY_DAYS)
        total = 0.0
        cdf = []
        for i in range(HISTORY_DAYS + 1):
            total += day_weight(first + dt.timedelta(days=i))
            cdf.append(total)
        return cls((first - dt.date(1970, 1, 1)).days, cdf)

    def sample_days(self, rng: random.Random, k: int, lo: int, hi: int) -> list[int]:
        """``k`` epoch days in [lo, hi] (window indexes), weighted by the calendar."""
        cdf = self.cdf
        base = cdf[lo - 1] if lo > 0 else 0.0
        span = cdf[hi] - base
        return [self.start_day + bisect.bisect_left(cdf, base + rng.random() * span, lo, hi + 1)
                for _ in range(k)]  # fmt: skip


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


# ---------------------------------------------------------------- writers


_DATE_CACHE: dict[int, str] = {}
_EPOCH = dt.date(1970, 1, 1)


_HMS: list[str] = []


def _sqlite_ts(epoch: int) -> str:
    """Epoch seconds -> SQLAlchemy's SQLite DATETIME text (``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    if not _HMS:
        _HMS.extend(
            f" {h:02d}:{m:02d}:{x:02d}.000000"
            for h in range(24)
            for m in range(60)
            for x in range(60)
        )
    day, sec = divmod(epoch, DAY)
    d = _DATE_CACHE.get(day)
    if d is None:
        d = _DATE_CACHE[day] = (_EPOCH + dt.timedelta(days=day)).isoformat()
    return d + _HMS[sec]


def _pg_ts(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


_PG_DAYS: dict[int, dt.date] = {}


def _iso_day(day: int) -> str:
    d = _DATE_CACHE.get(day)
    if d is None:
        d = _DATE_CACHE[day] = (_EPOCH + dt.timedelta(days=day)).isoformat()
    return d


def _pg_day(day: int) -> dt.date:
    d = _PG_DAYS.get(day)
    if d is None:
        d = _PG_DAYS[day] = _EPOCH + dt.timedelta(days=day)
    return d


class _Writer(abc.ABC):
    """Bulk row writer: executemany on SQLite, COPY on PostgreSQL."""

    dialect: str

    @abc.abstractmethod
    def write(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None: ...

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Undo the bulk load's connection settings (the pooled connection lives on)."""


class _SqliteWriter(_Writer):
    dialect = "sqlite"

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.cur = raw.cursor()
        self.cur.execute("PRAGMA synchronous=OFF")
        self.cur.execute("PRAGMA cache_size=-262144")

    def write(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        if rows:
            marks = ",".join("?" * len(columns))
            self.cur.executemany(
                f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", rows
            )

    def commit(self) -> None:
        self.raw.commit()

    def close(self) -> None:
        """Give back the bulk load's page cache (the pooled connection lives on)."""
        self.cur.execute("PRAGMA cache_size=-65536")
        self.cur.execute("PRAGMA synchronous=NORMAL")


class _PostgresWriter(_Writer):
    dialect = "postgresql"

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.cur = raw.cursor()

    def write(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        with self.cur.copy(f"COPY {table} ({','.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def commit(self) -> None:
        self.raw.commit()

    def close(self) -> None:
        """Nothing to undo: COPY changes no connection setting."""


# ---------------------------------------------------------------- generation

MEMBER_COLS = ("id", "member_no", "name", "gender", "birthday", "email", "email_invalid", "locale", "timezone",
               "tier", "points_balance", "joined_on", "maintaining_agent_id", "consent_call", "consent_sms",
               "consent_email", "do_not_call", "notes", "last_purchase_at", "purchase_count", "created_at",
               "updated_at")  # fmt: skip
PHONE_COLS = ("id", "member_id", "e164", "kind", "invalid")
PURCHASE_COLS = (
    "id",
    "member_id",
    "purchased_at",
    "amount",
    "currency",
    "category",
    "store",
    "channel",
)
LEDGER_COLS = ("id", "member_id", "occurred_at", "delta", "balance_after", "reason", "reference", "expires_on",
               "agent_id")  # fmt: skip
INQUIRY_COLS = ("id", "member_id", "created_at", "channel", "category", "subject", "body", "status", "agent_id",
                "closed_at")  # fmt: skip
COMPLAINT_COLS = ("id", "member_id", "created_at", "updated_at", "severity", "category", "description", "status",
                  "owner_agent_id", "resolution", "resolved_at", "source", "source_ref")  # fmt: skip
CALL_COLS = ("id", "attempt_key", "member_id", "agent_id", "direction", "phone_e164", "started_at",
             "answered_at", "ended_at", "outcome", "disposition", "notes")  # fmt: skip
SURVEY_COLS = ("id", "response_key", "survey_id", "member_id", "channel", "started_at", "completed_at", "status",
               "csat", "nps")  # fmt: skip
CALLBACK_COLS = ("id", "member_id", "agent_id", "due_at", "reason", "source", "source_ref", "complaint_id",
                 "status", "created_at")  # fmt: skip

_INQUIRIES = (
    ("delivery", "配送进度查询", "Where is my delivery?"),
    ("size", "尺码咨询", "Which size should I take?"),
    ("points", "积分查询", "Points balance question"),
    ("store", "门店营业时间", "Store opening hours"),
    ("product", "新品到货", "When does the new collection arrive?"),
)
_COMPLAINTS = (
    ("quality", "商品质量问题，洗后变形", "Item shrank after the first wash"),
    ("service", "店员态度不好", "Staff were unhelpful"),
    ("delivery", "快递延误一周", "Delivery was a week late"),
    ("billing", "积分未到账", "Points were not credited"),
)
_REGION_CODES = tuple(REGIONS)
_REGION_CDF = [
    sum(REGIONS[r][0] for r in _REGION_CODES[: i + 1]) for i in range(len(_REGION_CODES))
]


def _open_fraction(region: str, now: dt.datetime, start: dt.time, end: dt.time) -> float:
    """The share of ``region``'s time zones whose local time is inside ``[start, end)``."""
    zones = REGIONS[region][2]
    inside = sum(1 for tz, _ in zones if start <= now.astimezone(ZoneInfo(tz)).time() < end)
    return inside / len(zones)


def open_region_weights(
    now: dt.datetime, start: dt.time, end: dt.time, *, open_share: float = 0.6
) -> tuple[dict[str, float], float]:
    """Region weights for a demo started at ``now``: :data:`REGIONS`' own shares, with every
    region that has a zone whose local time is inside ``[start, end)`` (the calling window,
    less quiet hours and a margin) scaled up by one factor until members in an open zone are
    ``open_share`` of all -- so the demo has members it may call and text at any hour,
    without bending a rule. Members elsewhere are kept (the rules hold them back, and the
    demo says so). Returns the weights and the expected share of members in an open zone
    (0.0 when no zone is open: then the shares are unchanged)."""
    base = {r: REGIONS[r][0] for r in _REGION_CODES}
    frac = {r: _open_fraction(r, now, start, end) for r in base}
    # share(k) = k*A / (k*B + C): A = open members of the scaled regions, B = all their
    # members, C = the members of the regions left as they are.
    a = sum(base[r] * frac[r] for r in base if frac[r] > 0)
    b = sum(base[r] for r in base if frac[r] > 0)
    c = sum(base[r] for r in base if frac[r] == 0)
    if a == 0.0:
        return base, 0.0
    share = a / (b + c)
    if share >= open_share:
        return base, share
    k = open_share * c / (a - open_share * b) if a > open_share * b else 50.0
    k = min(max(k, 1.0), 50.0)
    weights = {r: base[r] * (k if frac[r] > 0 else 1.0) for r in base}
    return weights, k * a / (k * b + c)


@dataclass
class _Ids:
    phone: int = 0
    purchase: int = 0
    ledger: int = 0
    inquiry: int = 0
    complaint: int = 0
    call: int = 0
    survey: int = 0
    callback: int = 0


@dataclass
class _Chunk:
    members: list[tuple[Any, ...]] = field(default_factory=list)
    phones: list[tuple[Any, ...]] = field(default_factory=list)
    purchases: list[tuple[Any, ...]] = field(default_factory=list)
    ledger: list[tuple[Any, ...]] = field(default_factory=list)
    inquiries: list[tuple[Any, ...]] = field(default_factory=list)
    complaints: list[tuple[Any, ...]] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    surveys: list[tuple[Any, ...]] = field(default_factory=list)
    callbacks: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass(frozen=True)
class _Context:
    ts: Callable[[int], Any]
    """Epoch seconds -> the value the writer's database wants (text for SQLite)."""
    day: Callable[[int], Any]
    """Epoch day -> the value the writer's database wants for a DATE."""
    now_epoch: int
    today: dt.date
    calendar: _Calendar
    agent_ids: tuple[int, ...]
    survey_id: int
    region_codes: tuple[str, ...] = _REGION_CODES
    region_cdf: Sequence[float] = tuple(_REGION_CDF)
    """Cumulative weights of ``region_codes`` (:data:`REGIONS`' own unless ``seed_demo`` was
    given other weights)."""


def _tier_for(spend_year: float) -> str:
    for threshold, tier in TIER_THRESHOLDS:
        if spend_year >= threshold:
            return tier
    return "Standard"


def _generate_chunk(
    ctx: _Context, rng: random.Random, first_id: int, count: int, ids: _Ids
) -> _Chunk:
    out = _Chunk()
    rnd = rng.random

    def ri(a: int, b: int | None = None) -> int:
        """randrange(a) / randrange(a, b), several times faster than random.randrange."""
        return int(rnd() * a) if b is None else a + int(rnd() * (b - a))

    def pick(seq: Sequence[Any]) -> Any:
        return seq[int(rnd() * len(seq))]

    _Ts = ctx.ts
    now = ctx.now_epoch
    now_day = now // DAY
    cal = ctx.calendar
    prev_phone: str | None = None
    for member_id in range(first_id, first_id + count):
        cdf = ctx.region_cdf
        region = ctx.region_codes[bisect.bisect_left(cdf, rnd() * cdf[-1])]
        _w, locales, zones = REGIONS[region]
        locale = pick(locales)
        tz, offset = pick(zones)
        name = person_name(rng, region, locale)
        gender = pick("FFMMFMX" if rnd() < 0.02 else "FM")
        age_days = ri(18 * 365, 75 * 365)
        birthday = ctx.day(now_day - age_days)
        r = rnd()
        joined_days = ri(0, 30) if r < 0.03 else ri(30, 5 * 365)
        joined_on = ctx.day(now_day - joined_days)
        agent_id = pick(ctx.agent_ids)
        email = None
        if rnd() < (0.9 if locale == "en" else 0.5):
            email = f"member{member_id}@{'example.com' if locale == 'en' else 'example.cn'}"
        consent_call = rnd() > 0.06
        consent_sms = rnd() > 0.12
        consent_email = rnd() > 0.15
        dnc = rnd() < 0.02
        notes = None
        if rnd() < 0.08:
            notes = pick(NOTES_EN if locale == "en" else NOTES_ZH)

        # phones
        if prev_phone is not None and rnd() < 0.005:
            phone = prev_phone  # a family number shared with the previous member
        else:
            phone = phone_number(rng, region)
        ids.phone += 1
        out.phones.append((ids.phone, member_id, phone, "mobile", False))
        if rnd() < 0.10:
            second = phone_number(rng, region)
            if second != phone:
                ids.phone += 1
                out.phones.append((ids.phone, member_id, second, "home", rnd() < 0.05))
        prev_phone = phone

        # purchases: a personal rate, and for some an end of activity (dormant / lapsed)
        window_lo = max(0, HISTORY_DAYS - joined_days)
        activity = rnd()
        last_active = HISTORY_DAYS
        if activity < 0.05:
            k = 0
        else:
            if activity < 0.17:
                last_active = HISTORY_DAYS - ri(90, 180)
            elif activity < 0.30:
                last_active = HISTORY_DAYS - ri(180, 700)
            last_active = max(last_active, window_lo)
            rate = math.exp(rng.gauss(0.9, 0.8))  # purchases a year, median ~2.5
            k = min(_poisson(rng, rate * (last_active - window_lo + 1) / 365.0), 150)
            if k == 0 and rnd() < 0.5:
                k = 1
        days = sorted(cal.sample_days(rng, k, window_lo, last_active)) if k else []
        spend_year = 0.0
        year_ago = now - 365 * DAY
        bought: list[tuple[int, float]] = []
        for day in days:
            hour = bisect.bisect_left(_HOUR_CDF, rnd() * _HOUR_CDF[-1])
            at = day * DAY + (hour - offset) * 3600 + ri(3600)
            if at > now:
                at = now - ri(1, 3600)
            category, mean = CATEGORIES[ri(len(CATEGORIES))]
            amount = round(max(5.0, mean * rng.lognormvariate(0.0, 0.6)), 2)
            store, channel = STORES[ri(len(STORES))]
            ids.purchase += 1
            out.purchases.append(
                (ids.purchase, member_id, _Ts(at), amount, "CNY", category, store, channel)
            )
            bought.append((at, amount))
            if at > year_ago:
                spend_year += amount
        tier = _tier_for(spend_year)
        mult = float(TIER_MULTIPLIER[tier])  # type: ignore[index]
        balance = 0
        first_purchase_id = ids.purchase - len(bought) + 1
        for j, (at, amount) in enumerate(bought):
            pts = int(amount * mult)
            if pts <= 0:
                continue
            balance += pts
            ids.ledger += 1
            expires = ctx.day(at // DAY + POINTS_VALIDITY_DAYS)
            out.ledger.append((ids.ledger, member_id, _Ts(at), pts, balance, "purchase",
                               f"purchase:{first_purchase_id + j}", expires, None))  # fmt: skip
        if balance >= 500 and rnd() < 0.3:
            cost = 500 if balance < 2000 else 2000
            balance -= cost
            ids.ledger += 1
            at = max(bought[-1][0] + 3600, now - ri(DAY, 60 * DAY))
            out.ledger.append((ids.ledger, member_id, _Ts(min(at, now)), -cost, balance, "redeem",
                               "reward:COUPON50" if cost == 500 else "reward:GIFTBOX", None, agent_id))  # fmt: skip
        last_at = bought[-1][0] if bought else None
        created = _Ts(joined_days and (now_day - joined_days) * DAY + 36_000)
        out.members.append((
            member_id, f"M{member_id:08d}", name, gender, birthday, email, False, locale, tz, tier, balance,
            joined_on, agent_id, consent_call, consent_sms, consent_email, dnc, notes,
            _Ts(last_at) if last_at is not None else None, len(bought), created, _Ts(now),
        ))  # fmt: skip

        # service history
        zh = locale != "en"
        if rnd() < 0.10:
            for _ in range(1 + (rnd() < 0.3)):
                ago = ri(0, 365 * DAY)
                cat, subj_zh, subj_en = pick(_INQUIRIES)
                is_open = ago < 14 * DAY and rnd() < 0.5
                ids.inquiry += 1
                out.inquiries.append((ids.inquiry, member_id, _Ts(now - ago), "phone", cat,
                                      subj_zh if zh else subj_en, None, "open" if is_open else "closed",
                                      agent_id, None if is_open else _Ts(now - ago + 3600)))  # fmt: skip
        if rnd() < 0.02:
            ago = ri(0, 365 * DAY)
            cat, desc_zh, desc_en = pick(_COMPLAINTS)
            is_open = rnd() < 0.3
            owner = agent_id if rnd() < 0.8 else pick(ctx.agent_ids)
            ids.complaint += 1
            status = pick(("open", "in_progress")) if is_open else pick(("resolved", "closed"))
            out.complaints.append((ids.complaint, member_id, _Ts(now - ago), _Ts(now - ago // 2),
                                   pick(("low", "medium", "medium", "high", "critical")), cat,
                                   desc_zh if zh else desc_en, status, owner,
                                   None if is_open else ("已致歉并补偿" if zh else "Apologised and refunded"),
                                   None if is_open else _Ts(now - ago // 2), "call", None))  # fmt: skip
            if is_open:
                ids.callback += 1
                out.callbacks.append((ids.callback, member_id, owner, _Ts(now + ri(-DAY, 2 * DAY)),
                                      "投诉回访" if zh else "Complaint follow-up", "complaint",
                                      f"complaint:{ids.complaint}", ids.complaint, "open", _Ts(now - ago)))  # fmt: skip
        if rnd() < 0.15:
            for j in range(1 + ri(3)):
                ago = ri(0, 365 * DAY)
                answered = rnd() < 0.7
                ids.call += 1
                start = now - ago
                out.calls.append((ids.call, f"demo:{member_id}:{j}", member_id, agent_id,
                                  pick(("inbound", "inbound", "outbound")), phone, _Ts(start),
                                  _Ts(start + 8) if answered else None, _Ts(start + (200 if answered else 30)),
                                  "answered" if answered else pick(("no_answer", "busy")),
                                  pick(("resolved", "info_given", "callback")) if answered else None,
                                  None))  # fmt: skip
        if rnd() < 0.04:
            ago = ri(0, 200 * DAY)
            ids.survey += 1
            csat = rng.choices((1, 2, 3, 4, 5), (4, 5, 12, 35, 44))[0]
            nps = min(10, max(0, csat * 2 + ri(-2, 2)))
            out.surveys.append((ids.survey, f"demo:{member_id}", ctx.survey_id, member_id, "agi", _Ts(now - ago),
                                _Ts(now - ago + 60), "complete", csat, nps))  # fmt: skip
    return out


# ---------------------------------------------------------------- orchestration

_BULK_TABLES = ("members", "member_phones", "purchases", "points_ledger", "inquiries", "complaints",
                "call_attempts", "survey_responses", "callback_tasks")  # fmt: skip


def _secondary_indexes() -> list[Index]:
    out: list[Index] = []
    for name in _BULK_TABLES:
        out.extend(sorted(Base.metadata.tables[name].indexes, key=lambda i: str(i.name)))
    return out


def _seed_reference_data(engine: Engine, now: dt.datetime) -> tuple[tuple[int, ...], int, int]:
    password_hash = hash_password(DEMO_PASSWORD)
    with session_scope(engine) as s:
        existing = s.scalar(select(func.count()).select_from(Member)) or 0
        if existing:
            raise ValueError(
                f"database already has {existing} members: seed demo data into an empty database"
            )
        agents = []
        for i, code in enumerate(AGENT_CODES):
            a = s.scalar(select(Agent).where(Agent.code == code))
            if a is None:
                a = Agent(code=code, extension=code, name=AGENT_NAMES[i], role=Role.AGENT,
                          password_hash=password_hash, created_at=now)  # fmt: skip
                s.add(a)
            agents.append(a)
        if s.scalar(select(Agent).where(Agent.code == SUPERVISOR_CODE)) is None:
            s.add(Agent(code=SUPERVISOR_CODE, extension=SUPERVISOR_CODE, name="主管 Supervisor Liu",
                        role=Role.SUPERVISOR, password_hash=password_hash, created_at=now))  # fmt: skip
        seed_rewards(s)
        survey = s.scalar(
            select(SurveyDefinition).where(SurveyDefinition.name == "demo_history_csat")
        )
        if survey is None:
            survey = SurveyDefinition(name="demo_history_csat", version=1, sha256="0" * 64, created_at=now,
                                      source_toml="# historical CSAT scores imported with the demo data\n")  # fmt: skip
            s.add(survey)
        s.flush()
        return tuple(a.id for a in agents), survey.id, len(agents) + 1


def seed_demo(
    url: str,
    members: int = 1000,
    seed: int = 1,
    now: dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
    refresh_segments: bool = True,
    region_weights: Mapping[str, float] | None = None,
) -> DemoSummary:
    """Create (migrate) and fill a demo database; ``progress(n)`` is called with members done.
    ``region_weights`` replaces :data:`REGIONS`' share of members per region (e.g.
    :func:`open_region_weights`)."""
    started = time.perf_counter()
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    upgrade(url)
    # Not memory-mapped: seeding writes the whole file and then reads all of it (index
    # builds, RFM), and every mapped page touched would stay in the seeder's RSS (1M
    # members: a 1.9 GB file, 2.0 GB peak RSS with the mapping).
    engine = make_engine(normalise_url(url), mmap_bytes=0)
    summary = DemoSummary()
    try:
        agent_ids, survey_id, summary.agents = _seed_reference_data(engine, now)
        is_pg = engine.dialect.name == "postgresql"
        ctx = _Context(_pg_ts if is_pg else _sqlite_ts, _pg_day if is_pg else _iso_day, int(now.timestamp()),
                       now.date(), _Calendar.build(now), agent_ids, survey_id)  # fmt: skip
        if region_weights is not None:
            codes = tuple(r for r in _REGION_CODES if region_weights.get(r, 0.0) > 0)
            if not codes:
                raise ValueError("region_weights: no region with a positive weight")
            cdf = [sum(region_weights[r] for r in codes[: i + 1]) for i in range(len(codes))]
            ctx = dataclasses.replace(ctx, region_codes=codes, region_cdf=tuple(cdf))
        indexes = _secondary_indexes()
        with engine.begin() as conn:
            for idx in indexes:
                idx.drop(conn)
        t0 = time.perf_counter()
        raw = engine.raw_connection()
        writer: _Writer = (
            _PostgresWriter(raw.driver_connection)
            if engine.dialect.name == "postgresql"
            else _SqliteWriter(raw)
        )
        try:
            ids = _Ids()
            done = 0
            chunk_no = 0
            while done < members:
                count = min(CHUNK, members - done)
                rng = random.Random(f"memberline-demo:{seed}:{chunk_no}")
                chunk = _generate_chunk(ctx, rng, done + 1, count, ids)
                for table, cols, rows in (
                    ("members", MEMBER_COLS, chunk.members), ("member_phones", PHONE_COLS, chunk.phones),
                    ("purchases", PURCHASE_COLS, chunk.purchases), ("points_ledger", LEDGER_COLS, chunk.ledger),
                    ("inquiries", INQUIRY_COLS, chunk.inquiries), ("complaints", COMPLAINT_COLS, chunk.complaints),
                    ("call_attempts", CALL_COLS, chunk.calls), ("survey_responses", SURVEY_COLS, chunk.surveys),
                    ("callback_tasks", CALLBACK_COLS, chunk.callbacks),
                ):  # fmt: skip
                    writer.write(table, cols, rows)
                writer.commit()
                summary.members += len(chunk.members)
                summary.phones += len(chunk.phones)
                summary.purchases += len(chunk.purchases)
                summary.ledger += len(chunk.ledger)
                summary.inquiries += len(chunk.inquiries)
                summary.complaints += len(chunk.complaints)
                summary.open_complaints += sum(
                    1 for c in chunk.complaints if c[7] in ("open", "in_progress")
                )
                summary.calls += len(chunk.calls)
                summary.surveys += len(chunk.surveys)
                summary.callbacks += len(chunk.callbacks)
                done += count
                chunk_no += 1
                if progress is not None:
                    progress(done)
        finally:
            writer.close()
            raw.close()
        summary.timings["load_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            for idx in indexes:
                idx.create(conn)
            if engine.dialect.name == "postgresql":
                for table in _BULK_TABLES:
                    conn.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"))  # fmt: skip
        summary.timings["indexes_s"] = round(time.perf_counter() - t0, 1)
        if refresh_segments:
            t0 = time.perf_counter()
            with session_scope(engine) as s:
                refresh_rfm(s, now)
            summary.timings["rfm_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA analysis_limit=2000")
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        summary.timings["analyze_s"] = round(time.perf_counter() - t0, 1)
    finally:
        engine.dispose()
    summary.seconds = round(time.perf_counter() - started, 1)
    return summary
