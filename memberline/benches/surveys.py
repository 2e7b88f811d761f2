"""``memberline bench surveys``: concurrent FastAGI survey calls end to end.

``--calls`` members answer the satisfaction survey at once over real FastAGI sockets on
127.0.0.1 (Asterisk's side replayed by :mod:`surveys.testing`), against a fresh migrated
SQLite database (or ``--db URL``). Every third member gives CSAT 1, so escalation runs for a
third of the calls. Reported:

* ``calls_per_s`` and per-call duration (p50/p95/max);
* ``answer_to_next_prompt_ms``: from the member's key reply to the server's next command,
  i.e. the answer stored + (when due) the complaint and callback task written (p50/p95/max).
  This is database-write latency only: whether an unhappy member reaches a person the same
  minute depends on an agent taking the callback task, which this bench does not measure;
* counts checked against what must exist (responses complete, complaints, callback tasks).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberline.benches._common import LoadStamp, emit
from memberline.cli import add_command
from memberline.config import Config

# SQLAlchemy, the models and surveys.* are imported where used: every `memberline` command
# imports the benches.
if TYPE_CHECKING:
    from surveys.testing import AsteriskSide


class _TimedSide:
    """An Asterisk side that notes when each GET DATA reply leaves and when the next command
    arrives (wraps the side rather than subclassing it, so this module imports no surveys.*)."""

    def __init__(self, side: AsteriskSide) -> None:
        self.side = side
        self.replied_at: float | None = None
        self.gaps: list[float] = []

    def reply(self, command: str) -> bytes:
        now = time.perf_counter()
        if self.replied_at is not None:
            self.gaps.append(now - self.replied_at)
            self.replied_at = None
        out = self.side.reply(command)
        if command.startswith("GET DATA"):
            self.replied_at = time.perf_counter()
        return out


async def _call(port: int, member_id: int, n: int) -> tuple[float, list[float]]:
    from surveys.testing import AsteriskSide, Press, header_block

    low = n % 3 == 0
    side = _TimedSide(
        AsteriskSide(
            variables={"MEMBER_ID": str(member_id)},
            behaviour=[Press("1" if low else "5"), Press("9", timed_out=True), Press("2")],
        )
    )
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(header_block(uniqueid=f"bench.{n}"))
    await writer.drain()
    while line := await reader.readline():
        writer.write(side.reply(line.decode().rstrip("\n")))
        await writer.drain()
    writer.close()
    return time.perf_counter() - t0, side.gaps


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _run(url: str, calls: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from crm_bridge.db import make_engine, session_scope
    from crm_bridge.models import Agent, CallbackTask, Complaint, Member, SurveyResponse
    from surveys.agi import SurveyAgiServer
    from surveys.store import SurveyRecorder

    engine = make_engine(url)
    with session_scope(engine) as s:
        agent = Agent(code="b1", extension="b1", name="Bench", password_hash="x")
        s.add(agent)
        s.flush()
        import datetime as dt

        members = [
            Member(
                member_no=f"B{i:06d}",
                name=f"Bench {i}",
                joined_on=dt.date(2024, 1, 1),
                maintaining_agent_id=agent.id,
            )
            for i in range(calls)
        ]
        s.add_all(members)
        s.flush()
        ids = [m.id for m in members]
    server = SurveyAgiServer(SurveyRecorder(engine))
    await server.start("127.0.0.1", 0)
    t0 = time.perf_counter()
    results = await asyncio.gather(*(_call(server.port, ids[i], i) for i in range(calls)))
    wall = time.perf_counter() - t0
    await server.close()
    with session_scope(engine) as s:
        complete = s.scalar(
            select(func.count())
            .select_from(SurveyResponse)
            .where(SurveyResponse.status == "complete")
        )
        complaints = s.scalar(select(func.count()).select_from(Complaint))
        tasks = s.scalar(select(func.count()).select_from(CallbackTask))
    engine.dispose()
    durations = [d for d, _ in results]
    gaps = [g for _, gs in results for g in gs]
    expected_low = len([i for i in range(calls) if i % 3 == 0])
    return {
        "bench": "surveys",
        "database": url.split(":", 1)[0],
        "calls": calls,
        "wall_s": round(wall, 3),
        "calls_per_s": round(calls / wall, 1),
        "call_s": {
            "p50": round(statistics.median(durations), 3),
            "p95": round(_pct(durations, 0.95), 3),
            "max": round(max(durations), 3),
        },
        "answer_to_next_prompt_ms": {
            "p50": round(1000 * statistics.median(gaps), 1),
            "p95": round(1000 * _pct(gaps, 0.95), 1),
            "max": round(1000 * max(gaps), 1),
        },
        "responses_complete": complete,
        "complaints": complaints,
        "callback_tasks": tasks,
        "expected_escalations": expected_low,
        "ok": complete == calls and complaints == expected_low and tasks == expected_low,
    }


def run(args: argparse.Namespace, cfg: Config) -> int:
    from crm_bridge.migrate import upgrade

    stamp = LoadStamp()
    with tempfile.TemporaryDirectory(prefix="memberline-bench-") as tmp:
        url = args.bench_db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        if not args.bench_db:
            upgrade(url)
        result = asyncio.run(_run(url, args.calls))
    emit(result, stamp, runs=1)
    return 0 if result["ok"] else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "surveys", run, "concurrent FastAGI survey calls: throughput, answer latency"
    )
    p.add_argument("--calls", type=int, default=200, help="concurrent survey calls")
    p.add_argument(
        "--bench-db",
        default=None,
        metavar="URL",
        help="migrated, empty database (default: temp SQLite)",
    )
