"""The PBX simulator: an AMI server plus a call engine driven by a Scenario.

In-process use (tests, demo)::

    sim = PbxSimulator(scenario, ami_users={"memberline": "secret"},
                       agi_host="127.0.0.1", agi_port=4573)
    await sim.start("127.0.0.1", 0)
    ... connect an AMI client to sim.port ...
    handle = await sim.inbound_call("+8613800138000", "Li Wei", queue="members")
    await handle.done          # the call has ended
    await sim.restart()        # like ``core restart now``
    await sim.stop()
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cti.pbxsim import ami_events as ev
from cti.pbxsim.ami_events import Channel
from cti.pbxsim.scenario import AgentSpec, Scenario
from cti.pbxsim.session import AmiSession
from cti.pbxsim.state import Member, PbxState, QueueState
from cti.pbxsim.wire import AmiMessage, encode

if TYPE_CHECKING:
    from cti.pbxsim.call_actors import CallActor

log = logging.getLogger(__name__)

ActionHandler = Callable[[AmiSession, AmiMessage], Awaitable[None]]


@dataclass
class SimStats:
    """Counters since the simulator was created (not reset by restart)."""

    calls_originated: int = 0
    originate_answered: int = 0
    originate_failed: int = 0
    inbound_calls: int = 0
    queue_answered: int = 0
    queue_abandoned: int = 0
    agi_sessions: int = 0
    agi_commands: int = 0
    events_sent: int = 0
    login_failures: int = 0
    restarts: int = 0
    rejected_max_calls: int = 0


class PbxSimulator:
    def __init__(
        self,
        scenario: Scenario | None = None,
        *,
        ami_users: dict[str, str] | None = None,
        agi_host: str = "127.0.0.1",
        agi_port: int = 4573,
        survey_agi_path: str = "survey",
        route_agi_path: str | None = None,
        maintainer_queue: str = "maintainers",
        auth_fail_delay: float = 1.0,
        restart_gap: float = 0.2,
        restart_ghost_accept: bool = True,
        event_log_size: int = 200_000,
        boot_queue_delay: float = 0.03,
        boot_fully_delay: float = 0.055,
        originate_reply_delay: float = 0.0,
    ) -> None:
        self.scenario = scenario or Scenario()
        self.ami_users = dict(ami_users or {"memberline": "secret"})
        self.agi_host = agi_host
        self.agi_port = agi_port
        self.survey_agi_path = survey_agi_path
        """Script (and query) that ``survey,start`` runs, e.g. ``survey?name=satisfaction``."""
        self.route_agi_path = route_agi_path
        """Inbound queue calls first run ``AGI(agi://host:port/<this>)`` (``route-inbound``:
        the maintainer-first lookup of ``docs/asterisk/extensions.conf``); None: straight in."""
        self.maintainer_queue = maintainer_queue
        self.auth_fail_delay = auth_fail_delay
        self.restart_gap = restart_gap
        self.restart_ghost_accept = restart_ghost_accept
        self.boot_queue_delay = boot_queue_delay
        """After a restart the AMI port takes logins at once, but app_queue loads this many
        (real) seconds later: until then its actions are unknown (g-restart-early-login:
        21-36 ms after the login on the lab machine)."""
        self.boot_fully_delay = boot_fully_delay
        """... and ``FullyBooted`` is broadcast this many seconds after the port reopens
        (46-64 ms after the login in the trace). Stretch both to make the race certain."""
        self.originate_reply_delay = originate_reply_delay
        """Real seconds an async Originate's ``Response`` is held back while the call goes
        ahead (fault injection: a reply slower than the client's action timeout)."""
        self.queue_loaded = True
        self.booted = True
        self._booting: asyncio.Task[None] | None = None
        self.rng = random.Random(self.scenario.seed)
        self.stats = SimStats()
        self.events: deque[AmiMessage] = deque(maxlen=event_log_size)
        """Every event broadcast (and each SuccessfulAuth), oldest first, bounded."""
        self.host = "127.0.0.1"
        self.port = 0
        self._server: asyncio.Server | None = None
        self._conns: set[AmiSession] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._session_tasks: set[asyncio.Task[object]] = set()
        self._arrivals: asyncio.Task[None] | None = None
        self._running = False
        self._listening = asyncio.Event()
        self._boot_real = time.monotonic()
        self._epoch0 = time.time()
        self._mono0 = time.monotonic()
        self.state = PbxState()
        self.calls: set[CallActor] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        from cti.pbxsim.actions import ACTIONS

        self.actions: dict[str, ActionHandler] = ACTIONS
        self._boot()

    # ------------------------------------------------------------ clock

    def now(self) -> float:
        """Simulated wall-clock time (epoch seconds)."""
        return self._epoch0 + (time.monotonic() - self._mono0) / self.scenario.time_scale

    def uptime(self) -> float:
        return (time.monotonic() - self._boot_real) / self.scenario.time_scale

    def real(self, sim_seconds: float) -> float:
        return max(0.0, sim_seconds) * self.scenario.time_scale

    async def sleep(self, sim_seconds: float) -> None:
        await asyncio.sleep(self.real(sim_seconds))

    # ------------------------------------------------------------ boot / state

    def _boot(self) -> None:
        """A fresh Asterisk process: static queue members, counters at zero."""
        self.state = PbxState()
        self._boot_real = time.monotonic()
        login = int(self.now())
        for spec in self.scenario.queues:
            q = QueueState(spec)
            for ext in spec.members:
                agent = self.scenario.agent(ext)
                assert agent is not None
                q.members.append(Member(agent.interface, agent.member_name, login_time=login))
                self.state.devstate[agent.interface] = 1
            self.state.queues[spec.name] = q

    def agent_spec(self, interface: str) -> AgentSpec:
        """The simulated phone behind a member interface (defaults for unknown ones)."""
        ext = interface
        if interface.startswith("Local/") and "@" in interface:
            ext = interface[len("Local/") :].split("@", 1)[0]
        for a in self.scenario.agents:
            if a.ext == ext or a.interface == interface:
                return a
        return AgentSpec(ext)

    def next_uniqueid(self) -> str:
        uid = f"{int(self.now())}.{self.state.uid}"
        self.state.uid += 1
        return uid

    def new_local_pair(
        self,
        exten: str,
        context: str,
        *,
        linkedid: str | None = None,
        ids: tuple[str | None, str | None] = (None, None),
    ) -> tuple[Channel, Channel]:
        """Create ``Local/<exten>@<context>-XXXXXXXX;1`` and ``;2`` (Down / Ring)."""
        seq = self.state.seq
        self.state.seq += 1
        base = f"Local/{exten}@{context}-{seq:08x}"
        uid1 = ids[0] or self.next_uniqueid()
        uid2 = ids[1] or self.next_uniqueid()
        link = linkedid or uid1
        now = self.now()
        one = Channel(base + ";1", uid1, link, context, exten, state=ev.DOWN, created=now)
        two = Channel(base + ";2", uid2, link, context, exten, state=ev.RING, created=now)
        self.state.channels[one.name] = one
        self.state.channels[two.name] = two
        return one, two

    def drop_channel(self, chan: Channel) -> None:
        chan.hungup = True
        self.state.channels.pop(chan.name, None)

    def queue_changed(self) -> None:
        """Wake every caller waiting in a queue (a member became free, was added, unpaused)."""
        from cti.pbxsim.call_actors import Signal

        for q in self.state.queues.values():
            for actor in list(q.waiting):
                actor.post(Signal("wake"))

    def call_started(self, actor: CallActor) -> None:
        self.calls.add(actor)
        self._idle.clear()

    def call_ended(self, actor: CallActor) -> None:
        self.calls.discard(actor)
        if not self.calls:
            self._idle.set()

    async def wait_idle(self, limit: float = 10.0) -> bool:
        """Wait (real seconds) until no call is up; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), limit)
        except TimeoutError:
            return False
        return True

    def active_calls(self) -> int:
        return len(self.calls)

    # ------------------------------------------------------------ events

    def record(self, pairs: list[tuple[str, str]]) -> AmiMessage:
        msg = AmiMessage(tuple(pairs))
        self.events.append(msg)
        return msg

    def emit(self, pairs: list[tuple[str, str]]) -> None:
        """Broadcast one event to every logged-in client with events on."""
        self.record(pairs)
        self.stats.events_sent += 1
        data = encode(pairs)
        for conn in list(self._conns):
            if conn.authenticated and conn.events_on:
                conn.send_bytes(data)

    def event_names(self) -> list[str]:
        return [m.name for m in self.events]

    # ------------------------------------------------------------ server

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._running = True
        await self._listen(port)
        if self.scenario.inbound.rate_per_minute > 0:
            self._arrivals = asyncio.create_task(self._arrival_loop())

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, port)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        self._listening.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._running:
            writer.transport.abort()
            return
        conn = AmiSession(self, reader, writer)
        self._conns.add(conn)
        task = asyncio.current_task()
        if task is not None:
            self._session_tasks.add(task)
        try:
            await conn.run()
        finally:
            if task is not None:
                self._session_tasks.discard(task)

    async def stop(self) -> None:
        """Stop everything: arrivals, calls, clients, the listener."""
        self._running = False
        if self._arrivals is not None:
            self._arrivals.cancel()
            await asyncio.gather(self._arrivals, return_exceptions=True)
            self._arrivals = None
        await self._kill_calls(emit=False)
        await self._close_listener()
        await self._drop_clients()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            self._listening.clear()
            self._server = None

    async def restart(self) -> None:
        """``core restart now``: calls hung up, ``Shutdown``, EOF, ~0.2 s refused, back up."""
        self.stats.restarts += 1
        had_calls = bool(self.calls)
        await self._kill_calls(emit=True)
        if had_calls:
            await self.sleep(1.1)
        self.emit(ev.shutdown(restart=True))
        await asyncio.sleep(0.008)
        await self._close_listener()
        await self._drop_clients()
        ghost: asyncio.Server | None = None
        if self.restart_ghost_accept and self.port:
            # the dying listener accepts one connect and resets it, no banner
            try:
                ghost = await asyncio.start_server(self._ghost, self.host, self.port)
            except OSError:
                ghost = None
        if ghost is not None:
            await asyncio.sleep(self.restart_gap / 4)
            ghost.close()
        await asyncio.sleep(self.restart_gap)
        self._epoch0 = self.now()
        self._mono0 = time.monotonic()
        self._boot()
        if self._running:
            self.queue_loaded = False
            self.booted = False
            await self._listen(self.port)
            self._booting = self.spawn(self._finish_boot())
        else:
            self.queue_loaded = self.booted = True

    async def _finish_boot(self) -> None:
        """The early-login window: app_queue loads, then FullyBooted is broadcast to the
        sessions that logged in meanwhile (no event tells them the members were reset)."""
        await asyncio.sleep(self.boot_queue_delay)
        self.queue_loaded = True
        await asyncio.sleep(max(0.0, self.boot_fully_delay - self.boot_queue_delay))
        self.booted = True
        uptime = int(time.monotonic() - self._boot_real)  # wall seconds, as Asterisk counts: 0
        self.emit(ev.fully_booted_broadcast(uptime, uptime))

    async def _drop_clients(self) -> None:
        """EOF to every client; wait (bounded) for their session tasks to end."""
        for conn in list(self._conns):
            conn.close()
        self._conns.clear()
        pending = [t for t in self._session_tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        for t in pending:
            if not t.done():
                t.cancel()

    @staticmethod
    async def _ghost(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    # ------------------------------------------------------------ calls

    def spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator task failed", exc_info=task.exception())

    async def _kill_calls(self, emit: bool) -> None:
        from cti.pbxsim.call_actors import kill_all

        await kill_all(self, emit)

    async def inbound_call(
        self,
        caller_num: str,
        caller_name: str = "",
        queue: str | None = None,
        *,
        patience: float | None = None,
        hotline: bool = False,
    ) -> CallHandle:
        """A call arriving from the PSTN into ``queue`` (default: the inbound queue).

        ``patience``: simulated seconds the caller waits in queue before hanging
        up (default: sampled from ``scenario.inbound.patience``). ``hotline``: the caller
        dialled the self-service line: ``AGI(.../hotline)`` first, and the queue only when
        it set ``HOTLINE_RESULT=agent`` (the caller's keys: ``overrides[number].survey``).
        """
        from cti.pbxsim.call_actors import start_inbound

        qname = queue or self.scenario.inbound.queue
        if qname not in self.state.queues:
            raise KeyError(f"no queue {qname!r}")
        return start_inbound(self, caller_num, caller_name, qname, patience, hotline=hotline)

    async def agent_answer(self, interface: str) -> bool:
        """Make a ringing agent (``auto_answer = false``) pick up; False if not ringing."""
        from cti.pbxsim.call_actors import Signal

        actor = self.state.busy.get(interface)
        if actor is None:
            return False
        actor.post(Signal("agent_answer", interface=interface))
        return True

    async def agent_hangup(self, interface: str) -> bool:
        """Make an agent in a queue call hang up (``auto_hangup = false``)."""
        from cti.pbxsim.call_actors import Signal

        actor = self.state.busy.get(interface)
        if actor is None:
            return False
        actor.post(Signal("agent_hangup", interface=interface))
        return True

    async def _arrival_loop(self) -> None:
        spec = self.scenario.inbound
        rate_per_s = spec.rate_per_minute / 60.0
        callers = spec.callers or (None,)
        loop = asyncio.get_running_loop()
        due = loop.time()
        while self._running:
            # absolute schedule: a late wake-up does not lower the arrival rate
            due += self.real(self.rng.expovariate(rate_per_s))
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not self._running or not self._listening.is_set():
                continue
            caller = self.rng.choice(callers)
            if caller is None:
                num, name = f"+86138{self.rng.randrange(10**8):08d}", ""
            else:
                num, name = caller.number, caller.name
            try:
                await self.inbound_call(num, name, spec.queue)
            except Exception:
                log.exception("inbound arrival failed")


class CallHandle:
    """What :meth:`PbxSimulator.inbound_call` returns."""

    def __init__(self, linkedid: str, caller_channel: str, queue_channel: str) -> None:
        self.linkedid = linkedid
        self.caller_channel = caller_channel
        """The caller's handset half (``;1``)."""
        self.queue_channel = queue_channel
        """The half that sits in the queue and talks to the agent (``;2``)."""
        self.done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        """Resolves to how the call ended: ``agent``, ``caller``, ``abandon``, ``timeout``, ``killed``."""
