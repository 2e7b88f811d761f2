"""Find members: by caller number (screen pop), or by a search box (number, name, member no).

Results are frozen :class:`MemberSummary` values, never ORM objects, so they can cross
threads and be serialised for the hub. :func:`build_profile` (the full screen-pop file)
lives in :mod:`crm_bridge.profile` and is re-exported here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, select
from sqlalchemy.orm import Session

from crm_bridge.models import Member, MemberPhone
from crm_bridge.phones import DEFAULT_REGION, normalise
from crm_bridge.profile import Profile, build_profile

__all__ = [
    "MEMBER_COLUMNS",
    "MemberSummary",
    "Profile",
    "build_profile",
    "by_phone_select",
    "find_members_by_phone",
    "get_member_summary",
    "search_members",
    "summaries",
]


@dataclass(frozen=True, slots=True)
class MemberSummary:
    """One line of a chooser: enough to pick the right member and route the call."""

    member_id: int
    member_no: str
    name: str
    tier: str
    points_balance: int
    locale: str
    timezone: str
    maintaining_agent_id: int | None
    do_not_call: bool
    phone_e164: str | None
    """The matched number (phone lookups) or the member's first number (other searches)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "member_no": self.member_no,
            "name": self.name,
            "tier": self.tier,
            "points_balance": self.points_balance,
            "locale": self.locale,
            "timezone": self.timezone,
            "maintaining_agent_id": self.maintaining_agent_id,
            "do_not_call": self.do_not_call,
            "phone_e164": self.phone_e164,
        }


MEMBER_COLUMNS = (
    Member.id,
    Member.member_no,
    Member.name,
    Member.tier,
    Member.points_balance,
    Member.locale,
    Member.timezone,
    Member.maintaining_agent_id,
    Member.do_not_call,
)


def summaries(rows: Iterable[Any]) -> list[MemberSummary]:
    """Rows of :data:`MEMBER_COLUMNS` + a phone number as :class:`MemberSummary` values."""
    return [
        MemberSummary(
            member_id=r[0],
            member_no=r[1],
            name=r[2],
            tier=str(r[3].value if hasattr(r[3], "value") else r[3]),
            points_balance=r[4],
            locale=r[5],
            timezone=r[6],
            maintaining_agent_id=r[7],
            do_not_call=bool(r[8]),
            phone_e164=r[9],
        )
        for r in rows
    ]


def find_members_by_phone(
    session: Session, raw: str | None, region: str = DEFAULT_REGION
) -> list[MemberSummary]:
    """Every member with this number (ordered by member id); ``[]`` for an unknown caller.

    ``raw`` is whatever the PBX sent (``<unknown>``, ``anonymous``, national or international
    forms); it is normalised to E.164 with ``region`` for national numbers. One indexed query.
    """
    e164 = normalise(raw, region)
    if e164 is None:
        return []
    return summaries(session.connection().execute(_phone_statement(), {"e164": e164}))


def by_phone_select() -> Select[Any]:
    """The members with number ``:e164`` (unordered): :data:`MEMBER_COLUMNS` and the number,
    rows for :func:`summaries`."""
    return (
        select(*MEMBER_COLUMNS, MemberPhone.e164)
        .join(MemberPhone, MemberPhone.member_id == Member.id)
        .where(MemberPhone.e164 == bindparam("e164"))
    )


@functools.cache
def _phone_statement() -> Any:
    return by_phone_select().order_by(Member.id)


def _first_phone() -> Any:
    return (
        select(MemberPhone.e164)
        .where(MemberPhone.member_id == Member.id)
        .order_by(MemberPhone.invalid, MemberPhone.id)
        .limit(1)
        .correlate(Member)
        .scalar_subquery()
    )


def _with_first_phone(where: ColumnElement[bool]) -> Select[Any]:
    return select(*MEMBER_COLUMNS, _first_phone()).where(where)


def get_member_summary(session: Session, member_id: int) -> MemberSummary | None:
    rows = summaries(session.execute(_with_first_phone(Member.id == member_id)))
    return rows[0] if rows else None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_members(
    session: Session, query: str, limit: int = 20, region: str = DEFAULT_REGION
) -> list[MemberSummary]:
    """Search by member number (exact), phone number (any form), or name.

    Names match by prefix first (index range scan) then by substring, so ``李`` finds every
    李, ``伟`` finds 李伟, and ``wei`` finds "Wei Zhang" and "Li Wei" (case-insensitive for
    ASCII). Results: exact member number, then phone matches, then name matches, deduplicated,
    at most ``limit``.
    """
    q = (query or "").strip()
    if not q or limit <= 0:
        return []
    found: list[MemberSummary] = []
    seen: set[int] = set()

    def add(rows: Sequence[MemberSummary]) -> None:
        for row in rows:
            if row.member_id not in seen and len(found) < limit:
                seen.add(row.member_id)
                found.append(row)

    add(summaries(session.execute(_with_first_phone(Member.member_no.in_({q, q.upper()})))))
    if len(found) < limit and any(ch.isdigit() for ch in q):
        add(find_members_by_phone(session, q, region))
    if len(found) < limit:
        pattern = _escape_like(q) + "%"
        where: ColumnElement[bool] = Member.name.like(pattern, escape="\\")
        if session.get_bind().dialect.name == "sqlite":
            # Let SQLite use ix_members_name: LIKE alone cannot (it is case-insensitive there).
            where = Member.name.between(q, q + "\U0010ffff") & where
        stmt = _with_first_phone(where).order_by(Member.name, Member.id).limit(limit)
        add(summaries(session.execute(stmt)))
    if len(found) < limit:
        pattern = "%" + _escape_like(q) + "%"
        stmt = (
            _with_first_phone(Member.name.ilike(pattern, escape="\\"))
            .order_by(Member.id)
            .limit(limit + len(seen))
        )
        add(summaries(session.execute(stmt)))
    return found
