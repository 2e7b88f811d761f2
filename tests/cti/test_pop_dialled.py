"""A call our dialer placed pops the member it dialled, not whoever owns the campaign's CallerID."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, event

from crm_bridge.db import session_scope
from crm_bridge.models import CallAttempt, Direction, Member, MemberPhone
from cti.screenpop.assemble import build_pop


def test_dialler_call_pops_the_dialled_member(engine: Engine) -> None:
    with session_scope(engine) as s:
        m = Member(member_no="D1", name="黄晓明", joined_on=dt.date(2024, 5, 1))
        m.phones.append(MemberPhone(e164="+8613912345678"))
        s.add(m)
        s.flush()
        s.add(
            CallAttempt(
                attempt_key="entry:1:1",
                direction=Direction.OUTBOUND,
                member_id=m.id,
                phone_e164="+8613912345678",
                channel_id="ml-1-1-abcd",
            )
        )
        member_id = m.id
    with session_scope(engine) as s:
        # Asterisk reports the campaign's CallerID (4000) on the queued leg.
        pop = build_pop(s, "4000", "Memberline", "CN", call_id="ml-1-1-abcd")
        assert pop.kind == "member" and pop.member_ids == [member_id]
        assert pop.caller_name == "黄晓明"
        assert pop.profile is not None
        # an ordinary inbound call still looks the number up
        assert build_pop(s, "4000", "Memberline", "CN", call_id="1795349443.0").kind == "unknown"
        assert build_pop(s, "013912345678", "", "CN", call_id="1795349443.9").member_ids == [
            member_id
        ]


def test_a_pop_takes_two_statements_at_most(engine: Engine) -> None:
    """Who is calling (hotline leg, dialled attempt, members with the number) is one
    statement; the profile of the one member found is the second."""
    with session_scope(engine) as s:
        for no, number in (
            ("P1", "+8613911110000"),
            ("P2", "+8613922220000"),
            ("P3", "+8613922220000"),
        ):
            m = Member(member_no=no, name=no, joined_on=dt.date(2024, 5, 1))
            m.phones.append(MemberPhone(e164=number))
            s.add(m)
    seen: list[str] = []

    def before(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        for number, kind, statements in (
            ("013911110000", "member", 2),
            ("013922220000", "chooser", 1),
            ("013933330000", "unknown", 1),
            ("<unknown>", "unknown", 1),
        ):
            seen.clear()
            with session_scope(engine) as s:
                assert build_pop(s, number, "", "CN", call_id="1795349443.1").kind == kind
            assert len(seen) == statements, (number, seen)
    finally:
        event.remove(engine, "before_cursor_execute", before)
