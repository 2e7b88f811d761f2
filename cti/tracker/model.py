"""Mutable per-call and per-agent records owned by the tracker, and the agent transition table."""

from __future__ import annotations

from dataclasses import dataclass, field

from cti.tracker.events import (
    AgentState,
    AgentView,
    ConversationState,
    ConversationView,
    Direction,
    Party,
)

S = AgentState

WRAP_UP_REASON = "wrap-up"
"""The pause reason of after-call work: a member paused with it is in wrap-up, not paused
(the hub pauses the agent so, until the disposition is saved or its maximum passes)."""

#: Agent transitions the tracker expects. AMI is the source of truth, so a
#: transition outside this table is still applied, but counted in
#: ``Tracker.anomalies`` (it means events were lost or arrived out of order).
AGENT_TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    S.LOGGED_OUT: frozenset({S.AVAILABLE, S.PAUSED, S.ON_CALL}),
    S.AVAILABLE: frozenset({S.RINGING, S.ON_CALL, S.PAUSED, S.LOGGED_OUT, S.WRAP_UP}),
    S.RINGING: frozenset({S.AVAILABLE, S.ON_CALL, S.PAUSED, S.LOGGED_OUT, S.RINGING}),
    S.ON_CALL: frozenset({S.WRAP_UP, S.AVAILABLE, S.PAUSED, S.LOGGED_OUT}),
    S.WRAP_UP: frozenset({S.AVAILABLE, S.PAUSED, S.LOGGED_OUT, S.RINGING, S.ON_CALL}),
    S.PAUSED: frozenset({S.AVAILABLE, S.LOGGED_OUT, S.ON_CALL, S.WRAP_UP}),
}


def is_expected(old: AgentState, new: AgentState) -> bool:
    return new in AGENT_TRANSITIONS[old]


@dataclass(slots=True)
class Agent:
    interface: str
    member_name: str
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0
    queues: dict[str, bool] = field(default_factory=dict)
    """queue -> paused in that queue."""
    pause_reason: str = ""
    ringing: dict[str, str] = field(default_factory=dict)
    """conversation id -> agent leg uniqueid, for every call ringing this agent."""
    talking: str | None = None
    """Conversation the agent is connected to."""
    in_call_unknown: bool = False
    """Resync said InCall=1 but we do not know the call."""
    wrap_up_conversation: str | None = None
    wrap_up_deadline: float | None = None
    fresh: bool = True
    """Never reported yet: its first transition is not checked against the table."""

    def derive(self) -> AgentState:
        """The state the facts imply (priority: call, ringing, wrap-up, login, pause)."""
        if self.talking is not None or self.in_call_unknown:
            return S.ON_CALL
        if self.ringing:
            return S.RINGING
        if self.wrap_up_conversation is not None:
            return S.WRAP_UP
        if not self.queues:
            return S.LOGGED_OUT
        if any(self.queues.values()):
            return S.WRAP_UP if self.pause_reason == WRAP_UP_REASON else S.PAUSED
        return S.AVAILABLE

    def conversation_id(self) -> str | None:
        if self.talking is not None:
            return self.talking
        if self.ringing:
            return next(iter(self.ringing))
        return self.wrap_up_conversation

    def view(self) -> AgentView:
        return AgentView(
            interface=self.interface,
            member_name=self.member_name,
            state=self.state,
            since=self.since,
            pause_reason=self.pause_reason if self.state is S.PAUSED else "",
            queues=tuple(sorted(self.queues)),
            paused_queues=tuple(sorted(q for q, p in self.queues.items() if p)),
            conversation_id=self.conversation_id(),
        )


@dataclass(slots=True)
class Conversation:
    id: str
    started: float
    last_activity: float
    channels: dict[str, str] = field(default_factory=dict)
    """uniqueid -> channel name, live channels only."""
    origin_channel: str = ""
    caller_num: str = ""
    caller_name: str = ""
    direction: Direction = Direction.UNKNOWN
    queue: str | None = None
    queue_uniqueid: str | None = None
    queued: bool = False
    abandoned: bool = False
    left_unanswered: bool = False
    answered_by: str | None = None
    """Interface of the agent who answered (AgentConnect)."""
    agent_member_name: str = ""
    agent_legs: dict[str, str] = field(default_factory=dict)
    """agent leg uniqueid -> interface (rung or connected)."""
    ringing: dict[str, str] = field(default_factory=dict)
    """interface -> agent leg uniqueid, agents ringing now."""
    completed: bool = False
    """AgentComplete seen (or the agent's leg hung up after answering)."""
    hung_up_by: Party | None = None
    first_hangup: str | None = None
    causes: list[int] = field(default_factory=list)
    held: bool = False
    action_id: str | None = None
    originate_reason: int | None = None
    originate_outcome: str | None = None
    pending_originate: tuple[str, str] | None = None
    """(action id, channel) of a Reason-0 OriginateResponse waiting for the Hangup causes."""
    dial_key: str | None = None
    customer_gone: bool = False
    """A channel that is not an agent leg has hung up."""

    def state(self) -> ConversationState:
        if self.answered_by is not None and not self.completed:
            return ConversationState.TALKING
        if self.queued:
            return ConversationState.RINGING if self.ringing else ConversationState.QUEUED
        return ConversationState.ACTIVE

    def view(self) -> ConversationView:
        return ConversationView(
            conversation_id=self.id,
            direction=self.direction,
            state=self.state(),
            started=self.started,
            caller_num=self.caller_num,
            caller_name=self.caller_name,
            queue=self.queue,
            interface=self.answered_by,
            ringing=tuple(sorted(self.ringing)),
            held=self.held,
            channels=tuple(self.channels.values()),
            action_id=self.action_id,
        )
