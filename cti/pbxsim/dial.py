"""``Dial(Local/<number>@members-out/n)`` from an answered channel (click-to-dial).

The hub originates the agent first (``Channel: Local/<ext>@agents``,
``Context: members-out``, ``Exten: <member number>``); when the agent answers,
the agent's ``;1`` dials the member, and on answer both are bridged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cti.pbxsim import ami_events as ev
from cti.pbxsim.ami_events import Channel
from cti.pbxsim.call_actors import CallActor, Signal, _cdr, _hangup_pair

if TYPE_CHECKING:
    from cti.pbxsim.originate import Callee
    from cti.pbxsim.sim import PbxSimulator


async def run_dial(
    actor: CallActor, chan: Channel, peer: Channel, number: str, dial_timeout: float
) -> Signal | None:
    """Dial the member from the answered ``chan`` (its ``;2`` is ``peer``): the member's
    Local pair, then refused at once, rung out, cancelled, or answered, bridged and talked
    until one side hangs up. Events in Asterisk's order at each step."""
    from cti.pbxsim.originate import _callee

    sim = actor.sim
    leg = _member_leg(actor, chan, peer, number, dial_timeout)
    callee = _callee(sim, number, "members-out")
    if _refused(sim, leg, callee.outcome):
        return None
    if not await _ring(actor, leg, callee, dial_timeout):
        return None
    bridge = _bridge(sim, leg)
    member_first = await _talk(actor, leg, callee)
    _tear_down(sim, leg, bridge, member_first)
    return None


@dataclass
class _Leg:
    """The dialling channel ``chan`` (with its ``;2`` ``peer``) and the member's Local
    pair ``m1``/``m2``."""

    chan: Channel
    peer: Channel
    m1: Channel
    m2: Channel

    def names(self) -> tuple[str, ...]:
        return (self.chan.name, self.peer.name, self.m1.name, self.m2.name)


def _member_leg(
    actor: CallActor, chan: Channel, peer: Channel, number: str, dial_timeout: float
) -> _Leg:
    """The member's Local pair is created and the Dial begins (DialBegin)."""
    sim = actor.sim
    emit = sim.emit
    m1, m2 = sim.new_local_pair(number, "members-out", linkedid=chan.linkedid)
    actor.adopt(m1, m2)
    chan.application, chan.app_data = "Dial", f"Local/{number}@members-out/n,{int(dial_timeout)}"
    emit(ev.newchannel(m1))
    emit(ev.newchannel(m2))
    for c in (m1, m2):
        c.cid_num, c.cid_name = chan.cid_num, chan.cid_name
        c.conn_num, c.conn_name = chan.cid_num, chan.cid_name
    emit(ev.local_bridge(m1, m2))
    emit(ev.dial_begin(m1, f"Local/{number}@members-out/n", caller=chan))
    return _Leg(chan, peer, m1, m2)


def _fail(sim: PbxSimulator, leg: _Leg, status: str, cause_two: int, cause_one: int) -> None:
    """The member's leg ends unanswered (DialEnd ``status``); the dialling pair hangs up."""
    emit, m1, m2 = sim.emit, leg.m1, leg.m2
    emit(ev.dial_end(m1, status, caller=leg.chan))
    emit(ev.hangup_request(m2, cause_one))
    emit(ev.hangup(m1, cause_one))
    emit(ev.hangup_request(m2, 16, soft=True))
    emit(ev.hangup(m2, cause_two))
    m1.hungup = m2.hungup = True
    leg.chan.variables["DIALSTATUS"] = status
    _hangup_pair(sim, leg.chan, leg.peer, 16)


def _refused(sim: PbxSimulator, leg: _Leg, kind: str) -> bool:
    """Busy, congestion, a rejected call or no such number: over before it rings."""
    if kind in ("busy", "userbusy", "congestion"):
        leg.m2.state = ev.BUSY
        sim.emit(ev.newstate(leg.m2))
        if kind == "congestion":
            _fail(sim, leg, "CONGESTION", 34, 0)
        else:
            _fail(sim, leg, "BUSY", 17, 0)
        return True
    if kind in ("reject", "hangup", "nosuchexten"):
        _fail(
            sim,
            leg,
            "NOANSWER" if kind != "nosuchexten" else "CHANUNAVAIL",
            21 if kind == "reject" else 16,
            0,
        )
        return True
    return False


async def _ring(actor: CallActor, leg: _Leg, callee: Callee, dial_timeout: float) -> bool:
    """The member's phone rings until they answer (True), the dial times out, or either
    side hangs up (False, everything hung up)."""
    sim, emit, m1, m2 = actor.sim, actor.sim.emit, leg.m1, leg.m2
    m1.state = ev.RINGING
    emit(ev.newstate(m1))
    emit(ev.dial_state(m1, "RINGING", caller=leg.chan))
    actor.timer(dial_timeout, "dial_timeout")
    if callee.outcome in ("answer", "voicemail"):
        actor.timer(callee.ring, "member_answer")
    while True:
        sig = await actor.next()
        if sig.kind == "timer" and sig.tag == "member_answer":
            return True
        if sig.kind == "timer" and sig.tag == "dial_timeout":
            _fail(sim, leg, "NOANSWER", 19, 19)
            return False
        if sig.kind == "hangup" and sig.channel in leg.names():
            if sig.channel in (m1.name, m2.name):
                _fail(sim, leg, "NOANSWER", 16, 16)
                return False
            emit(ev.dial_end(m1, "CANCEL", caller=leg.chan))
            emit(ev.hangup_request(m2, 0))
            emit(ev.hangup(m1, 0))
            emit(ev.hangup(m2, 0))
            m1.hungup = m2.hungup = True
            _hangup_pair(sim, leg.chan, leg.peer, 16)
            return False


def _bridge(sim: PbxSimulator, leg: _Leg) -> str:
    """The member answers: both legs Up, DialEnd ANSWER, the two bridged; the bridge id."""
    emit, m1, m2 = sim.emit, leg.m1, leg.m2
    now = sim.now()
    m1.state = m2.state = ev.UP
    m1.answered = m2.answered = now
    emit(ev.newstate(m2))
    emit(ev.newstate(m1))
    emit(ev.dial_end(m1, "ANSWER", caller=leg.chan))
    bridge = str(uuid.UUID(int=sim.rng.getrandbits(128), version=4))
    emit(ev.bridge_event("BridgeCreate", bridge, 0))
    emit(ev.bridge_event("BridgeEnter", bridge, 1, leg.chan))
    emit(ev.bridge_event("BridgeEnter", bridge, 2, m1))
    return bridge


async def _talk(actor: CallActor, leg: _Leg, callee: Callee) -> bool:
    """The conversation, until one side ends it; True when the member hung up first."""
    if callee.talk is not None:
        actor.timer(callee.talk, "member_end")
    while True:
        sig = await actor.next()
        if sig.kind == "timer" and sig.tag == "member_end":
            return True
        if sig.kind == "hangup" and sig.channel in (leg.m1.name, leg.m2.name):
            return True
        if (sig.kind == "timer" and sig.tag == "callee_end") or (
            sig.kind == "hangup" and sig.channel in (leg.chan.name, leg.peer.name)
        ):
            return False


def _tear_down(sim: PbxSimulator, leg: _Leg, bridge: str, member_first: bool) -> None:
    """The side that hung up leaves the bridge first; the bridge goes, the CDR is written."""
    emit = sim.emit
    member, dialler = (leg.m1, leg.m2), (leg.chan, leg.peer)
    first, second = (member, dialler) if member_first else (dialler, member)
    emit(ev.hangup_request(first[1], 16, soft=True))
    emit(ev.hangup_request(first[0], 16))
    emit(ev.hangup(first[1], 16))
    emit(ev.bridge_event("BridgeLeave", bridge, 1, first[0]))
    emit(ev.hangup(first[0], 16))
    first[0].hungup = first[1].hungup = True
    emit(ev.bridge_event("BridgeLeave", bridge, 0, second[0]))
    emit(ev.bridge_event("BridgeDestroy", bridge, 0))
    _cdr(sim, leg.chan, leg.m1.name)
    _hangup_pair(sim, second[0], second[1], 16)
