"""``memberline bench console``: a queue call ringing an agent -> the whole pop on their screen.

Timed per pop, from ``time.perf_counter()`` right after the ``AgentCalled`` bytes were
written to the hub's AMI socket, to:

* ``painted``: the call view's first frame painted (header, member, next best action,
  call bar, notes: ``CallDesk.PopShown.painted_at``, taken in a ``call_after_refresh``
  callback, which Textual runs after the screen update);
* ``whole``: the frame after it, which draws the history table (``history_at``): the whole
  pop, what the agent reads.

Everything between is real: a loopback AMI server (:class:`memberline.benches._pop_load.
PopLoadAmi`) -> the hub as ``memberline serve`` in its own process (AMI client, tracker,
screen-pop lookup on a demo-data database of ``--members`` members) -> its console socket ->
a real :class:`agent_tui.app.ConsoleApp` running headless in this process, logged in as
agent 1001. Callers vary in turn: members with the longest histories, Chinese names, Latin
names, members with no history at all, a number several members share (the chooser) and an
unknown number. Each call rings 0.6 s and ends before the next one starts. The first
``--warmup`` pops of each size are not counted (imports, CSS). Sizes: ``--size`` (a comma
list; default ``120x40,80x24``). Budget: whole pop p99 ≤ 50 ms at each size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from memberline.benches._common import LoadStamp, emit
from memberline.cli import add_command
from memberline.config import Config

AGENT = "1001"
BUDGET_MS = 50.0


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))], 2)


def varied_callers(url: str, per_kind: int = 8) -> list[tuple[str, str]]:
    """(kind, number) pairs, kinds in turn: long history, CJK name, Latin name, no history,
    several members on the number, unknown number."""
    from sqlalchemy import func, select

    from crm_bridge.db import make_engine, session_scope
    from crm_bridge.models import Member, MemberPhone, Purchase

    engine = make_engine(url)
    kinds: dict[str, list[str]] = {}
    try:
        with session_scope(engine) as s:
            shared = (
                select(MemberPhone.e164)
                .group_by(MemberPhone.e164)
                .having(func.count(func.distinct(MemberPhone.member_id)) > 1)
            )
            single = (
                select(MemberPhone.e164)
                .group_by(MemberPhone.e164)
                .having(func.count(func.distinct(MemberPhone.member_id)) == 1)
            )
            singles = set(s.scalars(single))
            bought = (
                select(Purchase.member_id, func.count().label("n"))
                .group_by(Purchase.member_id)
                .subquery()
            )
            rows = s.execute(
                select(Member.name, MemberPhone.e164, func.coalesce(bought.c.n, 0))
                .join(MemberPhone, MemberPhone.member_id == Member.id)
                .outerjoin(bought, bought.c.member_id == Member.id)
                .order_by(func.coalesce(bought.c.n, 0).desc(), Member.id)
            ).all()
            rows = [r for r in rows if r[1] in singles]
            kinds["long_history"] = [r[1] for r in rows[:per_kind]]
            kinds["cjk_name"] = [r[1] for r in rows if r[2] and not r[0].isascii()][:per_kind]
            kinds["latin_name"] = [r[1] for r in rows if r[2] and r[0].isascii()][:per_kind]
            kinds["no_history"] = [r[1] for r in rows if r[2] == 0][:per_kind]
            kinds["chooser"] = list(s.scalars(shared.limit(per_kind)))
    finally:
        engine.dispose()
    kinds["unknown"] = [f"+86199{i:08d}" for i in range(per_kind)]
    out: list[tuple[str, str]] = []
    for i in range(per_kind):
        out += [(k, v[i % len(v)]) for k, v in kinds.items() if v]
    return out


async def _one_size(
    ami: Any, hub_port: int, callers: list[tuple[str, str]], pops: int, warmup: int,
    size: tuple[int, int],
) -> dict[str, Any]:  # fmt: skip
    from agent_tui.app import ConsoleApp
    from agent_tui.screens.call import CallDesk

    shown: asyncio.Queue[tuple[str, float, float]] = asyncio.Queue()

    class BenchApp(ConsoleApp):
        def on_call_desk_pop_shown(self, message: CallDesk.PopShown) -> None:
            shown.put_nowait((message.call_id, message.painted_at, message.history_at))

    painted: list[float] = []
    whole: list[float] = []
    by_kind: dict[str, list[float]] = {}
    loop = asyncio.get_running_loop()
    app = BenchApp("127.0.0.1", hub_port, agent=AGENT, password="demo")
    async with app.run_test(size=size) as pilot:
        for _ in range(1000):
            if app.session is not None:
                break
            await pilot.pause(0.01)
        if app.session is None:
            raise RuntimeError("the console did not log in to the hub")
        await pilot.pause(0.5)
        for i in range(pops + warmup):
            kind, number = callers[i % len(callers)]
            call_id = ami.ring_call(loop.time(), number, [AGENT], kind)
            while True:
                got, at, history_at = await asyncio.wait_for(shown.get(), 15)
                if got == call_id:
                    break
            t0 = ami.sent[(call_id, AGENT)]
            if i >= warmup:
                painted.append((at - t0) * 1000)
                whole.append((history_at - t0) * 1000)
                by_kind.setdefault(kind, []).append((history_at - t0) * 1000)
            await asyncio.sleep(0.75)  # the call ends (0.6 s ring) and the desk goes idle
            await pilot.pause()
        await app.action_quit()
    return {
        "size": f"{size[0]}x{size[1]}",
        "pops": len(whole),
        "whole_p50_ms": _pct(whole, 0.5),
        "whole_p99_ms": _pct(whole, 0.99),
        "whole_max_ms": round(max(whole), 2),
        "painted_p50_ms": _pct(painted, 0.5),
        "painted_p99_ms": _pct(painted, 0.99),
        "whole_by_caller": {
            k: {"pops": len(v), "p50_ms": _pct(v, 0.5), "p99_ms": _pct(v, 0.99)}
            for k, v in sorted(by_kind.items())
        },
        "within_budget": (_pct(whole, 0.99) or 0.0) <= BUDGET_MS,
    }


async def run_bench(
    pops: int, sizes: list[tuple[int, int]], members: int, warmup: int
) -> dict[str, Any]:
    from crm_bridge.demo_seed import seed_demo
    from memberline.benches import soak
    from memberline.benches._pop_load import PopLoadAmi

    workdir = Path(tempfile.mkdtemp(prefix="memberline-bench-console-"))
    proc: subprocess.Popen[bytes] | None = None
    ami: PopLoadAmi | None = None
    traffic: asyncio.Task[None] | None = None
    log = open(workdir / "hub.log", "wb")  # noqa: ASYNC230 - closed in finally
    try:
        url = f"sqlite:///{workdir / 'console-bench.db'}"
        await asyncio.to_thread(seed_demo, url, members, 1)
        callers = await asyncio.to_thread(varied_callers, url)
        ami = PopLoadAmi(agents=[AGENT], phones=[n for _, n in callers], events_per_s=0.0,
                         calls_per_s=0.0, username="soak", secret=soak.AMI_SECRET, ring=1,
                         ring_s=(0.6, 0.6))  # fmt: skip
        await ami.start()
        traffic = ami.run_traffic()
        hub_port = soak._free_port()
        config = soak.write_config(workdir, url, ami.port, hub_port)
        env = dict(os.environ, SOAK_AMI_SECRET=soak.AMI_SECRET)
        cmd = [sys.executable, "-m", "memberline", "serve", "--config", str(config)]
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before timing
            [*cmd, "--log-level", "WARNING"], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        await soak._wait_hub(hub_port, proc, 120.0)
        results = [await _one_size(ami, hub_port, callers, pops, warmup, s) for s in sizes]
    finally:
        if traffic is not None:
            traffic.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await traffic
        if ami is not None:
            await ami.stop()
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "bench": "console",
        "measured": "AgentCalled bytes written to the hub's AMI socket -> the pop painted at the "
        "console (painted: first frame; whole: the history table's frame too)",
        "members": members,
        "caller_kinds": sorted({k for k, _ in callers}),
        "budget_ms": BUDGET_MS,
        "sizes": results,
        "targets": {"whole_p99_le_50ms_every_size": all(r["within_budget"] for r in results)},
    }


def _run(args: argparse.Namespace, cfg: Config) -> int:
    stamp = LoadStamp()
    sizes = []
    for item in args.size.split(","):
        width, _, height = item.strip().partition("x")
        sizes.append((int(width), int(height)))
    started = time.perf_counter()
    result = asyncio.run(run_bench(args.pops, sizes, args.members, args.warmup))
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    emit(result, stamp, runs=len(sizes))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "console", _run, "queue call -> whole pop painted at a real console")
    parser.add_argument("--pops", type=int, default=120, help="timed pops per size (default 120)")
    parser.add_argument("--warmup", type=int, default=6, help="untimed pops per size first (6)")
    parser.add_argument(
        "--size", default="120x40,80x24", help="terminal sizes WxH, comma-separated"
    )
    parser.add_argument(
        "--members", type=int, default=3000, help="demo members in the hub's database (3000)"
    )
