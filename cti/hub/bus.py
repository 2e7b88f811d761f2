"""Cross-hub pushes over PostgreSQL ``LISTEN/NOTIFY`` (scale-out; see docs/scale-out.md).

Several hubs, each attached to its own Asterisk, share one PostgreSQL. Two things must
cross between them, and both ride one channel, ``memberline_hub``:

* **routed pushes** — a ``screen_pop`` / ``call_state`` / ``agent_state`` for an agent whose
  phone is on this hub's PBX but whose console is connected to another hub. The session
  registry calls :meth:`HubBus.forward` when it has no local connection for the agent; the
  bus publishes only when another hub announced that agent (its presence list), addressed
  to that hub, which pushes it to its local consoles (never forwarding again);
* **wallboard slices** — every ``slice_period_s`` (and at once when the set of agents
  logged in here changes) each hub publishes its own figures, the agents its PBX knows
  (not logged out) and the agent codes with a console here. Supervisors on any hub see
  :func:`merge_wallboard` of the local figures and every fresh remote slice; a slice not
  renewed for ``slice_ttl_s`` (by local arrival time, so clock skew does not matter) is
  dropped.

NOTIFY payloads must stay under 8000 bytes: bigger messages are split into parts sent in
ONE transaction — PostgreSQL delivers a transaction's notifications together, in order,
or not at all — and reassembled by the receiver (no side table to clean up).

Delivery is best-effort by design: publishing goes through a bounded queue drained by
one task (the hub's hooks never wait on the database), and a lost notification costs a
pop that the agent also gets on reconnect or a wallboard figure renewed a second later.
Both connections reconnect with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cti.hub.server import HubServer

log = logging.getLogger(__name__)

CHANNEL = "memberline_hub"
MAX_PAYLOAD = 7900
"""NOTIFY's hard limit is 8000 bytes; keep a margin for the part header."""
FORWARDED = frozenset({"screen_pop", "call_state", "agent_state"})


@dataclass
class BusSettings:
    hub_name: str
    slice_period_s: float = 1.0
    slice_ttl_s: float = 5.0
    presence_poll_s: float = 0.2
    queue_max: int = 10_000
    reconnect_initial_s: float = 0.2
    reconnect_max_s: float = 5.0


@dataclass
class RemoteSlice:
    hub: str
    ts: float
    """The sender's wall clock (informational)."""
    received: float
    """Our monotonic clock when it arrived: what expiry is measured on."""
    figures: dict[str, Any]
    agents: list[dict[str, Any]]
    present: frozenset[str]


@dataclass
class BusStats:
    published: int = 0
    received: int = 0
    forwarded: int = 0
    delivered: int = 0
    dropped: int = 0
    reconnects: int = 0
    errors: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------- pure parts
def split_payload(message: dict[str, Any], limit: int = MAX_PAYLOAD) -> list[str]:
    """The NOTIFY payloads carrying ``message``: itself, or numbered parts of its JSON."""
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) <= limit:
        return [text]
    mid = uuid.uuid4().hex[:12]
    chunks: list[str] = []
    buf: list[str] = []
    size = 0
    budget = limit - 200  # room for the part envelope and JSON escaping of the chunk
    for ch in text:
        n = len(json.dumps(ch, ensure_ascii=False).encode()) - 2
        if size + n > budget:
            chunks.append("".join(buf))
            buf, size = [], 0
        buf.append(ch)
        size += n
    if buf:
        chunks.append("".join(buf))
    return [
        json.dumps(
            {"part": [mid, i, len(chunks)], "d": c}, ensure_ascii=False, separators=(",", ":")
        )
        for i, c in enumerate(chunks)
    ]


class Reassembler:
    """Joins parted payloads back; incomplete sets older than ``ttl_s`` are forgotten."""

    def __init__(self, ttl_s: float = 10.0) -> None:
        self.ttl_s = ttl_s
        self._parts: dict[str, tuple[float, dict[int, str], int]] = {}

    def feed(self, payload: str, now: float) -> dict[str, Any] | None:
        obj = json.loads(payload)
        if not isinstance(obj, dict):
            return None
        part = obj.get("part")
        if part is None:
            return obj
        mid, idx, total = str(part[0]), int(part[1]), int(part[2])
        for k in [k for k, (t, _, _) in self._parts.items() if now - t > self.ttl_s]:
            del self._parts[k]
        _started, got, _ = self._parts.setdefault(mid, (now, {}, total))
        got[idx] = str(obj.get("d", ""))
        if len(got) < total:
            return None
        del self._parts[mid]
        whole = json.loads("".join(got[i] for i in range(total)))
        return whole if isinstance(whole, dict) else None


def merge_wallboard(local: dict[str, Any], slices: list[RemoteSlice]) -> dict[str, Any]:
    """The whole centre: local wallboard figures plus every remote hub's slice.

    Counts add up (each call and each agent phone lives on exactly one PBX); rates are
    recomputed from the summed counts; an agent's row comes from the hub whose PBX
    knows them (a state other than ``logged_out``), else the local row stays.
    """
    if not slices:
        return local
    out = dict(local)
    for key in ("waiting", "ringing", "talking", "offered", "answered", "abandoned"):
        out[key] = int(local.get(key, 0)) + sum(int(s.figures.get(key, 0)) for s in slices)
    by_state: dict[str, int] = dict(local.get("agents_by_state", {}))
    for s in slices:
        for st, n in s.figures.get("agents_by_state", {}).items():
            by_state[st] = by_state.get(st, 0) + int(n)
    out["agents_by_state"] = by_state
    answered, abandoned = out["answered"], out["abandoned"]
    out["abandon_rate"] = (
        round(abandoned / (answered + abandoned), 4) if answered + abandoned else 0.0
    )
    logged_in = sum(n for st, n in by_state.items() if st != "logged_out")
    working = logged_in - by_state.get("paused", 0)
    busy = sum(by_state.get(st, 0) for st in ("ringing", "on_call", "wrap_up"))
    out["utilization"] = round(busy / working, 4) if working > 0 else 0.0
    placed = int(local.get("placed", 0)) + sum(int(s.figures.get("placed", 0)) for s in slices)
    contacts = int(local.get("contacts", 0)) + sum(
        int(s.figures.get("contacts", 0)) for s in slices
    )
    if placed:
        out["contact_rate"] = round(contacts / placed, 4)
    rows = {str(a.get("agent")): a for a in local.get("agents", [])}
    for s in slices:
        for a in s.agents:
            code = str(a.get("agent"))
            mine = rows.get(code)
            if mine is None or mine.get("state") == "logged_out":
                rows[code] = {**a, "hub": s.hub}
    out["agents"] = [rows[k] for k in sorted(rows)]
    out["hubs"] = sorted({s.hub for s in slices})
    return out


def _member_ids(data: dict[str, Any]) -> list[int]:
    ids: list[int] = []
    profile = data.get("profile")
    if isinstance(profile, dict) and isinstance(profile.get("member"), dict):
        mid = profile["member"].get("id")
        if isinstance(mid, int):
            ids.append(mid)
    for m in data.get("matches") or []:
        if isinstance(m, dict) and isinstance(m.get("member_id"), int):
            ids.append(m["member_id"])
    return ids


def libpq_url(sqlalchemy_url: Any) -> str:
    """``postgresql+psycopg://…`` (an Engine's URL) -> a libpq URL psycopg accepts."""
    url = sqlalchemy_url.set(drivername="postgresql")
    return str(url.render_as_string(hide_password=False))


# ---------------------------------------------------------------------- the bus
class HubBus:
    """One hub's end of the bus: a LISTEN connection, a publisher, the slice loop."""

    def __init__(
        self,
        hub: HubServer,
        url: str,
        settings: BusSettings,
        *,
        connect: Callable[[str], Any] | None = None,
    ) -> None:
        self.hub = hub
        self.url = url
        self.settings = settings
        self.name = settings.hub_name
        self.stats = BusStats()
        self.slices: dict[str, RemoteSlice] = {}
        self._connect = connect
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(settings.queue_max)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reasm = Reassembler()
        self._present: frozenset[str] = frozenset()
        self.listening = asyncio.Event()
        """Set while the LISTEN connection is up (tests wait on it)."""

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        hub = self.hub
        hub.sessions.remote = self
        hub.wallboard_merge = self.merge
        for coro, name in (
            (self._listen_loop(), "bus-listen"),
            (self._publish_loop(), "bus-publish"),
            (self._slice_loop(), "bus-slices"),
        ):
            task = asyncio.create_task(coro, name=f"{name}-{self.name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        if self.hub.sessions.remote is self:
            self.hub.sessions.remote = None
        if self.hub.wallboard_merge == self.merge:
            self.hub.wallboard_merge = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _open(self) -> Any:
        if self._connect is not None:
            return await self._connect(self.url)
        import psycopg

        return await psycopg.AsyncConnection.connect(self.url, autocommit=True)

    # ------------------------------------------------------------ hooks (sync, never block)
    def present(self, code: str) -> bool:
        """Is the agent logged in on another hub (per a fresh slice)?"""
        return self._hub_of(code) is not None

    def _hub_of(self, code: str) -> str | None:
        now = time.monotonic()
        for s in self.slices.values():
            if code in s.present and now - s.received <= self.settings.slice_ttl_s:
                return s.hub
        return None

    def forward(self, code: str, name: str, data: dict[str, Any]) -> bool:
        """The session registry had no console for ``code`` here: route it, if someone has."""
        if name not in FORWARDED:
            return False
        target = self._hub_of(code)
        if target is None:
            return False
        self.stats.forwarded += 1
        return self.publish({"t": "push", "to": target, "agent": code, "name": name, "data": data})

    def merge(self, local: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic()
        fresh = [s for s in self.slices.values() if now - s.received <= self.settings.slice_ttl_s]
        for s in [s for s in self.slices.values() if s not in fresh]:
            del self.slices[s.hub]
        local = {**local, **self._dial_counts()}
        return merge_wallboard(local, fresh)

    def publish(self, message: dict[str, Any]) -> bool:
        message = {**message, "hub": self.name, "ts": time.time()}
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            return False
        return True

    # ------------------------------------------------------------ slices
    def _dial_counts(self) -> dict[str, int]:
        dialled = list(self.hub.stats._dialled)
        return {"placed": len(dialled), "contacts": sum(1 for _, c in dialled if c)}

    def make_slice(self) -> dict[str, Any]:
        hub = self.hub
        fig = hub.stats.figures(hub.clock(), hub.tracker)
        fig.update(self._dial_counts())
        agents = []
        for info in hub.agents_by_code.values():
            if hub.tracker.agent(info.interface) is None:
                continue  # not on our PBX: whichever hub has the phone reports them
            view = hub.agent_view(info)
            if view["state"] != "logged_out":
                agents.append(view)
        return {
            "t": "slice",
            "figures": {k: v for k, v in fig.items() if not isinstance(v, float)},
            "agents": agents,
            "present": sorted(hub.sessions.agent_codes()),
        }

    async def _slice_loop(self) -> None:
        s = self.settings
        last_sent = 0.0
        while True:
            await asyncio.sleep(s.presence_poll_s)
            present = frozenset(self.hub.sessions.agent_codes())
            now = time.monotonic()
            if present != self._present or now - last_sent >= s.slice_period_s:
                self._present = present
                last_sent = now
                try:
                    self.publish(self.make_slice())
                except Exception:
                    self.stats.errors += 1
                    log.exception("bus: building the wallboard slice failed")

    # ------------------------------------------------------------ publish
    async def _publish_loop(self) -> None:
        backoff = self.settings.reconnect_initial_s
        while True:
            try:
                conn = await self._open()
            except Exception as exc:
                log.warning("bus %s: publisher cannot connect (%s); retrying", self.name, exc)
                self.stats.reconnects += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.reconnect_max_s)
                continue
            backoff = self.settings.reconnect_initial_s
            try:
                while True:
                    msg = await self._queue.get()
                    parts = split_payload(msg)
                    try:
                        if len(parts) == 1:
                            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, parts[0]))
                        else:
                            async with conn.transaction():
                                for p in parts:
                                    await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, p))
                    except Exception:
                        self.stats.dropped += 1  # best-effort: this one is lost
                        raise
                    self.stats.published += 1
                    kind = str(msg.get("t"))
                    self.stats.kinds[kind] = self.stats.kinds.get(kind, 0) + 1
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await conn.close()
                raise
            except Exception as exc:
                self.stats.reconnects += 1
                log.warning("bus %s: publisher connection lost (%s); reconnecting", self.name, exc)
                with contextlib.suppress(Exception):
                    await conn.close()
                await asyncio.sleep(backoff)

    # ------------------------------------------------------------ listen
    async def _listen_loop(self) -> None:
        backoff = self.settings.reconnect_initial_s
        while True:
            conn = None
            try:
                conn = await self._open()
                await conn.execute(f"LISTEN {CHANNEL}")
                self.listening.set()
                backoff = self.settings.reconnect_initial_s
                async for note in conn.notifies():
                    self._on_payload(note.payload)
                raise ConnectionError("notification stream ended")
            except asyncio.CancelledError:
                self.listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
                raise
            except Exception as exc:
                self.listening.clear()
                self.stats.reconnects += 1
                log.warning(
                    "bus %s: LISTEN connection lost (%s); retrying in %.1f s",
                    self.name,
                    exc,
                    backoff,
                )
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.reconnect_max_s)

    def _on_payload(self, payload: str) -> None:
        try:
            msg = self._reasm.feed(payload, time.monotonic())
        except (ValueError, TypeError, IndexError):
            self.stats.errors += 1
            log.warning("bus %s: unreadable notification dropped", self.name)
            return
        if msg is None or msg.get("hub") == self.name:
            return
        self.stats.received += 1
        try:
            self.handle(msg)
        except Exception:
            self.stats.errors += 1
            log.exception("bus %s: handling %s failed", self.name, msg.get("t"))

    def handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("t")
        if kind == "slice":
            src = str(msg["hub"])
            self.slices[src] = RemoteSlice(
                hub=src,
                ts=float(msg.get("ts", 0.0)),
                received=time.monotonic(),
                figures=dict(msg.get("figures") or {}),
                agents=list(msg.get("agents") or []),
                present=frozenset(str(c) for c in msg.get("present") or []),
            )
        elif kind == "push" and msg.get("to") == self.name:
            code, name, data = str(msg["agent"]), str(msg["name"]), dict(msg["data"])
            conns = self.hub.sessions.of_agent(code)
            if not conns:
                return
            if name == "screen_pop":
                # The agent acts on this hub: the members the call offered are in reach here.
                self.hub.grant(code, _member_ids(data))
            for c in list(conns):
                c.push(name, data)
            self.stats.delivered += 1
