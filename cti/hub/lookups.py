"""Screen-pop lookups, started as early as possible and shared.

A queue call's caller is known at ``QueueCallerJoin``; the agents are rung at
``AgentCalled`` (at once when someone is free, minutes later when all are busy). The
lookup (member by number + profile + hints, on a worker thread) starts at the join when
a logged-in console's agent serves that queue, and every agent rung for the call (ringall
rings several) awaits the same result. A lookup older than ``max_age_s`` is redone, so a
caller who waited long still gets a fresh profile.

The call-row/audit writer does not wait for lookups (its facts are journalled first, see
:mod:`cti.hub.persist`).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import TYPE_CHECKING

from crm_bridge.db import run_db
from cti.screenpop import Pop, build_pop

if TYPE_CHECKING:
    from cti.hub.server import HubServer


class PopLookups:
    def __init__(self, hub: HubServer, max_age_s: float = 30.0, max_entries: int = 5000) -> None:
        self.hub = hub
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self._by_call: OrderedDict[str, tuple[float, str, asyncio.Task[Pop]]] = OrderedDict()

    def prefetch(self, call_id: str, caller_num: str, caller_name: str) -> None:
        if call_id not in self._by_call:
            self._start(call_id, caller_num, caller_name)

    async def get(self, call_id: str, caller_num: str, caller_name: str) -> Pop:
        entry = self._by_call.get(call_id)
        now = self.hub.clock()
        if entry is None or entry[1] != caller_num or now - entry[0] > self.max_age_s:
            task = self._start(call_id, caller_num, caller_name)
        else:
            task = entry[2]
        return await asyncio.shield(task)

    def forget(self, call_id: str) -> None:
        self._by_call.pop(call_id, None)

    def __len__(self) -> int:
        return len(self._by_call)

    def _start(self, call_id: str, caller_num: str, caller_name: str) -> asyncio.Task[Pop]:
        task = self.hub.spawn(self._lookup(call_id, caller_num, caller_name), f"lookup-{call_id}")
        self._by_call[call_id] = (self.hub.clock(), caller_num, task)
        self._by_call.move_to_end(call_id)
        while len(self._by_call) > self.max_entries:
            self._by_call.popitem(last=False)
        return task

    async def _lookup(self, call_id: str, caller_num: str, caller_name: str) -> Pop:
        hub = self.hub
        hub.pop_started()
        try:
            return await run_db(
                hub.engine, build_pop, caller_num, caller_name, hub.settings.default_region, call_id
            )
        finally:
            hub.pop_finished()
