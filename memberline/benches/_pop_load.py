"""``memberline bench pop --load``: screen-pop latency at every ringing console, under load.

What is timed, per (call, rung agent): from ``time.perf_counter()`` right after the
``AgentCalled`` bytes for that agent were written to the hub's AMI socket by the loopback
AMI server, to the ``screen_pop`` push for that call decoded by that agent's console
(``HubClient`` push callback). ``perf_counter`` is CLOCK_MONOTONIC, one clock for every
process on the machine.

Set-up (the ``bench soak`` machinery): the member database is ``--db`` (for the target
figures a 1,000,000-member demo database; SQLite is first copied with the backup API, so
the original is untouched; a PostgreSQL database gets the bench agents added), the hub is
``memberline serve`` in its own process (AMI client, tracker, hub, dialer runner, outbox
worker, as in production), ``--consoles`` consoles log in from this process (agents
``S0001``...), the first ``--agents`` of them members of the ringall queue ``members``.
The AMI server (:class:`PopLoadAmi`) starts ``--calls-per-s`` inbound queue calls per
second, each ringing ``--ring`` agents chosen at random among the queue's (Newchannel,
QueueCallerJoin, then right behind as on a real Asterisk one AgentCalled per agent; after a
1-3 s ring: AgentRingNoAnswer for each, QueueCallerAbandon, QueueCallerLeave, Hangup), and
tops the stream up to ``--events-per-s`` with the recorded 200-call originate burst
(``rate-200.txt``, fresh ids). Callers: ``--unknown`` (10 %) numbers no member has,
``--multi`` (10 %) numbers several members share, the rest one member's number.

Not simulated: calls being answered (agents stay free), and a predictive campaign's own
originates (the filler carries originate traffic, but no campaign is started).

The first ``--warmup-s`` seconds are not counted. Also reported: pops that never arrived,
the hub's loop lag (``memberline.benches._soak_hub``), its RSS and CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memberline.benches._soak_ami import SoakAmi


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))], 3)


@dataclass
class PopLoadAmi(SoakAmi):
    """SoakAmi whose queue calls ring ``ring`` agents each and whose AgentCalled writes are
    timed (``sent``: (call id, agent) -> perf_counter after the write)."""

    ring: int = 3
    ring_s: tuple[float, float] = (1.0, 3.0)
    """How long the agents ring before the caller gives up (uniform in this range)."""
    unknown_share: float = 0.1
    multi_share: float = 0.1
    multi_phones: Sequence[str] = ()
    sent: dict[tuple[str, str], float] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    """call id -> the caller kind asked for: member, unknown, multi."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._marks: dict[int, tuple[str, str]] = {}
        self.on_written = self._written

    def _written(self, chunks: list[bytes], t: float) -> None:
        if not self._marks:
            return
        for c in chunks:
            mark = self._marks.pop(id(c), None)
            if mark is not None:
                self.sent[mark] = t

    def _new_call(self, now: float) -> None:
        rng = self._rng
        r = rng.random()
        if r < self.unknown_share:
            kind, number = "unknown", f"+86199{rng.randrange(10**8):08d}"
        elif r < self.unknown_share + self.multi_share and self.multi_phones:
            kind, number = "multi", rng.choice(list(self.multi_phones))
        else:
            kind, number = "member", rng.choice(list(self.phones))
        agents = rng.sample(list(self.agents), min(self.ring, len(self.agents)))
        self.ring_call(now, number, agents, kind)

    def ring_call(self, now: float, number: str, agents: Sequence[str], kind: str = "") -> str:
        """Schedule one queue call from ``number`` ringing ``agents``; returns its call id."""
        from cti.pbxsim import ami_events as ev
        from cti.pbxsim.wire import encode

        self._call_no += 1
        n = self._call_no
        rng = self._rng
        base = str(1_800_000_000 + n)
        linkedid = f"{base}.0"
        caller = ev.Channel(
            f"Local/8000@from-pstn-{n:08x};2", f"{base}.1", linkedid, "from-pstn", "8000",
            priority=3, state=ev.UP, cid_num=number, cid_name="",
        )  # fmt: skip
        self.kinds[linkedid] = kind
        legs = [
            ev.Channel(f"Local/{a}@agents-{n:08x}{j:x};1", f"{base}.{2 + j}", linkedid, "agents", a)
            for j, a in enumerate(agents)
        ]

        def due(offset: float, pairs: Any) -> bytes:
            data = encode(pairs)
            heapq.heappush(self._due, (now + offset, next(self._seq), data))
            return data

        due(0.0, ev.newchannel(caller))
        due(0.0, ev.queue_caller("QueueCallerJoin", caller, self.queue, 1, 1))
        for a, leg in zip(agents, legs, strict=True):
            iface = f"Local/{a}@agents/n"
            data = due(
                0.002, ev.agent_event("AgentCalled", caller, leg, self.queue, iface, f"Agent {a}")
            )
            self._marks[id(data)] = (linkedid, a)
            self.stats.agent_called += 1
        ring_s = rng.uniform(*self.ring_s)
        for a, leg in zip(agents, legs, strict=True):
            iface = f"Local/{a}@agents/n"
            due(ring_s, ev.agent_event("AgentRingNoAnswer", caller, leg, self.queue, iface,
                                       f"Agent {a}", [("RingTime", str(round(ring_s)))]))  # fmt: skip
        due(ring_s, ev.queue_caller_abandon(caller, self.queue, 1, 1, round(ring_s)))
        due(ring_s, ev.queue_caller("QueueCallerLeave", caller, self.queue, 1, 0))
        due(ring_s + 0.01, ev.hangup(caller, 16))
        self.stats.calls_started += 1
        return linkedid


def _multi_member_phones(url: str, limit: int = 2000) -> list[str]:
    """Numbers that several members share (families)."""
    from sqlalchemy import func, select

    from crm_bridge.db import make_engine, session_scope
    from crm_bridge.models import MemberPhone

    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            q = (
                select(MemberPhone.e164)
                .group_by(MemberPhone.e164)
                .having(func.count(func.distinct(MemberPhone.member_id)) > 1)
                .limit(limit)
            )
            return list(s.scalars(q))
    finally:
        engine.dispose()


class _Consoles:
    def __init__(self, port: int, codes: Sequence[str], password: str) -> None:
        from cti.hubproto.client import HubClient

        self.arrived: dict[tuple[str, str], float] = {}
        self.pop_kinds: dict[str, str] = {}
        self.clients = []
        for code in codes:
            c = HubClient("127.0.0.1", port, code, password, client_name="memberline-bench-pop/0.1",
                          request_timeout=60.0)  # fmt: skip
            c.on_push(self._receiver(code))
            self.clients.append(c)

    def _receiver(self, code: str) -> Any:
        def on_push(name: str, data: dict[str, Any]) -> None:
            if name == "screen_pop":
                call_id = str(data.get("call_id"))
                self.arrived.setdefault((call_id, code), time.perf_counter())
                self.pop_kinds[call_id] = str(data.get("kind"))

        return on_push

    async def login_all(self, parallel: int = 16) -> None:
        sem = asyncio.Semaphore(parallel)

        async def one(c: Any) -> None:
            async with sem:
                await c.start()

        await asyncio.gather(*(one(c) for c in self.clients))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)


async def _measure(args: argparse.Namespace, db: Any, workdir: Path) -> dict[str, Any]:
    from memberline.benches import soak

    queue_agents = db.agents[: args.agents]
    multi = _multi_member_phones(db.url)
    ami = PopLoadAmi(
        agents=queue_agents,
        phones=db.phones or ["+8613800000000"],
        events_per_s=args.events_per_s,
        calls_per_s=args.calls_per_s,
        username="soak",
        secret=soak.AMI_SECRET,
        ring=args.ring,
        unknown_share=args.unknown,
        multi_share=args.multi,
        multi_phones=multi,
        seed=args.seed,
    )
    await ami.start()
    hub_port = soak._free_port()
    config = soak.write_config(workdir, db.url, ami.port, hub_port)
    lag_file = workdir / "lag.jsonl"
    env = dict(os.environ, SOAK_AMI_SECRET=soak.AMI_SECRET)
    log = open(workdir / "hub.log", "wb")  # noqa: ASYNC230 - closed in finally
    cmd = [sys.executable, "-m", "memberline.benches._soak_hub", str(lag_file), "serve"]
    cmd += ["--config", str(config), "--log-level", "WARNING"]
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the load
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    consoles: _Consoles | None = None
    traffic: asyncio.Task[None] | None = None
    lag = soak.LagReader(lag_file)
    try:
        await soak._wait_hub(hub_port, proc, 120.0)
        consoles = _Consoles(hub_port, db.agents, soak.PASSWORD)
        t_login = time.monotonic()
        await consoles.login_all()
        login_s = round(time.monotonic() - t_login, 1)
        await asyncio.sleep(2.0)  # the hub's resync and the logins' writes settle
        lag.read_new(since=float("inf"))
        cpu0 = soak._cpu_s(proc.pid)
        t0 = time.monotonic()
        warm_until = time.perf_counter() + args.warmup_s
        traffic = ami.run_traffic()
        rss: list[float] = []
        end = t0 + args.warmup_s + args.seconds
        while time.monotonic() < end:
            await asyncio.sleep(min(5.0, max(0.0, end - time.monotonic())))
            if proc.poll() is not None:
                raise RuntimeError(f"the hub died (exit {proc.returncode}); see {workdir}/hub.log")
            rss.append(soak._rss_mib(proc.pid)["total"])
        traffic.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await traffic
        traffic = None
        elapsed = time.monotonic() - t0
        hub_cpu = round(100.0 * (soak._cpu_s(proc.pid) - cpu0) / elapsed, 1)
        await asyncio.sleep(3.0)  # late pops still count (as misses if they never come)
        lag.read_new(since=0.0)
    finally:
        if traffic is not None:
            traffic.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await traffic
        if consoles is not None:
            await consoles.close()
        await soak.stop_serve(proc)
        log.close()
        await ami.stop()
    lat: list[float] = []
    by_kind: dict[str, list[float]] = {}
    missing = 0
    for (call_id, agent), t_sent in ami.sent.items():
        if t_sent < warm_until:
            continue
        t_got = consoles.arrived.get((call_id, agent))
        if t_got is None:
            missing += 1
            continue
        ms = (t_got - t_sent) * 1000.0
        lat.append(ms)
        by_kind.setdefault(ami.kinds.get(call_id, "?"), []).append(ms)
    return {
        "bench": "pop",
        "mode": "load",
        "measured": "AgentCalled bytes written by the AMI server -> screen_pop decoded at the "
        "rung agent's console, per (call, rung agent)",
        "db": db.source,
        "dialect": "postgresql" if db.url.startswith("postgres") else "sqlite",
        "members": db.members,
        "consoles": len(db.agents),
        "console_login_s": login_s,
        "queue_agents": len(queue_agents),
        "ring_per_call": args.ring,
        "calls_per_s": args.calls_per_s,
        "events_per_s_target": args.events_per_s,
        "events_per_s_sent": round(ami.stats.events_sent / elapsed, 1),
        "calls_started": ami.stats.calls_started,
        "seconds": args.seconds,
        "warmup_s": args.warmup_s,
        "pops": len(lat),
        "pops_missing": missing,
        "pop_p50_ms": _pct(lat, 0.50),
        "pop_p90_ms": _pct(lat, 0.90),
        "pop_p99_ms": _pct(lat, 0.99),
        "pop_max_ms": round(max(lat), 3) if lat else None,
        "by_caller": {
            k: {"pops": len(v), "p50_ms": _pct(v, 0.5), "p99_ms": _pct(v, 0.99)}
            for k, v in sorted(by_kind.items())
        },
        "multi_member_numbers": len(multi),
        "hub_loop_lag_p99_ms": _pct(lag.all, 0.99),
        "hub_loop_lag_max_ms": round(max(lag.all), 2) if lag.all else None,
        "hub_cpu_pct": hub_cpu,
        "hub_rss_max_mib": max(rss) if rss else None,
        "targets": {"pop_p99_le_10ms": bool(lat) and (_pct(lat, 0.99) or 0) <= 10.0},
    }


def run_load(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Prepare the database ``url`` (a copy for SQLite), run the load, clean up."""
    from memberline.benches import soak

    workdir = Path(tempfile.mkdtemp(prefix="memberline-pop-load-"))
    try:
        db = soak.prepare_db(
            argparse.Namespace(db=url, seed_members=0, consoles=args.consoles), workdir
        )
        return asyncio.run(_measure(args, db, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("--load (realistic load; see memberline.benches._pop_load)")
    g.add_argument("--load", action="store_true", help="measure under load instead of idle")
    g.add_argument("--seconds", type=float, default=60.0, help="timed load (default 60)")
    g.add_argument("--warmup-s", type=float, default=10.0, help="load not counted first (10)")
    g.add_argument("--consoles", type=int, default=200, help="logged-in consoles (200)")
    g.add_argument("--agents", type=int, default=50, help="of them on the ringall queue (50)")
    g.add_argument("--ring", type=int, default=3, help="agents rung per call (3)")
    g.add_argument("--calls-per-s", type=float, default=5.0, help="new queue calls/s (5)")
    g.add_argument("--events-per-s", type=float, default=2000.0, help="AMI events/s (2000)")
    g.add_argument("--unknown", type=float, default=0.1, help="share of unknown callers (0.1)")
    g.add_argument("--multi", type=float, default=0.1, help="share of multi-member numbers (0.1)")
