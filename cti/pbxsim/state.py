"""The simulated PBX's mutable state: channels, queues, members (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cti.pbxsim.ami_events import Channel, MemberSnapshot
from cti.pbxsim.scenario import QueueSpec

if TYPE_CHECKING:
    from cti.pbxsim.call_actors import CallActor


@dataclass
class Member:
    """A queue member (static from the scenario or added with QueueAdd)."""

    interface: str
    name: str
    membership: str = "static"
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    last_pause: int = 0
    calls_taken: int = 0
    last_call: int = 0
    login_time: int = 0


@dataclass
class QueueState:
    spec: QueueSpec
    members: list[Member] = field(default_factory=list)
    waiting: list[CallActor] = field(default_factory=list)
    completed: int = 0
    abandoned: int = 0
    holdtime_total: float = 0.0
    talktime_total: float = 0.0
    linear_next: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    def member(self, interface: str) -> Member | None:
        for m in self.members:
            if m.interface == interface:
                return m
        return None

    def avg_hold(self) -> int:
        return round(self.holdtime_total / self.completed) if self.completed else 0

    def avg_talk(self) -> int:
        return round(self.talktime_total / self.completed) if self.completed else 0


class PbxState:
    """Channels by name, queues in definition order, device states by interface."""

    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}
        self.queues: dict[str, QueueState] = {}
        self.devstate: dict[str, int] = {}
        """Numeric device state per member interface: 0 unknown, 1 not in use, 2 in use."""
        self.busy: dict[str, CallActor] = {}
        """Interfaces ringing or talking, and the call that holds them."""
        self.owners: dict[str, CallActor] = {}
        """The call that owns each live channel (for Hangup / Redirect actions)."""
        self.seq = 0
        self.uid = 0

    def snapshot(self, q: QueueState, m: Member) -> MemberSnapshot:
        status = self.devstate.get(m.interface, 0)
        return MemberSnapshot(
            queue=q.name,
            name=m.name,
            interface=m.interface,
            membership=m.membership,
            penalty=m.penalty,
            calls_taken=m.calls_taken,
            last_call=m.last_call,
            last_pause=m.last_pause,
            login_time=m.login_time,
            in_call=1 if m.interface in self.busy and status == 2 else 0,
            status=status,
            paused=m.paused,
            paused_reason=m.paused_reason,
        )

    def queues_of(self, interface: str) -> list[tuple[QueueState, Member]]:
        """Queues that hold ``interface``, in the order Asterisk reports them (last defined first)."""
        out = []
        for q in reversed(list(self.queues.values())):
            m = q.member(interface)
            if m is not None:
                out.append((q, m))
        return out

    def available(self, q: QueueState) -> list[Member]:
        return [m for m in q.members if not m.paused and m.interface not in self.busy]
