"""``memberline bench pop --db URL``: AgentCalled bytes on the hub's AMI socket -> screen_pop
frame at a console's socket.

On the given (demo-data) database: a PBX simulator (a real AMI server on loopback), the hub
started by :func:`memberline.services.start_hub_services` (AMI client, tracker, hub) and one
console (``HubClient``) logged in as the rung agent. For each pop the bench writes a
queue call's events for a caller whose number is a real member's (Newchannel,
QueueCallerJoin) and, right behind them as on a real Asterisk (same millisecond), the
timed ``AgentCalled`` frame, and waits for the matching
``screen_pop``; then it ends the call (AgentRingNoAnswer, QueueCallerAbandon, Hangup) so the
tracker and the hub stay at a steady size. The time runs from just before the AgentCalled
bytes are handed to the simulator's socket to the console's push callback (same process,
same event loop: the console's parse is included). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from typing import Any

from memberline.cli import add_command
from memberline.config import AmiConfig, Config, HubConfig, Secret
from memberline.runtime import install_reactor


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


async def _run(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    import dataclasses
    import logging

    from sqlalchemy import func, select

    from crm_bridge.db import make_engine, session_scope
    from crm_bridge.models import Member, MemberPhone
    from cti.hubproto.client import HubClient
    from cti.pbxsim import AgentSpec, PbxSimulator, QueueSpec, Scenario
    from cti.pbxsim import events as ev
    from memberline.services import hub_settings, start_hub_services

    logging.getLogger("cti").setLevel(logging.ERROR)
    engine = make_engine(config.database.url)
    rng = random.Random(args.seed)
    with session_scope(engine) as s:
        members = int(s.scalar(select(func.count()).select_from(Member)) or 0)
        lo, hi = s.execute(select(func.min(MemberPhone.id), func.max(MemberPhone.id))).one()
        if not members or lo is None:
            raise SystemExit("bench pop: the database has no members (run memberline demo-data)")
        want = args.pops + args.warmup
        ids = rng.sample(range(lo, hi + 1), min(hi - lo + 1, want * 2))
        numbers = list(s.scalars(select(MemberPhone.e164).where(MemberPhone.id.in_(ids))))
    rng.shuffle(numbers)
    numbers = (numbers * (want // max(1, len(numbers)) + 1))[:want]

    ext = args.agent
    scen = Scenario(
        queues=(QueueSpec("members", exten="8000", members=(ext,)),),
        agents=(AgentSpec(ext, auto_answer=False, auto_hangup=False),),
    )
    ami_secret = "bench-ami-secret"
    sim = PbxSimulator(scen, ami_users={"memberline": ami_secret})
    await sim.start("127.0.0.1", 0)
    cfg = dataclasses.replace(
        config,
        ami=AmiConfig(port=sim.port, secret=Secret(ami_secret)),
        hub=HubConfig(port=0),
    )
    running = await start_hub_services(
        cfg, engine=engine, settings=dataclasses.replace(hub_settings(cfg), port=0)
    )
    await running.ami_task
    hub = running.hub
    interface = hub.settings.interface_for(ext)

    arrived: dict[str, float] = {}
    waiters: dict[str, asyncio.Future[None]] = {}

    def on_push(name: str, data: dict[str, Any]) -> None:
        if name != "screen_pop":
            return
        t = time.perf_counter()
        cid = str(data.get("call_id"))
        arrived[cid] = t
        fut = waiters.pop(cid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    console = HubClient("127.0.0.1", hub.port, args.agent_code or ext, args.password)
    console.on_push(on_push)
    await console.start()

    latencies: list[float] = []
    kinds: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    try:
        for i, number in enumerate(numbers):
            base = f"{int(time.time())}.{i}"
            caller = ev.Channel(
                f"Local/8000@from-pstn-{i:08x};2",
                f"{base}1",
                f"{base}0",
                "from-pstn",
                "8000",
                priority=3,
                state=ev.UP,
                cid_num=number,
                cid_name="",
            )
            agent_leg = ev.Channel(
                f"Local/{ext}@agents-{i:08x};1", f"{base}2", f"{base}0", "agents", "8000"
            )
            sim.emit(ev.newchannel(caller))
            sim.emit(ev.queue_caller("QueueCallerJoin", caller, "members", 1, 1))
            fut: asyncio.Future[None] = loop.create_future()
            waiters[caller.linkedid] = fut
            called = ev.agent_event(
                "AgentCalled", caller, agent_leg, "members", interface, f"Agent {ext}"
            )
            t0 = time.perf_counter()
            sim.emit(called)
            await asyncio.wait_for(fut, 10)
            if i >= args.warmup:
                latencies.append(arrived[caller.linkedid] - t0)
            arrived.pop(caller.linkedid, None)
            sim.emit(
                ev.agent_event(
                    "AgentRingNoAnswer",
                    caller,
                    agent_leg,
                    "members",
                    interface,
                    f"Agent {ext}",
                    [("RingTime", "1")],
                )
            )
            sim.emit(ev.queue_caller_abandon(caller, "members", 1, 1, 1))
            sim.emit(ev.queue_caller("QueueCallerLeave", caller, "members", 1, 0))
            sim.emit(ev.hangup(caller, 16))
            await asyncio.sleep(args.gap_ms / 1000)
        await hub.writer.flush()
        for (_c, _a), pop in list(hub.pops.items()):
            kinds[pop["kind"]] = kinds.get(pop["kind"], 0) + 1
    finally:
        await console.close()
        await running.stop()
        await sim.stop()
        engine.dispose()
    ms = [x * 1000 for x in latencies]
    return {
        "pops": len(ms),
        "pop_p50_ms": round(_pct(ms, 0.50), 3),
        "pop_p90_ms": round(_pct(ms, 0.90), 3),
        "pop_p99_ms": round(_pct(ms, 0.99), 3),
        "pop_max_ms": round(max(ms), 3),
        "pop_mean_ms": round(statistics.fmean(ms), 3),
        "hub_p50_ms": round(_pct([x * 1000 for x in hub.pop_latencies[-len(ms) :]], 0.5), 3),
        "hub_p99_ms": round(_pct([x * 1000 for x in hub.pop_latencies[-len(ms) :]], 0.99), 3),
        "members": members,
        "warmup": args.warmup,
        "db": engine.url.render_as_string(hide_password=True),
        "tracker_size": list(running.tracker.size()),
        "call_rows_written": hub.writer.written,
    }


def handler(args: argparse.Namespace, config: Config) -> int:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    install_reactor(loop)
    try:
        result = loop.run_until_complete(_run(config, args))
    finally:
        loop.close()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


def register(bench_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(bench_sub, "pop", handler, "AgentCalled bytes -> screen_pop at a console")
    p.add_argument("--pops", type=int, default=1000, help="timed pops (default 1000)")
    p.add_argument("--warmup", type=int, default=50, help="untimed pops first (default 50)")
    p.add_argument("--agent", default="1001", help="the rung agent's extension (default 1001)")
    p.add_argument("--agent-code", default="", help="login id if not the extension")
    p.add_argument("--password", default="demo", help="the agent's password (demo data: demo)")
    p.add_argument("--gap-ms", type=float, default=2.0, help="pause between calls (default 2)")
    p.add_argument("--seed", type=int, default=1)
