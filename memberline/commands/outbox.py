"""``memberline outbox list|show|retry|work``: see what was sent and why not; run the worker.

``outbox work`` builds its worker with the composition root's
:func:`memberline.stack.start_fallback` (the same mapping from :class:`MessagingConfig` that
``serve`` and ``demo`` use).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from memberline.cli import OperatorError, add_command
from memberline.config import Config

# SQLAlchemy, the models and dialer.fallback (twilio, aiosmtplib, aiohttp, twisted) are imported
# by the functions that use them: every `memberline` command imports this module to build the
# parser.
if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from crm_bridge.models import OutboxMessage
    from dialer.fallback import WorkerSettings

log = logging.getLogger(__name__)
STATUSES = (
    "pending",
    "leased",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "skipped",
    "review",
)
"""The values of :class:`crm_bridge.models.OutboxStatus` (for ``outbox list --status``); a copy,
so that --help needs no SQLAlchemy. tests/memberline/test_cli_startup.py checks they agree."""


# ------------------------------------------------------------------ list / show / retry
def _line(r: OutboxMessage) -> str:
    when = r.sent_at or r.next_attempt_at or r.created_at
    stamp = when.strftime("%Y-%m-%d %H:%M:%S") if when else "-"
    why = (r.last_error or "")[:60]
    return (
        f"{r.id:>7}  {r.status.value:<11} {r.channel.value:<5} {r.purpose:<22} "
        f"m{r.member_id:<7} {r.attempts:>2}  {stamp}  {why}"
    )


def _list(args: argparse.Namespace, cfg: Config) -> int:
    from sqlalchemy import desc, select

    from crm_bridge.db import session_scope
    from crm_bridge.models import OutboxMessage, OutboxStatus
    from memberline.dbopen import open_database

    engine = open_database(cfg.database.url)
    with session_scope(engine) as s:
        q = select(OutboxMessage).order_by(desc(OutboxMessage.id)).limit(args.limit)
        if args.review:
            q = q.where(OutboxMessage.status == OutboxStatus.REVIEW)
        elif args.status:
            q = q.where(OutboxMessage.status == OutboxStatus(args.status))
        if args.member:
            q = q.where(OutboxMessage.member_id == args.member)
        if args.purpose:
            q = q.where(OutboxMessage.purpose == args.purpose)
        rows = list(s.scalars(q))
        print(
            f"{'id':>7}  {'status':<11} {'chan':<5} {'purpose':<22} {'member':<8} {'#':>2}  "
            f"{'when (UTC)':<19}  why"
        )
        for r in rows:
            print(_line(r))
    engine.dispose()
    return 0


def _show(args: argparse.Namespace, cfg: Config) -> int:
    from sqlalchemy import select

    from crm_bridge.db import session_scope
    from crm_bridge.models import AuditLog, OutboxMessage
    from memberline.dbopen import open_database

    engine = open_database(cfg.database.url)
    try:
        with session_scope(engine) as s:
            r = s.get(OutboxMessage, args.id)
            if r is None:
                print(f"no outbox message {args.id}", file=sys.stderr)
                return 1
            doc: dict[str, Any] = {
                c.name: getattr(r, c.key) for c in OutboxMessage.__table__.columns
            }
            audits = s.scalars(
                select(AuditLog)
                .where(AuditLog.member_id == r.member_id)
                .order_by(AuditLog.id.desc())
                .limit(10)
            )
            doc["member_audit"] = [
                f"{a.at:%Y-%m-%d %H:%M:%S} {a.actor} {a.action} {a.details}" for a in audits
            ]
            print(json.dumps(doc, default=str, ensure_ascii=False, indent=2))
    finally:
        engine.dispose()
    return 0


def _retry(args: argparse.Namespace, cfg: Config) -> int:
    from crm_bridge.db import session_scope
    from crm_bridge.models import utcnow
    from dialer.fallback.store import retry_row
    from memberline.dbopen import open_database

    engine = open_database(cfg.database.url)
    actor = f"cli:{args.actor or os.environ.get('USER', 'unknown')}"
    try:
        with session_scope(engine) as s:
            r = retry_row(s, args.id, actor, utcnow())
            print(f"message {r.id} queued again ({r.last_error})")
    except (LookupError, ValueError) as exc:
        print(f"memberline outbox retry: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


# ------------------------------------------------------------------ work
def _worker_settings(args: argparse.Namespace) -> WorkerSettings:
    from dialer.fallback import SendRetryPolicy, WorkerSettings

    kw: dict[str, Any] = {
        "concurrency": args.concurrency,
        "batch_size": args.batch_size,
        "sms_rate": args.sms_rate,
        "email_rate": args.email_rate,
        "retry": SendRetryPolicy(max_attempts=args.max_attempts, base_s=args.retry_base_s),
        "provider_list_lag_s": args.provider_list_lag_s,
        "recovery_interval_s": args.recovery_interval_s,
    }
    if args.worker_id:
        kw["worker_id"] = args.worker_id
    return WorkerSettings(**kw)


async def _work(args: argparse.Namespace, cfg: Config) -> int:
    from memberline.dbopen import open_database
    from memberline.runtime import ensure_reactor_running
    from memberline.stack import start_fallback

    engine = open_database(cfg.database.url)
    if args.serve_webhooks and cfg.messaging.webhook_port:
        from memberline.checks import check_bind

        m = cfg.messaging
        check = check_bind("webhooks", m.webhook_bind, m.webhook_port)
        if not check.ok:
            engine.dispose()
            raise OperatorError(f"cannot listen on {check.message} (set messaging.webhook_port)")
    rt = await start_fallback(
        cfg,
        engine,
        worker=_worker_settings(args),
        local_sinks=True if args.local_sinks else None,
        mail_probe_url=args.mail_probe_url,
    )
    port = None
    if args.serve_webhooks:
        from twisted.web.resource import Resource
        from twisted.web.server import Site

        from dialer.fallback import mount_webhooks

        reactor = ensure_reactor_running()
        root = Resource()
        mount_webhooks(root, rt.webhooks)
        port = reactor.listenTCP(
            cfg.messaging.webhook_port, Site(root), interface=cfg.messaging.webhook_bind
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if args.stats:  # a supervisor (the bench) learns that the worker is up and listening
        print(json.dumps({"ready": 1}), flush=True)
    try:
        stats = await rt.run(stop, until_idle=args.until_idle)
    finally:
        if port is not None:
            port.stopListening()
        await rt.close()
        engine.dispose()
    if args.stats:
        print(json.dumps(stats))
    return 0


def _work_entry(args: argparse.Namespace, cfg: Config) -> int:
    from memberline.runtime import install_reactor

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    install_reactor(loop)
    try:
        return loop.run_until_complete(_work(args, cfg))
    finally:
        loop.close()


def count_by_status(session: Session) -> dict[str, int]:
    from sqlalchemy import func, select

    from crm_bridge.models import OutboxMessage

    return {
        str(status.value if hasattr(status, "value") else status): n
        for status, n in session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        )
    }


async def outbox_counts(engine: Engine) -> dict[str, int]:
    from crm_bridge.db import run_db

    return await run_db(engine, count_by_status)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "outbox", None, "SMS/email outbox: list, show, retry, work")
    o = parser.add_subparsers(dest="outbox_command", metavar="ACTION")
    o.required = True
    ls = add_command(o, "list", _list, "list outbox messages, newest first")
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument(
        "--review",
        action="store_true",
        help="messages that may have been sent and need a person (check, then retry)",
    )
    ls.add_argument("--member", type=int)
    ls.add_argument("--purpose")
    ls.add_argument("--limit", type=int, default=50)
    sh = add_command(o, "show", _show, "show one message, why it was (not) sent, recent audit")
    sh.add_argument("id", type=int)
    rt = add_command(o, "retry", _retry, "queue a failed or review message again (audited)")
    rt.add_argument("id", type=int)
    rt.add_argument("--actor", help="who asks (recorded in the audit log)")
    w = add_command(o, "work", _work_entry, "run the delivery worker")
    w.add_argument("--until-idle", action="store_true", help="exit when nothing is left to send")
    w.add_argument(
        "--worker-id", help="stable id: a restart reclaims its own in-flight rows at once"
    )
    w.add_argument("--concurrency", type=int, default=64)
    w.add_argument("--batch-size", type=int, default=200)
    w.add_argument("--sms-rate", type=float, default=50.0, help="SMS per second (0 = unlimited)")
    w.add_argument(
        "--email-rate", type=float, default=100.0, help="emails per second (0 = unlimited)"
    )
    w.add_argument("--max-attempts", type=int, default=6)
    w.add_argument(
        "--provider-list-lag-s",
        type=float,
        default=120.0,
        help="how late the SMS provider may list a message it accepted (crash recovery waits)",
    )
    w.add_argument("--recovery-interval-s", type=float, default=15.0)
    w.add_argument("--retry-base-s", type=float, default=30.0)
    w.add_argument("--local-sinks", action="store_true", help="send to in-process sinks")
    w.add_argument(
        "--mail-probe-url", help="a local sink's base URL (proves email delivery in recovery)"
    )
    w.add_argument(
        "--serve-webhooks",
        action="store_true",
        help="also serve /twilio/sms/* and /unsubscribe on messaging.webhook_bind:port",
    )
    w.add_argument(
        "--stats",
        action="store_true",
        help='print {"ready": 1} once listening, and the counters as JSON at exit',
    )
