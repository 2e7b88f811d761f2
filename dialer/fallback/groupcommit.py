"""Group commit: many coroutines submit small writes, one transaction applies a batch.

A single task drains the queue: while one batch is being written on a DB thread, new items
accumulate and go together in the next one, so the number of transactions adapts to the load
without a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crm_bridge.db import run_db

I = TypeVar("I")  # noqa: E741
R = TypeVar("R")


class GroupCommitter(Generic[I, R]):
    def __init__(
        self,
        engine: Engine,
        apply: Callable[[Session, Sequence[I]], Sequence[R]],
        max_batch: int = 500,
    ) -> None:
        self._engine = engine
        self._apply = apply
        self._max = max_batch
        self._queue: list[tuple[I, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-group-commit")

    async def submit(self, item: I) -> R:
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        self._wake.set()
        return await fut

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[: self._max], self._queue[self._max :]
                try:
                    results = await run_db(self._engine, self._apply, [item for item, _ in batch])
                except Exception as exc:  # the whole batch failed: every submitter sees it
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), res in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(res)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
