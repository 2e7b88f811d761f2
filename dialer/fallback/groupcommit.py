"""Group commit: many coroutines submit small writes, one transaction applies a batch.

A single task drains the queue: while one batch is being written on a DB thread, new items
accumulate and go together in the next one, so the number of transactions adapts to the load
without a timer. A submitter's future resolves only after its batch has committed: the
worker sends nothing before its "sending" mark is durable, and the status-callback webhook
answers the provider only once the callback is stored.

A batch that fails on a transient database error (PostgreSQL deadlock or serialization
failure, SQLite "database is locked") is retried as a whole a few times; any other error
fails every submitter of that batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from crm_bridge.db import run_db

log = logging.getLogger(__name__)

I = TypeVar("I")  # noqa: E741
R = TypeVar("R")

_RETRIES = 3


class GroupCommitter(Generic[I, R]):
    def __init__(
        self,
        engine: Engine,
        apply: Callable[[Session, Sequence[I]], Sequence[R]],
        max_batch: int = 500,
        name: str = "outbox-group-commit",
    ) -> None:
        self._engine = engine
        self._apply = apply
        self._max = max_batch
        self._name = name
        self._queue: list[tuple[I, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def submit(self, item: I) -> R:
        """Queue ``item``; returns its result once its batch has committed."""
        self.start()
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        self._wake.set()
        return await fut

    async def _run(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[: self._max], self._queue[self._max :]
                await self._commit(batch)

    async def _commit(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in batch]
        for attempt in range(_RETRIES + 1):
            try:
                results = await run_db(self._engine, self._apply, items)
                break
            except OperationalError as exc:  # deadlock / locked: the transaction rolled back
                if attempt == _RETRIES:
                    self._fail(batch, exc)
                    return
                log.warning("%s: batch of %d retried: %s", self._name, len(items), exc.orig)
                await asyncio.sleep(0.05 * (attempt + 1))
            except Exception as exc:  # the whole batch failed: every submitter sees it
                self._fail(batch, exc)
                return
        for (_, fut), res in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(res)

    @staticmethod
    def _fail(batch: list[tuple[I, asyncio.Future[R]]], exc: Exception) -> None:
        for _, fut in batch:
            if not fut.done():
                fut.set_exception(exc)

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._closing = False
