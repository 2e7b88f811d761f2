"""Screen-pop assembly: caller number -> member / chooser / unknown, masked for agents.

Runs on a worker thread (``run_db(engine, build_pop, caller_num, caller_name, region)``).
Who is calling is one SQL statement (hotline leg, dialled attempt, members with the number);
the profile (with next-best-action hints, :func:`crm_bridge.profile.build_profile`) a second
one when exactly one member is found. This module decides the pop's kind and masks every
phone and email in it.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from crm_bridge.jsonrows import RowsDecoder, json_row, json_rows
from crm_bridge.lookup import by_phone_select, summaries
from crm_bridge.models import HOTLINE_OUTCOME, CallAttempt, Member
from crm_bridge.phones import normalise
from cti.screenpop import crm
from cti.screenpop.mask import mask_phone, mask_tree

MAX_MATCHES = 20


@dataclass(frozen=True)
class Pop:
    kind: str
    """``member`` (one match), ``chooser`` (several) or ``unknown`` (none / no number)."""
    caller_num: str
    caller_name: str
    e164: str | None
    member_ids: list[int] = field(default_factory=list)
    profile: dict[str, Any] | None = None
    matches: list[dict[str, Any]] = field(default_factory=list)
    ivr: str | None = None
    """What the caller heard on the self-service hotline before asking for an agent."""

    @property
    def maintainer_code(self) -> str | None:
        """The member's maintaining agent (one identified member only)."""
        if self.kind != "member" or not self.profile:
            return None
        code = (self.profile.get("member") or {}).get("maintaining_agent_code")
        return str(code) if code else None

    def to_push(self, call_id: str, queue: str | None) -> dict[str, Any]:
        return {
            "call_id": call_id,
            "queue": queue,
            "caller": {
                "number_masked": mask_phone(self.e164 or self.caller_num),
                "name": self.caller_name,
            },
            "kind": self.kind,
            "profile": self.profile,
            "matches": self.matches,
            "ivr": self.ivr,
        }


@dataclass(frozen=True)
class _PopStatement:
    stmt: Any
    hotline: RowsDecoder
    dialled: RowsDecoder
    matches: RowsDecoder


@functools.lru_cache(maxsize=4)
def _pop_statement(dialect: Dialect) -> _PopStatement:
    """Who is calling, in one statement built once per dialect (binds ``cid``, ``e164``):

    * the hotline leg of call ``cid``, if the caller came through the self-service hotline:
      the member it identified (even from an unknown or shared number) and what they heard;
    * the attempt our dialer placed as ``cid`` (its Linkedid is the preset ChannelId):
      Asterisk shows the campaign's own CallerID on an originated call that reaches a queue,
      so for those calls the number says nothing about the member, the attempt row does;
    * the members with number ``e164`` (at most :data:`MAX_MATCHES`, by member id).
    """
    d = dialect.name
    cid: Any = bindparam("cid")
    hotline = (
        select(CallAttempt.member_id, CallAttempt.notes)
        .where(CallAttempt.linkedid == cid, CallAttempt.outcome == HOTLINE_OUTCOME)
        .order_by(CallAttempt.id.desc())
    )
    dialled = select(CallAttempt.member_id, CallAttempt.phone_e164).where(
        CallAttempt.channel_id == cid
    )
    matches = by_phone_select().limit(MAX_MATCHES)
    stmt = select(
        json_row(d, hotline).label("hotline"),
        json_row(d, dialled).label("dialled"),
        json_rows(d, matches, (Member.id,)).label("matches"),
    )
    return _PopStatement(
        stmt,
        RowsDecoder(hotline, dialect, numbered=False),
        RowsDecoder(dialled, dialect, numbered=False),
        RowsDecoder(matches, dialect),
    )


def _member_pop(
    s: Session, member_id: int, caller_num: str, caller_name: str, e164: str | None, **kw: Any
) -> Pop | None:
    profile = crm.profile(s, member_id)
    if profile is None:
        return None
    return Pop(
        "member", caller_num, caller_name, e164, [member_id], profile=mask_tree(profile), **kw
    )


def _by_number(
    s: Session, caller_num: str, caller_name: str, e164: str | None, matches: list[Any]
) -> Pop:
    if e164 is None or not matches:
        return Pop("unknown", caller_num, caller_name, e164)
    ids = [m.member_id for m in matches]
    if len(ids) == 1:
        pop = _member_pop(s, ids[0], caller_num, caller_name, e164)
        if pop is not None:
            return pop
    found = [m.to_dict() for m in matches]
    return Pop("chooser", caller_num, caller_name, e164, ids, matches=mask_tree(found))


def build_pop(
    s: Session, caller_num: str, caller_name: str, region: str, call_id: str | None = None
) -> Pop:
    """The pop for a call: two SQL statements when one member is found (who is calling,
    then the profile), one otherwise."""
    e164 = normalise(caller_num, region)
    conn = s.connection()
    q = _pop_statement(conn.dialect)
    row = conn.execute(q.stmt, {"cid": call_id, "e164": e164}).one()
    matches = summaries(q.matches.rows(row[2]))
    heard = q.hotline.first(row[0])
    if heard is not None:
        member_id, summary = heard[0], str(heard[1] or "")
        if member_id is None:
            return dataclasses.replace(
                _by_number(s, caller_num, caller_name, e164, matches), ivr=summary
            )
        pop = _member_pop(
            s, int(member_id), caller_num, caller_name, normalise(caller_num, region), ivr=summary
        )
        if pop is not None:
            return pop
    dialled = q.dialled.first(row[1])
    if dialled is not None and dialled[0] is not None:
        member_id, number = int(dialled[0]), dialled[1]
        profile = crm.profile(s, member_id)
        if profile is not None:
            name = str((profile.get("member") or {}).get("name") or caller_name)
            return Pop(
                "member",
                number or caller_num,
                name,
                number,
                [member_id],
                profile=mask_tree(profile),
            )
    return _by_number(s, caller_num, caller_name, e164, matches)
