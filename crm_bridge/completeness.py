"""Member data completeness: which of the seven things a member file should hold are there.

The items (one definition, used by the report's SQL and by the screen pop's pure check):

========== ===========================================================
phone      at least one phone not flagged invalid
birthday   a birthday
gender     F, M or X (``U`` = unknown counts as missing)
city       a city (the address line)
email      an email address not flagged undeliverable
consent    the member's consent choices were recorded (``consent_recorded_at``)
maintainer a maintaining agent
========== ===========================================================

The score is the share of items present, 0-100. ``completeness_report`` counts per store
(the store of the member's latest purchase) or per maintaining agent in one GROUP BY.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from crm_bridge.models import Agent, Gender, Member, MemberPhone, Purchase

__all__ = [
    "FIELDS",
    "LABELS",
    "By",
    "CompletenessGroup",
    "CompletenessReport",
    "completeness_report",
    "missing_fields",
]

FIELDS = ("phone", "birthday", "gender", "city", "email", "consent", "maintainer")
LABELS: dict[str, tuple[str, str]] = {
    "phone": ("phone", "电话"),
    "birthday": ("birthday", "生日"),
    "gender": ("gender", "性别"),
    "city": ("city", "城市"),
    "email": ("email", "邮箱"),
    "consent": ("consent", "授权"),
    "maintainer": ("maintainer", "维护人"),
}
"""Item -> (English, Chinese) as the agent reads it."""
FILLABLE = ("birthday", "gender", "city", "email", "consent")
"""Items the agent can fill in during a call (``member_update``); a phone and a maintainer
are set elsewhere (the caller's number, a supervisor's reassignment)."""


class By(enum.StrEnum):
    STORE = "store"
    MAINTAINER = "maintainer"
    ALL = "all"


def missing_fields(
    *,
    has_valid_phone: bool,
    birthday: dt.date | None,
    gender: str,
    city: str | None,
    email: str | None,
    email_invalid: bool,
    consent_recorded_at: dt.datetime | None,
    maintaining_agent_id: int | None,
) -> tuple[str, ...]:
    """The items a member file lacks, in :data:`FIELDS` order (pure)."""
    present = {
        "phone": has_valid_phone,
        "birthday": birthday is not None,
        "gender": gender in (Gender.FEMALE.value, Gender.MALE.value, Gender.OTHER.value),
        "city": bool(city and city.strip()),
        "email": bool(email and email.strip()) and not email_invalid,
        "consent": consent_recorded_at is not None,
        "maintainer": maintaining_agent_id is not None,
    }
    return tuple(f for f in FIELDS if not present[f])


def parse_value(item: str, value: str, today: dt.date) -> Any:
    """The agent's typed value for a fillable item, checked; raises ValueError saying why.

    birthday ``YYYY-MM-DD`` (not in the future, not before 1900); gender ``F``/``M``/``X``;
    city any text up to 64 characters; email a deliverable-looking address (email-validator,
    no DNS lookup); consent the channels the member agrees to, e.g. ``call,sms`` or ``none``.
    """
    value = value.strip()
    if item == "birthday":
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError("birthday: expected YYYY-MM-DD") from None
        if not dt.date(1900, 1, 1) <= day <= today:
            raise ValueError("birthday: not a plausible date")
        return day
    if item == "gender":
        g = value.upper()
        if g not in ("F", "M", "X"):
            raise ValueError("gender: expected F, M or X")
        return Gender(g)
    if item == "city":
        if not value or len(value) > 64:
            raise ValueError("city: 1-64 characters")
        return value
    if item == "email":
        from email_validator import EmailNotValidError, validate_email

        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(f"email: {exc}") from None
    if item == "consent":
        chosen = {c.strip().lower() for c in value.split(",") if c.strip()}
        if chosen == {"none"}:
            return frozenset()
        if not chosen or not chosen <= {"call", "sms", "email"}:
            raise ValueError("consent: channels among call, sms, email (or none)")
        return frozenset(chosen)
    raise ValueError(f"{item}: cannot be filled in from the console")


def apply_value(member: Member, item: str, value: Any, now: dt.datetime) -> None:
    """Write a value from :func:`parse_value` onto the member row."""
    if item == "consent":
        member.consent_call = "call" in value
        member.consent_sms = "sms" in value
        member.consent_email = "email" in value
        member.consent_recorded_at = now
    elif item == "email":
        member.email = value
        member.email_invalid = False
    else:
        setattr(member, item, value)


def score(missing: Sequence[str]) -> int:
    return round(100 * (len(FIELDS) - len(missing)) / len(FIELDS))


def _present() -> dict[str, ColumnElement[bool]]:
    """Each item as a SQL condition on ``members`` (the same definitions as above)."""
    return {
        "phone": exists().where(MemberPhone.member_id == Member.id, MemberPhone.invalid.is_(False)),
        "birthday": Member.birthday.is_not(None),
        "gender": Member.gender.in_((Gender.FEMALE, Gender.MALE, Gender.OTHER)),
        "city": and_(Member.city.is_not(None), func.trim(Member.city) != ""),
        "email": and_(Member.email.is_not(None), func.trim(Member.email) != "",
                      Member.email_invalid.is_(False)),
        "consent": Member.consent_recorded_at.is_not(None),
        "maintainer": Member.maintaining_agent_id.is_not(None),
    }  # fmt: skip


@dataclass
class CompletenessGroup:
    key: str
    label: str
    members: int = 0
    present: dict[str, int] = field(default_factory=dict)
    complete: int = 0
    """Members with every item."""

    @property
    def score(self) -> float | None:
        if not self.members:
            return None
        return 100.0 * sum(self.present.values()) / (self.members * len(FIELDS))

    def missing_pct(self, item: str) -> float | None:
        if not self.members:
            return None
        return 100.0 * (self.members - self.present.get(item, 0)) / self.members

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "members": self.members,
            "complete": self.complete,
            "score": self.score,
            "missing_pct": {f: self.missing_pct(f) for f in FIELDS},
        }


@dataclass(frozen=True)
class CompletenessReport:
    by: By
    groups: list[CompletenessGroup]
    total: CompletenessGroup
    generated_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by.value,
            "generated_at": self.generated_at.isoformat(),
            "groups": [g.to_dict() for g in self.groups],
            "total": self.total.to_dict(),
        }


def completeness_report(
    session: Session, by: By | str = By.MAINTAINER, *, now: dt.datetime | None = None
) -> CompletenessReport:
    """Per group: members, how many have each item, how many have all (one GROUP BY)."""
    by = By(by)
    present = _present()
    flags = [case((cond, 1), else_=0) for cond in present.values()]
    all_present = case((and_(*present.values()), 1), else_=0)
    maint = aliased(Agent)
    if by is By.STORE:
        key: Any = (
            select(Purchase.store)
            .where(Purchase.member_id == Member.id)
            .order_by(Purchase.purchased_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        label: Any = key
    elif by is By.MAINTAINER:
        key, label = maint.code, maint.name
    else:
        key = label = literal("all")
    stmt = (
        select(
            key.label("k"),
            func.max(label),
            func.count(),
            *(func.sum(f) for f in flags),
            func.sum(all_present),
        )
        .select_from(Member)
        .outerjoin(maint, maint.id == Member.maintaining_agent_id)
        .group_by(key)
    )
    groups: list[CompletenessGroup] = []
    total = CompletenessGroup("all", "All")
    for row in session.execute(stmt):
        k, lab, n = row[0], row[1], int(row[2])
        counts = [int(v or 0) for v in row[3 : 3 + len(FIELDS)]]
        if by is By.MAINTAINER:
            name = f"{lab} ({k})" if k is not None else "(no maintainer)"
        elif by is By.STORE:
            name = k if k is not None else "(no purchase)"
        else:
            name = "All"
        g = CompletenessGroup("none" if k is None else str(k), name, n,
                              dict(zip(FIELDS, counts, strict=True)), int(row[-1] or 0))  # fmt: skip
        groups.append(g)
        total.members += n
        total.complete += g.complete
        for f, c in g.present.items():
            total.present[f] = total.present.get(f, 0) + c
    groups.sort(key=lambda g: (g.score if g.score is not None else 101.0, g.key))
    return CompletenessReport(by, groups, total, now or dt.datetime.now(dt.UTC))


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def format_table(report: CompletenessReport) -> list[list[str]]:
    head = [report.by.value.capitalize(), "Members", "Score", "All 7",
            *(f"no {LABELS[f][0]}" for f in FIELDS)]  # fmt: skip

    def cells(g: CompletenessGroup) -> list[str]:
        return [g.label, str(g.members), fmt(g.score), str(g.complete),
                *(fmt(g.missing_pct(f)) for f in FIELDS)]  # fmt: skip

    return [head, *(cells(g) for g in report.groups), ["Total", *cells(report.total)[1:]]]


def render_html(report: CompletenessReport) -> str:
    from crm_bridge.report_html import Page, Table, render_page
    from surveys.charts import bar_chart

    t = report.total
    missing_bars = [(LABELS[f][0], t.members - t.present.get(f, 0), "#c0392b") for f in FIELDS]
    worst = report.groups[:12]
    group_bars = [(g.label[:14], round(g.score or 0), "#2f7ed8") for g in worst]
    table = format_table(report)
    page = Page(
        title="Member data completeness · 会员资料完整度",
        subtitle=f"grouped by {report.by.value} · generated "
        f"{report.generated_at.strftime('%Y-%m-%d %H:%M UTC')}",
        kpis=(
            (str(t.members), "Members"),
            (fmt(t.score), "Average completeness"),
            (str(t.complete), "Files with all 7 items"),
        ),
        charts=(
            bar_chart("Members missing each item", missing_bars, x_title="item"),
            bar_chart(
                f"Completeness score by {report.by.value} (lowest first, %)",
                group_bars,
                x_title=report.by.value,
            ),
        ),
        tables=(Table(f"By {report.by.value}", table[0], table[1:-1], table[-1]),),
        notes="Items: a valid phone, birthday, gender, city, a deliverable email, consent"
        " choices recorded, a maintaining agent. Score = share of the seven items present."
        " Store = the store of the member's latest purchase.",
    )
    return render_page(page)
