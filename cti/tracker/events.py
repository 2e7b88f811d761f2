"""Domain events the tracker emits, and the value types they carry.

Every event is a frozen dataclass with ``at`` (the ``now`` passed to
:meth:`cti.tracker.Tracker.feed`) first. ``conversation_id`` is the Asterisk
``Linkedid`` shared by every channel of one call. Agents are identified by their
queue-member ``interface`` (e.g. ``Local/1001@agents/n``, ``PJSIP/1001``);
``member_name`` is the display name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AgentState(enum.StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class Direction(enum.StrEnum):
    INBOUND = "inbound"  # reached a queue without an Originate of ours
    OUTBOUND = "outbound"  # created by an Originate (OriginateResponse seen)
    UNKNOWN = "unknown"


class ConversationState(enum.StrEnum):
    ACTIVE = "active"  # channels up, not (yet) in a queue
    QUEUED = "queued"  # waiting in a queue, nobody ringing
    RINGING = "ringing"  # waiting in a queue, at least one agent ringing
    TALKING = "talking"  # connected to an agent
    ENDED = "ended"


class OriginateOutcome(enum.StrEnum):
    """Result of an Originate: OriginateResponse ``Reason`` refined by the Hangup cause.

    Reason 4 -> answered, 1 -> hung_up, 3 -> no_answer, 5 -> busy, 8 -> congestion,
    0 -> failed unless a Hangup cause of the call says 17 (busy), 21 (rejected),
    19 (no_answer) or 34 (congestion).
    """

    ANSWERED = "answered"
    HUNG_UP = "hung_up"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CONGESTION = "congestion"
    REJECTED = "rejected"
    FAILED = "failed"


class Party(enum.StrEnum):
    """Who ended a call (``ConversationEnded.hung_up_by``)."""

    AGENT = "agent"
    CUSTOMER = "customer"  # the member: caller inbound, called party outbound
    TRANSFER = "transfer"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    at: float


@dataclass(frozen=True, slots=True)
class ConversationStarted(DomainEvent):
    conversation_id: str
    channel: str
    caller_num: str
    caller_name: str


@dataclass(frozen=True, slots=True)
class CallQueued(DomainEvent):
    """QueueCallerJoin: a call is offered to a queue."""

    conversation_id: str
    queue: str
    caller_num: str
    caller_name: str
    position: int
    uniqueid: str
    channel: str


@dataclass(frozen=True, slots=True)
class AgentRinging(DomainEvent):
    """AgentCalled: the queue rings an agent; the screen pop is built from this."""

    conversation_id: str
    queue: str
    interface: str
    member_name: str
    caller_num: str
    caller_name: str
    uniqueid: str
    """Uniqueid of the caller's (queued) channel."""
    channel: str
    """The caller's (queued) channel."""
    agent_channel: str
    agent_uniqueid: str


@dataclass(frozen=True, slots=True)
class AgentRingStopped(DomainEvent):
    """An agent stopped ringing without taking this call.

    ``reason``: ``no_answer`` (AgentRingNoAnswer), ``answered_elsewhere`` (another
    agent took it), ``caller_left`` (abandoned / left the queue / hung up).
    """

    conversation_id: str
    interface: str
    member_name: str
    reason: str
    ring_time_ms: int | None
    """AgentRingNoAnswer's RingTime (milliseconds), else None."""


@dataclass(frozen=True, slots=True)
class CallAnswered(DomainEvent):
    """AgentConnect: an agent answered a queue call."""

    conversation_id: str
    queue: str
    interface: str
    member_name: str
    caller_num: str
    caller_name: str
    hold_time: int
    ring_time: int


@dataclass(frozen=True, slots=True)
class CallResumed(DomainEvent):
    """A resync found an agent already talking (the hub restarted mid-call): from the
    CoreShowChannel list, two live channels of one conversation in one bridge, one of them
    a known agent's. Seen once per conversation; the call then ends as any other."""

    conversation_id: str
    queue: str
    """The caller's queue (``Application: Queue``), empty for an outbound call."""
    interface: str
    member_name: str
    agent_channel: str
    caller_channel: str
    caller_num: str
    caller_name: str
    direction: Direction
    duration: int
    """Seconds the caller's channel has existed (``Duration``), to date the call's start."""


@dataclass(frozen=True, slots=True)
class CallAbandoned(DomainEvent):
    """QueueCallerAbandon: the caller hung up while waiting."""

    conversation_id: str
    queue: str
    position: int
    original_position: int
    hold_time: int


@dataclass(frozen=True, slots=True)
class CallCompleted(DomainEvent):
    """AgentComplete: the agent's part of a queue call is over (wrap-up starts)."""

    conversation_id: str
    queue: str
    interface: str
    member_name: str
    hold_time: int
    talk_time: int
    hung_up_by: Party | None


@dataclass(frozen=True, slots=True)
class OriginateResult(DomainEvent):
    """The outcome of an Originate, correlated by ``action_id`` (and preset ChannelId)."""

    action_id: str
    conversation_id: str | None
    """Linkedid of the call when it could be found (None e.g. for a bad technology)."""
    channel: str
    """Dial string on failure, the real channel name on success (as Asterisk sends it)."""
    outcome: OriginateOutcome
    reason: int
    cause: int | None
    """The Hangup cause used to refine Reason 0, if any."""


@dataclass(frozen=True, slots=True)
class CallHeld(DomainEvent):
    conversation_id: str
    channel: str
    held: bool


@dataclass(frozen=True, slots=True)
class CallTransferred(DomainEvent):
    """BlindTransfer / AttendedTransfer (``kind`` ``blind`` / ``attended``)."""

    conversation_id: str
    kind: str
    target: str
    """``exten@context`` for a blind transfer; the other call's Linkedid or app otherwise."""
    result: str


@dataclass(frozen=True, slots=True)
class ConversationEnded(DomainEvent):
    """Every channel of the conversation is gone; the tracker forgets it now."""

    conversation_id: str
    direction: Direction
    outcome: str
    """``answered``, ``abandoned``, ``unanswered`` (left a queue unanswered), an
    :class:`OriginateOutcome` value for outbound calls, or ``ended``."""
    hung_up_by: Party | None
    interface: str | None
    """The agent who talked to the customer, if any."""
    queue: str | None
    duration: float


@dataclass(frozen=True, slots=True)
class AgentStateChanged(DomainEvent):
    interface: str
    member_name: str
    state: AgentState
    previous: AgentState
    pause_reason: str
    queues: tuple[str, ...]
    conversation_id: str | None


@dataclass(frozen=True, slots=True)
class TransitionAnomaly(DomainEvent):
    """An agent moved between states the transition table does not allow (events were lost
    or came out of order). The new state is still applied (AMI is the source of truth);
    the hub logs this once and ``memberline health`` shows the count and the last few."""

    interface: str
    previous: AgentState
    state: AgentState
    event: str
    """The AMI event (or ``tick`` / ``end_wrap_up``) that caused it."""


@dataclass(frozen=True, slots=True)
class AgentView:
    """Snapshot of one agent for the hub (``time in state`` = now - ``since``)."""

    interface: str
    member_name: str
    state: AgentState
    since: float
    pause_reason: str
    queues: tuple[str, ...]
    paused_queues: tuple[str, ...]
    conversation_id: str | None


@dataclass(frozen=True, slots=True)
class ConversationView:
    conversation_id: str
    direction: Direction
    state: ConversationState
    started: float
    caller_num: str
    caller_name: str
    queue: str | None
    interface: str | None
    """Connected agent (talking) if any."""
    ringing: tuple[str, ...]
    """Interfaces currently ringing for this call."""
    held: bool
    channels: tuple[str, ...]
    action_id: str | None


@dataclass(frozen=True, slots=True)
class Wallboard:
    waiting: int
    """Calls in a queue not yet answered (ringing included)."""
    ringing: int
    """Calls in a queue with at least one agent ringing."""
    talking: int
    """Calls connected to an agent."""
    agents: dict[AgentState, int]
