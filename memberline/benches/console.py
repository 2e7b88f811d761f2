"""``memberline bench console``: time from a ``screen_pop`` frame arriving to the pop on screen.

A loopback server speaks the hub protocol (hello, login, then pushes) to a real
:class:`agent_tui.app.ConsoleApp` running headless. The pop frames are real: built by
``cti.screenpop`` from a member seeded in a temporary SQLite database (purchases, points,
an inquiry and a complaint). For each pop the clock starts just before the frame's bytes
are written to the console's socket and stops when the call view's first frame has
been painted (``CallDesk.PopShown.painted_at``, taken in a ``call_after_refresh``
callback, which Textual runs after the screen update); the history table is drawn in the
following frame (``history_at``). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from memberline.benches._common import LoadStamp, emit
from memberline.cli import add_command
from memberline.config import Config

LOGIN_RESULT: dict[str, Any] = {
    "agent": {"code": "1001", "name": "王芳", "role": "agent", "extension": "1001"},
    "pause_reasons": ["break", "lunch"],
    "dispositions": [["s", "satisfied"], ["f", "follow-up"], ["c", "complaint"]],
}
CALLER = "+8613800138000"


def build_pop_frame(directory: Path) -> dict[str, Any]:
    """A screen_pop push for a seeded member, assembled and masked by cti.screenpop."""
    from crm_bridge import migrate
    from crm_bridge.db import make_engine, session_scope
    from crm_bridge.models import Complaint, Inquiry, Member, MemberPhone, Tier
    from crm_bridge.purchases import record_purchase
    from cti.screenpop.assemble import build_pop

    url = f"sqlite:///{directory / 'bench.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    try:
        with session_scope(engine) as s:
            m = Member(
                member_no="M00000042",
                name="李伟",
                tier=Tier.GOLD,
                joined_on=dt.date(2021, 3, 14),
                timezone="Asia/Shanghai",
            )
            m.phones.append(MemberPhone(e164=CALLER))
            s.add(m)
            s.flush()
            for i in range(12):
                record_purchase(
                    s,
                    m.id,
                    Decimal("199.00") + i,
                    now - dt.timedelta(days=9 * i + 1),
                    ["外套", "shoes", "配饰"][i % 3],
                    ["上海南京西路店", "Online"][i % 2],
                )
            s.add(Inquiry(member_id=m.id, category="points", subject="积分何时到账？"))
            s.add(
                Complaint(member_id=m.id, category="delivery", description="快递延误三天，包装破损")
            )
        with session_scope(engine) as s:
            pop = build_pop(s, CALLER, "李伟", "CN")
        return pop.to_push("bench-0", "members")
    finally:
        engine.dispose()


async def _serve_console(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    frames: asyncio.Queue[bytes],
    sent_at: dict[str, float],
) -> None:
    from cti.hubproto import encode

    for _ in range(2):  # hello, login
        req = json.loads(await reader.readline())
        result = LOGIN_RESULT if req["cmd"] == "login" else {"server": "bench", "protocol": 1}
        writer.write(encode({"re": req["id"], "ok": True, "result": result}))
    writer.write(
        encode(
            {
                "push": "agent_state",
                "data": {"state": "available", "since": dt.datetime.now(dt.UTC).isoformat()},
            }
        )
    )
    await writer.drain()
    while True:
        frame = await frames.get()
        call_id = json.loads(frame)["data"]["call_id"]
        sent_at[call_id] = time.perf_counter()
        sent_at[call_id + "/cpu"] = time.process_time()
        writer.write(frame)
        await writer.drain()


async def run_bench(pops: int, size: tuple[int, int]) -> dict[str, Any]:
    from agent_tui.app import ConsoleApp
    from agent_tui.screens.call import CallDesk
    from cti.hubproto import encode

    with tempfile.TemporaryDirectory() as tmp:
        pop = build_pop_frame(Path(tmp))
    frames: asyncio.Queue[bytes] = asyncio.Queue()
    sent_at: dict[str, float] = {}
    shown: asyncio.Queue[tuple[str, float, float]] = asyncio.Queue()
    cpu_at: dict[str, float] = {}
    tasks: set[asyncio.Task[None]] = set()

    def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(_serve_console(reader, writer, frames, sent_at))
        tasks.add(task)

    class BenchApp(ConsoleApp):
        def on_call_desk_pop_shown(self, message: CallDesk.PopShown) -> None:
            shown.put_nowait((message.call_id, message.painted_at, message.history_at))
            cpu_at[message.call_id] = time.process_time()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    latencies: list[float] = []
    full: list[float] = []
    cpu: list[float] = []
    app = BenchApp("127.0.0.1", port, agent="1001", password="bench")
    try:
        async with app.run_test(size=size) as pilot:
            for _ in range(500):
                if app.session is not None:
                    break
                await pilot.pause(0.01)
            if app.session is None:
                raise RuntimeError("console did not log in to the loopback sender")
            await pilot.pause()
            for i in range(pops + 3):
                call_id = f"bench-{i}"
                frames.put_nowait(
                    encode({"push": "screen_pop", "data": {**pop, "call_id": call_id}})
                )
                got, at, history_at = await asyncio.wait_for(shown.get(), 10)
                assert got == call_id
                if i >= 3:  # the first pops warm up imports and CSS
                    latencies.append((at - sent_at[call_id]) * 1000)
                    full.append((history_at - sent_at[call_id]) * 1000)
                    cpu.append((cpu_at[call_id] - sent_at[call_id + "/cpu"]) * 1000)
                await pilot.pause()
            await app.action_quit()
    finally:
        for task in tasks:
            task.cancel()
        server.close()
    latencies.sort()
    full.sort()
    cpu.sort()
    return {
        "bench": "console",
        "pops": len(latencies),
        "size": f"{size[0]}x{size[1]}",
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "max_ms": round(latencies[-1], 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "with_history_p50_ms": round(statistics.median(full), 2),
        "with_history_p99_ms": round(full[min(len(full) - 1, int(len(full) * 0.99))], 2),
        "cpu_p50_ms": round(statistics.median(cpu), 2),
        "cpu_p99_ms": round(cpu[min(len(cpu) - 1, int(len(cpu) * 0.99))], 2),
        "budget_ms": 50,
        "measured": "screen_pop bytes written to the console's socket -> first frame of the "
        "call view painted (header, next best action, call bar, notes); with_history: the "
        "history table's frame; cpu: process CPU time over the whole pop",
    }


def _run(args: argparse.Namespace, cfg: Config) -> int:
    stamp = LoadStamp()
    width, _, height = args.size.partition("x")
    result = asyncio.run(run_bench(args.pops, (int(width), int(height))))
    emit(result, stamp, runs=1)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "console", _run, "screen-pop latency of the agent console")
    parser.add_argument("--pops", type=int, default=200, help="pops to time (default 200)")
    parser.add_argument("--size", default="120x40", help="terminal size WxH (default 120x40)")
