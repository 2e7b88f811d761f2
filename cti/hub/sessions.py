"""Console connections and who is logged in on them.

One agent may have several consoles (a desk terminal and a laptop): every push for
that agent goes to all of them. A :class:`Connection` knows nothing about Twisted;
the protocol hands it a ``write`` function and a ``close`` function.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from cti.hubproto.framing import encode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentInfo:
    """An agent as the hub knows them (from the ``agents`` table)."""

    id: int
    code: str
    name: str
    role: str
    extension: str
    interface: str

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    @property
    def actor(self) -> str:
        """The audit log's actor string."""
        return f"{'supervisor' if self.is_supervisor else 'agent'}:{self.code}"


class Connection:
    """One console's TCP connection and its session state."""

    def __init__(
        self,
        peer: str,
        write: Callable[[bytes], None],
        close: Callable[[], None],
        backlog: Callable[[], int] | None = None,
        max_backlog: int = 16 * 1024 * 1024,
    ) -> None:
        self.peer = peer
        self._write = write
        self._close = close
        self._backlog = backlog
        self.max_backlog = max_backlog
        """A console that stops reading is dropped once this many bytes wait for it (it
        reconnects and gets its state again) instead of growing the hub's memory."""
        self.open = True
        self.hello_done = False
        self.agent: AgentInfo | None = None
        self.wallboard = False
        self.requests: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None
        self.frames_out = 0

    def send(self, message: dict[str, Any]) -> None:
        if not self.open:
            return
        if self._backlog is not None and self._backlog() > self.max_backlog:
            log.warning(
                "console %s is not reading (%d bytes queued): dropping it",
                self.peer,
                self._backlog(),
            )
            self.open = False
            self._close()
            return
        try:
            self._write(encode(message))
            self.frames_out += 1
        except Exception:  # a dying transport must not break the pusher's loop
            log.exception("write to console %s failed", self.peer)

    def push(self, name: str, data: dict[str, Any]) -> None:
        self.send({"push": name, "data": data})

    def close(self) -> None:
        self._close()

    def __repr__(self) -> str:
        who = self.agent.code if self.agent else "-"
        return f"<Connection {self.peer} agent={who}>"


class RemoteSessions(Protocol):
    """Consoles on other hubs (scale-out: :class:`cti.hub.bus.HubBus`)."""

    def present(self, code: str) -> bool: ...

    def forward(self, code: str, name: str, data: dict[str, Any]) -> bool: ...


class SessionRegistry:
    """Every open connection, and the logged-in ones by agent code."""

    def __init__(self) -> None:
        self._all: set[Connection] = set()
        self._by_agent: dict[str, set[Connection]] = {}
        self.remote: RemoteSessions | None = None
        """Set by the cross-hub bus: pushes for agents with no console here go there."""

    def add(self, conn: Connection) -> None:
        self._all.add(conn)

    def remove(self, conn: Connection) -> None:
        self._all.discard(conn)
        self.unbind(conn)

    def bind(self, conn: Connection, agent: AgentInfo) -> None:
        self.unbind(conn)
        conn.agent = agent
        self._by_agent.setdefault(agent.code, set()).add(conn)

    def unbind(self, conn: Connection) -> None:
        if conn.agent is None:
            return
        conns = self._by_agent.get(conn.agent.code)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._by_agent[conn.agent.code]
        conn.agent = None
        conn.wallboard = False

    def of_agent(self, code: str) -> set[Connection]:
        return self._by_agent.get(code, set())

    def agent_codes(self) -> list[str]:
        return list(self._by_agent)

    def logged_in(self, code: str) -> bool:
        return bool(self._by_agent.get(code))

    def logged_in_anywhere(self, code: str) -> bool:
        """Here, or (with a cross-hub bus) on another hub."""
        return self.logged_in(code) or (self.remote is not None and self.remote.present(code))

    def push_to_agent(self, code: str, name: str, data: dict[str, Any]) -> int:
        conns = self._by_agent.get(code)
        if not conns:
            if self.remote is not None:
                self.remote.forward(code, name, data)
            return 0
        for c in list(conns):
            c.push(name, data)
        return len(conns)

    def supervisors(self) -> Iterator[Connection]:
        for conns in self._by_agent.values():
            for c in conns:
                if c.agent is not None and c.agent.is_supervisor:
                    yield c

    def wallboard_subscribers(self) -> list[Connection]:
        return [c for c in self._all if c.wallboard and c.agent is not None]

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._all))
