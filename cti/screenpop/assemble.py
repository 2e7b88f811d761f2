"""Screen-pop assembly: caller number -> member / chooser / unknown, masked for agents.

Runs on a worker thread (``run_db(engine, build_pop, caller_num, caller_name, region)``).
The lookup and the profile (with next-best-action hints) come from ``crm_bridge``;
this module decides the pop's kind and masks every phone and email in it.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from crm_bridge.models import HOTLINE_OUTCOME, CallAttempt
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


@functools.cache
def _dialled_statement() -> Any:
    """Built once; a Core statement on the session's connection (no ORM execution path)."""
    return select(CallAttempt.member_id, CallAttempt.phone_e164).where(
        CallAttempt.channel_id == bindparam("cid")
    )


def _dialled_member(s: Session, call_id: str) -> tuple[int, str | None] | None:
    """(member, number) of a call our dialer placed: its Linkedid is the preset ChannelId.

    Asterisk shows the campaign's own CallerID on an originated call that reaches a queue,
    so for those calls the number says nothing about the member; the attempt row does.
    """
    row = s.connection().execute(_dialled_statement(), {"cid": call_id}).one_or_none()
    if row is None or row[0] is None:
        return None
    return int(row[0]), row[1]


def hotline_heard(s: Session, linkedid: str) -> tuple[int | None, str] | None:
    """For the pop: (member, summary) of the hotline leg of call ``linkedid``, if any."""
    row = s.execute(
        select(CallAttempt.member_id, CallAttempt.notes)
        .where(CallAttempt.linkedid == linkedid, CallAttempt.outcome == HOTLINE_OUTCOME)
        .order_by(CallAttempt.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return (int(row[0]) if row[0] is not None else None), str(row[1] or "")


def _hotline_pop(
    s: Session, caller_num: str, caller_name: str, region: str, heard: tuple[int | None, str]
) -> Pop | None:
    """The caller came through the hotline: the member it identified (even from an unknown
    or shared number), and what they heard."""
    member_id, summary = heard
    if member_id is None:
        pop = build_pop(s, caller_num, caller_name, region)
        return dataclasses.replace(pop, ivr=summary)
    profile = crm.profile(s, member_id)
    if profile is None:
        return None
    return Pop(
        "member",
        caller_num,
        caller_name,
        normalise(caller_num, region),
        [member_id],
        profile=mask_tree(profile),
        ivr=summary,
    )


def build_pop(
    s: Session, caller_num: str, caller_name: str, region: str, call_id: str | None = None
) -> Pop:
    if call_id is not None:
        heard = hotline_heard(s, call_id)
        if heard is not None:
            pop = _hotline_pop(s, caller_num, caller_name, region, heard)
            if pop is not None:
                return pop
        dialled = _dialled_member(s, call_id)
        if dialled is not None:
            member_id, number = dialled
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
    e164 = normalise(caller_num, region)
    if e164 is None:
        return Pop("unknown", caller_num, caller_name, None)
    matches = crm.find_members(s, e164, region, limit=MAX_MATCHES)
    ids = [m["member_id"] for m in matches]
    if not ids:
        return Pop("unknown", caller_num, caller_name, e164)
    if len(ids) == 1:
        profile = crm.profile(s, ids[0])
        if profile is not None:
            return Pop("member", caller_num, caller_name, e164, ids, profile=mask_tree(profile))
    return Pop("chooser", caller_num, caller_name, e164, ids, matches=mask_tree(matches))
