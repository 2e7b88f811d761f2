"""The SQLite database is write-locked by another process while consoles wrap up calls.

Another connection holds ``BEGIN IMMEDIATE`` (the write lock) for 3 s. Wrap-ups sent
meanwhile must wait (busy timeout), not fail and not be dropped; the hub's event
loop keeps answering other requests; after the lock is released every disposition
is stored exactly once, and pop/call rows written meanwhile are there too.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from sqlalchemy import select

from crm_bridge.db import make_engine, session_scope
from crm_bridge.models import CallAttempt
from tests.cti.hub_stack import IFACE, pbx_stack
from tests.cti.hub_support import LI_WEI, Console, seed

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

OTHER = "+8613600136000"  # Zhang San, maintained by 1002


async def _ended_call(stack: object, console: Console, number: str, queue: str, iface: str) -> str:
    sim = stack.sim  # type: ignore[attr-defined]
    call = await sim.inbound_call(number, "", queue=queue)
    await console.wait_for("screen_pop", lambda d: d["call_id"] == call.linkedid)
    await stack.wait(lambda: sim.state.busy.get(iface) is not None, 5, "ringing")  # type: ignore[attr-defined]
    assert await sim.agent_answer(iface)
    await console.wait_for(
        "call_state", lambda d: d["call_id"] == call.linkedid and d["state"] == "up"
    )
    assert await sim.agent_hangup(iface)
    await console.wait_for(
        "call_state", lambda d: d["call_id"] == call.linkedid and d["state"] == "ended"
    )
    return str(call.linkedid)


async def test_wrapups_wait_for_a_write_lock_and_are_stored_once(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    seed(engine)
    path = sqlite_url.split("///", 1)[1]
    try:
        async with pbx_stack(engine) as stack:
            hub = stack.hub
            async with (
                Console(hub, "1001") as c1,
                Console(hub, "1002") as c2,
                Console(hub, "9001") as sup,
            ):
                call1 = await _ended_call(stack, c1, LI_WEI, "members", IFACE["1001"])
                call2 = await _ended_call(stack, c2, OTHER, "support", IFACE["1002"])
                await hub.writer.flush()

                blocker = sqlite3.connect(path, timeout=0, isolation_level=None)
                blocker.execute("BEGIN IMMEDIATE")
                blocker.execute("UPDATE agents SET name = name WHERE code = '9001'")
                t_lock = time.monotonic()
                try:
                    w1 = asyncio.create_task(
                        c1.request("wrapup", call_id=call1, disposition="satisfied", notes="one")
                    )
                    w2 = asyncio.create_task(
                        c2.request(
                            "wrapup",
                            call_id=call2,
                            disposition="follow-up",
                            notes="two",
                            callback_at="2030-01-02T10:00:00+08:00",
                        )
                    )
                    await asyncio.sleep(0.5)
                    assert not w1.done() and not w2.done(), "wrap-ups cannot commit under the lock"
                    # The loop is not blocked: another console's request that needs no write is
                    # answered at once (c1's own requests queue behind its wrap-up, in order).
                    t0 = time.monotonic()
                    state = await sup.request("state")
                    assert state["agent_state"]["agent"] == "9001"
                    assert time.monotonic() - t0 < 1.0
                    await asyncio.sleep(2.5)
                    assert not w1.done() and not w2.done()
                finally:
                    blocker.execute("ROLLBACK")
                    blocker.close()
                held = time.monotonic() - t_lock
                r1, r2 = await asyncio.wait_for(asyncio.gather(w1, w2), 20)
                assert held >= 3.0
                assert r1["attempt_id"] != r2["attempt_id"]
                await hub.writer.flush()
        with session_scope(engine) as s:
            rows = list(
                s.execute(
                    select(CallAttempt.linkedid, CallAttempt.disposition, CallAttempt.notes)
                    .where(CallAttempt.linkedid.in_([call1, call2]))
                    .order_by(CallAttempt.linkedid)
                )
            )
        assert sorted((r.linkedid, r.disposition, r.notes) for r in rows) == sorted(
            [(call1, "satisfied", "one"), (call2, "follow-up", "two")]
        )
    finally:
        engine.dispose()
