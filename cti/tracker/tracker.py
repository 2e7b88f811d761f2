"""The call and agent tracker: AMI messages in, domain events out. Pure: no I/O, no clock.

``Tracker.feed(msg, now)`` dispatches on the event name through one explicit
table (:attr:`Tracker._handlers`); events not in it cost one dict lookup and
their headers are never parsed. ``now`` is whatever clock the caller uses
(seconds, float); it stamps the domain events and drives wrap-up timeouts and
the clean-up of stale agents (:meth:`Tracker.tick`, also run from ``feed`` at
most once a second of ``now``).

Bounded memory: a conversation (keyed by Linkedid) is dropped as soon as its last
channel hangs up (or a resync shows it gone, or it has been silent for
``max_conversation_age``); a logged-out agent idle for ``stale_agent_after`` is
forgotten; the short memory of finished calls used to correlate a late
OriginateResponse holds at most ``recent_limit`` entries.

Resync: :class:`cti.ami.client.AmiClient` delivers the synthetic event
``MemberlineResyncStart`` and then the CoreShowChannel / QueueMember list items;
at ``CoreShowChannelsComplete`` channels not listed are hung up, at
``QueueStatusComplete`` queue memberships not listed are removed. List items
that arrive outside a resync (someone's ad-hoc QueueStatus) only add facts.
Once both lists are in, calls we did not know that have an agent talking (two new
channels of one conversation sharing a ``BridgeId``, one of them a queue member's
interface) are taken up again: the agent is on that call and :class:`CallResumed` says
so, so a restarted hub shows the call and its wrap-up as if it had never been away.

Known gap: a transfer done with the Redirect action (no BlindTransfer event) is
not reported as a transfer; the conversation simply continues in the new
dialplan location and ends normally.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable

from cti.ami.message import RESYNC_START, AmiMessage
from cti.tracker.events import (
    AgentRinging,
    AgentRingStopped,
    AgentState,
    AgentStateChanged,
    AgentView,
    CallAbandoned,
    CallAnswered,
    CallCompleted,
    CallHeld,
    CallQueued,
    CallResumed,
    CallTransferred,
    ConversationEnded,
    ConversationStarted,
    ConversationState,
    ConversationView,
    Direction,
    DomainEvent,
    OriginateOutcome,
    OriginateResult,
    Party,
    TransitionAnomaly,
    Wallboard,
)
from cti.tracker.model import Agent, Conversation, is_expected

Out = list[DomainEvent]
Handler = Callable[[AmiMessage, float, Out], None]

_REASONS: dict[int, OriginateOutcome] = {
    4: OriginateOutcome.ANSWERED,
    1: OriginateOutcome.HUNG_UP,
    3: OriginateOutcome.NO_ANSWER,
    5: OriginateOutcome.BUSY,
    8: OriginateOutcome.CONGESTION,
}
_CAUSES: dict[int, OriginateOutcome] = {
    17: OriginateOutcome.BUSY,
    21: OriginateOutcome.REJECTED,
    19: OriginateOutcome.NO_ANSWER,
    34: OriginateOutcome.CONGESTION,
}
_COMPLETE_REASON = {"agent": Party.AGENT, "caller": Party.CUSTOMER, "transfer": Party.TRANSFER}
_UNKNOWN = "<unknown>"


def _int(v: str | None, default: int = 0) -> int:
    try:
        return int(v) if v else default
    except ValueError:
        return default


_CHANNEL_SUFFIX = re.compile(r"-[0-9a-f]{8,}(;[12])?$")
"""The sequence number Asterisk appends to a channel's name (and a Local channel's half)."""
_RESYNC_NEW_MAX = 100_000
"""Channels a resync remembers for :meth:`Tracker._resume_calls` (bounded, as everything)."""


def _channel_prefix(name: str) -> str:
    """What a channel and the queue-member interface that made it have in common:
    ``PJSIP/1001-0000002a`` and ``PJSIP/1001`` -> ``PJSIP/1001``;
    ``Local/1001@agents-0000001b;1`` and ``Local/1001@agents/n`` -> ``Local/1001@agents``."""
    name = _CHANNEL_SUFFIX.sub("", name)
    tech, _, rest = name.partition("/")
    return f"{tech}/{rest.split('/', 1)[0]}"  # Local/...@ctx/n: drop the options


def _duration_s(v: str | None) -> int:
    """``HH:MM:SS`` (CoreShowChannel ``Duration``) -> seconds; 0 if unreadable."""
    parts = (v or "").split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return 0
    h, m, sec = (int(p) for p in parts)
    return h * 3600 + m * 60 + sec


def _cid(v: str | None) -> str:
    return "" if v is None or v == _UNKNOWN else v


def _dial_key(channel: str) -> str | None:
    """``Local/busy@members-sim-0000000d;1`` -> ``Local/busy@members-sim`` (the dial string)."""
    base, sep, _ = channel.rpartition("-")
    return base if sep else None


def refine(reason: int, causes: list[int] | tuple[int, ...]) -> tuple[OriginateOutcome, int | None]:
    """OriginateResponse Reason (+ Hangup causes for Reason 0) -> outcome, cause used."""
    outcome = _REASONS.get(reason)
    if outcome is not None:
        return outcome, None
    for c in causes:
        o = _CAUSES.get(c)
        if o is not None:
            return o, c
    return OriginateOutcome.FAILED, (causes[-1] if causes else None)


class Tracker:
    """Pure state machine over AMI messages. See the module docstring."""

    def __init__(
        self,
        *,
        wrap_up_timeout: float | None = 120.0,
        stale_agent_after: float = 8 * 3600.0,
        max_conversation_age: float = 12 * 3600.0,
        recent_limit: int = 2048,
    ) -> None:
        self.wrap_up_timeout = wrap_up_timeout
        self.stale_agent_after = stale_agent_after
        self.max_conversation_age = max_conversation_age
        self.recent_limit = recent_limit
        self._convs: dict[str, Conversation] = {}
        self._chan: dict[str, str] = {}  # live channel uniqueid -> conversation id
        self._by_dial: dict[str, list[str]] = {}  # dial string -> live conversation ids
        self._agents: dict[str, Agent] = {}
        self._recent: OrderedDict[str, tuple[tuple[int, ...], str | None]] = OrderedDict()
        self._recent_dial: OrderedDict[str, str] = OrderedDict()
        self._resync_channels: set[str] | None = None
        self._resync_new: dict[str, AmiMessage] = {}
        """Channels first learned from this resync's CoreShowChannel items (uniqueid ->)."""
        self._resync_members: set[tuple[str, str]] | None = None
        self._next_tick = float("-inf")
        self.anomalies = 0
        """Transitions outside ``AGENT_TRANSITIONS`` so far (each also a
        :class:`TransitionAnomaly` in ``feed``'s output)."""
        self._cause = ""  # the AMI event being applied (named in a TransitionAnomaly)
        self.peak_conversations = 0
        self._handlers: dict[str, Handler] = {
            "Newchannel": self._on_newchannel,
            "Hangup": self._on_hangup,
            "Rename": self._on_rename,
            "QueueCallerJoin": self._on_caller_join,
            "QueueCallerLeave": self._on_caller_leave,
            "QueueCallerAbandon": self._on_caller_abandon,
            "AgentCalled": self._on_agent_called,
            "AgentRingNoAnswer": self._on_ring_no_answer,
            "AgentConnect": self._on_agent_connect,
            "AgentComplete": self._on_agent_complete,
            "OriginateResponse": self._on_originate_response,
            "Hold": self._on_hold,
            "Unhold": self._on_hold,
            "BlindTransfer": self._on_blind_transfer,
            "AttendedTransfer": self._on_attended_transfer,
            "QueueMemberAdded": self._on_member,
            "QueueMemberStatus": self._on_member,
            "QueueMemberPause": self._on_member,
            "QueueMemberPaused": self._on_member,  # Asterisk 12 spelling
            "QueueMember": self._on_member,
            "QueueMemberRemoved": self._on_member_removed,
            "CoreShowChannel": self._on_show_channel,
            "CoreShowChannelsComplete": self._on_show_channels_complete,
            "QueueStatusComplete": self._on_queue_status_complete,
            "Shutdown": self._on_shutdown,
            RESYNC_START: self._on_resync_start,
        }

    # ---------------------------------------------------------------- public API
    def feed(self, msg: AmiMessage, now: float) -> list[DomainEvent]:
        """Apply one AMI message; return the domain events it causes (often none)."""
        out: Out = []
        if msg.kind == "event":
            h = self._handlers.get(msg.name)
            if h is not None:
                self._cause = msg.name
                h(msg, now, out)
        if now >= self._next_tick:
            self._cause = "tick"
            self._tick(now, out)
        return out

    def tick(self, now: float) -> list[DomainEvent]:
        """Expire wrap-ups, forget stale agents and silent conversations."""
        out: Out = []
        self._cause = "tick"
        self._tick(now, out)
        return out

    def end_wrap_up(self, interface: str, now: float) -> list[DomainEvent]:
        """The hub says the agent's disposition is done: leave wrap-up."""
        out: Out = []
        agent = self._agents.get(interface)
        if agent is not None and agent.wrap_up_conversation is not None:
            self._cause = "end_wrap_up"
            agent.wrap_up_conversation = None
            agent.wrap_up_deadline = None
            self._update(agent, now, out)
        return out

    def agents(self) -> list[AgentView]:
        return [a.view() for a in self._agents.values()]

    def agent(self, interface: str) -> AgentView | None:
        a = self._agents.get(interface)
        return a.view() if a is not None else None

    def conversations(self) -> list[ConversationView]:
        return [c.view() for c in self._convs.values()]

    def conversation(self, conversation_id: str) -> ConversationView | None:
        c = self._convs.get(conversation_id)
        return c.view() if c is not None else None

    def wallboard(self) -> Wallboard:
        waiting = ringing = talking = 0
        for c in self._convs.values():
            st = c.state()
            if st is ConversationState.TALKING:
                talking += 1
            elif st is ConversationState.RINGING:
                ringing += 1
                waiting += 1
            elif st is ConversationState.QUEUED:
                waiting += 1
        counts = dict.fromkeys(AgentState, 0)
        for a in self._agents.values():
            counts[a.state] += 1
        return Wallboard(waiting=waiting, ringing=ringing, talking=talking, agents=counts)

    def size(self) -> tuple[int, int, int]:
        """(conversations, live channels, agents) - for memory checks."""
        return len(self._convs), len(self._chan), len(self._agents)

    # ---------------------------------------------------------------- helpers
    def _conv_for(self, msg: AmiMessage, now: float, out: Out) -> Conversation:
        """The conversation of an event's channel block, created if we missed its Newchannel."""
        uid = msg.get("Uniqueid") or ""
        lid = msg.get("Linkedid") or self._chan.get(uid) or uid
        conv = self._convs.get(lid)
        if conv is None:
            conv = self._new_conv(lid, msg.get("Channel") or "", msg, now, out)
        if uid and uid not in self._chan:
            self._chan[uid] = lid
            conv.channels[uid] = msg.get("Channel") or ""
            if self._resync_channels is not None:
                self._resync_channels.discard(uid)
        conv.last_activity = now
        return conv

    def _new_conv(
        self, lid: str, channel: str, msg: AmiMessage, now: float, out: Out
    ) -> Conversation:
        conv = Conversation(id=lid, started=now, last_activity=now)
        conv.origin_channel = channel
        conv.caller_num = _cid(msg.get("CallerIDNum"))
        conv.caller_name = _cid(msg.get("CallerIDName"))
        key = _dial_key(channel)
        if key is not None:
            conv.dial_key = key
            self._by_dial.setdefault(key, []).append(lid)
        self._convs[lid] = conv
        if len(self._convs) > self.peak_conversations:
            self.peak_conversations = len(self._convs)
        out.append(ConversationStarted(now, lid, channel, conv.caller_num, conv.caller_name))
        return conv

    def _agent_for(self, interface: str, name: str | None, now: float) -> Agent:
        agent = self._agents.get(interface)
        if agent is None:
            agent = Agent(interface=interface, member_name=name or interface, since=now)
            self._agents[interface] = agent
        elif name:
            agent.member_name = name
        return agent

    def _update(self, agent: Agent, now: float, out: Out, force: bool = False) -> None:
        new = agent.derive()
        old = agent.state
        if new is old and not force:
            return
        if new is not old:
            if not agent.fresh and not is_expected(old, new):
                self.anomalies += 1
                out.append(TransitionAnomaly(now, agent.interface, old, new, self._cause))
            agent.state = new
            agent.since = now
        agent.fresh = False
        out.append(
            AgentStateChanged(
                now,
                agent.interface,
                agent.member_name,
                new,
                old,
                agent.pause_reason if new is AgentState.PAUSED else "",
                tuple(sorted(agent.queues)),
                agent.conversation_id(),
            )
        )

    def _stop_ringing(
        self,
        conv: Conversation,
        interface: str,
        reason: str,
        ring_time: int | None,
        now: float,
        out: Out,
    ) -> None:
        if conv.ringing.pop(interface, None) is None:
            return
        agent = self._agents.get(interface)
        name = agent.member_name if agent else interface
        out.append(AgentRingStopped(now, conv.id, interface, name, reason, ring_time))
        if agent is not None:
            agent.ringing.pop(conv.id, None)
            self._update(agent, now, out)

    def _start_wrap_up(self, conv: Conversation, interface: str, now: float, out: Out) -> None:
        agent = self._agents.get(interface)
        if agent is None:
            return
        if agent.talking == conv.id:
            agent.talking = None
        agent.wrap_up_conversation = conv.id
        agent.wrap_up_deadline = (
            now + self.wrap_up_timeout if self.wrap_up_timeout is not None else None
        )
        self._update(agent, now, out)

    def _remember(self, conv: Conversation) -> None:
        self._recent[conv.id] = (tuple(conv.causes), conv.action_id)
        if conv.dial_key is not None:
            self._recent_dial[conv.dial_key] = conv.id
        while len(self._recent) > self.recent_limit:
            self._recent.popitem(last=False)
        while len(self._recent_dial) > self.recent_limit:
            self._recent_dial.popitem(last=False)

    def _end(self, conv: Conversation, now: float, out: Out) -> None:
        if conv.pending_originate is not None:
            action_id, channel = conv.pending_originate
            conv.pending_originate = None
            o, cause = refine(conv.originate_reason or 0, conv.causes)
            conv.originate_outcome = o.value
            out.append(OriginateResult(now, action_id, conv.id, channel, o, 0, cause))
        for interface in list(conv.ringing):
            self._stop_ringing(conv, interface, "caller_left", None, now, out)
        if conv.answered_by is not None and not conv.completed:
            conv.completed = True
            if conv.hung_up_by is None:
                conv.hung_up_by = self._first_hangup_party(conv)
            self._start_wrap_up(conv, conv.answered_by, now, out)
        for agent in self._agents.values():
            # Still marked on this call after the wrap-up above (replaced by another agent,
            # or completed under another interface: lost or out-of-order events): it is over.
            if agent.talking == conv.id:
                agent.talking = None
                self._update(agent, now, out)
        hung_up_by = conv.hung_up_by
        if hung_up_by is None and conv.answered_by is not None:
            hung_up_by = self._first_hangup_party(conv)
        outcome: str
        if conv.direction is Direction.OUTBOUND and conv.originate_outcome is not None:
            outcome = "answered" if conv.answered_by else conv.originate_outcome
        elif conv.answered_by is not None:
            outcome = "answered"
        elif conv.abandoned:
            outcome = "abandoned"
        elif conv.queue is not None:
            outcome = "unanswered"
        else:
            outcome = "ended"
        out.append(
            ConversationEnded(
                now,
                conv.id,
                conv.direction,
                outcome,
                hung_up_by,
                conv.answered_by,
                conv.queue,
                now - conv.started,
            )
        )
        del self._convs[conv.id]
        for uid in conv.channels:
            self._chan.pop(uid, None)
        conv.channels.clear()
        if conv.dial_key is not None:
            ids = self._by_dial.get(conv.dial_key)
            if ids is not None:
                if conv.id in ids:
                    ids.remove(conv.id)
                if not ids:
                    del self._by_dial[conv.dial_key]
        self._remember(conv)

    def _first_hangup_party(self, conv: Conversation) -> Party:
        return Party.AGENT if conv.first_hangup in conv.agent_legs else Party.CUSTOMER

    def _hangup(self, uid: str, cause: int, now: float, out: Out) -> None:
        lid = self._chan.pop(uid, None)
        if lid is None:
            return
        conv = self._convs.get(lid)
        if conv is None:
            return
        conv.channels.pop(uid, None)
        conv.causes.append(cause)
        conv.last_activity = now
        if conv.answered_by is not None and conv.first_hangup is None:
            conv.first_hangup = uid
        interface = conv.agent_legs.get(uid)
        if interface is None:
            conv.customer_gone = True
        else:
            if interface in conv.ringing and conv.ringing[interface] == uid:
                if cause == 26 or conv.answered_by:
                    reason = "answered_elsewhere"
                elif conv.customer_gone:
                    reason = "caller_left"
                else:
                    reason = "no_answer"
                self._stop_ringing(conv, interface, reason, None, now, out)
            elif interface == conv.answered_by and not conv.completed:
                conv.completed = True
                conv.hung_up_by = conv.hung_up_by or self._first_hangup_party(conv)
                self._start_wrap_up(conv, interface, now, out)
        if not conv.channels:
            self._end(conv, now, out)

    def _tick(self, now: float, out: Out) -> None:
        self._next_tick = now + 1.0
        stale_before = now - self.stale_agent_after
        for agent in list(self._agents.values()):
            if agent.wrap_up_deadline is not None and agent.wrap_up_deadline <= now:
                agent.wrap_up_conversation = None
                agent.wrap_up_deadline = None
                self._update(agent, now, out)
            if (
                agent.state is AgentState.LOGGED_OUT
                and agent.since < stale_before
                and not agent.ringing
                and agent.talking is None
            ):
                del self._agents[agent.interface]
        silent_before = now - self.max_conversation_age
        for conv in [c for c in self._convs.values() if c.last_activity < silent_before]:
            self._drop_channels(conv, now, out)

    def _drop_channels(self, conv: Conversation, now: float, out: Out) -> None:
        for uid in list(conv.channels):
            self._hangup(uid, 0, now, out)
        if conv.id in self._convs:  # no channels known at all
            self._end(conv, now, out)

    # ---------------------------------------------------------------- channel events
    def _on_newchannel(self, m: AmiMessage, now: float, out: Out) -> None:
        uid = m.get("Uniqueid")
        if not uid or uid in self._chan:
            return
        lid = m.get("Linkedid") or uid
        channel = m.get("Channel") or ""
        conv = self._convs.get(lid)
        if conv is None:
            conv = self._new_conv(lid, channel, m, now, out)
        conv.channels[uid] = channel
        conv.last_activity = now
        self._chan[uid] = lid

    def _on_hangup(self, m: AmiMessage, now: float, out: Out) -> None:
        uid = m.get("Uniqueid")
        if uid:
            self._hangup(uid, _int(m.get("Cause")), now, out)

    def _on_rename(self, m: AmiMessage, now: float, out: Out) -> None:
        uid = m.get("Uniqueid") or ""
        lid = self._chan.get(uid)
        conv = self._convs.get(lid) if lid else None
        if conv is not None:
            conv.channels[uid] = m.get("Newname") or conv.channels[uid]

    def _on_hold(self, m: AmiMessage, now: float, out: Out) -> None:
        uid = m.get("Uniqueid") or ""
        lid = m.get("Linkedid") or self._chan.get(uid)
        conv = self._convs.get(lid) if lid else None
        if conv is None:
            return
        held = m.name == "Hold"
        conv.held = held
        out.append(CallHeld(now, conv.id, m.get("Channel") or "", held))

    def _on_blind_transfer(self, m: AmiMessage, now: float, out: Out) -> None:
        lid = m.get("TransfereeLinkedid") or m.get("TransfererLinkedid")
        conv = self._convs.get(lid) if lid else None
        if conv is None:
            return
        target = f"{m.get('Extension') or ''}@{m.get('Context') or ''}"
        result = m.get("Result") or ""
        if result == "Success":
            conv.hung_up_by = Party.TRANSFER
        out.append(CallTransferred(now, conv.id, "blind", target, result))

    def _on_attended_transfer(self, m: AmiMessage, now: float, out: Out) -> None:
        lid = m.get("OrigTransfererLinkedid") or m.get("TransfereeLinkedid")
        conv = self._convs.get(lid) if lid else None
        if conv is None:
            return
        target = m.get("SecondTransfererLinkedid") or m.get("DestApp") or m.get("DestType") or ""
        result = m.get("Result") or ""
        if result == "Success":
            conv.hung_up_by = Party.TRANSFER
        out.append(CallTransferred(now, conv.id, "attended", target, result))

    # ---------------------------------------------------------------- queue call events
    def _on_caller_join(self, m: AmiMessage, now: float, out: Out) -> None:
        conv = self._conv_for(m, now, out)
        conv.queue = m.get("Queue") or ""
        conv.queued = True
        conv.queue_uniqueid = m.get("Uniqueid")
        conv.caller_num = _cid(m.get("CallerIDNum"))
        conv.caller_name = _cid(m.get("CallerIDName"))
        if conv.direction is Direction.UNKNOWN:
            conv.direction = Direction.INBOUND
        out.append(
            CallQueued(
                now,
                conv.id,
                conv.queue,
                conv.caller_num,
                conv.caller_name,
                _int(m.get("Position")),
                conv.queue_uniqueid or "",
                m.get("Channel") or "",
            )
        )

    def _on_caller_leave(self, m: AmiMessage, now: float, out: Out) -> None:
        lid = m.get("Linkedid") or ""
        conv = self._convs.get(lid)
        if conv is not None:
            conv.queued = False
            conv.last_activity = now

    def _on_caller_abandon(self, m: AmiMessage, now: float, out: Out) -> None:
        conv = self._conv_for(m, now, out)
        conv.abandoned = True
        conv.queued = False
        for interface in list(conv.ringing):
            self._stop_ringing(conv, interface, "caller_left", None, now, out)
        out.append(
            CallAbandoned(
                now,
                conv.id,
                m.get("Queue") or conv.queue or "",
                _int(m.get("Position")),
                _int(m.get("OriginalPosition")),
                _int(m.get("HoldTime")),
            )
        )

    def _on_agent_called(self, m: AmiMessage, now: float, out: Out) -> None:
        conv = self._conv_for(m, now, out)
        interface = m.get("Interface") or m.get("DestChannel") or ""
        queue = m.get("Queue") or ""
        if not interface:
            return
        agent = self._agent_for(interface, m.get("MemberName"), now)
        if queue:
            agent.queues.setdefault(queue, False)
        leg = m.get("DestUniqueid") or ""
        conv.ringing[interface] = leg
        conv.agent_legs[leg] = interface
        if conv.queue is None:
            conv.queue = queue
            conv.queued = True
        agent.ringing[conv.id] = leg
        out.append(
            AgentRinging(
                now,
                conv.id,
                queue,
                interface,
                agent.member_name,
                _cid(m.get("CallerIDNum")),
                _cid(m.get("CallerIDName")),
                m.get("Uniqueid") or "",
                m.get("Channel") or "",
                m.get("DestChannel") or "",
                leg,
            )
        )
        self._update(agent, now, out)

    def _on_ring_no_answer(self, m: AmiMessage, now: float, out: Out) -> None:
        lid = m.get("Linkedid") or ""
        conv = self._convs.get(lid)
        if conv is None:
            return
        conv.last_activity = now
        interface = m.get("Interface") or ""
        self._stop_ringing(conv, interface, "no_answer", _int(m.get("RingTime")), now, out)

    def _on_agent_connect(self, m: AmiMessage, now: float, out: Out) -> None:
        conv = self._conv_for(m, now, out)
        interface = m.get("Interface") or ""
        if not interface:
            return
        agent = self._agent_for(interface, m.get("MemberName"), now)
        leg = m.get("DestUniqueid") or ""
        conv.agent_legs[leg] = interface
        conv.answered_by = interface
        conv.completed = False
        conv.queued = False
        conv.ringing.pop(interface, None)
        for other in list(conv.ringing):
            self._stop_ringing(conv, other, "answered_elsewhere", None, now, out)
        agent.ringing.pop(conv.id, None)
        agent.talking = conv.id
        agent.in_call_unknown = False
        agent.wrap_up_conversation = None
        agent.wrap_up_deadline = None
        out.append(
            CallAnswered(
                now,
                conv.id,
                m.get("Queue") or "",
                interface,
                agent.member_name,
                _cid(m.get("CallerIDNum")),
                _cid(m.get("CallerIDName")),
                _int(m.get("HoldTime")),
                _int(m.get("RingTime")),
            )
        )
        self._update(agent, now, out)

    def _on_agent_complete(self, m: AmiMessage, now: float, out: Out) -> None:
        conv = self._conv_for(m, now, out)
        interface = m.get("Interface") or ""
        if not interface:
            return
        agent = self._agent_for(interface, m.get("MemberName"), now)
        party = _COMPLETE_REASON.get((m.get("Reason") or "").lower())
        if conv.hung_up_by is not Party.TRANSFER:
            conv.hung_up_by = party
        conv.completed = True
        if conv.answered_by is None:
            conv.answered_by = interface
        out.append(
            CallCompleted(
                now,
                conv.id,
                m.get("Queue") or "",
                interface,
                agent.member_name,
                _int(m.get("HoldTime")),
                _int(m.get("TalkTime")),
                conv.hung_up_by,
            )
        )
        self._start_wrap_up(conv, interface, now, out)

    def _on_originate_response(self, m: AmiMessage, now: float, out: Out) -> None:
        action_id = m.get("ActionID") or ""
        reason = _int(m.get("Reason"))
        uid = m.get("Uniqueid") or ""
        channel = m.get("Channel") or ""
        conv: Conversation | None = None
        if uid and uid != _UNKNOWN:
            lid = self._chan.get(uid) or uid
            conv = self._convs.get(lid)
        if conv is None:
            for lid in self._by_dial.get(channel, ()):
                c = self._convs[lid]
                if c.action_id is None:
                    conv = c
                    break
        if conv is None:
            # the call may be over already (OriginateResponse comes late)
            lid2 = uid if uid in self._recent else self._recent_dial.get(channel)
            recent = self._recent.get(lid2) if lid2 else None
            if recent is not None and recent[1] is None:
                self._recent[lid2] = (recent[0], action_id)  # type: ignore[index]
                outcome, cause = refine(reason, recent[0])
                out.append(OriginateResult(now, action_id, lid2, channel, outcome, reason, cause))
            else:
                outcome, cause = refine(reason, ())
                out.append(OriginateResult(now, action_id, None, channel, outcome, reason, cause))
            return
        conv.direction = Direction.OUTBOUND
        conv.action_id = action_id
        conv.originate_reason = reason
        conv.last_activity = now
        if reason == 0 and conv.channels:
            conv.pending_originate = (action_id, channel)
            return
        outcome, cause = refine(reason, conv.causes)
        conv.originate_outcome = outcome.value
        out.append(OriginateResult(now, action_id, conv.id, channel, outcome, reason, cause))

    # ---------------------------------------------------------------- queue members
    def _on_member(self, m: AmiMessage, now: float, out: Out) -> None:
        interface = m.get("Interface") or m.get("Location")
        queue = m.get("Queue")
        if not interface or not queue:
            return
        agent = self._agent_for(interface, m.get("MemberName") or m.get("Name"), now)
        paused = m.get("Paused") == "1"
        reason = m.get("PausedReason") or ""
        old_reason = agent.pause_reason
        agent.queues[queue] = paused
        if paused:
            agent.pause_reason = reason
        elif not any(agent.queues.values()):
            agent.pause_reason = ""
        in_call = m.get("InCall")
        if m.name == "QueueMember":
            if self._resync_members is not None:
                self._resync_members.discard((interface, queue))
            if in_call == "1" and agent.talking is None:
                agent.in_call_unknown = True
        if in_call == "0" and agent.in_call_unknown:
            agent.in_call_unknown = False
        changed_reason = agent.state is AgentState.PAUSED and agent.pause_reason != old_reason
        self._update(agent, now, out, force=changed_reason and agent.derive() is AgentState.PAUSED)

    def _on_member_removed(self, m: AmiMessage, now: float, out: Out) -> None:
        agent = self._agents.get(m.get("Interface") or "")
        if agent is None:
            return
        agent.queues.pop(m.get("Queue") or "", None)
        if not agent.queues:
            agent.in_call_unknown = False  # we cannot follow calls of a non-member
        if not any(agent.queues.values()):
            agent.pause_reason = ""
        self._update(agent, now, out)

    # ---------------------------------------------------------------- resync
    def _on_resync_start(self, m: AmiMessage, now: float, out: Out) -> None:
        self._resync_channels = set(self._chan)
        self._resync_members = {(a.interface, q) for a in self._agents.values() for q in a.queues}
        self._resync_new = {}

    def _on_show_channel(self, m: AmiMessage, now: float, out: Out) -> None:
        uid = m.get("Uniqueid") or ""
        if self._resync_channels is not None:
            self._resync_channels.discard(uid)
        if uid and uid not in self._chan:
            self._on_newchannel(m, now, out)
            if self._resync_channels is not None and len(self._resync_new) < _RESYNC_NEW_MAX:
                self._resync_new[uid] = m

    def _on_show_channels_complete(self, m: AmiMessage, now: float, out: Out) -> None:
        gone = self._resync_channels
        if gone is None:
            return
        self._resync_channels = None
        for uid in gone:
            self._hangup(uid, 0, now, out)
        if self._resync_members is None:  # the queue list came first
            self._resume_calls(now, out)

    def _on_queue_status_complete(self, m: AmiMessage, now: float, out: Out) -> None:
        gone = self._resync_members
        if gone is None:
            return
        self._resync_members = None
        for interface, queue in gone:
            agent = self._agents.get(interface)
            if agent is not None:
                agent.queues.pop(queue, None)
                self._update(agent, now, out)
        if self._resync_channels is None:  # the channel list came first
            self._resume_calls(now, out)

    def _resume_calls(self, now: float, out: Out) -> None:
        """Take up calls the resync found with an agent already talking (see module doc)."""
        new, self._resync_new = self._resync_new, {}
        bridges: dict[str, list[AmiMessage]] = {}
        for uid, item in new.items():
            bridge = item.get("BridgeId") or ""
            if bridge and uid in self._chan and item.get("ChannelState") == "6":
                bridges.setdefault(bridge, []).append(item)
        by_prefix = {_channel_prefix(iface): iface for iface in self._agents}
        for items in bridges.values():
            agents: list[tuple[AmiMessage, str]] = []
            callers: list[AmiMessage] = []
            for item in items:
                channel = item.get("Channel") or ""
                iface = by_prefix.get(_channel_prefix(channel))
                if iface is None:
                    callers.append(item)
                elif not channel.endswith(";2"):  # a Local member's ;2 is its phone side
                    agents.append((item, iface))
            if len(agents) != 1 or len(callers) != 1:
                continue  # not one agent and one caller: a conference, or two agents
            (leg, interface), caller = agents[0], callers[0]
            lid = self._chan[leg.get("Uniqueid") or ""]
            conv = self._convs.get(lid)
            agent = self._agents[interface]
            if conv is None or conv.answered_by is not None or agent.talking is not None:
                continue
            if lid != self._chan.get(caller.get("Uniqueid") or ""):
                continue
            queue = ""
            if caller.get("Application") == "Queue":
                queue = (caller.get("ApplicationData") or "").split(",")[0]
            direction = Direction.INBOUND if queue else Direction.OUTBOUND
            conv.agent_legs[leg.get("Uniqueid") or ""] = interface
            conv.answered_by = interface
            conv.agent_member_name = agent.member_name
            conv.caller_num = _cid(caller.get("CallerIDNum"))
            conv.caller_name = _cid(caller.get("CallerIDName"))
            conv.queue = queue or conv.queue
            if conv.direction is Direction.UNKNOWN:
                conv.direction = direction
            agent.talking = conv.id
            agent.in_call_unknown = False
            out.append(
                CallResumed(
                    now,
                    conv.id,
                    queue,
                    interface,
                    agent.member_name,
                    leg.get("Channel") or "",
                    caller.get("Channel") or "",
                    conv.caller_num,
                    conv.caller_name,
                    conv.direction,
                    _duration_s(caller.get("Duration")),
                )
            )
            self._update(agent, now, out)

    def _on_shutdown(self, m: AmiMessage, now: float, out: Out) -> None:
        for conv in list(self._convs.values()):
            self._drop_channels(conv, now, out)
