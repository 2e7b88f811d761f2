"""``Dial(Local/<number>@members-out/n)`` from an answered channel (click-to-dial).

The hub originates the agent first (``Channel: Local/<ext>@agents``,
``Context: members-out``, ``Exten: <member number>``); when the agent answers,
the agent's ``;1`` dials the member, and on answer both are bridged.
"""

from __future__ import annotations

import uuid

from cti.pbxsim import ami_events as ev
from cti.pbxsim.ami_events import Channel
from cti.pbxsim.call_actors import CallActor, Signal, _cdr, _hangup_pair


async def run_dial(
    actor: CallActor, chan: Channel, peer: Channel, number: str, dial_timeout: float
) -> Signal | None:
    from cti.pbxsim.originate import _callee

    sim = actor.sim
    emit = sim.emit
    m1, m2 = sim.new_local_pair(number, "members-out", linkedid=chan.linkedid)
    actor.adopt(m1, m2)
    callee = _callee(sim, number, "members-out")
    chan.application, chan.app_data = "Dial", f"Local/{number}@members-out/n,{int(dial_timeout)}"
    emit(ev.newchannel(m1))
    emit(ev.newchannel(m2))
    for c in (m1, m2):
        c.cid_num, c.cid_name = chan.cid_num, chan.cid_name
        c.conn_num, c.conn_name = chan.cid_num, chan.cid_name
    emit(ev.local_bridge(m1, m2))
    emit(ev.dial_begin(m1, f"Local/{number}@members-out/n", caller=chan))
    kind = callee.outcome

    def fail(status: str, cause_two: int, cause_one: int) -> None:
        emit(ev.dial_end(m1, status, caller=chan))
        emit(ev.hangup_request(m2, cause_one))
        emit(ev.hangup(m1, cause_one))
        emit(ev.hangup_request(m2, 16, soft=True))
        emit(ev.hangup(m2, cause_two))
        m1.hungup = m2.hungup = True
        chan.variables["DIALSTATUS"] = status
        _hangup_pair(sim, chan, peer, 16)

    if kind in ("busy", "userbusy"):
        m2.state = ev.BUSY
        emit(ev.newstate(m2))
        fail("BUSY", 17, 0)
        return None
    if kind == "congestion":
        m2.state = ev.BUSY
        emit(ev.newstate(m2))
        fail("CONGESTION", 34, 0)
        return None
    if kind in ("reject", "hangup", "nosuchexten"):
        fail(
            "NOANSWER" if kind != "nosuchexten" else "CHANUNAVAIL",
            21 if kind == "reject" else 16,
            0,
        )
        return None
    m1.state = ev.RINGING
    emit(ev.newstate(m1))
    emit(ev.dial_state(m1, "RINGING", caller=chan))
    actor.timer(dial_timeout, "dial_timeout")
    if kind in ("answer", "voicemail"):
        actor.timer(callee.ring, "member_answer")
    while True:
        sig = await actor.next()
        if sig.kind == "timer" and sig.tag == "member_answer":
            break
        if sig.kind == "timer" and sig.tag == "dial_timeout":
            fail("NOANSWER", 19, 19)
            return None
        if sig.kind == "hangup" and sig.channel in (chan.name, peer.name, m1.name, m2.name):
            if sig.channel in (m1.name, m2.name):
                fail("NOANSWER", 16, 16)
                return None
            emit(ev.dial_end(m1, "CANCEL", caller=chan))
            emit(ev.hangup_request(m2, 0))
            emit(ev.hangup(m1, 0))
            emit(ev.hangup(m2, 0))
            m1.hungup = m2.hungup = True
            _hangup_pair(sim, chan, peer, 16)
            return None
    now = sim.now()
    m1.state = m2.state = ev.UP
    m1.answered = m2.answered = now
    emit(ev.newstate(m2))
    emit(ev.newstate(m1))
    emit(ev.dial_end(m1, "ANSWER", caller=chan))
    bridge = str(uuid.UUID(int=sim.rng.getrandbits(128), version=4))
    emit(ev.bridge_event("BridgeCreate", bridge, 0))
    emit(ev.bridge_event("BridgeEnter", bridge, 1, chan))
    emit(ev.bridge_event("BridgeEnter", bridge, 2, m1))
    if callee.talk is not None:
        actor.timer(callee.talk, "member_end")
    member_first = True
    while True:
        sig = await actor.next()
        if sig.kind == "timer" and sig.tag == "member_end":
            break
        if sig.kind == "hangup" and sig.channel in (m1.name, m2.name):
            break
        if (sig.kind == "timer" and sig.tag == "callee_end") or (
            sig.kind == "hangup" and sig.channel in (chan.name, peer.name)
        ):
            member_first = False
            break
    first, second = ((m1, m2), (chan, peer)) if member_first else ((chan, peer), (m1, m2))
    emit(ev.hangup_request(first[1], 16, soft=True))
    emit(ev.hangup_request(first[0], 16))
    emit(ev.hangup(first[1], 16))
    emit(ev.bridge_event("BridgeLeave", bridge, 1, first[0]))
    emit(ev.hangup(first[0], 16))
    first[0].hungup = first[1].hungup = True
    emit(ev.bridge_event("BridgeLeave", bridge, 0, second[0]))
    emit(ev.bridge_event("BridgeDestroy", bridge, 0))
    _cdr(sim, chan, m1.name)
    _hangup_pair(sim, second[0], second[1], 16)
    return None
