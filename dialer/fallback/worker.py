"""The asyncio delivery worker: lease, send with bounded concurrency and rate limits, record.

Crash safety, step by step for one row:

1. ``lease_batch`` (one transaction per batch) applies the send-time rules and leaves the
   row ``leased`` with an expiring lease; ``build_jobs`` then builds the messages outside
   the transaction. A crash here: the lease expires (or the restarted worker with the same
   ``worker_id`` reclaims it at once) and the row is pending again — nothing was sent.
2. ``mark_sending`` (group-committed) sets ``sending``, ``attempts+1``, ``sent_at`` and the
   SMS text as sent *before* the provider is called.
3. The provider call. 4. ``record_results`` (group-committed) stores the provider id / error.

A crash between 2 and 4 leaves the row ``sending`` (so does a connection dropped after the
provider accepted). Recovery (at start-up for rows of our own ``worker_id``, later for any
expired lease) never resends blindly: SMS rows are looked up at the provider by the row's
reference carried in the text (:func:`dialer.fallback.store.sms_reference`), without a
``DateSent`` filter: a match in any status (``queued``, ``accepted``, ``sending``, ``sent``,
``delivered``, even ``undelivered``) -> ``sent`` with its sid. No match is only believed
once ``provider_list_lag_s`` has passed since recovery first claimed the row (Twilio lists
new messages late, and a loaded sender may have reached it long after ``sent_at``): until
then the row waits in ``sending`` and is looked up again; after it -> pending (the provider
proved it has none: safe to send). A failed lookup -> ``review``. Email rows are ``sent`` /
pending when a :class:`MailProbe` can tell (the local SMTP sink can), else ``review``: a
real SMTP server cannot be asked whether it accepted a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crm_bridge.db import run_db
from crm_bridge.models import Channel, OutboxMessage, OutboxStatus, utcnow
from dialer.fallback.content import ContentSettings
from dialer.fallback.email import SmtpEmail, message_id_for, parse_sender
from dialer.fallback.groupcommit import GroupCommitter
from dialer.fallback.ratelimit import TokenBucket
from dialer.fallback.results import SendOutcome, SendResult
from dialer.fallback.send_rules import RulesConfig
from dialer.fallback.sms import TwilioSms
from dialer.fallback.store import (
    WAITING,
    InDoubt,
    Job,
    SendRetryPolicy,
    build_jobs,
    claim_in_doubt,
    expire_leased,
    fail_unbuildable,
    lease_batch,
    mark_sending,
    record_results,
    resolve_in_doubt,
    sms_reference,
)

log = logging.getLogger(__name__)


class MailProbe(Protocol):
    """Can tell whether the mail server accepted a message (only a server we run can)."""

    async def received(self, message_id: str) -> bool | None: ...


@dataclass(frozen=True)
class WorkerSettings:
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
    """Stable across restarts of one worker to reclaim its own in-flight rows at start-up at
    once; otherwise they are recovered when their lease expires."""
    concurrency: int = 64
    batch_size: int = 200
    sms_rate: float = 200.0
    email_rate: float = 200.0
    lease_s: float = 120.0
    poll_interval_s: float = 0.5
    recovery_interval_s: float = 15.0
    lease_gap_s: float = 0.025
    """After a lease found fewer due rows than it had room for, lease again no sooner."""
    idle_horizon_s: float = 120.0
    """``until_idle``: stop when nothing is due within this horizon and nothing is in flight."""
    retry: SendRetryPolicy = field(default_factory=SendRetryPolicy)
    provider_list_lag_s: float = 120.0
    """How late the SMS provider may list a message it accepted: recovery believes "no such
    message" only after this long since the attempt."""


@dataclass
class WorkerStats:
    counts: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)


class OutboxWorker:
    def __init__(
        self,
        engine: Engine,
        *,
        content: ContentSettings,
        rules: RulesConfig,
        settings: WorkerSettings | None = None,
        sms: TwilioSms | None = None,
        email: SmtpEmail | None = None,
        mail_probe: MailProbe | None = None,
    ) -> None:
        self.engine = engine
        self.content = content
        self.rules = rules
        self.settings = settings or WorkerSettings()
        self.sms = sms
        self.email = email
        self.mail_probe = mail_probe
        self.stats = WorkerStats()
        self._prefix = f"{self.settings.worker_id}#"
        self._recovery_owner = f"{self._prefix}r{uuid.uuid4().hex[:8]}"
        self._batch_no = 0
        self._sem = asyncio.Semaphore(self.settings.concurrency)
        self._buckets = {
            Channel.SMS: TokenBucket(self.settings.sms_rate),
            Channel.EMAIL: TokenBucket(self.settings.email_rate),
        }
        self._tasks: set[asyncio.Task[None]] = set()
        self._capacity = self.settings.concurrency * 2
        """Leased jobs in hand at most (sending + queued for a send slot)."""
        self._low_water = max(1, min(self.settings.batch_size, self.settings.concurrency) // 2)
        """Lease again when this much room is free (or when nothing is in hand)."""
        self._changed = asyncio.Event()
        self._recover_now = asyncio.Event()
        self._marker: GroupCommitter[Job, bool] = GroupCommitter(engine, self._apply_sending)
        self._recorder: GroupCommitter[tuple[Job, SendResult], None] = GroupCommitter(
            engine, self._apply_results
        )

    # -- group-committed writes
    def _apply_sending(self, session: Session, jobs: Sequence[Job]) -> list[bool]:
        ok = mark_sending(session, jobs, self._prefix, utcnow(), self.settings.lease_s)
        return [j.id in ok for j in jobs]

    def _apply_results(
        self, session: Session, items: Sequence[tuple[Job, SendResult]]
    ) -> list[None]:
        record_results(session, items, utcnow(), self.settings.retry)
        return [None] * len(items)

    # -- main loop
    async def run(
        self, *, until_idle: bool = False, stop: asyncio.Event | None = None
    ) -> WorkerStats:
        stop = stop or asyncio.Event()
        self._marker.start()
        self._recorder.start()
        try:
            await self.recover(startup=True)
            loop = asyncio.get_running_loop()
            next_recovery = loop.time() + self.settings.recovery_interval_s
            while not stop.is_set():
                room = self._capacity - len(self._tasks)
                jobs: list[Job] = []
                claimed = 0
                # Lease in batches: with a nearly full queue, leasing the one or two rows
                # that finished sends made room for costs a write transaction per message.
                if room >= self._low_water or (room > 0 and not self._tasks):
                    jobs, claimed = await self._lease(min(room, self.settings.batch_size))
                    for job in jobs:
                        task = asyncio.create_task(self._process(job))
                        self._tasks.add(task)
                        task.add_done_callback(self._task_done)
                if self._recover_now.is_set() or loop.time() >= next_recovery:
                    self._recover_now.clear()
                    await self.recover(startup=False)
                    next_recovery = loop.time() + self.settings.recovery_interval_s
                # A full batch (held rows included): more may be due, lease again at once.
                leased_all = claimed == min(room, self.settings.batch_size)
                if claimed and leased_all:
                    await asyncio.sleep(0)
                    continue
                # Fewer rows than asked: nothing more is due right now. Finished sends alone
                # make nothing due (retries back off), so do not lease again on every one of
                # them: wait at least lease_gap_s (a transaction per send otherwise).
                drained_at = loop.time() if room > 0 and not leased_all else None
                if until_idle and not self._tasks and not await run_db(self.engine, self._busy):
                    break
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    waits = [
                        asyncio.create_task(self._changed.wait()),
                        asyncio.create_task(stop.wait()),
                    ]
                    try:
                        await asyncio.wait(
                            waits,
                            timeout=self.settings.poll_interval_s,
                            return_when=asyncio.FIRST_COMPLETED,
                        )
                    finally:
                        for w in waits:
                            w.cancel()
                if drained_at is not None:
                    gap = drained_at + self.settings.lease_gap_s - loop.time()
                    if gap > 0:
                        # asyncio.timeout, not wait_for: on 3.11 wait_for may swallow a
                        # cancel arriving as stop is set, and this loop would not end.
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(gap):
                                await stop.wait()
        finally:
            await self._drain()
        return self.stats

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._capacity - len(self._tasks) >= self._low_water or not self._tasks:
            self._changed.set()  # room for a batch: wake the lease loop
        if not task.cancelled() and task.exception() is not None:
            log.error("outbox send task failed", exc_info=task.exception())

    async def _drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._marker.close()
        await self._recorder.close()

    def _busy(self, session: Session) -> bool:
        horizon = utcnow() + dt.timedelta(seconds=self.settings.idle_horizon_s)
        n = session.scalar(
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
        return bool(n)

    async def _lease(self, limit: int) -> tuple[list[Job], int]:
        """(jobs ready to send, due rows claimed). The rules run in the leasing transaction;
        the messages are built after it committed (not while holding SQLite's write lock),
        on a thread: rendering a batch of emails would stall the event loop."""
        self._batch_no += 1
        owner = f"{self._prefix}{self._batch_no}"
        try:
            batch = await run_db(
                self.engine, lease_batch, owner, utcnow(), limit, self.settings.lease_s, self.rules
            )
        except Exception:
            log.exception("outbox lease failed; retrying shortly")
            await asyncio.sleep(self.settings.poll_interval_s)
            return [], 0
        if not batch.rows:
            return [], batch.claimed
        jobs, poisoned = await asyncio.to_thread(build_jobs, batch.rows, self.content, utcnow())
        if poisoned:
            self.stats.counts["cannot_build"] += len(poisoned)
            try:
                await run_db(self.engine, fail_unbuildable, poisoned, utcnow())
            except Exception:  # they stay leased: recovered when the lease expires
                log.exception("outbox: recording %d unbuildable rows failed", len(poisoned))
        self.stats.counts["leased"] += len(jobs)
        return jobs, batch.claimed

    async def _process(self, job: Job) -> None:
        async with self._sem:
            await self._buckets[job.channel].acquire()
            if not await self._marker.submit(job):
                self.stats.counts["lease_lost"] += 1
                return
            result = await self._send(job)
            self.stats.counts[f"{job.channel.value}_{result.outcome.value}"] += 1
            if result.outcome is SendOutcome.TRANSIENT:
                self.stats.counts["retried"] += 1
            await self._recorder.submit((job, result))
            if result.outcome is SendOutcome.AMBIGUOUS:
                self._recover_now.set()

    async def _send(self, job: Job) -> SendResult:
        try:
            if job.channel is Channel.SMS:
                if self.sms is None or job.sms_body is None:
                    return SendResult(
                        SendOutcome.TRANSIENT,
                        code="no-channel",
                        detail="SMS channel not configured",
                    )
                return await self.sms.send(job.to, job.sms_body, job.id)
            if self.email is None or job.email is None:
                return SendResult(
                    SendOutcome.TRANSIENT, code="no-channel", detail="email channel not configured"
                )
            return await self.email.send(job.email)
        except Exception as exc:  # a bug or an unexpected library error: never lose the row
            log.exception("outbox send of %s raised", job.id)
            return SendResult(
                SendOutcome.AMBIGUOUS, code="error", detail=f"{type(exc).__name__}: {exc}"
            )

    # -- recovery
    async def recover(self, *, startup: bool) -> Counter[str]:
        """Resolve rows left leased/sending by a crash (ours at start-up, any expired lease)."""
        done: Counter[str] = Counter()
        now = utcnow()
        prefix = self._prefix if startup else None
        done["expired_leases"] = await run_db(self.engine, expire_leased, now, prefix)
        self.stats.counts["recovered_leased"] += done["expired_leases"]
        while True:
            rows = await run_db(
                self.engine,
                claim_in_doubt,
                self._recovery_owner,
                utcnow(),
                self.settings.lease_s,
                prefix,
            )
            if not rows:
                break
            verdicts = await asyncio.gather(*(self._verdict(r) for r in rows))
            for row, (verdict, pid, reason) in zip(rows, verdicts, strict=True):
                until = None
                if verdict == "wait":
                    until = row.waiting_until or utcnow() + dt.timedelta(
                        seconds=self.settings.provider_list_lag_s
                    )
                    reason = f"{WAITING}{until.isoformat()}"
                    self._recover_at(until)
                await run_db(
                    self.engine,
                    resolve_in_doubt,
                    row.id,
                    self._recovery_owner,
                    verdict,
                    utcnow(),
                    pid,
                    reason,
                    until,
                )
                done[verdict] += 1
                self.stats.counts[f"recovered_{verdict}"] += 1
            if len(rows) < 500:
                break
        if sum(done.values()):
            log.info("outbox recovery: %s", dict(done))
        return done

    def _recover_at(self, until: dt.datetime) -> None:
        """Wake recovery when a row's listing lag has passed (it waits in ``sending``)."""
        delay = (until - utcnow()).total_seconds()
        loop = asyncio.get_running_loop()
        loop.call_later(max(0.0, delay) + 0.05, self._recover_now.set)
        loop.call_later(max(0.0, delay) + 0.05, self._changed.set)

    async def _verdict(self, row: InDoubt) -> tuple[str, str | None, str]:
        if row.provider_id:
            return "sent", row.provider_id, "recovered: provider id was recorded"
        if row.channel is Channel.SMS:
            if self.sms is None or row.sent_at is None:
                return "review", None, "in doubt: cannot ask the SMS provider"
            try:
                found = await self.sms.find_sent(row.to, sms_reference(row.id), row.sent_at)
            except Exception as exc:
                return "review", None, f"in doubt: provider lookup failed ({type(exc).__name__})"
            if found:
                # Any status means the provider has it (queued/accepted/sending have no
                # DateSent yet); the status callbacks carry it on from here.
                sid, status = found[0]
                more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
                return "sent", sid, f"recovered: found at the provider ({status}){more}"
            # The lag counts from when the attempt was certainly over: when recovery first
            # claimed the row (the sender had crashed, given up or timed out by then), not
            # from sent_at (a loaded sender may have reached the provider much later).
            if row.waiting_until is None or utcnow() < row.waiting_until:
                return "wait", None, "in doubt: waiting out the provider's listing lag"
            return "pending", None, "recovered: provider has no copy after its listing lag"
        if self.mail_probe is None:
            return "review", None, "in doubt: the SMTP server cannot be asked; check and retry"
        mid = message_id_for(row.key, parse_sender(self.content.email.sender)[2])
        try:
            seen = await self.mail_probe.received(mid)
        except Exception as exc:
            return "review", None, f"in doubt: mail probe failed ({type(exc).__name__})"
        if seen is None:
            return "review", None, "in doubt: the mail server does not know"
        return (
            ("sent", mid, "recovered: mail server has it")
            if seen
            else ("pending", None, "recovered: mail server has no copy, resending")
        )


async def run_worker(
    worker: OutboxWorker, *, until_idle: bool = False, stop: asyncio.Event | None = None
) -> WorkerStats:
    """Run ``worker`` and close its channels afterwards."""
    try:
        return await worker.run(until_idle=until_idle, stop=stop)
    finally:
        if worker.sms is not None:
            await worker.sms.close()
        if worker.email is not None:
            await worker.email.close()
