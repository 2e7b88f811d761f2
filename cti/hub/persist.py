"""Durable call rows: an ordered, batched writer and the row functions it runs.

Tracker events arrive on the event loop; their ``call_attempts`` writes go through
:class:`Writer`, one asyncio task that drains a queue and runs the pending jobs in
one transaction on a worker thread (``run_db``). Jobs are idempotent upserts keyed by
``attempt_key`` (``call:<linkedid>``), so the order of facts is kept and a replay
after a reconnect cannot double a row. ``flush()`` waits until everything queued
before it is committed (wrap-up does, so the row it updates exists).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.orm import Session

from crm_bridge.db import run_db
from crm_bridge.models import AuditLog, CallAttempt, Direction, MemberPhone

log = logging.getLogger(__name__)

Job = Callable[[Session], None]


class Writer:
    def __init__(
        self, engine: Engine, max_batch: int = 200, gate: asyncio.Event | None = None
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.gate = gate
        self.settle_s = 0.005
        """When given, a batch waits until it is set (the hub clears it while screen-pop
        lookups run, so a write never competes with a pop for the GIL and the disk)."""
        self._queue: asyncio.Queue[Job | asyncio.Future[None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.failed = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="hub-writer")

    def submit(self, job: Job) -> None:
        self._queue.put_nowait(job)

    async def flush(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(fut)
        await fut

    async def stop(self) -> None:
        if self._task is None:
            return
        await self.flush()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if self.gate is not None and not self.gate.is_set():
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancel
                    # that stops this loop when the gate opens at the same moment.
                    async with asyncio.timeout(0.5):
                        await self.gate.wait()
                    # Let the pop's bytes leave (and a console in this process read them).
                    await asyncio.sleep(self.settle_s)
                except TimeoutError:
                    pass  # pops back to back: write anyway, never starve
            batch: list[Job | asyncio.Future[None]] = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            jobs = [j for j in batch if not isinstance(j, asyncio.Future)]
            if jobs:
                await self._write(jobs)
            for j in batch:
                if isinstance(j, asyncio.Future) and not j.done():
                    j.set_result(None)

    async def _write(self, jobs: list[Job]) -> None:
        def run_all(s: Session) -> None:
            for job in jobs:
                job(s)

        try:
            await run_db(
                self.engine,
                run_all,
            )
            self.written += len(jobs)
            return
        except Exception:
            log.exception("batch of %d call writes failed; retrying one by one", len(jobs))
        for job in jobs:
            try:
                await run_db(self.engine, job)
                self.written += 1
            except Exception:
                self.failed += 1
                log.exception("call write failed and was dropped")


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def call_row(s: Session, call_id: str) -> CallAttempt | None:
    """The row of a call the hub knows by its conversation id (Linkedid).

    Dialer attempts were written by the campaign runner before their Originate, keyed
    ``entry:<id>:<n>`` with ``channel_id`` = the preset ChannelId = the Linkedid: the hub
    updates that row (agent, times, disposition) instead of writing a second one.
    """
    by_key, by_channel = _call_row_statements()
    row = s.scalars(by_key, {"key": f"call:{call_id}"}).one_or_none()
    if row is None:
        row = s.scalars(by_channel, {"cid": call_id}).one_or_none()
    return row


@functools.cache
def _call_row_statements() -> tuple[Any, Any]:
    """Built once (the writer runs these for every call fact; building costs more than running)."""
    return (
        select(CallAttempt).where(CallAttempt.attempt_key == bindparam("key")),
        select(CallAttempt).where(CallAttempt.channel_id == bindparam("cid")),
    )


RUNNER_OWNED = frozenset({"outcome", "answered_at"})
"""Fields of a dialer attempt that only the campaign runner sets (it decides abandoned vs
answered, and when the member answered: for an agent-first call the Originate answers
when the agent does)."""


def _row(s: Session, key: str, direction: Direction, started: float) -> CallAttempt:
    # A writer batch holds several facts of one call: look its row up once per transaction.
    rows: dict[str, CallAttempt] = s.info.setdefault("hub_call_rows", {})
    row = rows.get(key)
    if row is None:
        row = call_row(s, key.removeprefix("call:"))
        if row is None:
            row = CallAttempt(attempt_key=key, direction=direction, started_at=_utc(started))
            s.add(row)
            s.flush()
        rows[key] = row
    return row


def upsert_call(key: str, direction: Direction, started: float, **fields: Any) -> Job:
    """A job that creates the row if needed and sets ``fields`` (floats -> UTC datetimes
    for ``*_at`` fields; ``None`` values are skipped so a late fact never erases an earlier one)."""

    def job(s: Session) -> None:
        row = _row(s, key, direction, started)
        for name, value in fields.items():
            if value is None or (row.entry_id is not None and name in RUNNER_OWNED):
                continue
            if name.endswith("_at") and isinstance(value, (int, float)):
                value = _utc(value)
            setattr(row, name, value)

    return job


def audit(actor: str, action: str, member_id: int | None, details: dict[str, Any]) -> Job:
    def job(s: Session) -> None:
        s.add(AuditLog(actor=actor, action=action, member_id=member_id, details=details))

    return job


@functools.cache
def _link_statement() -> Any:
    return select(MemberPhone.member_id).where(MemberPhone.e164 == bindparam("e164")).limit(2)


def link_member(key: str, e164: str) -> Job:
    """Set the row's member when exactly one member has this number (one indexed query), so
    calls that pop on no console (simulated or logged-out agents) still name their member."""

    def job(s: Session) -> None:
        by_phone = _link_statement()
        ids = list(s.scalars(by_phone, {"e164": e164}))
        if len(set(ids)) != 1:
            return
        row = s.scalars(_call_row_statements()[0], {"key": key}).one_or_none()
        if row is not None and row.member_id is None:
            row.member_id = ids[0]

    return job
