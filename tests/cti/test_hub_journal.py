"""The hub's write-ahead journal (:mod:`cti.hub.persist`): facts survive a crash, replays
do not double audit rows, a failing database delays writes but never drops them."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crm_bridge.db import session_scope
from crm_bridge.models import AuditLog, CallAttempt, Direction
from cti.hub.persist import Journal, Writer, audit, upsert_call


def _die(journal: Journal) -> None:
    """The hub process dies: its file and lock go, nothing is cleaned up."""
    journal._closed = True
    os.close(journal._fd)


def _counts(engine: Engine) -> tuple[int, int]:
    with session_scope(engine) as s:
        return (
            int(s.scalar(select(func.count()).select_from(AuditLog)) or 0),
            int(s.scalar(select(func.count()).select_from(CallAttempt)) or 0),
        )


async def test_journalled_facts_survive_a_crash_and_replay_once(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "hub.journal"
    w = Writer(engine, journal_path=path)
    # "Crash" before the writer ever ran: the facts are only in the journal.
    w.submit(
        upsert_call("call:1.1", Direction.INBOUND, 1_700_000_000.0, phone_e164="+8613900000001")
    )
    w.submit(audit("agent:1001", "profile.pop", None, {"call_id": "1.1"}))
    w.submit(audit("agent:1002", "profile.pop", None, {"call_id": "1.1"}))
    assert w.journal.seq == 3 and _counts(engine) == (0, 0)
    _die(w.journal)
    again = Writer(engine, journal_path=path)
    again.start()
    await again.flush()
    assert again.replayed == 3 and _counts(engine) == (2, 1)
    # Killed after the commit but before the position was recorded: replayed, not doubled.
    _die(again.journal)
    (tmp_path / "hub.journal.done").write_text("0")
    path.write_bytes(b"")  # emptied when idle: write the three facts back as they were
    third = Writer(engine, journal_path=path)
    for fact in (
        upsert_call("call:1.1", Direction.INBOUND, 1_700_000_000.0, phone_e164="+8613900000001"),
    ):
        third.journal.append(fact)
    third.journal.mark_committed(0, idle=False)
    with session_scope(engine) as s:
        first = s.scalars(select(AuditLog)).first()
        assert first is not None
        replayed_audit = audit(first.actor, first.action, None, first.details)
        replayed_audit.args["at"] = first.at.timestamp()
    third.journal.append(replayed_audit)
    third.start()
    await third.flush()
    assert _counts(engine) == (2, 1)
    await third.stop()
    assert not path.exists(), "a clean stop with nothing pending leaves no journal"


async def test_a_failing_database_delays_writes_but_drops_none(
    engine: Engine, tmp_path: Path
) -> None:
    w = Writer(engine, journal_path=tmp_path / "j", retry_max_s=0.05)
    failures = {"left": 3}

    def flaky(s: Session) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("database is locked")

    w.start()
    w.submit(audit("agent:1001", "profile.pop", None, {"call_id": "2.1"}))
    w.submit(flaky)
    async with asyncio.timeout(10):
        await w.flush()
    assert w.retries == 3 and _counts(engine) == (1, 0)
    await w.stop()


def test_two_hubs_lock_their_own_journal_and_adopt_a_dead_ones(tmp_path: Path) -> None:
    base = tmp_path / "hub.journal"
    a = Journal(base)
    b = Journal(base)
    assert (a.path, b.path) == (base, Path(f"{base}.1"))
    b.append(audit("agent:1", "profile.pop", None, {}))
    _die(b)
    adopted = a.adopt_orphans()
    assert len(adopted) == 1 and a.seq == 1
    a.close()
