"""A loopback AMI server for ``memberline bench soak``: real Asterisk bytes at a fixed event rate.

Traffic = inbound queue calls replayed from ``a-inbound-queue-call.timeline.txt`` (the
real Asterisk 22 trace: Newchannel ... QueueCallerJoin, AgentCalled x2, AgentConnect,
AgentComplete, Hangup, Cdr; with its own timing, ~8 s per call) with fresh Uniqueids,
Linkedids and channel names, the caller number of a real member (or an unknown
number), and the two ringing agents replaced by two of the soak's logged-in agents;
topped up to the target rate with the events of ``rate-200.txt`` (trivial originated
calls, also with fresh ids). The server answers Login, Ping, Logoff and the hub's
resync (CoreShowChannels, QueueStatus with every soak agent as a queue member).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from memberline.benches._common import TRACES

_UID = re.compile(rb"\b17953\d{5}\.(\d+)\b")
_CHAN = re.compile(rb"-([0-9a-f]{8});")
_BLOCK = re.compile(rb"^--- (<<|>>|EOF) t=\+([0-9.]+)s\r\n", re.M)


def _split_events(data: bytes) -> list[bytes]:
    return [m + b"\r\n\r\n" for m in data.split(b"\r\n\r\n") if m.startswith(b"Event: ")]


def load_queue_call(traces: Path) -> list[tuple[float, bytes]]:
    """(offset s, event bytes) of one inbound queue call, offsets from the first event."""
    raw = (traces / "a-inbound-queue-call.timeline.txt").read_bytes()
    marks = list(_BLOCK.finditer(raw))
    out: list[tuple[float, bytes]] = []
    for i, m in enumerate(marks):
        if m.group(1) != b"<<":
            continue
        end = marks[i + 1].start() if i + 1 < len(marks) else len(raw)
        payload = raw[m.end() : end]
        if not payload.startswith(b"Event: ") or b"Event: SuccessfulAuth" in payload[:40]:
            continue
        if payload.startswith(b"Event: FullyBooted"):
            continue
        out.append((float(m.group(2)), payload.rstrip(b"\r\n") + b"\r\n\r\n"))
    t0 = out[0][0]
    return [(t - t0, ev) for t, ev in out]


def load_filler(traces: Path) -> list[bytes]:
    events = _split_events((traces / "rate-200.txt").read_bytes())
    return [
        e for e in events if not e.startswith((b"Event: SuccessfulAuth", b"Event: FullyBooted"))
    ]


@dataclass
class Traffic:
    """Counters of what was written to the hub."""

    events_sent: int = 0
    calls_started: int = 0
    agent_called: int = 0
    bytes_sent: int = 0
    clients: int = 0
    logins: int = 0
    originates: int = 0
    """Originate actions received (a running campaign's dials)."""


@dataclass
class SoakAmi:
    agents: Sequence[str]
    """Extensions of the logged-in soak agents (their interfaces are rung)."""
    phones: Sequence[str]
    """Caller numbers to use (members' E.164 numbers; a share of unknown numbers is added)."""
    events_per_s: float = 2000.0
    calls_per_s: float = 5.0
    username: str = "soak"
    secret: str = "soak-secret"
    queue: str = "members"
    traces: Path = TRACES
    seed: int = 1
    stats: Traffic = field(default_factory=Traffic)
    on_written: Callable[[list[bytes], float], None] | None = None
    """Called with the events just written to the hub's socket and ``time.perf_counter()``
    taken right after the write (``memberline bench pop --load`` times AgentCalled from it)."""

    def __post_init__(self) -> None:
        self._call = load_queue_call(self.traces)
        self._filler = load_filler(self.traces)
        self._rng = random.Random(self.seed)
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._due: list[tuple[float, int, bytes]] = []
        self._seq = itertools.count()
        self._call_no = 0
        self._filler_pos = 0
        self._filler_round = 0
        self.port = 0

    # ------------------------------------------------------------------ server
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def run_traffic(self) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._pump(), name="soak-ami-pump")
        self._tasks.add(task)
        return task

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for w in list(self._writers):
            w.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.clients += 1
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        logged_in = False
        try:
            while True:
                block = await reader.readuntil(b"\r\n\r\n")
                headers: dict[str, str] = {}
                for line in block.decode("utf-8", "replace").split("\r\n"):
                    k, sep, v = line.partition(": ")
                    if sep:
                        headers[k.lower()] = v
                action = headers.get("action", "").lower()
                aid = headers.get("actionid", "")
                if action == "login":
                    if (
                        headers.get("username") == self.username
                        and headers.get("secret") == self.secret
                    ):
                        writer.write(_resp(aid, "Success", "Authentication accepted"))
                        writer.write(
                            b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 5\r\n"
                            b"LastReload: 5\r\nStatus: Fully Booted\r\n\r\n"
                        )
                        logged_in = True
                        self.stats.logins += 1
                        self._writers.add(writer)
                    else:
                        writer.write(_resp(aid, "Error", "Authentication failed"))
                        await writer.drain()
                        return
                elif not logged_in:
                    writer.write(_resp(aid, "Error", "Permission denied"))
                elif action == "ping":
                    writer.write(
                        f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\n"
                        "Timestamp: 0.000000\r\n\r\n".encode()
                    )
                elif action == "logoff":
                    writer.write(_resp(aid, "Goodbye", "Thanks for all the fish."))
                    await writer.drain()
                    return
                elif action == "coreshowchannels":
                    writer.write(_list(aid, "CoreShowChannelsComplete", []))
                elif action == "queuestatus":
                    writer.write(_list(aid, "QueueStatusComplete", self._queue_status(aid)))
                elif action == "originate":
                    writer.write(_resp(aid, "Success", "Originate successfully queued"))
                    self._originate_failed(headers, aid)
                else:
                    writer.write(_resp(aid, "Success", "ok"))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _queue_status(self, aid: str) -> list[bytes]:
        items = [
            f"Event: QueueParams\r\nQueue: {self.queue}\r\nMax: 0\r\nStrategy: ringall\r\n"
            f"Calls: 0\r\nHoldtime: 0\r\nTalkTime: 0\r\nCompleted: 0\r\nAbandoned: 0\r\n"
            f"ServiceLevel: 0\r\nServicelevelPerf: 0.0\r\nServicelevelPerf2: 0.0\r\n"
            f"Weight: 0\r\nActionID: {aid}\r\n\r\n".encode()
        ]
        for ext in self.agents:
            items.append(
                f"Event: QueueMember\r\nQueue: {self.queue}\r\nMemberName: Agent {ext}\r\n"
                f"Location: Local/{ext}@agents/n\r\nStateInterface: Local/{ext}@agents\r\n"
                f"Membership: dynamic\r\nPenalty: 0\r\nCallsTaken: 0\r\nLastCall: 0\r\n"
                f"LastPause: 0\r\nLoginTime: 1795349400\r\nInCall: 0\r\nStatus: 1\r\n"
                f"Paused: 0\r\nPausedReason: \r\nWrapuptime: 0\r\nActionID: {aid}\r\n\r\n".encode()
            )
        return items

    def _originate_failed(self, headers: dict[str, str], aid: str) -> None:
        """A dialled member who does not pick up (70 %) or is busy: the OriginateResponse
        (Failure, Reason 3 or 5, Uniqueid = the preset ChannelId) 2-6 s later, as in the
        recorded c-originate-noanswer and c-originate-busy traces."""
        from cti.pbxsim import ami_events as ev
        from cti.pbxsim.wire import encode

        self.stats.originates += 1
        reason = 3 if self._rng.random() < 0.7 else 5
        pairs = ev.originate_response(
            aid, False, headers.get("channel", ""), headers.get("context", ""),
            headers.get("exten", ""), reason, headers.get("channelid", "<null>"),
            headers.get("callerid", ""), "",
        )  # fmt: skip
        at = asyncio.get_running_loop().time() + self._rng.uniform(2.0, 6.0)
        heapq.heappush(self._due, (at, next(self._seq), encode(pairs)))

    # ------------------------------------------------------------------ traffic
    def _new_call(self, now: float) -> None:
        self._call_no += 1
        n = self._call_no
        a, b = self._rng.sample(list(self.agents), 2)
        if self._rng.random() < 0.1:
            caller = f"+86137{self._rng.randrange(10**8):08d}".encode()
        else:
            caller = self._rng.choice(self.phones).encode()
        uid_base = str(1_800_000_000 + n).encode()

        def uid(m: re.Match[bytes]) -> bytes:
            return uid_base + b"." + m.group(1)

        def chan(m: re.Match[bytes]) -> bytes:
            return b"-%08x;" % ((n * 16 + int(m.group(1), 16)) & 0xFFFFFFFF)

        for offset, ev in self._call:
            ev = _UID.sub(uid, ev)
            ev = _CHAN.sub(chan, ev)
            ev = ev.replace(b"+8613800138000", caller).replace(b"Li Wei", b"")
            ev = ev.replace(b"1001@agents", a.encode() + b"@agents").replace(
                b"1002@agents", b.encode() + b"@agents"
            )
            ev = ev.replace(b"Agent 1001", b"Agent " + a.encode()).replace(
                b"Agent 1002", b"Agent " + b.encode()
            )
            if ev.startswith(b"Event: AgentCalled"):
                self.stats.agent_called += 1
            heapq.heappush(self._due, (now + offset, next(self._seq), ev))
        self.stats.calls_started += 1

    def _filler_event(self) -> bytes:
        if self._filler_pos >= len(self._filler):
            self._filler_pos = 0
            self._filler_round += 1
        ev = self._filler[self._filler_pos]
        self._filler_pos += 1
        base = str(1_900_000_000 + self._filler_round).encode()
        return _UID.sub(lambda m: base + b"." + m.group(1), ev)

    async def _pump(self, tick: float = 0.01) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        calls_due = 0.0
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            elapsed = now - t0
            while self.stats.calls_started < elapsed * self.calls_per_s:
                self._new_call(now)
                calls_due += 1
            chunks: list[bytes] = []
            while self._due and self._due[0][0] <= now:
                chunks.append(heapq.heappop(self._due)[2])
            target = int(elapsed * self.events_per_s)
            missing = target - self.stats.events_sent - len(chunks)
            # Calls have bursts (25 events in the same ms); filler smooths the rest.
            for _ in range(max(0, missing)):
                chunks.append(self._filler_event())
            if not chunks:
                continue
            data = b"".join(chunks)
            for w in list(self._writers):
                if w.is_closing():
                    self._writers.discard(w)
                    continue
                w.write(data)
            if self.on_written is not None:
                self.on_written(chunks, time.perf_counter())
            self.stats.events_sent += len(chunks)
            self.stats.bytes_sent += len(data)
            for w in list(self._writers):
                with contextlib.suppress(ConnectionError):
                    await w.drain()


def _resp(aid: str, kind: str, message: str) -> bytes:
    return f"Response: {kind}\r\nActionID: {aid}\r\nMessage: {message}\r\n\r\n".encode()


def _list(aid: str, complete: str, items: list[bytes]) -> bytes:
    head = (
        f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n"
        "Message: List will follow\r\n\r\n"
    ).encode()
    tail = (
        f"Event: {complete}\r\nActionID: {aid}\r\nEventList: Complete\r\n"
        f"ListItems: {len(items)}\r\n\r\n"
    ).encode()
    return head + b"".join(items) + tail
