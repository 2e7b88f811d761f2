"""50 consoles, half of them on a link that keeps dropping, while inbound calls pop on them.

25 agents (1001..1025), each with two consoles: a steady one straight to the hub and a
flaky one through a loopback TCP proxy that cuts every connection at random moments
(the HubClient reconnects and logs in again). Each agent gets inbound calls from
their own member through the PBX simulator. Asserted: every pop reaches the steady
console and (live, or re-pushed on reconnect while still ringing) the flaky one; a
reconnected console gets its state again; every wrap-up is stored exactly once (one
``call_attempts`` row per call with its disposition and note, even when a wrap-up is
retried after a dropped answer); the hub's connection set and task set return to the
live count.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.models import Agent, CallAttempt, Member, MemberPhone, Tier
from cti.pbxsim import AgentSpec, InboundSpec, QueueSpec, Scenario
from cti.pbxsim.scenario import fixed
from tests.cti.hub_stack import pbx_stack
from tests.cti.hub_support import PASSWORD, Console

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(80)]

AGENTS = [str(1001 + i) for i in range(25)]
ROUNDS = 2


def phone(code: str) -> str:
    return f"+86139{code}0000"


def cheap_hash() -> str:
    """An argon2id hash with tiny cost parameters (verify reads them from the hash).

    Every reconnect logs in again; with the production cost (64 MiB, t=3) a few dozen
    reconnects per second would be a KDF benchmark on 2 cores, not a churn test.
    """
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


def seed_agents(engine: Engine) -> dict[str, int]:
    members: dict[str, int] = {}
    pw_hash = cheap_hash()
    with session_scope(engine) as s:
        for code in AGENTS:
            a = Agent(code=code, extension=code, name=f"Agent {code}", password_hash=pw_hash)
            s.add(a)
            s.flush()
            m = Member(member_no=f"R{code}", name=f"Member of {code}", joined_on=dt.date(2024, 1, 1),
                       tier=Tier.SILVER, maintaining_agent_id=a.id)  # fmt: skip
            m.phones.append(MemberPhone(e164=phone(code)))
            s.add(m)
            s.flush()
            members[code] = m.id
    return members


def churn_scenario() -> Scenario:
    return Scenario(
        time_scale=0.2,
        queues=tuple(
            QueueSpec(f"q{c}", exten=f"7{c}", members=(c,), timeout=60.0, max_wait=600.0)
            for c in AGENTS
        ),
        agents=tuple(
            AgentSpec(c, auto_answer=False, auto_hangup=False, ring_time=fixed(0.2)) for c in AGENTS
        ),
        inbound=InboundSpec(patience=fixed(600.0)),
    )


class FlakyProxy:
    """Loopback TCP proxy to the hub whose connections can be cut at any moment."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.pipes: set[asyncio.StreamWriter] = set()
        self.cuts = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _accept(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            w.close()
            return
        self.pipes.update((w, uw))
        for src, dst in ((r, uw), (ur, w)):
            t = asyncio.create_task(self._pump(src, dst, (w, uw)))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    pair: tuple[asyncio.StreamWriter, ...]) -> None:  # fmt: skip
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for x in pair:
                self.pipes.discard(x)
                x.close()

    def cut_some(self, rng: random.Random, share: float) -> None:
        for w in list(self.pipes):
            if rng.random() < share:
                self.cuts += 1
                w.transport.abort()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in list(self.pipes):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _wait(pred: object, within: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not pred():  # type: ignore[operator]
        if loop.time() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.02)


async def test_fifty_consoles_with_reconnects_lose_no_pop_and_no_wrapup(
    sqlite_engine: Engine,
) -> None:
    engine = sqlite_engine
    members = seed_agents(engine)
    rng = random.Random(5)
    async with pbx_stack(engine, churn_scenario()) as stack:
        hub, sim = stack.hub, stack.sim
        proxy = FlakyProxy(hub.port)
        await proxy.start()
        steady = {c: Console(hub, c) for c in AGENTS}
        flaky = {c: Console(hub, c) for c in AGENTS}
        for c in flaky.values():
            c.client.port = proxy.port  # same hub, through the cutting proxy
            c.client.reconnect_initial = 0.02
            c.client.reconnect_max = 0.2
        consoles = [*steady.values(), *flaky.values()]
        sem = asyncio.Semaphore(10)

        async def start(c: Console) -> None:
            async with sem:
                await c.__aenter__()

        await asyncio.gather(*(start(c) for c in consoles))
        await _wait(lambda: len(hub.sessions) == 50, 10, "50 sessions")
        stop_chaos = asyncio.Event()

        async def chaos() -> None:
            while not stop_chaos.is_set():
                await asyncio.sleep(rng.uniform(0.1, 0.4))
                proxy.cut_some(rng, 0.25)

        chaos_task = asyncio.create_task(chaos())
        calls: dict[str, list[str]] = {c: [] for c in AGENTS}
        wrapups_sent = 0

        async def one_call(code: str, n: int) -> None:
            nonlocal wrapups_sent
            iface = f"Local/{code}@agents/n"
            call = await sim.inbound_call(phone(code), f"M{code}", queue=f"q{code}")
            cid = call.linkedid
            calls[code].append(cid)
            pop = await steady[code].wait_for("screen_pop", lambda d: d["call_id"] == cid, 15)
            assert pop["kind"] == "member" and pop["profile"]["member"]["id"] == members[code]
            # The flaky console sees it live or gets it again after its reconnect (still ringing).
            await flaky[code].wait_for("screen_pop", lambda d: d["call_id"] == cid, 15)
            await stack.wait(lambda: sim.state.busy.get(iface) is not None, 5, "agent ringing")
            assert await sim.agent_answer(iface)
            await steady[code].wait_for(
                "call_state", lambda d: d["call_id"] == cid and d["state"] == "up", 10
            )
            assert await sim.agent_hangup(iface)
            await steady[code].wait_for(
                "call_state", lambda d: d["call_id"] == cid and d["state"] == "ended", 10
            )
            # Wrap up from the flaky console; a dropped answer means: retry (idempotent).
            for _attempt in range(200):
                try:
                    await flaky[code].client.wait_connected(5)
                    await flaky[code].request(
                        "wrapup", call_id=cid, disposition="satisfied", notes=f"note {code}/{n}"
                    )
                    wrapups_sent += 1
                    break
                except (ConnectionError, TimeoutError):
                    await asyncio.sleep(0.02)
            else:
                raise AssertionError(f"wrap-up of {cid} never got through")

        for n in range(ROUNDS):
            await asyncio.gather(*(one_call(c, n) for c in AGENTS))
        stop_chaos.set()
        await chaos_task
        assert proxy.cuts >= 10, "the proxy must really have cut connections"

        # Every flaky console reconnected, and got its state again on reconnect.
        await _wait(lambda: all(c.client.connected for c in consoles), 10, "all reconnected")
        for c in flaky.values():
            assert len(c.of("agent_state")) >= 2
        await _wait(lambda: len(hub.sessions) == 50, 10, "sessions back to 50")

        for c in consoles:
            await c.__aexit__(None, None, None)
        await proxy.stop()
        await _wait(lambda: len(hub.sessions) == 0, 10, "sessions back to 0")

        def leftovers() -> list[asyncio.Task[object]]:
            return [t for t in hub._tasks if t.get_name().startswith("console-")]

        try:
            await _wait(lambda: not leftovers(), 5, "console worker tasks to end")
        except TimeoutError:
            import io

            out = io.StringIO()
            for t in leftovers():
                t.print_stack(file=out)
            raise AssertionError(
                f"{len(leftovers())} console workers left:\n{out.getvalue()}"
            ) from None
        await hub.writer.flush()

    assert wrapups_sent == len(AGENTS) * ROUNDS
    with session_scope(engine) as s:
        rows = list(s.execute(select(CallAttempt.linkedid, CallAttempt.disposition,
                                     CallAttempt.notes, CallAttempt.member_id)))  # fmt: skip
    by_call: dict[str | None, list[tuple[str | None, str | None, int | None]]] = {}
    for linkedid, disp, notes, mid in rows:
        by_call.setdefault(linkedid, []).append((disp, notes, mid))
    for code, ids in calls.items():
        for n, cid in enumerate(ids):
            assert by_call.get(cid) == [("satisfied", f"note {code}/{n}", members[code])], cid
    assert len(rows) == len(AGENTS) * ROUNDS
