"""Simulated agents for the demo and the soak benchmark: real hub clients, scripted hands.

A bot is an ordinary console session (:class:`cti.hubproto.client.HubClient` over TCP):
it logs in with the agent's credentials, joins the queue, and after each of its calls
ends it waits a wrap-up time and sends ``wrapup`` with a disposition and a note, exactly
what a person at the console does. Its phone is the PBX simulator's simulated handset
(which answers after a ring time), so every disposition it stores went through the same
hub code path a human's would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from typing import Any

from cti.hubproto.client import HubClient
from cti.hubproto.messages import ProtocolError

log = logging.getLogger(__name__)

NOTES = (
    "会员对上次购买满意，询问新品到货时间。",
    "Member happy with the follow-up; asked about points expiry.",
    "已告知积分余额与兑换方式。",
    "Asked for a callback next week about the Gold upgrade.",
    "对门店服务提出建议，已记录。",
)


@dataclass
class BotStats:
    pops: int = 0
    calls_ended: int = 0
    wrapups: int = 0
    errors: int = 0
    pop_kinds: dict[str, int] = field(default_factory=dict)


class AgentBot:
    def __init__(
        self,
        host: str,
        port: int,
        agent: str,
        password: str,
        *,
        dispositions: list[str] | None = None,
        wrap_s: tuple[float, float] = (2.0, 1.0),
        seed: int = 0,
    ) -> None:
        self.client = HubClient(host, port, agent, password, client_name="memberline-agentbot/0.1")
        self.agent = agent
        self.dispositions = dispositions or ["satisfied"]
        self.wrap_s = wrap_s
        self.rng = random.Random(seed)
        self.stats = BotStats()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wrapping: set[str] = set()
        self._live: set[str] = set()  # calls this agent is on (call_state names it)
        self.state = "logged_out"
        """This agent's state as last pushed by the hub."""

    async def start(self, queue_login: bool = True) -> None:
        self.client.on_push(self._on_push)
        session = await self.client.start()
        codes = [c for _hk, c in session.get("dispositions", [])]
        if codes:
            self.dispositions = [
                c for c in codes if c not in ("do-not-call", "wrong-number")
            ] or codes
        if queue_login:
            try:
                await self.client.request("queue_login")
            except ProtocolError as exc:
                if (
                    "already there" not in exc.message.lower()
                ):  # static members are logged in already
                    raise

    async def finish(self, timeout_s: float) -> bool:
        """End the shift as a person would: leave the queue, finish the call in hand and its
        wrap-up. True when done within ``timeout_s`` (nothing left unfinished)."""
        with contextlib.suppress(ProtocolError, ConnectionError, TimeoutError):
            await self.client.request("queue_logout")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if not self._wrapping and not self._live and self.state not in ("ringing", "on_call"):
                return True
            await asyncio.sleep(0.2)
        return False

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.client.close()

    def _on_push(self, name: str, data: dict[str, Any]) -> None:
        if name == "agent_state" and data.get("agent", self.agent) == self.agent:
            self.state = str(data.get("state", self.state))
        elif name == "screen_pop":
            self.stats.pops += 1
            kind = str(data.get("kind", "?"))
            self.stats.pop_kinds[kind] = self.stats.pop_kinds.get(kind, 0) + 1
        elif name == "call_state" and data.get("state") != "ended":
            if data.get("agent") == self.agent:
                # A call in hand: the shift does not end before its ``ended`` arrives (the
                # agent's state may read available for a moment before the call's end does).
                self._live.add(str(data.get("call_id")))
        elif name == "call_state":
            call_id = str(data.get("call_id"))
            self._live.discard(call_id)
            if call_id in self._wrapping or data.get("wrapped_up"):
                return
            # Only calls this agent talked on need a wrap-up; the hub refuses others (forbidden).
            self._wrapping.add(call_id)
            self.stats.calls_ended += 1
            task = asyncio.ensure_future(self._wrap_up(call_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _wrap_up(self, call_id: str) -> None:
        mean, sd = self.wrap_s
        await asyncio.sleep(max(0.2, self.rng.gauss(mean, sd)))
        try:
            await self.client.request(
                "wrapup",
                call_id=call_id,
                disposition=self.rng.choice(self.dispositions),
                notes=self.rng.choice(NOTES),
            )
            self.stats.wrapups += 1
        except ProtocolError as exc:
            if exc.code.value not in ("forbidden", "not_found", "conflict"):
                self.stats.errors += 1
                log.warning("bot %s: wrapup of %s refused: %s", self.agent, call_id, exc.message)
            else:  # not this bot's call (another agent answered it): expected, but say so
                log.info("bot %s: wrapup of %s: %s", self.agent, call_id, exc.message)
        except (ConnectionError, TimeoutError):
            self.stats.errors += 1
        finally:
            self._wrapping.discard(call_id)
