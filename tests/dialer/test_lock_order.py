"""The hub's writer and the campaign runner's writer lock ``call_attempts`` rows in one
order (ascending id), so they wait for each other instead of deadlocking (PostgreSQL).

The check: another transaction holds row A (the lower id). A writer whose batch touches B
then A must wait for A *before* taking B; B stays free meanwhile (``FOR UPDATE NOWAIT``
succeeds). Taking B first, as both writers did, is what deadlocked against a writer
holding A and wanting B.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import OperationalError

from crm_bridge.db import make_engine, session_scope
from crm_bridge.models import CallAttempt, Direction
from cti.hub.persist import Writer, upsert_call
from dialer.dial_rules import DialOutcome, DialRetryPolicy
from dialer.ledger import CallKind, CallRecord, Fact, FactKind
from dialer.outcomes import store_facts

pytestmark = pytest.mark.pg


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    eng = make_engine(pg_url)
    yield eng
    eng.dispose()


def two_rows(engine: Engine) -> tuple[int, int]:
    with session_scope(engine) as s:
        ids = []
        for cid in ("call-a", "call-b"):
            row = CallAttempt(attempt_key=f"k-{cid}", direction=Direction.OUTBOUND, channel_id=cid)
            s.add(row)
            s.flush()
            ids.append(row.id)
    return ids[0], ids[1]


def b_is_free_while_a_is_held(engine: Engine, write: Callable[[], None]) -> bool:
    """Hold A, start ``write`` (touching B then A), and report whether B stayed free."""
    a_id, b_id = 1, 2
    with engine.connect() as holder:
        tx = holder.begin()
        holder.execute(text("SELECT id FROM call_attempts WHERE id = :i FOR UPDATE"), {"i": a_id})
        worker = threading.Thread(target=write)
        worker.start()
        time.sleep(1.0)  # the writer runs until it blocks on A
        with engine.connect() as probe:
            try:
                probe.execute(
                    text("SELECT id FROM call_attempts WHERE id = :i FOR UPDATE NOWAIT"),
                    {"i": b_id},
                )
                free = True
            except OperationalError:
                free = False
            probe.rollback()
        tx.rollback()
        worker.join(10)
        assert not worker.is_alive()
    return free


def test_runner_writer_locks_in_id_order(engine: Engine) -> None:
    a_id, b_id = two_rows(engine)
    assert (a_id, b_id) == (1, 2)

    def fact(cid: str) -> Fact:
        rec = CallRecord(cid, 1, CallKind.QUEUE, 0.0, outcome=DialOutcome.NO_ANSWER, decided_at=1.0)
        return Fact(FactKind.DECIDED, rec)

    def write() -> None:
        with session_scope(engine) as s:
            store_facts(s, [fact("call-b"), fact("call-a")], DialRetryPolicy())

    assert b_is_free_while_a_is_held(engine, write)
    with session_scope(engine) as s:
        assert set(s.scalars(select(CallAttempt.outcome))) == {"no_answer"}


def test_hub_writer_locks_in_id_order(engine: Engine, tmp_path: Path) -> None:
    two_rows(engine)
    writer = Writer(engine, journal_path=tmp_path / "journal")
    jobs = [
        upsert_call("call:call-b", Direction.OUTBOUND, 0.0, disposition="x"),
        upsert_call("call:call-a", Direction.OUTBOUND, 0.0, disposition="y"),
    ]

    def write() -> None:
        asyncio.run(writer._write(list(jobs)))

    try:
        assert b_is_free_while_a_is_held(engine, write)
    finally:
        writer.journal.close()
    with session_scope(engine) as s:
        assert dict(s.execute(select(CallAttempt.channel_id, CallAttempt.disposition)).all()) == {
            "call-a": "y",
            "call-b": "x",
        }
