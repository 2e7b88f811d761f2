"""A call our dialer placed pops the member it dialled, not whoever owns the campaign's CallerID."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

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
