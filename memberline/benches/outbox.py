"""``memberline bench outbox --messages N``: the outbox against the local sinks.

Seeds N/2 members (phone + email) in a fresh SQLite database (or ``--db``), enqueues one
SMS and one email each (order policy ``both``), starts the Twilio-shaped SMS sink and the
SMTP sink in this process on loopback, and runs ``memberline outbox work --until-idle`` in
a subprocess. ``--kill-once`` SIGKILLs the worker when a third of the messages have
reached the sinks and starts it again (same ``--worker-id``: it recovers its in-flight rows
by asking the sinks). ``--transient-failure-rate`` makes both sinks refuse that fraction of
requests (Twilio 429/500, SMTP 451).

Counted from what the sinks received, not from what the worker believes:
``duplicates`` = extra copies of one outbox row at a sink, ``lost`` = rows that reached
no sink and are not a recorded permanent failure. ``messages_per_s`` = messages received /
seconds from the first request reaching a sink to the last (worker start-up excluded;
``wall_s`` includes it). Status callbacks are off (no webhook site in the bench).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberline.benches._common import LoadStamp, emit
from memberline.cli import add_command
from memberline.config import Config

if TYPE_CHECKING:  # imported where used: every `memberline` command imports the benches
    from dialer.fallback.sinks import LocalSinks


def _seed(url: str, members: int, channels: tuple[str, ...]) -> None:
    from sqlalchemy import insert, select

    from crm_bridge.db import make_engine, session_scope
    from crm_bridge.models import Member, MemberPhone
    from dialer.fallback import OrderPolicy, Purpose, enqueue

    engine = make_engine(url)
    with session_scope(engine) as s:
        base = s.scalar(select(Member.id).order_by(Member.id.desc()).limit(1)) or 0
        s.execute(
            insert(Member),
            [
                {
                    "member_no": f"B{base + i:07d}",
                    "name": f"会员{i}" if i % 2 else f"Member {i}",
                    "joined_on": dt.date(2020, 1, 1),
                    "email": f"b{base + i}@bench.example",
                    "locale": "zh-CN" if i % 2 else "en",
                    "timezone": "Asia/Shanghai",
                }
                for i in range(1, members + 1)
            ],
        )
        ids = list(s.scalars(select(Member.id).where(Member.id > base).order_by(Member.id)))
        s.execute(
            insert(MemberPhone),
            [{"member_id": mid, "e164": f"+8613{mid:09d}", "kind": "mobile"} for mid in ids],
        )
        for mid in ids:
            enqueue(s, Purpose.DORMANT_GREETING, mid, channels, ref="bench", order=OrderPolicy.BOTH)
    engine.dispose()


async def _spawn(cmd: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(*cmd, env=env, stdout=asyncio.subprocess.PIPE)


async def _worker_stats(procs: list[asyncio.subprocess.Process]) -> dict[str, int]:
    """Sum the ``--stats`` JSON lines of workers that exited normally."""
    total: dict[str, int] = {}
    for proc in procs:
        assert proc.stdout is not None
        out = await proc.stdout.read()
        for line in out.decode().splitlines():
            if line.startswith("{"):
                for k, v in json.loads(line).items():
                    total[k] = total.get(k, 0) + int(v)
    return total


def _cpu(who: int) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def _write_config(path: Path, url: str, sinks: LocalSinks) -> None:
    path.write_text(
        f"""
[database]
url = "{url}"

[messaging]
quiet_start = "00:00"
quiet_end = "00:00"
daily_cap_per_member = 1000
twilio_account_sid = "{sinks.sms.account_sid}"
twilio_auth_token = "{sinks.sms.auth_token}"
twilio_base_url = "{sinks.sms.base_url}"
smtp_host = "127.0.0.1"
smtp_port = {sinks.mail.port}
public_url = "http://127.0.0.1:9"
""",
        encoding="utf-8",
    )


async def _bench(args: argparse.Namespace, cfg: Config) -> dict[str, Any]:
    from sqlalchemy import select

    from crm_bridge.db import make_engine, session_scope
    from crm_bridge.migrate import upgrade
    from crm_bridge.models import OutboxMessage, OutboxStatus
    from dialer.fallback.sinks import LocalSinks, SmtpSink, TwilioSink

    tmp = tempfile.TemporaryDirectory(prefix="memberline-bench-outbox-")
    url = args.db or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    upgrade(url)
    channels = ("sms", "email") if args.channels == "both" else (args.channels,)
    members = max(1, args.messages // len(channels))
    t0 = time.perf_counter()
    await asyncio.to_thread(_seed, url, members, channels)
    seed_s = time.perf_counter() - t0
    sms = TwilioSink(callbacks=False, transient_rate=args.transient_failure_rate, seed=1)
    mail = SmtpSink(transient_rate=args.transient_failure_rate, seed=2)
    sinks = await LocalSinks.start(sms=sms, mail=mail)
    first: list[float] = []
    received_at: list[float] = [0.0]

    def received() -> int:
        return len(sms.messages) + len(mail.mails)

    conf = Path(tmp.name) / "bench.toml"
    _write_config(conf, url, sinks)

    def command(worker_id: str) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "memberline",
            "outbox",
            "work",
            "--config",
            str(conf),
            "--until-idle",
            "--worker-id",
            worker_id,
            "--mail-probe-url",
            sinks.sms.base_url,
            "--concurrency",
            str(args.concurrency),
            "--sms-rate",
            "0",
            "--email-rate",
            "0",
            "--retry-base-s",
            "0.05",
            "--max-attempts",
            "10",
            "--log-level",
            "ERROR",
            "--stats",
        ]
        if os.environ.get("MEMBERLINE_BENCH_PROFILE"):  # profile a worker: cProfile output file
            cmd[1:1] = [
                "-m",
                "cProfile",
                "-o",
                f"{os.environ['MEMBERLINE_BENCH_PROFILE']}.{worker_id}",
            ]
        return cmd

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    kills = 0
    self_cpu0 = _cpu(resource.RUSAGE_SELF)
    child_cpu0 = _cpu(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    ids = [f"bench-worker-{i}" for i in range(args.workers)]
    procs = {wid: await _spawn(command(wid), env) for wid in ids}
    try:
        while any(p.returncode is None for p in procs.values()):
            n = received()
            if n and not first:
                first.append(time.perf_counter())
            if n != received_at[-1]:
                received_at.append(time.perf_counter())
            if args.kill_once and not kills and n >= args.messages // 3:
                victim = procs[ids[0]]
                if victim.returncode is None:
                    victim.send_signal(signal.SIGKILL)
                    await victim.wait()
                    kills += 1
                    # restarted with the same id: it reclaims its own in-flight rows at once
                    procs[ids[0]] = await _spawn(command(ids[0]), env)
            await asyncio.sleep(0.01)
            if time.perf_counter() - start > args.timeout_s:
                for p in procs.values():
                    if p.returncode is None:
                        p.kill()
                        await p.wait()
                raise SystemExit(f"bench timed out after {args.timeout_s} s")
        end = received_at[-1] if len(received_at) > 1 else time.perf_counter()
        wstats = await _worker_stats(list(procs.values()))
        sink_cpu = _cpu(resource.RUSAGE_SELF) - self_cpu0
        worker_cpu = _cpu(resource.RUSAGE_CHILDREN) - child_cpu0
        wall = time.perf_counter() - start
        engine = make_engine(url)
        with session_scope(engine) as s:
            rows = [
                (r.id, r.channel.value, r.idempotency_key, r.status)
                for r in s.scalars(select(OutboxMessage))
            ]
        engine.dispose()
        from dialer.fallback.email import message_id_for

        sms_copies = {k: len(v) for k, v in sms.by_callback_id().items()}
        mail_copies = mail.message_ids
        duplicates = lost = 0
        statuses: dict[str, int] = {}
        for rid, channel, key, status in rows:
            statuses[status.value] = statuses.get(status.value, 0) + 1
            copies = (
                sms_copies.get(str(rid), 0)
                if channel == "sms"
                else mail_copies.get(message_id_for(key, "memberline.example"), 0)
            )
            duplicates += max(0, copies - 1)
            if copies == 0 and status is not OutboxStatus.FAILED:
                lost += 1
        got = received()
        span = max(1e-9, end - (first[0] if first else start))
        return {
            "messages": len(rows),
            "received": got,
            "messages_per_s": round(got / span, 1),
            "duplicates": duplicates,
            "lost": lost,
            "retried": sms.injected + mail.injected,
            "permanent_failures": statuses.get("failed", 0),
            "review": statuses.get("review", 0),
            "statuses": statuses,
            "kills": kills,
            "recovered": {
                k.removeprefix("recovered_"): v
                for k, v in wstats.items()
                if k.startswith("recovered_")
            },
            "workers": args.workers,
            "transient_failure_rate": args.transient_failure_rate,
            "worker_cpu_s": round(worker_cpu, 2),
            "sinks_cpu_s": round(sink_cpu, 2),
            "messages_per_worker_cpu_s": round(got / max(1e-9, worker_cpu), 1),
            "send_span_s": round(span, 2),
            "wall_s": round(wall, 2),
            "seed_s": round(seed_s, 2),
            "database": "postgresql" if url.startswith("postgres") else "sqlite",
        }
    finally:
        await sinks.stop()
        tmp.cleanup()


def _run(args: argparse.Namespace, cfg: Config) -> int:
    stamp = LoadStamp()
    result = asyncio.run(_bench(args, cfg))
    emit(result, stamp, runs=1)
    return 0 if result["duplicates"] == 0 and result["lost"] == 0 else 1


def register(bench_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        bench_sub, "outbox", _run, "outbox throughput and exactly-once against the local sinks"
    )
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--transient-failure-rate", type=float, default=0.0)
    p.add_argument(
        "--kill-once", action="store_true", help="SIGKILL the worker once mid-run, restart it"
    )
    p.add_argument("--concurrency", type=int, default=128)
    p.add_argument("--workers", type=int, default=2, help="worker processes sharing the outbox")
    p.add_argument("--channels", choices=["both", "sms", "email"], default="both")
    p.add_argument("--timeout-s", type=float, default=600.0)
