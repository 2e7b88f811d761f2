"""Tracker domain events -> hub reactions: one explicit table (``TrackerEvents.table``).

Reactions are: the screen pop (AgentRinging), ``call_state``/``agent_state`` pushes to
the consoles concerned, the durable ``call_attempts`` row of every queue call and
click-to-dial (through the ordered writer), wallboard counters, and the post-call
survey redirect.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crm_bridge.models import Direction as DbDirection
from crm_bridge.phones import normalise
from cti.hub.call_records import CallRecord
from cti.hub.persist import audit, link_member, upsert_call
from cti.screenpop import Pop
from cti.tracker import (
    AgentRinging,
    AgentRingStopped,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallCompleted,
    CallHeld,
    CallQueued,
    CallResumed,
    ConversationEnded,
    ConversationStarted,
    Direction,
    DomainEvent,
    OriginateOutcome,
    OriginateResult,
    Party,
    TransitionAnomaly,
)

if TYPE_CHECKING:
    from cti.hub.server import HubServer
    from cti.hub.sessions import AgentInfo

log = logging.getLogger(__name__)

_PARTY = {Party.AGENT: "agent", Party.CUSTOMER: "member", Party.TRANSFER: "transfer"}


class TrackerEvents:
    def __init__(self, hub: HubServer) -> None:
        self.hub = hub
        self.table: dict[type[DomainEvent], Callable[[Any], None]] = {
            ConversationStarted: self.on_started,
            CallQueued: self.on_queued,
            AgentRinging: self.on_ringing,
            AgentRingStopped: self.on_ring_stopped,
            CallAnswered: self.on_answered,
            CallResumed: self.on_resumed,
            CallCompleted: self.on_completed,
            CallAbandoned: self.on_abandoned,
            CallHeld: self.on_held,
            OriginateResult: self.on_originate_result,
            ConversationEnded: self.on_ended,
            AgentStateChanged: self.on_agent_state,
            TransitionAnomaly: self.on_anomaly,
        }
        self.anomalies = 0
        self.recent_anomalies: deque[TransitionAnomaly] = deque(maxlen=5)
        """The last few impossible agent transitions (``memberline health`` shows them)."""

    def handle(self, ev: DomainEvent) -> None:
        fn = self.table.get(type(ev))
        if fn is not None:
            fn(ev)

    # ------------------------------------------------------------------ helpers
    def _agent(self, interface: str) -> AgentInfo | None:
        return self.hub.agents_by_interface.get(interface)

    def _console_serves(self, queue: str) -> bool:
        """Is an agent with a console logged in and a member of ``queue``?"""
        hub = self.hub
        for code in hub.sessions.agent_codes():
            info = hub.agents_by_code.get(code)
            view = hub.tracker.agent(info.interface) if info is not None else None
            if view is not None and queue in view.queues:
                return True
        return False

    def _persist(self, rec: CallRecord, **fields: Any) -> None:
        direction = DbDirection.OUTBOUND if rec.direction == "outbound" else DbDirection.INBOUND
        self.hub.writer.submit(upsert_call(rec.attempt_key, direction, rec.started, **fields))

    def _set_state(self, rec: CallRecord, state: str, at: float) -> None:
        if rec.state != state:
            rec.state = state
            rec.since = at

    def _inbound(self, ev: CallQueued | AgentRinging, state: str) -> CallRecord:
        """The hub's record of a queue call, made at its first event."""
        rec = self.hub.calls.get(ev.conversation_id)
        if rec is None:
            rec = self.hub.calls.add(
                CallRecord(
                    call_id=ev.conversation_id,
                    direction="inbound",
                    started=ev.at,
                    since=ev.at,
                    caller_num=ev.caller_num,
                    caller_name=ev.caller_name,
                    queue=ev.queue,
                    state=state,
                )
            )
            self._origin(rec)
        return rec

    def _origin(self, rec: CallRecord) -> None:
        """A call a campaign placed is outbound and names its campaign, even when it reaches
        the agent through a queue (the dialer's ChannelId is the conversation id)."""
        lookup = self.hub.call_origin
        origin = lookup(rec.call_id) if lookup is not None else None
        if origin is not None:
            rec.direction = "outbound"
            rec.campaign_id = origin.get("campaign_id")
            rec.campaign = origin.get("campaign")
            if isinstance(rec.campaign_id, int):
                self.hub.learn_campaign(rec.campaign_id)

    def _withdraw(self, rec: CallRecord, code: str, reason: str) -> None:
        """The pop of ``rec`` is no longer this agent's to take (see ``pop_withdrawn``)."""
        owner = rec.agent_code
        if owner is None:  # the ring stops just before the answer is reported
            conv = self.hub.tracker.conversation(rec.call_id)
            info = self._agent(conv.interface) if conv is not None and conv.interface else None
            owner = info.code if info is not None else None
        self.hub.sessions.push_to_agent(
            code, "pop_withdrawn", {"call_id": rec.call_id, "reason": reason, "agent": owner}
        )

    def _push(self, rec: CallRecord, *codes: str | None) -> None:
        for code in dict.fromkeys(c for c in codes if c):
            self.hub.push_call_state(rec, code)

    # ------------------------------------------------------------------ reactions
    def on_started(self, ev: ConversationStarted) -> None:
        rec = self.hub.calls.get(ev.conversation_id)
        if rec is None or rec.direction != "outbound" or rec.agent_code is None:
            return
        # Click-to-dial: the first channel is the agent's leg (ChannelId preset = call id).
        rec.agent_channels.setdefault(rec.agent_code, ev.channel)

    def on_queued(self, ev: CallQueued) -> None:
        hub = self.hub
        rec = self._inbound(ev, "queued")
        rec.member_channel = rec.member_channel or ev.channel
        hub.stats.offered(ev.at)
        if self._console_serves(ev.queue):
            hub.lookups.prefetch(rec.call_id, ev.caller_num, ev.caller_name)
        e164 = normalise(ev.caller_num, hub.settings.default_region)
        self._persist(rec, phone_e164=e164, linkedid=ev.conversation_id)
        if e164 is not None:
            hub.writer.submit(link_member(rec.attempt_key, e164))

    def on_ringing(self, ev: AgentRinging) -> None:
        hub = self.hub
        rec = self._inbound(ev, "ringing")
        rec.member_channel = rec.member_channel or ev.channel
        agent = self._agent(ev.interface)
        if agent is None:
            return
        rec.ringing.add(agent.code)
        rec.agent_channels[agent.code] = ev.agent_channel
        if rec.state in ("queued", "ringing"):
            self._set_state(rec, "ringing", ev.at)
        elif rec.state == "ended" and rec.ended_at is not None:
            # Transferred into a queue: offered again, to this agent now.
            hub.calls.reopened(rec)
            rec.hangup_by = None
            self._set_state(rec, "ringing", ev.at)
        if hub.sessions.logged_in_anywhere(agent.code):
            self.start_pop(rec, agent, ev.caller_num, ev.caller_name, ev.queue)
        self._push(rec, agent.code)

    def start_pop(
        self, rec: CallRecord, agent: AgentInfo, caller_num: str, caller_name: str, queue: str
    ) -> None:
        """Look the caller up (shared, maybe prefetched) and push the pop to the agent."""
        t0 = time.perf_counter()
        self.hub.spawn(
            self._pop(rec, agent, caller_num, caller_name, queue, t0), f"pop-{rec.call_id}"
        )

    async def _pop(
        self,
        rec: CallRecord,
        agent: AgentInfo,
        caller_num: str,
        caller_name: str,
        queue: str,
        t0: float,
    ) -> None:
        self.hub.pop_started()  # until delivered, not only looked up
        try:
            pop = await self.hub.lookups.get(rec.call_id, caller_num, caller_name)
            self._deliver(rec, agent, queue, pop, t0)
        finally:
            self.hub.pop_finished()

    def _deliver(self, rec: CallRecord, agent: AgentInfo, queue: str, pop: Pop, t0: float) -> None:
        hub = self.hub
        ringing = agent.code in rec.ringing
        if not ringing and rec.agent_code != agent.code:
            return  # stopped ringing while we looked it up (another agent took it)
        data = pop.to_push(rec.call_id, queue)
        data["your_member"] = pop.maintainer_code == agent.code  # "your member" on the pop
        # Journalled before the pop leaves: a pop any console saw is always audited.
        hub.writer.submit(
            audit(
                agent.actor,
                "profile.pop" if pop.kind == "member" else f"pop.{pop.kind}",
                pop.member_ids[0] if len(pop.member_ids) == 1 else None,
                {"call_id": rec.call_id, "members": pop.member_ids, "queue": queue},
            )
        )
        sent = hub.sessions.push_to_agent(agent.code, "screen_pop", data)
        if ringing:
            hub.pops[(rec.call_id, agent.code)] = data
        hub.pops_pushed += sent
        hub.pop_latencies.append(time.perf_counter() - t0)
        if len(hub.pop_latencies) > 10_000:
            del hub.pop_latencies[:5_000]
        hub.grant(agent.code, pop.member_ids)
        if len(pop.member_ids) == 1 and rec.member_id is None:
            rec.member_id = pop.member_ids[0]
            self._persist(rec, member_id=rec.member_id)

    def on_ring_stopped(self, ev: AgentRingStopped) -> None:
        hub = self.hub
        rec = hub.calls.get(ev.conversation_id)
        agent = self._agent(ev.interface)
        if rec is None or agent is None:
            return
        rec.ringing.discard(agent.code)
        hub.pops.pop((rec.call_id, agent.code), None)
        if rec.agent_code != agent.code:
            rec.agent_channels.pop(agent.code, None)
            if ev.reason == "caller_left" and not rec.ringing and rec.agent_code is None:
                self._set_state(rec, "ended", ev.at)
            hub.sessions.push_to_agent(agent.code, "call_state", rec.to_push(agent.code))
            self._withdraw(rec, agent.code, ev.reason or "ring_stopped")

    def on_answered(self, ev: CallAnswered) -> None:
        hub = self.hub
        hub.lookups.forget(ev.conversation_id)
        rec = hub.calls.get(ev.conversation_id)
        agent = self._agent(ev.interface)
        if rec is None:
            return
        others = [c for c in rec.ringing if agent is None or c != agent.code]
        rec.ringing.clear()
        for code in others:
            hub.pops.pop((rec.call_id, code), None)
            rec.agent_channels.pop(code, None)
        if agent is not None:
            hub.pops.pop((rec.call_id, agent.code), None)
            rec.agent_code = agent.code
            if agent.code not in rec.owners:
                rec.owners.append(agent.code)
        rec.hangup_by = None
        self._set_state(rec, "up", ev.at)
        hub.stats.answered(ev.at)
        self._persist(
            rec, answered_at=ev.at, agent_id=agent.id if agent else None, outcome="answered"
        )
        self._push(rec, rec.agent_code, *others)
        for code in others:
            self._withdraw(rec, code, "answered_elsewhere")
        if len(rec.owners) > 1 and agent is not None:
            # Handed over (transfer into a queue): the previous owner keeps only their wrap-up.
            previous = rec.owners[-2]
            hub.writer.submit(
                audit(
                    agent.actor,
                    "call.handover",
                    rec.member_id,
                    {"call_id": rec.call_id, "from": previous, "to": agent.code},
                )
            )
            self._push(rec, previous)

    def on_resumed(self, ev: CallResumed) -> None:
        """The AMI resync found an agent on a call this hub did not know (it restarted
        mid-call): the call is this agent's again, with its pop, state and wrap-up."""
        hub = self.hub
        agent = self._agent(ev.interface)
        rec = hub.calls.get(ev.conversation_id)
        if agent is None or (rec is not None and rec.agent_code is not None):
            return
        if rec is None:
            direction = "outbound" if ev.direction is Direction.OUTBOUND else "inbound"
            rec = hub.calls.add(
                CallRecord(
                    call_id=ev.conversation_id,
                    direction=direction,
                    started=ev.at - ev.duration,
                    since=ev.at,
                    caller_num=ev.caller_num,
                    caller_name=ev.caller_name,
                    queue=ev.queue or None,
                    member_channel=ev.caller_channel,
                    state="up",
                )
            )
        rec.agent_code = agent.code
        rec.agent_channels[agent.code] = ev.agent_channel
        if agent.code not in rec.owners:
            rec.owners.append(agent.code)
        self._set_state(rec, "up", ev.at)
        # The row of the call (written before the restart, or made now) learns its agent.
        self._persist(rec, agent_id=agent.id, linkedid=ev.conversation_id)
        log.info("call %s taken up again for agent %s after a resync", rec.call_id, agent.code)
        if hub.sessions.logged_in_anywhere(agent.code):
            self.start_pop(rec, agent, rec.caller_num, rec.caller_name, rec.queue or "")
        else:
            rec.repop = True  # when the agent's console comes back (push_full_state)
        self._push(rec, agent.code)

    def on_completed(self, ev: CallCompleted) -> None:
        hub = self.hub
        rec = hub.calls.get(ev.conversation_id)
        if rec is None:
            return
        rec.hangup_by = _PARTY.get(ev.hung_up_by) if ev.hung_up_by else rec.hangup_by
        if rec.agent_code is not None:
            st = hub.today_stats(rec.agent_code)
            st[1] += 1
            st[2] += ev.talk_time
        self._set_state(rec, "ended", ev.at)
        hub.calls.ended(rec, ev.at)
        self._persist(rec, ended_at=ev.at, hangup_by=rec.hangup_by)
        self._push(rec, rec.agent_code)
        agent = self._agent(ev.interface)
        if agent is not None:
            hub.begin_wrapup(rec, agent)
        acts = hub.postcall_actions(rec) if ev.hung_up_by is Party.AGENT else None
        if acts:
            hub.spawn(self._to_survey(rec, acts), f"survey-{rec.call_id}")

    async def _to_survey(self, rec: CallRecord, acts: list[dict[str, str]]) -> None:
        try:
            await self.hub.send_postcall(rec, acts)
        except Exception as exc:
            log.info("post-call survey redirect of %s failed: %s", rec.call_id, exc)

    def on_abandoned(self, ev: CallAbandoned) -> None:
        hub = self.hub
        hub.stats.abandoned(ev.at)
        rec = hub.calls.get(ev.conversation_id)
        if rec is not None:
            self._persist(rec, outcome="abandoned")

    def on_held(self, ev: CallHeld) -> None:
        rec = self.hub.calls.get(ev.conversation_id)
        if rec is None or rec.state not in ("up", "hold"):
            return
        self._set_state(rec, "hold" if ev.held else "up", ev.at)
        self._push(rec, rec.agent_code)

    def on_originate_result(self, ev: OriginateResult) -> None:
        hub = self.hub
        call_id = hub.pending_dials.pop(ev.action_id, None)
        if call_id is None:
            return
        rec = hub.calls.get(call_id)
        if rec is None:
            return
        hub.stats.dialled(ev.at, ev.outcome is OriginateOutcome.ANSWERED)
        if ev.outcome is OriginateOutcome.ANSWERED:
            self._set_state(rec, "up", ev.at)
            self._persist(rec, answered_at=ev.at, outcome="answered")
        else:
            self._set_state(rec, "ended", ev.at)
            hub.calls.ended(rec, ev.at)
            self._persist(rec, outcome=ev.outcome.value, ended_at=ev.at, hangup_cause=ev.cause)
        self._push(rec, rec.agent_code)

    def on_ended(self, ev: ConversationEnded) -> None:
        hub = self.hub
        hub.lookups.forget(ev.conversation_id)
        rec = hub.calls.get(ev.conversation_id)
        if rec is None:
            return
        was_ringing = list(rec.ringing)
        rec.ringing.clear()
        for code in was_ringing:
            hub.pops.pop((rec.call_id, code), None)
        if ev.hung_up_by is not None and rec.hangup_by is None:
            rec.hangup_by = _PARTY.get(ev.hung_up_by)
        already = rec.state == "ended"
        self._set_state(rec, "ended", ev.at)
        if rec.ended_at is None:
            hub.calls.ended(rec, ev.at)
        outcome = ev.outcome if rec.direction == "inbound" else None
        if rec.direction == "outbound" and ev.outcome in ("answered", "ended"):
            outcome = None  # keep the originate outcome already stored
        self._persist(rec, ended_at=ev.at, outcome=outcome, hangup_by=rec.hangup_by)
        if rec.agent_code is None and not was_ringing:
            # Nobody ever owned it (abandoned in the queue): nothing to wrap up.
            hub.calls.forget(rec.call_id)
            return
        if not already or was_ringing:
            self._push(rec, rec.agent_code, *was_ringing)
        for code in was_ringing:
            if code != rec.agent_code:
                self._withdraw(rec, code, "ended")
        owner = hub.agents_by_code.get(rec.agent_code or "")
        if owner is not None:
            hub.begin_wrapup(rec, owner)  # a click-to-dial or dialer call (no AgentComplete)

    def on_anomaly(self, ev: TransitionAnomaly) -> None:
        """Logged once, here, with the event that caused it; counted for ``health``."""
        self.anomalies += 1
        self.recent_anomalies.append(ev)
        log.warning(
            "agent %s: impossible transition %s -> %s on %s (events lost or out of order)",
            ev.interface,
            ev.previous.value,
            ev.state.value,
            ev.event,
        )

    def health(self) -> dict[str, Any]:
        """The count and the last few anomalies, without agent names (``hello`` is public)."""
        return {
            "count": self.anomalies,
            "recent": [
                {"at": a.at, "from": a.previous.value, "to": a.state.value, "event": a.event}
                for a in self.recent_anomalies
            ],
        }

    def on_agent_state(self, ev: AgentStateChanged) -> None:
        agent = self._agent(ev.interface)
        if agent is not None:
            self.hub.push_agent_state(agent)
