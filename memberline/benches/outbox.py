"""``memberline bench outbox --messages N``: the outbox with its rules on, against faithful sinks.

Seeds the members of a realistic mix in a fresh SQLite database (or ``--db``, e.g. a fresh
PostgreSQL database), starts the workers as a service runs (waiting until each is up and
listening), then enqueues the messages in one transaction: members in six zones (Shanghai, London, New York, Los Angeles, Sydney, Moscow-ish
Russian mobiles with several zones and no zone on record, and a few whose number names no
zone at all), 10 % without SMS consent and 5 % without email consent, 1 % poison rows (an
unusable email address, a number Twilio refuses). Each member gets an SMS and an email
under the purposes' own order policies (``sms_then_email`` / ``sms_else_email``), and one
member in ten a third message (the daily cap of 2 holds it). Quiet hours (21:00-09:00 local)
are on, so what is night somewhere now is held.

The Twilio-shaped sink is faithful (statuses advance over time, ``DateSent`` empty until
sent, ``--provider-lag-s`` listing lag, ``--drop-rate`` connections dropped after a message
was accepted) and sends signed status callbacks to the worker's webhook site (the first
worker serves it). ``--kill-once`` SIGKILLs that worker when ``--kill-after`` messages have
reached the sinks and starts it again (same ``--worker-id``: it recovers its in-flight rows
by asking the sinks). ``--transient-failure-rate`` makes both sinks refuse that fraction of
requests (Twilio 429/500, SMTP 451).

Counted from what the sinks received, not from what the worker believes: ``delivered`` =
rows with a copy at a sink; ``duplicates`` = extra copies of one row; ``held_by_rule`` =
rows not sent because a rule says so, per rule (quiet hours, daily cap, consent, unknown
zone, channel order); ``failed_permanent``; ``review``; ``lost`` = rows the provider never
got that are neither failed, held by a rule nor up for review.

``messages_per_s`` (what a user feels) = deliverable messages the providers accepted /
seconds **from the commit of the enqueueing transaction to the last acceptance** (the
idle workers' poll, leasing, rules, building, the "sending" mark, the provider call; worker
start-up is not in it, a long-running service pays it once). ``received_by_s``: when the
first and the p50...p100 acceptances came, from the same start. The run ends when nothing
reached the sinks for 0.5 s, the SMS sink has no status callback left to deliver and the
outbox has nothing due within a minute or in flight; then the workers get SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
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


ZONES: tuple[tuple[str, str, int, str], ...] = (
    # (record zone, number prefix, E.164 length, label); "" = no zone on record
    ("Asia/Shanghai", "+86139", 14, "shanghai"),
    ("Europe/London", "+447911", 13, "london"),
    ("America/New_York", "+1212555", 12, "new_york"),
    ("", "+1415555", 12, "los_angeles_from_number"),
    ("Australia/Sydney", "+61412", 12, "sydney"),
    ("", "+7916", 12, "russia_several_zones"),
    ("", "+447700900", 13, "no_zone_known"),
)
WEIGHTS = (40, 12, 12, 10, 10, 10, 6)


def _seed_members(url: str, members: int) -> tuple[dict[str, int], list[int]]:
    """The members of the mix described above: (how many of each kind, their ids)."""
    import random

    from sqlalchemy import insert, select

    from crm_bridge.db import make_engine, session_scope
    from crm_bridge.models import Member, MemberPhone

    rng = random.Random(14)
    engine = make_engine(url)
    mix: dict[str, int] = {}
    with session_scope(engine) as s:
        base = s.scalar(select(Member.id).order_by(Member.id.desc()).limit(1)) or 0
        rows = []
        phones: list[str] = []
        for i in range(1, members + 1):
            tz, prefix, length, label = rng.choices(ZONES, WEIGHTS)[0]
            poison = rng.random() < 0.01
            email = f"b{base + i}@bench.example"
            if poison and i % 2:
                email = f"b{base + i}@@bench.example"  # cannot be built
            digits = length - len(prefix)
            number = f"{prefix}{(base + i) % 10**digits:0{digits}d}"
            if poison and not i % 2:
                number = f"+86{(base + i) % 1000}"  # too short: Twilio answers 21211
            mix[label] = mix.get(label, 0) + 1
            mix["poison"] = mix.get("poison", 0) + int(poison)
            rows.append(
                {
                    "member_no": f"B{base + i:07d}",
                    "name": f"会员{i}" if i % 2 else f"Member {i}",
                    "joined_on": dt.date(2020, 1, 1),
                    "email": email,
                    "locale": "zh-CN" if i % 2 else "en",
                    "timezone": tz,
                    "consent_sms": rng.random() >= 0.10,
                    "consent_email": rng.random() >= 0.05,
                }
            )
            phones.append(number)
        s.execute(insert(Member), rows)
        ids = list(s.scalars(select(Member.id).where(Member.id > base).order_by(Member.id)))
        s.execute(
            insert(MemberPhone),
            [
                {"member_id": mid, "e164": e164, "kind": "mobile"}
                for mid, e164 in zip(ids, phones, strict=True)
            ],
        )
    engine.dispose()
    return mix, ids


def _enqueue(url: str, ids: list[int]) -> None:
    """Each member an SMS and an email (the purposes' own channel order), one in ten a
    third message: one transaction, as a campaign's end or a nightly job would."""
    from crm_bridge.db import make_engine, session_scope
    from dialer.fallback import Purpose, enqueue

    engine = make_engine(url)
    with session_scope(engine) as s:
        purposes = (Purpose.DORMANT_GREETING, Purpose.POINTS_REDEMPTION)
        for n, mid in enumerate(ids):
            enqueue(s, purposes[n % 2], mid, ("sms", "email"), ref="bench",
                    payload={"points_used": 100, "item": "保温杯"})  # fmt: skip
            if n % 10 == 0:  # a third message the same day: the cap (2) holds it
                enqueue(s, Purpose.SURVEY_INVITATION, mid, "sms", ref="bench-cap",
                        payload={"survey_url": "https://s.example/x"})  # fmt: skip
    engine.dispose()


async def _spawn(cmd: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(*cmd, env=env, stdout=asyncio.subprocess.PIPE)


async def _ready(proc: asyncio.subprocess.Process) -> None:
    """Wait for the worker's ``{"ready": 1}`` line (``outbox work --stats``)."""
    assert proc.stdout is not None
    while True:
        line = await proc.stdout.readline()
        if not line:
            raise SystemExit(f"outbox worker exited before it was ready ({await proc.wait()})")
        if line.startswith(b'{"ready"'):
            return


def _outstanding(engine: Any) -> int:
    """Rows due within a minute, leased or sending (a retry or a recovery still to come)."""
    from sqlalchemy import func, select

    from crm_bridge.db import session_scope
    from crm_bridge.models import OutboxMessage, OutboxStatus, utcnow

    horizon = utcnow() + dt.timedelta(seconds=60)
    with session_scope(engine) as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    (
                        (OutboxMessage.status == OutboxStatus.PENDING)
                        & (OutboxMessage.next_attempt_at <= horizon)
                    )
                    | OutboxMessage.status.in_([OutboxStatus.LEASED, OutboxStatus.SENDING])
                )
            )
            or 0
        )


async def _worker_stats(procs: list[asyncio.subprocess.Process]) -> dict[str, int]:
    """Sum the ``--stats`` JSON lines of workers that exited normally (``ready`` left out)."""
    total: dict[str, int] = {}
    for proc in procs:
        assert proc.stdout is not None
        out = await proc.stdout.read()
        for line in out.decode().splitlines():
            if line.startswith("{") and not line.startswith('{"ready"'):
                for k, v in json.loads(line).items():
                    total[k] = total.get(k, 0) + int(v)
    return total


def _proc_cpu(pid: int) -> float:
    """CPU seconds a live process has used so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu(who: int) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def _write_config(path: Path, url: str, sinks: LocalSinks, webhook_port: int) -> None:
    path.write_text(
        f"""
[database]
url = "{url}"

[messaging]
quiet_start = "21:00"
quiet_end = "09:00"
daily_cap_per_member = 2
twilio_account_sid = "{sinks.sms.account_sid}"
twilio_auth_token = "{sinks.sms.auth_token}"
twilio_base_url = "{sinks.sms.base_url}"
smtp_host = "127.0.0.1"
smtp_port = {sinks.mail.port}
webhook_bind = "127.0.0.1"
webhook_port = {webhook_port}
public_url = "http://127.0.0.1:{webhook_port}"
""",
        encoding="utf-8",
    )


def _rule_of(status: str, reason: str | None) -> str | None:
    """Which rule holds a row that was not sent (None: no rule)."""
    r = (reason or "").lower()
    if status == "skipped":
        if "consent" in r:
            return "consent"
        if "sms delivered" in r:
            return "order (sms delivered, email not needed)"
        return "skipped: " + r[:40]
    if status != "pending":
        return None
    for key, name in (
        ("quiet hours", "quiet hours"),
        ("daily cap", "daily cap"),
        ("time zone unknown", "zone unknown"),
        ("share no allowed hour", "zone unknown"),
        ("waiting for the sms", "order (waiting for the SMS)"),
        ("sms under review", "order (SMS under review)"),
    ):
        if key in r:
            return name
    return None


async def _bench(args: argparse.Namespace, cfg: Config) -> dict[str, Any]:
    from sqlalchemy import select

    from crm_bridge.db import make_engine, session_scope
    from crm_bridge.migrate import upgrade
    from crm_bridge.models import Channel, OutboxMessage, OutboxStatus
    from dialer.fallback.outbox import sibling_key
    from dialer.fallback.sinks import LocalSinks, SmtpSink, TwilioSink

    tmp = tempfile.TemporaryDirectory(prefix="memberline-bench-outbox-")
    url = args.db or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    upgrade(url)
    members = max(1, round(args.messages / 2.1))
    t0 = time.perf_counter()
    mix, member_ids = await asyncio.to_thread(_seed_members, url, members)
    seed_s = time.perf_counter() - t0
    sms = TwilioSink(
        callbacks=True,
        callback_delay_s=0.2,
        transient_rate=args.transient_failure_rate,
        list_lag_s=args.provider_lag_s,
        drop_after_accept=args.drop_rate,
        seed=1,
    )
    mail = SmtpSink(transient_rate=args.transient_failure_rate, seed=2)
    sinks = await LocalSinks.start(sms=sms, mail=mail)
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        webhook_port = int(probe.getsockname()[1])
    first: list[float] = []
    arrivals: list[tuple[int, float]] = [(0, 0.0)]
    """(messages received, when) each time the count changed."""

    def received() -> int:
        return len(sms.messages) + len(mail.mails)

    conf = Path(tmp.name) / "bench.toml"
    _write_config(conf, url, sinks, webhook_port)

    def command(worker_id: str) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "memberline",
            "outbox",
            "work",
            "--config",
            str(conf),
            "--worker-id",
            worker_id,
            "--mail-probe-url",
            sinks.sms.base_url,
            "--concurrency",
            str(args.concurrency),
            "--batch-size",
            str(args.batch_size),
            "--sms-rate",
            "0",
            "--email-rate",
            "0",
            "--retry-base-s",
            "0.05",
            "--max-attempts",
            "10",
            "--provider-list-lag-s",
            str(args.provider_lag_s + 1.0),
            "--recovery-interval-s",
            "1",
            "--log-level",
            "ERROR",
            "--stats",
        ]
        if worker_id == ids[0]:
            cmd.append("--serve-webhooks")
        if os.environ.get("MEMBERLINE_BENCH_PROFILE"):  # profile a worker: cProfile output file
            cmd[1:1] = [
                "-m",
                "cProfile",
                "-o",
                f"{os.environ['MEMBERLINE_BENCH_PROFILE']}.{worker_id}",
            ]
        return cmd

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ids = [f"bench-worker-{i}" for i in range(args.workers)]
    kills = 0
    self_cpu0 = _cpu(resource.RUSAGE_SELF)
    child_cpu0 = _cpu(resource.RUSAGE_CHILDREN)
    procs = {wid: await _spawn(command(wid), env) for wid in ids}
    try:
        # The workers run as a service does: started (and listening) before the messages
        # exist; the clock starts when the enqueueing transaction has committed.
        async with asyncio.timeout(args.timeout_s):
            for proc in procs.values():
                await _ready(proc)
        t0 = time.perf_counter()
        await asyncio.to_thread(_enqueue, url, member_ids)
        start = time.perf_counter()
        enqueue_s = start - t0
        window_cpu = {p.pid: _proc_cpu(p.pid) for p in procs.values()}
        sinks_window_cpu = _cpu(resource.RUSAGE_SELF)
        workers_window_cpu = 0.0
        engine = make_engine(url)
        quiet_since = start
        while True:
            n = received()
            now = time.perf_counter()
            if n and not first:
                first.append(now)
            if n != arrivals[-1][0]:
                arrivals.append((n, now))
                quiet_since = now
            if args.kill_once and not kills and n >= args.kill_after:
                victim = procs[ids[0]]
                if victim.returncode is None:
                    workers_window_cpu += _proc_cpu(victim.pid) - window_cpu.pop(victim.pid)
                    victim.send_signal(signal.SIGKILL)
                    await victim.wait()
                    kills += 1
                    # restarted with the same id: it reclaims its own in-flight rows at once
                    procs[ids[0]] = await _spawn(command(ids[0]), env)
                    window_cpu[procs[ids[0]].pid] = 0.0
            # Done when nothing reached the sinks for a while, the provider has no status
            # callback left to deliver and the outbox has nothing due or in flight.
            if (
                now - quiet_since > 0.5
                and not sms.pending_callbacks
                and not await asyncio.to_thread(_outstanding, engine)
            ):
                break
            await asyncio.sleep(0.01 if now - quiet_since < 0.5 else 0.2)
            if now - start > args.timeout_s:
                raise SystemExit(f"bench timed out after {args.timeout_s} s")
        engine.dispose()
        sinks_window_cpu = _cpu(resource.RUSAGE_SELF) - sinks_window_cpu
        for p in procs.values():
            workers_window_cpu += _proc_cpu(p.pid) - window_cpu.get(p.pid, 0.0)
        for p in procs.values():
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)
        end = arrivals[-1][1] if len(arrivals) > 1 else time.perf_counter()
        async with asyncio.timeout(30):
            wstats = await _worker_stats(list(procs.values()))
            for p in procs.values():
                await p.wait()
        sink_cpu = _cpu(resource.RUSAGE_SELF) - self_cpu0
        worker_cpu = _cpu(resource.RUSAGE_CHILDREN) - child_cpu0
        wall = time.perf_counter() - start
        engine = make_engine(url)
        with session_scope(engine) as s:
            rows = [
                (r.id, r.channel.value, r.idempotency_key, r.status.value, r.last_error)
                for r in s.scalars(select(OutboxMessage))
            ]
            # email rows held behind their SMS (``next_attempt_at`` empty until it resolves)
            behind = {
                r.idempotency_key: r.status.value
                for r in s.scalars(select(OutboxMessage).where(OutboxMessage.channel == "sms"))
            }
            gated = {
                r.id
                for r in s.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.channel == "email",
                        OutboxMessage.status == OutboxStatus.PENDING,
                        OutboxMessage.next_attempt_at.is_(None),
                    )
                )
                if behind.get(sibling_key(r.idempotency_key, Channel.SMS))
                in ("pending", "skipped", "failed", "review")
            }
        engine.dispose()
        from dialer.fallback.email import message_id_for

        sms_copies = {k: len(v) for k, v in sms.by_callback_id().items()}
        mail_copies = mail.message_ids
        duplicates = lost = delivered = failed = review = 0
        statuses: dict[str, int] = {}
        held: dict[str, int] = {}
        lost_examples: list[str] = []
        for rid, channel, key, status, reason in rows:
            statuses[status] = statuses.get(status, 0) + 1
            copies = (
                sms_copies.get(str(rid), 0)
                if channel == "sms"
                else mail_copies.get(message_id_for(key, "memberline.example"), 0)
            )
            duplicates += max(0, copies - 1)
            if copies:
                delivered += 1
                continue
            if status == "failed":
                failed += 1
            elif status == "review":
                review += 1
            elif rid in gated:
                held["order (email behind its held SMS)"] = (
                    held.get("order (email behind its held SMS)", 0) + 1
                )
            elif (rule := _rule_of(status, reason)) is not None:
                held[rule] = held.get(rule, 0) + 1
            else:
                lost += 1
                if len(lost_examples) < 5:
                    lost_examples.append(f"{rid} {channel} {status} {reason}")
        got = received()
        span = max(1e-9, end - start)
        per_half_s: dict[float, int] = {}
        """Acceptances per half second since the enqueue commit (gaps show stalls)."""
        for (before, _), (n, t) in itertools.pairwise(arrivals):
            slot = int((t - start) * 2) / 2
            per_half_s[slot] = per_half_s.get(slot, 0) + n - before
        return {
            "messages": len(rows),
            "delivered": delivered,
            "held_by_rule": dict(sorted(held.items())),
            "failed_permanent": failed,
            "review": review,
            "duplicates": duplicates,
            "lost": lost,
            "lost_examples": lost_examples,
            "received": got,
            "messages_per_s": round(delivered / span, 1),
            "retried": sms.injected + mail.injected,
            "dropped_after_accept": sms.dropped,
            "statuses": statuses,
            "mix": mix,
            "kills": kills,
            "recovered": {
                k.removeprefix("recovered_"): v
                for k, v in wstats.items()
                if k.startswith("recovered_")
            },
            "workers": args.workers,
            "worker_counts": dict(sorted(wstats.items())),
            "transient_failure_rate": args.transient_failure_rate,
            "provider_lag_s": args.provider_lag_s,
            "callbacks_answered": dict(
                sorted(
                    {
                        f"{st} {code}": sum(1 for x in sms.callback_results if x == (st, code))
                        for st, code in set(sms.callback_results)
                    }.items()
                )
            ),
            "worker_cpu_s": round(worker_cpu, 2),
            "sinks_cpu_s": round(sink_cpu, 2),
            "window_cpu_s": {
                "workers": round(workers_window_cpu, 2),
                "bench_and_sinks": round(sinks_window_cpu, 2),
            },
            "delivered_per_window_cpu_s": round(
                delivered / max(1e-9, workers_window_cpu + sinks_window_cpu), 1
            ),
            "enqueue_to_last_accept_s": round(span, 2),
            "received_by_s": {
                "first": round((first[0] if first else end) - start, 2),
                **{
                    f"p{q}": round(
                        next((t for n, t in arrivals if n >= got * q / 100), end) - start, 2
                    )
                    for q in (50, 90, 99, 100)
                },
            },
            "accepted_per_half_s": {f"{k:.1f}": v for k, v in sorted(per_half_s.items())},
            "enqueue_s": round(enqueue_s, 2),
            "wall_s": round(wall, 2),
            "seed_s": round(seed_s, 2),
            "database": "postgresql" if url.startswith("postgres") else "sqlite",
            "now_utc": dt.datetime.now(dt.UTC).strftime("%H:%M"),
        }
    finally:
        for p in procs.values():
            if p.returncode is None:
                p.kill()
                await p.wait()
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
    p.add_argument(
        "--kill-after",
        type=int,
        default=500,
        help="--kill-once: when this many messages reached the sinks (most of the mix is "
        "held by rules, so not a share of --messages)",
    )
    p.add_argument("--concurrency", type=int, default=512)
    p.add_argument(
        "--batch-size", type=int, default=1000, help="rows leased (and their rules decided) at once"
    )
    p.add_argument("--workers", type=int, default=2, help="worker processes sharing the outbox")
    p.add_argument(
        "--provider-lag-s",
        type=float,
        default=0.0,
        help="the SMS sink lists a new message only this long after accepting it",
    )
    p.add_argument(
        "--drop-rate",
        type=float,
        default=0.0,
        help="fraction of accepted SMS whose connection the sink drops before answering",
    )
    p.add_argument("--timeout-s", type=float, default=600.0)
