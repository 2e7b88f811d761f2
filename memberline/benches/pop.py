"""``memberline bench pop --db URL``: AgentCalled bytes on the hub's AMI socket -> screen_pop
frame at a console's socket.

This process runs the hub exactly as ``memberline serve`` does
(:func:`memberline.stack.start_hub`: AMI client, tracker, hub) on the given
(demo-data) database. A driver process (:mod:`memberline.benches._pop_driver`) runs the
PBX simulator (a real AMI server) and one console (``HubClient``) logged in as the rung
agent -- neither shares the hub's process, as in production. For each pop the driver
writes a queue call's events for a caller whose number is a real member's (Newchannel,
QueueCallerJoin and, right behind them as on a real Asterisk, the timed ``AgentCalled``)
and waits for the matching ``screen_pop``; then it ends the call (AgentRingNoAnswer,
QueueCallerAbandon, QueueCallerLeave, Hangup) so the tracker and the hub stay at a steady
size while the hub writes the call rows and audit rows as usual. Times come from
``time.perf_counter`` (CLOCK_MONOTONIC, one clock for every process). This is the idle
figure (target p99 ≤ 5 ms on SQLite). A SQLite ``--db`` is first copied (SQLite's backup
API) and the hub writes its call and audit rows into the copy, so runs do not drift; on
PostgreSQL they go into the given database.

``--load`` measures under a realistic load instead (200 consoles, a 50-agent ringall
queue, 5 calls/s, 2000 AMI events/s; target p99 ≤ 10 ms on SQLite): see
:mod:`memberline.benches._pop_load`. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
from typing import Any

from memberline.benches._common import LoadStamp, emit
from memberline.benches._pop_load import add_arguments
from memberline.cli import add_command
from memberline.config import Config
from memberline.runtime import freeze_startup_heap, install_reactor


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _member_numbers(url: str, want: int, seed: int) -> tuple[int, list[str]]:
    from sqlalchemy import func, select

    from crm_bridge.db import make_engine, session_scope
    from crm_bridge.models import Member, MemberPhone

    engine = make_engine(url)
    rng = random.Random(seed)
    try:
        with session_scope(engine) as s:
            members = int(s.scalar(select(func.count()).select_from(Member)) or 0)
            lo, hi = s.execute(select(func.min(MemberPhone.id), func.max(MemberPhone.id))).one()
            if not members or lo is None:
                raise SystemExit("bench pop: the database has no members (memberline demo-data)")
            ids = rng.sample(range(lo, hi + 1), min(hi - lo + 1, want * 2))
            numbers = list(s.scalars(select(MemberPhone.e164).where(MemberPhone.id.in_(ids))))
    finally:
        engine.dispose()
    rng.shuffle(numbers)
    return members, (numbers * (want // max(1, len(numbers)) + 1))[:want]


async def _run(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    import dataclasses
    import logging

    from crm_bridge.db import make_engine
    from memberline.config import AmiConfig, HubConfig, Secret
    from memberline.stack import hub_settings, start_hub

    logging.getLogger("cti").setLevel(logging.ERROR)
    want = args.pops + args.warmup
    members, numbers = _member_numbers(config.database.url, want, args.seed)
    ami_secret = "bench-ami-secret"
    driver = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "memberline.benches._pop_driver",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert driver.stdin is not None and driver.stdout is not None

    def tell(obj: dict[str, Any]) -> None:
        assert driver.stdin is not None
        driver.stdin.write((json.dumps(obj) + "\n").encode())

    async def hear() -> dict[str, Any]:
        assert driver.stdout is not None
        line = await asyncio.wait_for(driver.stdout.readline(), 600)
        if not line:
            raise SystemExit("bench pop: the driver process died")
        result: dict[str, Any] = json.loads(line)
        return result

    engine = make_engine(config.database.url)
    running = None
    try:
        cfg0 = dataclasses.replace(config, hub=HubConfig(port=0))
        interface = hub_settings(cfg0).interface_for(args.agent)
        tell(
            {
                "numbers": numbers,
                "agent": args.agent,
                "agent_code": args.agent_code,
                "password": args.password,
                "interface": interface,
                "warmup": args.warmup,
                "gap_ms": args.gap_ms,
                "ami_secret": ami_secret,
            }
        )
        ami_port = (await hear())["ami_port"]
        cfg = dataclasses.replace(cfg0, ami=AmiConfig(port=ami_port, secret=Secret(ami_secret)))
        running = await start_hub(cfg, engine=engine, settings=hub_settings(cfg))
        await running.ami_task
        freeze_startup_heap()  # as `memberline serve` does once started
        tell({"hub_port": running.hub.port})
        ms: list[float] = (await hear())["latencies_ms"]
        await driver.wait()
        hub = running.hub
        await hub.writer.flush()
        hub_ms = [x * 1000 for x in hub.pop_latencies[-len(ms) :]]
        return {
            "bench": "pop",
            "mode": "idle",
            "measured": "AgentCalled bytes written by the PBX simulator (driver process) -> "
            "screen_pop at the rung agent's console; one call at a time, --gap-ms apart",
            "pops": len(ms),
            "pop_p50_ms": round(_pct(ms, 0.50), 3),
            "pop_p90_ms": round(_pct(ms, 0.90), 3),
            "pop_p99_ms": round(_pct(ms, 0.99), 3),
            "pop_max_ms": round(max(ms), 3),
            "pop_mean_ms": round(statistics.fmean(ms), 3),
            "hub_p50_ms": round(_pct(hub_ms, 0.5), 3),
            "hub_p99_ms": round(_pct(hub_ms, 0.99), 3),
            "members": members,
            "warmup": args.warmup,
            "gap_ms": args.gap_ms,
            "db": engine.url.render_as_string(hide_password=True),
            "tracker_size": list(running.tracker.size()),
            "call_writes": hub.writer.written,
            "targets": {"pop_p99_le_5ms_idle": _pct(ms, 0.99) <= 5.0},
        }
    finally:
        if driver.returncode is None:
            driver.kill()
            await driver.wait()
        if running is not None:
            await running.stop()
        engine.dispose()


def handler(args: argparse.Namespace, config: Config) -> int:
    stamp = LoadStamp()
    if args.load:
        from memberline.benches._pop_load import run_load

        emit(run_load(args, config.database.url), stamp, runs=1)
        return 0
    import dataclasses
    import shutil
    import tempfile
    from pathlib import Path

    from crm_bridge.db import normalise_url
    from memberline.benches.soak import sqlite_copy

    source = normalise_url(config.database.url)
    workdir = Path(tempfile.mkdtemp(prefix="memberline-pop-"))
    try:
        if source.startswith("sqlite"):
            db = dataclasses.replace(config.database, url=sqlite_copy(source, workdir))
            config = dataclasses.replace(config, database=db)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        install_reactor(loop)
        try:
            result = loop.run_until_complete(_run(config, args))
        finally:
            loop.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    from sqlalchemy.engine import make_url  # here, not at the top: --help stays light

    result["source_db"] = make_url(source).render_as_string(hide_password=True)
    emit(result, stamp, runs=1)
    return 0


def register(bench_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(bench_sub, "pop", handler, "AgentCalled bytes -> screen_pop at a console")
    p.add_argument("--pops", type=int, default=1000, help="timed pops (default 1000)")
    p.add_argument("--warmup", type=int, default=50, help="untimed pops first (default 50)")
    p.add_argument("--agent", default="1001", help="the rung agent's extension (default 1001)")
    p.add_argument("--agent-code", default="", help="login id if not the extension")
    p.add_argument("--password", default="demo", help="the agent's password (demo data: demo)")
    p.add_argument("--gap-ms", type=float, default=10.0, help="pause between calls (default 10)")
    p.add_argument("--seed", type=int, default=1)
    add_arguments(p)
