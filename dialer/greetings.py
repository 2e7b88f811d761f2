"""Birthday and holiday greetings, queued through the outbox exactly once a year.

``run_greetings(engine, day)`` finds the occasions of ``day`` (and of the ``catch_up_days``
before it, for a service that was down): each member's birthday, and the configured
holidays of the ``holidays`` library's calendar (China by default: Spring Festival and
Mid-Autumn). For every member who consents to SMS or email it writes one
``member_greetings`` row -- unique per member, occasion and year -- and, in the same
transaction, the outbox rows (:func:`dialer.fallback.outbox.enqueue_many`, SMS first, email only
when the SMS fails). A member already greeted for that occasion that year is left out by the
unique key (``INSERT ... ON CONFLICT DO NOTHING RETURNING``), so any number of runs, restarts
or concurrent runs on several hubs send each greeting once. Quiet hours, the daily cap and
consent at send time are the outbox worker's.

Birthdays on 29 February are greeted on 28 February in common years. A holiday is greeted on
its first day (Spring Festival lasts several); its name is written in the member's language
(``zh-CN``, ``zh-TW`` or English).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Engine, Table, and_, extract, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crm_bridge.db import session_scope
from crm_bridge.models import Member, MemberGreeting, utcnow
from dialer.fallback.outbox import enqueue_many
from dialer.fallback.purposes import OrderPolicy, Purpose

__all__ = ["GreetingRun", "Occasion", "holiday_occasions", "run_greetings"]

log = logging.getLogger(__name__)

BIRTHDAY = "birthday"
BATCH = 500
"""Members greeted per transaction: a crash loses at most one uncommitted batch, which the
next run sends (nothing was committed for it, neither the key nor the messages)."""
_LANGS = {"en": "en_US", "zh-CN": "zh_CN", "zh-TW": "zh_TW"}
_GREETING_TABLE = cast(Table, MemberGreeting.__table__)


@dataclass(frozen=True)
class Occasion:
    key: str
    """``birthday`` or the holiday's slug (``chinese_new_year_spring_festival``)."""
    day: dt.date
    names: dict[str, str] = field(default_factory=dict)
    """Holiday name per template locale (``en``, ``zh-CN``, ``zh-TW``)."""

    @property
    def year(self) -> int:
        return self.day.year


@dataclass
class GreetingRun:
    day: dt.date
    occasions: list[str] = field(default_factory=list)
    queued: dict[str, int] = field(default_factory=dict)
    """occasion key -> members greeted by this run."""

    @property
    def total(self) -> int:
        return sum(self.queued.values())


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:64]


def holiday_occasions(
    day: dt.date, country: str, wanted: Sequence[str], catch_up_days: int = 0
) -> list[Occasion]:
    """The configured holidays (English names) whose first day falls in
    ``[day - catch_up_days, day]``. Pure: the calendar comes from the ``holidays`` library."""
    import holidays

    lo = day - dt.timedelta(days=catch_up_days)
    years = set(range(lo.year - 1, day.year + 1))
    calendars = {
        loc: holidays.country_holidays(country, years=years, language=lang)
        for loc, lang in _LANGS.items()
    }
    en = calendars["en"]
    firsts: dict[tuple[str, int], dt.date] = {}
    for d in sorted(en):
        for name in en.get_list(d):
            key = (name, d.year)
            if name in wanted and key not in firsts:
                firsts[key] = d
    out = []
    for (name, _year), first in sorted(firsts.items(), key=lambda kv: kv[1]):
        if not lo <= first <= day:
            continue
        index = en.get_list(first).index(name)
        names = {}
        for loc, cal in calendars.items():
            local = cal.get_list(first)
            names[loc] = local[index] if index < len(local) else name
        out.append(Occasion(slug(name), first, names))
    return out


def birthday_occasions(day: dt.date, catch_up_days: int = 0) -> list[tuple[Occasion, int, int]]:
    """(occasion, birth month, birth day) for each day of ``[day - catch_up_days, day]``;
    28 February of a common year also greets the 29 February birthdays."""
    out = []
    for back in range(catch_up_days, -1, -1):
        d = day - dt.timedelta(days=back)
        occ = Occasion(BIRTHDAY, d)
        out.append((occ, d.month, d.day))
        if d.month == 2 and d.day == 28 and not _leap(d.year):
            out.append((occ, 2, 29))
    return out


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _reachable() -> Any:
    """Members a greeting can reach: SMS or email consent (the outbox picks the address and
    checks consent, quiet hours and the cap again at send time)."""
    return or_(
        Member.consent_sms.is_(True),
        and_(Member.consent_email.is_(True), Member.email.is_not(None), Member.email_invalid.is_(False)),
    )  # fmt: skip


def _not_greeted(occ: Occasion) -> Any:
    return ~(
        select(MemberGreeting.id)
        .where(
            MemberGreeting.member_id == Member.id,
            MemberGreeting.occasion == occ.key,
            MemberGreeting.year == occ.year,
        )
        .exists()
    )


def _claim(s: Session, occ: Occasion, member_ids: Sequence[int]) -> list[int]:
    """Write the idempotency keys of a batch; the members whose key is new (greet them)."""
    ins: Any = (postgresql if s.get_bind().dialect.name == "postgresql" else sqlite).insert(
        _GREETING_TABLE
    )
    now = utcnow()
    stmt = ins.on_conflict_do_nothing(index_elements=["member_id", "occasion", "year"]).returning(
        _GREETING_TABLE.c.member_id
    )
    rows = [
        {"member_id": m, "occasion": occ.key, "year": occ.year, "occasion_date": occ.day,
         "created_at": now}
        for m in member_ids
    ]  # fmt: skip
    return [int(r[0]) for r in s.execute(stmt, rows)]


def _batches(engine: Engine, stmt: Any) -> Iterator[list[tuple[int, str]]]:
    """The candidates (member id, locale) in batches of :data:`BATCH`, read up front by id
    range so each batch's transaction is short."""
    last = 0
    while True:
        with session_scope(engine) as s:
            rows = [
                (int(r[0]), str(r[1]))
                for r in s.execute(stmt.where(Member.id > last).order_by(Member.id).limit(BATCH))
            ]
        if not rows:
            return
        last = rows[-1][0]
        yield rows


def _greet(engine: Engine, occ: Occasion, where: Any, purpose: Purpose) -> int:
    from dialer.fallback.templates import pick_locale

    stmt = select(Member.id, Member.locale).where(where, _reachable(), _not_greeted(occ))
    done = 0
    for rows in _batches(engine, stmt):
        locales = dict(rows)
        with session_scope(engine) as s:
            items = []
            for mid in _claim(s, occ, list(locales)):
                payload: dict[str, Any] = {"occasion": occ.key}
                if occ.names:
                    payload["holiday"] = occ.names.get(pick_locale(locales[mid]), occ.names["en"])
                items.append((mid, f"{occ.key}/{occ.year}", payload))
            enqueue_many(s, purpose, items, order=OrderPolicy.SMS_ELSE_EMAIL)
            done += len(items)
    return done


def run_greetings(
    engine: Engine,
    day: dt.date,
    *,
    country: str = "CN",
    holidays: Sequence[str] = ("Chinese New Year (Spring Festival)", "Mid-Autumn Festival"),
    catch_up_days: int = 2,
) -> GreetingRun:
    """Queue the greetings of ``day`` (see the module doc); safe to run any number of times."""
    run = GreetingRun(day)
    births = birthday_occasions(day, catch_up_days)
    by_day: dict[dt.date, list[tuple[int, int]]] = {}
    for occ, month, mday in births:
        by_day.setdefault(occ.day, []).append((month, mday))
    for d, pairs in by_day.items():
        occ = Occasion(BIRTHDAY, d)
        when = or_(
            *(
                and_(extract("month", Member.birthday) == m, extract("day", Member.birthday) == dd)
                for m, dd in pairs
            )
        )
        n = _greet(engine, occ, and_(Member.birthday.is_not(None), when), Purpose.BIRTHDAY)
        run.queued[BIRTHDAY] = run.queued.get(BIRTHDAY, 0) + n
        run.occasions.append(f"{BIRTHDAY} {d.isoformat()}")
    for occ in holiday_occasions(day, country, holidays, catch_up_days):
        n = _greet(engine, occ, literal(True), Purpose.HOLIDAY)
        run.queued[occ.key] = run.queued.get(occ.key, 0) + n
        run.occasions.append(f"{occ.key} {occ.day.isoformat()}")
    log.info("greetings for %s: %s", day, run.queued or "none due")
    return run
