from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.models import (
    CallAttempt,
    CallListEntry,
    Campaign,
    CampaignKind,
    DialMode,
    EntryStatus,
    Member,
    MemberPhone,
)
from dialer import entries, leasing, outcomes
from dialer.dial_rules import DialOutcome, DialRetryPolicy
from dialer.ledger import CallLedger, LiveChannel

NOW = dt.datetime(2026, 6, 1, 4, 0, tzinfo=dt.UTC)
P = DialRetryPolicy()


def seed(engine: Engine, n: int = 10) -> int:
    with session_scope(engine) as s:
        c = Campaign(name="c1", kind=CampaignKind.POST_PURCHASE, mode=DialMode.PREDICTIVE)
        s.add(c)
        s.flush()
        for i in range(n):
            m = Member(member_no=f"M{i:04d}", name=f"会员{i}", joined_on=dt.date(2025, 1, 1))
            m.phones.append(MemberPhone(e164=f"+86138000000{i:02d}"))
            s.add(m)
            s.flush()
            s.add(
                CallListEntry(campaign_id=c.id, member_id=m.id, phone_e164=f"+86138000000{i:02d}")
            )
        return c.id


def test_lease_is_exclusive_and_expires(engine: Engine) -> None:
    cid = seed(engine)
    with session_scope(engine) as s:
        a = entries.lease_entries(s, cid, "hub-a", 6, NOW)
    with session_scope(engine) as s:
        b = entries.lease_entries(s, cid, "hub-b", 6, NOW)
    assert len(a) == 6 and len(b) == 4
    assert not {e.id for e in a} & {e.id for e in b}
    with session_scope(engine) as s:
        assert entries.lease_entries(s, cid, "hub-b", 6, NOW) == []
    later = NOW + dt.timedelta(seconds=121)
    with session_scope(engine) as s:
        again = entries.lease_entries(s, cid, "hub-b", 20, later)
    assert len(again) == 10  # hub-a and hub-b leases both expired


def test_concurrent_leasing_never_overlaps(engine: Engine) -> None:
    cid = seed(engine, 40)
    got: dict[str, list[int]] = {}

    def worker(owner: str) -> None:
        ids: list[int] = []
        for _ in range(10):
            with session_scope(engine) as s:
                ids += [e.id for e in entries.lease_entries(s, cid, owner, 3, NOW)]
        got[owner] = ids

    threads = [threading.Thread(target=worker, args=(f"hub-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ids = [i for ids in got.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) == 40


def test_attempt_lifecycle_retry_and_exhaustion(engine: Engine) -> None:
    cid = seed(engine, 1)
    exhausted: list[int] = []
    now = NOW
    for n in range(1, 4):
        with session_scope(engine) as s:
            [e] = entries.lease_entries(s, cid, "hub", 1, now)
            started = entries.begin_attempt(s, e, "hub", now)
            assert started is not None and started.attempt_no == n
        with session_scope(engine) as s:
            assert entries.finish_attempt(
                s,
                started.channel_id,
                DialOutcome.BUSY,
                now,
                P,
                on_exhausted=lambda _s, en: exhausted.append(en.id),
            )
            # idempotent: a second result for the same attempt changes nothing
            assert not entries.finish_attempt(s, started.channel_id, DialOutcome.ANSWERED, now, P)
        now += dt.timedelta(seconds=601)
    with session_scope(engine) as s:
        entry = s.scalars(select(CallListEntry)).one()
        assert entry.status is EntryStatus.EXHAUSTED and entry.attempts == 3
        assert [a.outcome for a in s.scalars(select(CallAttempt).order_by(CallAttempt.id))] == [
            "busy"
        ] * 3
    assert exhausted == [entry.id]


def test_recovery_never_redials_an_attempt(engine: Engine) -> None:
    cid = seed(engine, 2)
    with session_scope(engine) as s:
        leased = entries.lease_entries(s, cid, "hub", 2, NOW)
        a1 = entries.begin_attempt(s, leased[0], "hub", NOW)
        a2 = entries.begin_attempt(s, leased[1], "hub", NOW)
    assert a1 and a2
    # "hub killed": on restart the PBX reports a1's channel alive (its ";2" half too) and
    # a2's gone; the new process's ledger adopts both and the channel list decides.
    with session_scope(engine) as s:
        found = leasing.open_attempts(s, "hub")
    assert {a.channel_id for a in found} == {a1.channel_id, a2.channel_id}
    led = CallLedger()
    for a in found:
        led.adopt(a.channel_id, a.campaign_id, 0.0, entry_id=a.entry_id)
    live = [
        LiveChannel(a1.channel_id, a1.channel_id),
        LiveChannel(f"{a1.channel_id}-2", a1.channel_id),
    ]
    facts = led.resync(NOW.timestamp(), live, connected_at=1.0)
    assert [f.call.call_id for f in facts] == [a2.channel_id, a2.channel_id]
    with session_scope(engine) as s:
        outcomes.store_facts(s, facts, P)
    with session_scope(engine) as s:
        rows = {a.channel_id: a.outcome for a in s.scalars(select(CallAttempt))}
        assert rows == {a1.channel_id: None, a2.channel_id: "interrupted"}
        # the interrupted entry is pending again, due later, with its attempt counted
        e2 = s.get(CallListEntry, a2.entry_id)
        assert e2 is not None and e2.status is EntryStatus.PENDING and e2.attempts == 1
        assert e2.next_attempt_at is not None and e2.next_attempt_at > NOW
        # nothing is due right now, so nothing is dialled twice
        assert entries.lease_entries(s, cid, "hub", 5, NOW) == []


def test_begin_attempt_refuses_lost_lease(engine: Engine) -> None:
    cid = seed(engine, 1)
    with session_scope(engine) as s:
        [e] = entries.lease_entries(s, cid, "hub-a", 1, NOW)
    later = NOW + dt.timedelta(minutes=5)
    with session_scope(engine) as s:
        [e_b] = entries.lease_entries(s, cid, "hub-b", 1, later)
    with session_scope(engine) as s:
        assert entries.begin_attempt(s, e, "hub-a", later) is None
        assert entries.begin_attempt(s, e_b, "hub-b", later) is not None
