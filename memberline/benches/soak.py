"""``memberline bench soak --minutes M``: the hub under sustained load, RSS and loop lag over time.

Set-up: the member database is ``--db`` if given (for the target figures, a 1,000,000-member
database made once with ``memberline demo-data --members 1000000``), else a freshly seeded
small one (said so in the JSON). A SQLite
database is first copied with SQLite's backup API, so the soak's agents, call rows and
audit rows never touch the original. ``--consoles`` agents (codes ``S0001``...) are
added to the copy with one known password.

Run: the hub is ``memberline serve --config <tmp toml>`` in a subprocess (wrapped by
:mod:`memberline.benches._soak_hub`, which measures the hub loop's own lag), pointed at
a loopback AMI server (:mod:`memberline.benches._soak_ami`) that replays real Asterisk
inbound queue calls ringing the logged-in agents plus filler events at
``--events-per-s``. Meanwhile (unless ``--no-campaign``) a predictive dormant win-back
campaign on the same queue is started, so the hub's runner dials (the AMI server answers
every Originate as no-answer or busy a few seconds later), and ``--outbox-per-s`` outbox
messages a second are queued, which the hub's outbox worker sends to a Twilio-shaped SMS
sink and an SMTP sink in this process. ``--consoles`` HubClients log in and count the
screen pops they receive; one of them sends ``state`` every 0.5 s (round trip = a second lag measure,
client-side). Every 10 s a sample: hub RSS (``/proc/<pid>/status`` VmRSS, and its RssAnon /
RssFile parts: the database is memory-mapped, so VmRSS also counts its pages), loop lag
p99/max, state round trip p99, events sent, pops delivered.

Prints one JSON object (samples plus rss_start_mib, rss_end_mib, rss_max_mib,
rss_growth_mib_per_min, loop_lag_p99_ms, pops_delivered, events_sent, targets).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memberline.benches._common import LoadStamp, emit
from memberline.cli import add_command
from memberline.config import Config

PASSWORD = "soak-pw-1"
AMI_SECRET = "soak-ami-secret"
TARGET_RSS_MIB = 300.0
TARGET_LAG_P99_MS = 20.0


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mib(pid: int) -> dict[str, float]:
    """VmRSS split as the kernel reports it: ``anon`` is the process's own memory (heap,
    stacks: what a leak grows), ``file`` the file pages it has mapped (SQLite maps its
    database: page cache, shared and reclaimable), ``total`` both (VmRSS)."""
    fields = {"VmRSS:": "total", "RssAnon:": "anon", "RssFile:": "file"}
    out = dict.fromkeys(fields.values(), 0.0)
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key = fields.get(line.split(" ", 1)[0].split("\t", 1)[0])
            if key is not None:
                out[key] = round(int(line.split()[1]) / 1024.0, 1)
    return out


async def stop_serve(proc: subprocess.Popen[bytes]) -> None:
    """Stop the benchmark's ``memberline serve`` process: SIGTERM, then kill after 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid``."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (MiB per minute) of (seconds, MiB) points."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    if den == 0:
        return 0.0
    return round(sum((t - mx) * (v - my) for t, v in points) / den * 60.0, 3)


# ------------------------------------------------------------------ database
@dataclass
class SoakDb:
    url: str
    source: str
    copied: bool
    seeded: bool
    members: int
    agents: list[str] = field(default_factory=list)
    """Extensions (= codes) of the soak agents."""
    phones: list[str] = field(default_factory=list)


def sqlite_copy(url: str, workdir: Path) -> str:
    """A copy of the SQLite database ``url`` in ``workdir`` (SQLite's backup API, the source
    opened read-only): a bench writes its call and audit rows there, so the source never
    drifts from run to run. Returns the copy's URL."""
    path = url.split("///", 1)[1]
    if not Path(path).is_file():
        raise RuntimeError(f"{path}: no such database file")
    dst = workdir / "bench-copy.db"
    print(f"bench: copying {path} to {dst} (backup API)...", file=sys.stderr, flush=True)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as s, sqlite3.connect(dst) as d:
        s.backup(d, pages=65536)
    return f"sqlite:///{dst}"


def prepare_db(args: argparse.Namespace, workdir: Path) -> SoakDb:
    from crm_bridge.db import make_engine, normalise_url

    src: str | None = args.db
    seeded = False
    copied = False
    if src is None:
        from crm_bridge.demo_seed import seed_demo

        url = f"sqlite:///{workdir / 'soak-seeded.db'}"
        seed_demo(url, members=args.seed_members, seed=1)
        seeded = True
        source = f"seeded {args.seed_members} members"
    else:
        url = normalise_url(src)
        source = url
        if url.startswith("sqlite"):
            url = sqlite_copy(url, workdir)
            copied = True
    engine = make_engine(url)
    try:
        db = SoakDb(url, source, copied, seeded, 0)
        _add_agents(engine, db, args.consoles)
    finally:
        engine.dispose()
    return db


def _add_agents(engine: Any, db: SoakDb, n: int) -> None:
    from sqlalchemy import func, select

    from crm_bridge.auth import hash_password
    from crm_bridge.db import session_scope
    from crm_bridge.models import Agent, Member, MemberPhone

    pw_hash = hash_password(PASSWORD)
    codes = [f"S{i:04d}" for i in range(1, n + 1)]
    with session_scope(engine) as s:
        existing = set(s.scalars(select(Agent.code).where(Agent.code.in_(codes))))
        for code in codes:
            if code not in existing:
                s.add(Agent(code=code, extension=code, name=f"Soak {code}", password_hash=pw_hash))
        db.members = int(s.scalar(select(func.max(Member.id))) or 0)
        top = int(s.scalar(select(func.max(MemberPhone.id))) or 0)
        rng = random.Random(7)
        ids = {rng.randint(1, top) for _ in range(5000)} if top else set()
        db.phones = list(s.scalars(select(MemberPhone.e164).where(MemberPhone.id.in_(ids))))
    db.agents = codes


# ------------------------------------------------------------------ hub process
def write_config(
    workdir: Path, db_url: str, ami_port: int, hub_port: int, sinks: Any = None
) -> Path:
    """The hub's TOML; with ``sinks`` (:class:`dialer.fallback.sinks.LocalSinks`) the outbox
    sends to them, any hour, and campaigns may dial any hour of the members' day."""
    extra = ""
    if sinks is not None:
        extra = f"""
[calling]
window_start = "00:00"
window_end = "23:59"

[messaging]
webhook_port = {_free_port()}
smtp_port = {sinks.mail.port}
smtp_host = "127.0.0.1"
quiet_start = "00:00"
quiet_end = "00:00"
daily_cap_per_member = 1000
twilio_account_sid = "{sinks.sms.account_sid}"
twilio_auth_token = "{sinks.sms.auth_token}"
twilio_base_url = "{sinks.sms.base_url}"
public_url = "http://127.0.0.1:9"
"""
    else:
        extra = f"""
[messaging]
webhook_port = {_free_port()}
smtp_port = {_free_port()}
"""
    path = workdir / "soak.toml"
    path.write_text(
        f"""[database]
url = "{db_url}"

[ami]
host = "127.0.0.1"
port = {ami_port}
username = "soak"
secret = "${{SOAK_AMI_SECRET}}"

[hub]
bind = "127.0.0.1"
port = {hub_port}
login_attempts_per_minute = 1000

[agi]
port = {_free_port()}
{extra}""",
        encoding="utf-8",
    )
    return path


async def _wait_hub(port: int, proc: subprocess.Popen[bytes], within: float) -> None:
    from memberline.commands.health import probe

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the hub exited with {proc.returncode}")
        if (await probe("127.0.0.1", port, limit_s=1.0)).ok:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("the hub did not answer hello in time")


class LagReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pos = 0
        self.all: list[float] = []

    def read_new(self, since: float = 0.0) -> list[float]:
        """Lag values written since the last call, from probe lines at or after ``since``.

        The probe's ``t`` is the hub loop's clock, ``time.monotonic()``, shared by every
        process on the machine, so ``since`` is a monotonic time of this process.
        """
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as f:
            f.seek(self._pos)
            chunk = f.read()
        complete = chunk[: chunk.rfind("\n") + 1]
        self._pos += len(complete.encode("utf-8"))
        new: list[float] = []
        for line in complete.splitlines():
            with contextlib.suppress(ValueError, KeyError):
                item = json.loads(line)
                if item["t"] >= since:
                    new.extend(item["lag_ms"])
        self.all.extend(new)
        return new


# ------------------------------------------------------------------ consoles
class Consoles:
    def __init__(self, port: int, codes: list[str]) -> None:
        from cti.hubproto.client import HubClient

        self.clients = [
            HubClient(
                "127.0.0.1",
                port,
                code,
                PASSWORD,
                client_name="memberline-soak/0.1",
                request_timeout=30.0,
            )
            for code in codes
        ]
        self.pops = 0
        self.pushes = 0
        self.rtts_ms: list[float] = []
        self.rtt_errors = 0
        for c in self.clients:
            c.on_push(self._on_push)

    def _on_push(self, name: str, data: dict[str, Any]) -> None:
        self.pushes += 1
        if name == "screen_pop":
            self.pops += 1

    async def login_all(self, parallel: int = 16) -> None:
        sem = asyncio.Semaphore(parallel)

        async def one(c: Any) -> None:
            async with sem:
                await c.start()

        await asyncio.gather(*(one(c) for c in self.clients))

    async def rtt_loop(self) -> None:
        i = 0
        while True:
            await asyncio.sleep(0.5)
            c = self.clients[i % len(self.clients)]
            i += 1
            t0 = time.perf_counter()
            try:
                await c.request("state")
            except Exception:
                self.rtt_errors += 1
                continue
            self.rtts_ms.append((time.perf_counter() - t0) * 1000.0)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)


# ------------------------------------------------------------------ run
def start_campaign(url: str) -> tuple[int, int]:
    """A predictive dormant win-back campaign on the ``members`` queue, started: the hub's
    runner dials it (the AMI server answers each Originate as a no-answer or busy)."""
    from crm_bridge.campaigns import control_campaign, create_campaign
    from crm_bridge.db import make_engine, session_scope

    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            cid, entries = create_campaign(
                s, actor="bench:soak", agent_id=None, name=f"soak-{time.time_ns()}",
                kind="dormant_winback", mode="predictive", settings={}, queue="members",
                abandon_cap=0.03,
            )  # fmt: skip
        with session_scope(engine) as s:
            control_campaign(s, actor="bench:soak", campaign_id=cid, action="start")
        return cid, entries
    finally:
        engine.dispose()


class OutboxFeed:
    """Queues ``per_s`` messages a second (a dormant greeting, by SMS and by email) to members
    of the soak database, in their own transactions, as a campaign's fallbacks would."""

    def __init__(self, url: str, members: int, per_s: float) -> None:
        self.url = url
        self.members = members
        self.per_s = per_s
        self.enqueued = 0

    def _enqueue(self, engine: Any, ids: list[int]) -> int:
        from crm_bridge.db import session_scope
        from dialer.fallback import OrderPolicy, Purpose, enqueue

        n = 0
        with session_scope(engine) as s:
            for mid in ids:
                n += len(enqueue(s, Purpose.DORMANT_GREETING, mid, ("sms", "email"),
                                 ref=f"soak-{time.time_ns()}", order=OrderPolicy.BOTH))  # fmt: skip
        return n

    async def run(self) -> None:
        from crm_bridge.db import make_engine

        engine = make_engine(self.url)
        rng = random.Random(11)
        t0 = time.monotonic()
        sent = 0
        try:
            while True:
                await asyncio.sleep(1.0)
                due = int((time.monotonic() - t0) * self.per_s) - sent
                if due <= 0:
                    continue
                ids = [rng.randint(1, max(1, self.members)) for _ in range(due)]
                sent += due
                with contextlib.suppress(Exception):
                    self.enqueued += await asyncio.to_thread(self._enqueue, engine, ids)
        finally:
            engine.dispose()


async def soak(args: argparse.Namespace, db: SoakDb, workdir: Path) -> dict[str, Any]:
    from dialer.fallback.sinks import LocalSinks, SmtpSink, TwilioSink
    from memberline.benches._soak_ami import SoakAmi

    ami = SoakAmi(
        agents=db.agents,
        phones=db.phones or ["+8613800000000"],
        events_per_s=args.events_per_s,
        calls_per_s=args.calls_per_s,
        username="soak",
        secret=AMI_SECRET,
    )
    await ami.start()
    sinks = None
    if args.outbox_per_s > 0 or args.campaign:
        sinks = await LocalSinks.start(sms=TwilioSink(callbacks=False), mail=SmtpSink())
    campaign: tuple[int, int] | None = None
    if args.campaign:
        campaign = await asyncio.to_thread(start_campaign, db.url)
    feed = OutboxFeed(db.url, db.members, args.outbox_per_s)
    hub_port = _free_port()
    config = write_config(workdir, db.url, ami.port, hub_port, sinks)
    lag_file = workdir / "lag.jsonl"
    env = dict(os.environ, SOAK_AMI_SECRET=AMI_SECRET)
    log = open(workdir / "hub.log", "wb")  # noqa: ASYNC230 - closed in finally
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the load
        [
            sys.executable,
            "-m",
            "memberline.benches._soak_hub",
            str(lag_file),
            "serve",
            "--config",
            str(config),
            "--log-level",
            "WARNING",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    consoles: Consoles | None = None
    tasks: list[asyncio.Task[Any]] = []
    samples: list[dict[str, Any]] = []
    lag = LagReader(lag_file)
    try:
        await _wait_hub(hub_port, proc, 60.0)
        t_login = time.monotonic()
        consoles = Consoles(hub_port, db.agents)
        await consoles.login_all()
        login_s = round(time.monotonic() - t_login, 1)
        tasks.append(ami.run_traffic())
        if args.outbox_per_s > 0:
            tasks.append(asyncio.create_task(feed.run(), name="soak-outbox-feed"))
        tasks.append(asyncio.create_task(consoles.rtt_loop(), name="soak-rtt"))
        t0 = time.monotonic()
        end = t0 + args.minutes * 60.0
        lag.read_new(since=float("inf"))  # drop start-up (login hashing) lag
        rtt_seen = 0
        cpu_prev, t_prev = _cpu_s(proc.pid), t0
        next_sample = t0 + args.sample_s
        while True:
            await asyncio.sleep(max(0.0, min(next_sample, end) - time.monotonic()))
            now = time.monotonic()
            if proc.poll() is not None:
                raise RuntimeError(f"the hub died (exit {proc.returncode}); see {workdir}/hub.log")
            window = lag.read_new(since=t0)
            rtts = consoles.rtts_ms[rtt_seen:]
            rtt_seen = len(consoles.rtts_ms)
            cpu_now = _cpu_s(proc.pid)
            hub_cpu = round(100.0 * (cpu_now - cpu_prev) / max(1e-6, now - t_prev), 1)
            cpu_prev, t_prev = cpu_now, now
            samples.append(
                {
                    "t_s": round(now - t0, 1),
                    **{
                        f"rss_{k}_mib" if k != "total" else "rss_mib": v
                        for k, v in _rss_mib(proc.pid).items()
                    },
                    "hub_cpu_pct": hub_cpu,
                    "load_avg_1m": round(os.getloadavg()[0], 2),
                    "loop_lag_p99_ms": _p(window, 0.99),
                    "loop_lag_max_ms": max(window) if window else None,
                    "state_rtt_p99_ms": _p(rtts, 0.99),
                    "events_sent": ami.stats.events_sent,
                    "calls_started": ami.stats.calls_started,
                    "pops_delivered": consoles.pops,
                }
            )
            print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
            next_sample += args.sample_s
            if now >= end - 0.01:
                break
        elapsed = time.monotonic() - t0
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if consoles is not None:
            await consoles.close()
        await stop_serve(proc)
        log.close()
        await ami.stop()
        if sinks is not None:
            delivered = len(sinks.sms.messages) + len(sinks.mail.mails)
            await sinks.stop()
    rss = [s["rss_mib"] for s in samples]
    anon = [s["rss_anon_mib"] for s in samples]
    growth = _slope_per_min([(s["t_s"], s["rss_mib"]) for s in samples[1:]] or [])
    anon_growth = _slope_per_min([(s["t_s"], s["rss_anon_mib"]) for s in samples[1:]] or [])
    lag_p99 = _p(lag.all, 0.99)
    warm = [s for s in samples if s["t_s"] > 60.0]
    return {
        "bench": "soak",
        "minutes": args.minutes,
        "db": {
            "source": db.source,
            "copied": db.copied,
            "seeded": db.seeded,
            "members": db.members,
        },
        "consoles": len(db.agents),
        "console_login_s": login_s,
        "events_per_s_target": args.events_per_s,
        "events_per_s_sent": round(ami.stats.events_sent / elapsed, 1),
        "calls_per_s": args.calls_per_s,
        "events_sent": ami.stats.events_sent,
        "calls_started": ami.stats.calls_started,
        "agent_called_sent": ami.stats.agent_called,
        "pops_delivered": consoles.pops if consoles else 0,
        "pushes_received": consoles.pushes if consoles else 0,
        "rss_start_mib": rss[0] if rss else None,
        "rss_end_mib": rss[-1] if rss else None,
        "rss_max_mib": max(rss) if rss else None,
        "rss_growth_mib_per_min": growth,
        "rss_anon_start_mib": anon[0] if anon else None,
        "rss_anon_end_mib": anon[-1] if anon else None,
        "rss_anon_max_mib": max(anon) if anon else None,
        "rss_anon_growth_mib_per_min": anon_growth,
        "rss_measured": "VmRSS = RssAnon (the hub's own memory) + RssFile (mapped files: "
        "the SQLite database's pages the hub has read, page cache)",
        "loop_lag_p99_ms": lag_p99,
        "loop_lag_max_ms": max(lag.all) if lag.all else None,
        "loop_lag_p99_ms_worst_window_after_1min": max(
            (s["loop_lag_p99_ms"] or 0.0 for s in warm), default=None
        ),
        "loop_lag_measured": "in the hub process: overshoot of a 50 ms asyncio sleep "
        "(memberline.benches._soak_hub), every 50 ms",
        "state_rtt_p99_ms": _p(consoles.rtts_ms, 0.99) if consoles else None,
        "state_rtt_errors": consoles.rtt_errors if consoles else 0,
        "state_rtt_measured": "client-side round trip of `state` from the bench process every 0.5 s",
        "ami_logins": ami.stats.logins,
        "campaign": None
        if campaign is None
        else {"id": campaign[0], "entries": campaign[1], "originates": ami.stats.originates},
        "outbox_per_s": args.outbox_per_s,
        "outbox_enqueued": feed.enqueued,
        "outbox_delivered_to_sinks": delivered if sinks is not None else 0,
        "targets": {
            "rss_max_mib_le_300": bool(rss) and max(rss) <= TARGET_RSS_MIB,
            "rss_anon_max_mib_le_300": bool(anon) and max(anon) <= TARGET_RSS_MIB,
            "loop_lag_p99_le_20ms": lag_p99 is not None and lag_p99 <= TARGET_LAG_P99_MS,
        },
        "samples": samples,
    }


def handler(args: argparse.Namespace, config: Config) -> int:
    stamp = LoadStamp()
    workdir = Path(tempfile.mkdtemp(prefix="memberline-soak-"))
    try:
        db = prepare_db(args, workdir)
        result = asyncio.run(soak(args, db, workdir))
    except RuntimeError as exc:
        print(f"memberline bench soak: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.keep:
        result["workdir"] = str(workdir)
    emit(result, stamp, runs=1)
    return 0


def register(bench_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(bench_sub, "soak", handler, "hub RSS and loop lag under sustained load")
    p.add_argument("--minutes", type=float, default=10.0, help="duration (default 10)")
    p.add_argument("--consoles", type=int, default=200, help="logged-in consoles (default 200)")
    p.add_argument("--events-per-s", type=float, default=2000.0, help="AMI events/s (default 2000)")
    p.add_argument(
        "--calls-per-s", type=float, default=5.0, help="queue calls/s within that (default 5)"
    )
    p.add_argument("--sample-s", type=float, default=10.0, help="sample period (default 10 s)")
    p.add_argument(
        "--seed-members", type=int, default=20_000, help="members if a DB must be seeded"
    )
    p.add_argument("--keep", action="store_true", help="keep the work directory (copy, logs)")
    p.add_argument(
        "--campaign",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run a predictive campaign meanwhile (default on)",
    )
    p.add_argument(
        "--outbox-per-s", type=float, default=5.0, help="outbox messages queued per s (5)"
    )
