"""The cross-hub bus (cti.hub.bus): pure parts, and two real hubs over PostgreSQL NOTIFY.

The full scale-out proof (two stacks, two PBXs, one campaign) is
tests/reliability/test_scaleout.py; here: payload splitting, the wallboard merge, routed
pushes between two HubServers, and the LISTEN connection coming back after the server
kills it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest
from sqlalchemy import text

from crm_bridge.db import make_engine
from cti.hub.bus import (
    MAX_PAYLOAD,
    BusSettings,
    HubBus,
    Reassembler,
    RemoteSlice,
    libpq_url,
    merge_wallboard,
    split_payload,
)
from tests.cti.hub_support import Console, running_hub, seed


def test_small_message_is_one_payload() -> None:
    msg = {"t": "push", "agent": "1001", "data": {"x": "会员"}}
    parts = split_payload(msg)
    assert len(parts) == 1 and Reassembler().feed(parts[0], 0.0) == msg


def test_big_message_is_split_under_the_limit_and_rejoined() -> None:
    msg = {"t": "slice", "agents": [{"agent": f"{i}", "name": "扩容会员" * 20} for i in range(200)]}
    parts = split_payload(msg)
    assert len(parts) > 3
    assert all(len(p.encode()) <= 8000 for p in parts)
    r = Reassembler()
    got = [r.feed(p, 0.0) for p in parts]
    assert got[:-1] == [None] * (len(parts) - 1) and got[-1] == msg


def test_incomplete_part_sets_expire() -> None:
    parts = split_payload({"d": "x" * (3 * MAX_PAYLOAD)})
    r = Reassembler(ttl_s=10.0)
    r.feed(parts[0], 0.0)
    r.feed(split_payload({"d": "y" * (3 * MAX_PAYLOAD)})[0], 20.0)  # triggers the sweep
    assert len(r._parts) == 1


def test_merge_sums_counts_and_takes_agents_from_the_hub_that_has_the_phone() -> None:
    local = {
        "waiting": 1,
        "ringing": 0,
        "talking": 2,
        "offered": 10,
        "answered": 9,
        "abandoned": 1,
        "placed": 4,
        "contacts": 2,
        "agents_by_state": {"available": 1, "on_call": 2, "logged_out": 3},
        "agents": [
            {"agent": "1001", "state": "on_call"},
            {"agent": "1004", "state": "logged_out"},
        ],
    }
    remote = RemoteSlice(
        hub="hub-b",
        ts=time.time(),
        received=time.monotonic(),
        figures={
            "waiting": 2,
            "talking": 1,
            "answered": 1,
            "abandoned": 0,
            "placed": 6,
            "contacts": 6,
            "agents_by_state": {"paused": 1, "on_call": 1},
        },
        agents=[{"agent": "1004", "state": "on_call"}],
        present=frozenset({"1004"}),
    )
    out = merge_wallboard(local, [remote])
    assert (out["waiting"], out["talking"], out["answered"]) == (3, 3, 10)
    assert out["abandon_rate"] == 0.0909
    assert out["contact_rate"] == 0.8
    assert out["agents_by_state"] == {"available": 1, "on_call": 3, "logged_out": 3, "paused": 1}
    assert out["utilization"] == round(3 / 4, 4)
    rows = {r["agent"]: r for r in out["agents"]}
    assert rows["1004"] == {"agent": "1004", "state": "on_call", "hub": "hub-b"}
    assert rows["1001"]["state"] == "on_call" and "hub" not in rows["1001"]
    assert out["hubs"] == ["hub-b"]
    assert merge_wallboard(local, []) is local


async def _until(pred: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        await asyncio.sleep(0.05)


@pytest.mark.pg
async def test_routed_push_and_listen_reconnect(pg_url: str) -> None:
    engine = make_engine(pg_url)
    seed(engine)
    url = libpq_url(engine.url)
    fast = {"slice_period_s": 0.3, "presence_poll_s": 0.05, "reconnect_initial_s": 0.05}
    async with running_hub(engine) as hub_a, running_hub(engine) as hub_b:
        bus_a = HubBus(hub_a, url, BusSettings("hub-a", **fast))  # type: ignore[arg-type]
        bus_b = HubBus(hub_b, url, BusSettings("hub-b", **fast))  # type: ignore[arg-type]
        bus_a.start()
        bus_b.start()
        try:
            await _until(lambda: bus_a.listening.is_set() and bus_b.listening.is_set(), 5, "LISTEN")
            async with Console(hub_b, "1001") as con:
                await _until(lambda: bus_a.present("1001"), 5, "presence of 1001 on hub B")
                # Hub A has no console for 1001: the registry hands the push to the bus.
                mark = con.mark()
                big = {"call_id": "c-1", "state": "ringing", "note": "备注" * 3000}
                assert hub_a.sessions.push_to_agent("1001", "call_state", big) == 0
                got = await con.wait_for("call_state", lambda d: d["call_id"] == "c-1", 5, mark)
                assert got == big  # > 8000 bytes: came in parts, one transaction
                # Pushes nobody else needs are not published at all.
                before = bus_a.stats.forwarded
                hub_a.sessions.push_to_agent("1002", "call_state", {"call_id": "x"})
                hub_a.sessions.push_to_agent("1001", "wallboard", {})
                assert bus_a.stats.forwarded == before

                # PostgreSQL drops hub B's LISTEN connection: it comes back by itself.
                with engine.begin() as c:
                    killed = c.execute(
                        text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                        )
                    ).scalar()
                assert killed and killed >= 2
                await _until(lambda: bus_b.stats.reconnects >= 1, 5, "hub B noticing")
                await _until(lambda: bus_b.listening.is_set(), 5, "hub B listening again")
                mark = con.mark()
                hub_a.sessions.push_to_agent(
                    "1001", "screen_pop", {"call_id": "c-2", "kind": "unknown"}
                )
                got = await con.wait_for("screen_pop", None, 5, mark)
                assert got["call_id"] == "c-2"
            # Logged out of hub B: hub A stops routing there once B's next slice says so.
            await _until(lambda: not bus_a.present("1001"), 5, "presence gone")
            assert json.dumps(bus_b.stats.kinds)  # slices were published
        finally:
            await bus_a.stop()
            await bus_b.stop()
    engine.dispose()
