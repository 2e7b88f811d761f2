"""The call engine: one actor (task + inbox) per call, emitting Asterisk's event order.

Event orders follow the real Asterisk 22.10.1 traces (``a-inbound-queue-call``,
``a2-...ringnoanswer``, ``a3-...abandon``, ``b-originate-answered``,
``c-originate-*``, ``d-ivr-survey-*``, ``f-core-restart-with-call``). The
simulator leaves out the pure noise classes (NewCallerid, NewConnectedLine,
DeviceStateChange, MixMonitorStart, and Newexten/VarSet except where Memberline reads
them: the safe-harbour Playback, AMD's AMDSTATUS, the ``failed`` extension); everything it
emits is in the real order with the real headers.

Dialplan conventions (the same names as the lab dialplan in the README):

* inbound: ``Local/<queue exten>@from-pstn-XXXXXXXX;1`` is the caller's
  handset, ``;2`` answers and runs ``Queue(<queue>)``;
* queue members: ``Local/<ext>@agents/n`` (channels ``Local/<ext>@agents-XXXXXXXX;1``);
* Originate ``Channel: Local/<number>@<context>[/n]`` calls a member (any
  context except ``agents``; the ``members-sim`` lab extens such as ``busy``
  behave as in the traces); ``Local/<ext>@agents`` rings a simulated agent;
* where the answered ;1 goes (Originate Context/Exten): see :func:`resolve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cti.pbxsim import ami_events as ev
from cti.pbxsim.ami_events import UNKNOWN, Channel
from cti.pbxsim.scenario import AgentSpec, NumberOverride
from cti.pbxsim.state import QueueState

if TYPE_CHECKING:
    from cti.pbxsim.sim import CallHandle, PbxSimulator

log = logging.getLogger(__name__)


@dataclass
class Signal:
    kind: str  # hangup | redirect | agent_answer | agent_hangup | timer
    interface: str = ""
    channel: str = ""
    cause: int = 16
    tag: str = ""
    context: str = ""
    exten: str = ""
    priority: int = 1


class CallGone(Exception):
    """The call was killed (restart/stop)."""


class CallActor:
    """A call's task and inbox; timers and AMI actions post Signals into it."""

    def __init__(self, sim: PbxSimulator) -> None:
        self.sim = sim
        self.inbox: asyncio.Queue[Signal] = asyncio.Queue()
        self.timers: list[asyncio.TimerHandle] = []
        self.channels: list[Channel] = []
        self.task: asyncio.Task[None] | None = None
        self.handle: CallHandle | None = None
        self.interfaces: set[str] = set()
        self.joined: float | None = None
        """When this call joined its current queue (simulated time)."""
        sim.call_started(self)

    def adopt(self, *chans: Channel) -> None:
        for c in chans:
            self.channels.append(c)
            self.sim.state.owners[c.name] = self

    def post(self, sig: Signal) -> None:
        self.inbox.put_nowait(sig)

    def timer(self, sim_seconds: float, tag: str) -> asyncio.TimerHandle:
        loop = asyncio.get_running_loop()
        h = loop.call_later(self.sim.real(sim_seconds), self.post, Signal("timer", tag=tag))
        self.timers.append(h)
        return h

    async def next(self) -> Signal:
        return await self.inbox.get()

    def hold(self, interface: str) -> None:
        self.sim.state.busy[interface] = self
        self.interfaces.add(interface)

    def release(self, interface: str) -> None:
        if self.sim.state.busy.get(interface) is self:
            del self.sim.state.busy[interface]
        self.interfaces.discard(interface)
        self.sim.queue_changed()

    def finish(self, outcome: str) -> None:
        for h in self.timers:
            h.cancel()
        self.timers.clear()
        for iface in list(self.interfaces):
            self.release(iface)
        for c in self.channels:
            self.sim.state.owners.pop(c.name, None)
            self.sim.drop_channel(c)
        self.sim.call_ended(self)
        for q in self.sim.state.queues.values():
            if self in q.waiting:
                q.waiting.remove(self)
        if self.handle is not None and not self.handle.done.done():
            self.handle.done.set_result(outcome)
        self.sim.queue_changed()


def _cid(chan: Channel, num: str, name: str) -> None:
    chan.cid_num = num or UNKNOWN
    chan.cid_name = name or UNKNOWN
    chan.conn_num = num or UNKNOWN
    chan.conn_name = name or UNKNOWN


# ---------------------------------------------------------------- hangups


def _hangup_pair(sim: PbxSimulator, chan: Channel, peer: Channel, cause: int = 16) -> None:
    """``chan`` ends its dialplan (Hangup()): the Local pair goes down (d trace order)."""
    if not chan.hungup:
        sim.emit(ev.hangup_request(chan, cause, soft=True))
    if not peer.hungup:
        sim.emit(ev.hangup_request(peer, cause))
        sim.emit(ev.hangup(peer, cause))
        peer.hungup = True
    if not chan.hungup:
        sim.emit(ev.hangup(chan, cause))
        chan.hungup = True


def _cdr(sim: PbxSimulator, chan: Channel, dest_channel: str = "", disp: str = "") -> None:
    end = sim.now()
    sim.emit(
        ev.cdr(
            chan,
            source=chan.cid_num if chan.cid_num != UNKNOWN else "",
            destination=chan.exten,
            dest_context=chan.context,
            callerid=ev.callerid_string(chan.cid_num, chan.cid_name),
            dest_channel=dest_channel,
            last_app=chan.application or "Hangup",
            last_data=chan.app_data,
            start=chan.created,
            answer=chan.answered,
            end=end,
            disposition=disp or ("ANSWERED" if chan.answered is not None else "NO ANSWER"),
        )
    )


async def kill_all(sim: PbxSimulator, emit: bool) -> None:
    """Hang up every call (restart: SoftHangupRequest cause 4, then the pairs go down)."""
    actors = list(sim.calls)
    for actor in actors:
        if actor.task is not None:
            actor.task.cancel()
    for actor in actors:
        if actor.task is not None:
            with contextlib.suppress(BaseException):
                await actor.task
    if emit:
        live = [c for a in actors for c in a.channels if not c.hungup]
        for c in reversed(live):
            sim.emit(ev.hangup_request(c, 4, soft=True))
        for a in actors:  # per Local pair, f-core-restart-with-call order
            chans = a.channels
            for i in range(0, len(chans) - 1, 2):
                one, two = chans[i], chans[i + 1]
                if one.hungup or two.hungup:
                    continue
                sim.emit(ev.hangup_request(two, 16, soft=True))
                sim.emit(ev.hangup_request(one, 0))
                sim.emit(ev.hangup(two, 0))
                sim.emit(ev.hangup_request(one, 16, soft=True))
                _cdr(sim, two)
                sim.emit(ev.hangup(one, 0))
                _cdr(sim, one)
                one.hungup = two.hungup = True
            for c in chans:
                if not c.hungup:
                    sim.emit(ev.hangup_request(c, 0))
                    sim.emit(ev.hangup(c, 0))
                    _cdr(sim, c)
                    c.hungup = True
    for actor in actors:
        actor.finish("killed")


# ---------------------------------------------------------------- inbound


def start_inbound(
    sim: PbxSimulator,
    num: str,
    name: str,
    qname: str,
    patience: float | None = None,
    *,
    hotline: bool = False,
) -> CallHandle:
    from cti.pbxsim.sim import CallHandle

    q = sim.state.queues[qname]
    exten = q.spec.exten or qname
    if sim.active_calls() >= sim.scenario.max_calls:
        sim.stats.rejected_max_calls += 1
        handle = CallHandle("", "", "")
        handle.done.set_result("rejected")
        return handle
    actor = CallActor(sim)
    one, two = sim.new_local_pair(exten, "from-pstn")
    actor.adopt(one, two)
    handle = CallHandle(one.linkedid, one.name, two.name)
    actor.handle = handle
    sim.stats.inbound_calls += 1
    actor.task = sim.spawn(_run_inbound(actor, q, one, two, num, name, patience, hotline))
    return handle


async def _run_inbound(
    actor: CallActor,
    q: QueueState,
    one: Channel,
    two: Channel,
    num: str,
    name: str,
    patience: float | None,
    hotline: bool = False,
) -> None:
    sim = actor.sim
    outcome = "killed"
    try:
        sim.emit(ev.newchannel(one))
        sim.emit(ev.newchannel(two))
        _cid(one, num, name)
        _cid(two, num, name)
        sim.emit(ev.local_bridge(one, two))
        sim.emit(ev.dial_begin(one, f"{one.exten}@from-pstn/n"))
        two.priority = 2
        two.state = ev.UP
        sim.emit(ev.newstate(two))
        one.state = ev.UP
        sim.emit(ev.newstate(one))
        sim.emit(ev.dial_end(one, "ANSWER"))
        one.answered = two.answered = sim.now()
        one.application, one.app_data = "Wait", "60"
        actor.timer(0.5, "queue")
        while True:
            sig = await actor.next()
            if sig.kind == "timer" and sig.tag == "queue":
                break
            if sig.kind == "hangup":
                _hangup_pair(sim, two, one, 16)
                outcome = "caller"
                return
        two.priority = 3
        if patience is None:
            patience = sim.scenario.inbound.patience.sample(sim.rng)
        result: QueueResult | None = None
        if hotline or sim.route_agi_path:
            routed = await _agi_first(actor, q, two, one, num, patience, hotline)
            if isinstance(routed, str):
                outcome = routed
                return
            result = routed
        if result is None:
            two.application, two.app_data = "Queue", f"{q.name},t,,,60"
            result = await run_queue(
                actor, q, two, one, patience=None if (hotline or sim.route_agi_path) else patience
            )
        outcome = result.outcome
        after = q.spec.after_agent
        if result.outcome == "agent" and after:
            # dialplan after Queue() (e.g. a post-call survey): the caller goes on
            if result.bridge_id:
                sim.emit(ev.bridge_event("BridgeDestroy", result.bridge_id, 0))
            await _continue(actor, two, one, *parse_target(after), num)
        elif result.outcome in ("agent", "timeout"):
            _hangup_pair_bridge(sim, two, one, result.bridge_id, result.peer_cdr_last)
        elif result.outcome == "redirect" and result.redirect is not None:
            sig = result.redirect
            two.context, two.exten, two.priority = sig.context, sig.exten, sig.priority
            await _continue(actor, two, one, sig.context, sig.exten, "", "", num)
    except asyncio.CancelledError:
        outcome = "killed"
        raise
    except Exception:
        log.exception("simulated inbound call failed")
        outcome = "error"
    finally:
        if outcome != "killed":
            actor.finish(outcome)


async def _agi_first(
    actor: CallActor,
    q: QueueState,
    two: Channel,
    one: Channel,
    num: str,
    patience: float,
    hotline: bool,
) -> QueueResult | str | None:
    """The shipped dialplan before ``Queue(members)``: the hotline IVR (context ``hotline``),
    then the ``route-inbound`` lookup and ``Gosub(maintainer-first)``: ``Queue(maintainers)``
    limited to the maintainer's penalty (LOCAL variables) for ``ML_MAINTAINER_RING`` seconds. Returns how the call ended (a string), the
    maintainer queue's result when it connected, or None to go on to the queue."""
    from cti.pbxsim.agi import run_agi
    from cti.pbxsim.originate import Callee

    sim = actor.sim
    ov = member_override(sim, num)
    callee = Callee("answer", 0.0, None, list(ov.survey) if ov.survey is not None else None)
    if ov.talk_time is not None:
        actor.timer(ov.talk_time, "callee_end")  # the caller hangs up by then
    base = f"agi://{sim.agi_host}:{sim.agi_port}"
    scripts = ([f"{base}/hotline"] if hotline else []) + (
        [f"{base}/{sim.route_agi_path}"] if sim.route_agi_path else []
    )
    for i, url in enumerate(scripts):
        two.application, two.app_data = "AGI", url
        res = await run_agi(actor, two, one, url, (), callee)
        if res.callee_gone:
            _cdr(sim, two)
            sim.emit(ev.hangup_request(two, 16, soft=True))
            sim.emit(ev.hangup(two, 16))
            two.hungup = True
            return "caller"
        if hotline and i == 0 and two.variables.get("HOTLINE_RESULT") != "agent":
            _hangup_pair(sim, two, one, 16)
            return "ivr"
    actor.timer(patience, "abandon")  # waiting starts: maintainer queue, then the queue
    penalty = two.variables.get("ML_MAINTAINER_PENALTY", "")
    mq = sim.state.queues.get(sim.maintainer_queue)
    if not penalty or mq is None:
        return None
    try:
        ring = float(two.variables.get("ML_MAINTAINER_RING") or 15)
    except ValueError:
        ring = 15.0
    two.variables["QUEUE_MIN_PENALTY"] = two.variables["QUEUE_MAX_PENALTY"] = penalty
    two.application, two.app_data = "Queue", f"{mq.name},t,,,{int(ring)}"
    queued = await run_queue(actor, mq, two, one, patience=None, max_wait=ring)
    two.variables.pop("QUEUE_MIN_PENALTY", None)
    two.variables.pop("QUEUE_MAX_PENALTY", None)
    if queued.outcome == "timeout":
        return None
    if queued.outcome == "abandon":
        return "abandon"
    return queued


def parse_target(target: str) -> tuple[str, str, str, str]:
    """``"context,exten"`` or ``"App(data)"`` -> (context, exten, app, data)."""
    target = target.strip()
    if target.endswith(")") and "(" in target:
        app, _, data = target[:-1].partition("(")
        return "", "", app.strip(), data
    context, _, exten = target.partition(",")
    return context.strip(), (exten.strip() or "s"), "", ""


async def _continue(
    actor: CallActor,
    chan: Channel,
    peer: Channel,
    context: str,
    exten: str,
    app: str,
    data: str,
    number: str,
) -> None:
    """The inbound caller's channel runs more dialplan (a Redirect or after Queue())."""
    from cti.pbxsim.originate import Callee, run_dialplan

    ov = member_override(actor.sim, number)
    survey = list(ov.survey) if ov.survey is not None else None
    callee = Callee("answer", 0.0, ov.talk_time, survey)
    await run_dialplan(actor, chan, peer, context, exten, app, data, callee)


def _hangup_pair_bridge(
    sim: PbxSimulator, chan: Channel, peer: Channel, bridge_id: str, peer_cdr_last: bool = False
) -> None:
    """End of the dialplan after Queue(): the a-trace order incl. BridgeDestroy (or a2's)."""
    sim.emit(ev.hangup_request(chan, 16, soft=True))
    if not peer.hungup:
        sim.emit(ev.hangup_request(peer, 16))
    if peer_cdr_last:
        sim.emit(ev.hangup(chan, 16))
        chan.hungup = True
        if bridge_id:
            sim.emit(ev.bridge_event("BridgeDestroy", bridge_id, 0))
        if not peer.hungup:
            sim.emit(ev.hangup(peer, 16))
            peer.hungup = True
        _cdr(sim, peer)
        return
    if bridge_id:
        sim.emit(ev.bridge_event("BridgeDestroy", bridge_id, 0))
    if not peer.hungup:
        sim.emit(ev.hangup(peer, 16))
        peer.hungup = True
    sim.emit(ev.hangup(chan, 16))
    chan.hungup = True


# ---------------------------------------------------------------- queue


@dataclass
class Ringing:
    member_iface: str
    member_name: str
    spec: AgentSpec
    one: Channel
    two: Channel
    started: float
    will_answer: bool


@dataclass
class QueueResult:
    outcome: str  # agent | caller | abandon | timeout | redirect
    bridge_id: str = ""
    peer_cdr_last: bool = False
    """a2-trace order for the end of the dialplan (the peer's Cdr comes last)."""
    redirect: Signal | None = None


@dataclass
class _QueueCtx:
    actor: CallActor
    q: QueueState
    chan: Channel
    peer: Channel
    joined: float
    position: int
    ringing: list[Ringing] = field(default_factory=list)
    dialed: list[str] = field(default_factory=list)
    last_ring_size: int = 0


def _qms(sim: PbxSimulator, iface: str, skip_last: bool = False, only_last: bool = False) -> None:
    pairs = sim.state.queues_of(iface)
    if skip_last:
        pairs = pairs[:-1]
    if only_last:
        pairs = pairs[-1:]
    for q, m in pairs:
        sim.emit(ev.queue_member_event("QueueMemberStatus", sim.state.snapshot(q, m)))


def _penalty_limits(chan: Channel) -> tuple[int, int]:
    """``QUEUE_MIN_PENALTY`` / ``QUEUE_MAX_PENALTY`` of the caller's channel, as app_queue."""
    try:
        low = int(chan.variables.get("QUEUE_MIN_PENALTY") or 0)
        high = int(chan.variables.get("QUEUE_MAX_PENALTY") or (1 << 31) - 1)
    except ValueError:
        return 0, (1 << 31) - 1
    return low, high


def _pick_members(ctx: _QueueCtx) -> list[tuple[str, str]]:
    sim = ctx.actor.sim
    low, high = _penalty_limits(ctx.chan)
    avail = [m for m in sim.state.available(ctx.q) if low <= m.penalty <= high]
    if not avail:
        return []
    if ctx.q.spec.strategy == "linear":
        members = ctx.q.members
        n = len(members)
        for i in range(n):
            m = members[(ctx.q.linear_next + i) % n]
            if m in avail:
                ctx.q.linear_next = (members.index(m) + 1) % n
                return [(m.interface, m.name)]
        return []
    return [(m.interface, m.name) for m in avail]


def _ring(ctx: _QueueCtx, picks: list[tuple[str, str]]) -> None:
    sim = ctx.actor.sim
    chan = ctx.chan
    now = sim.now()
    new: list[Ringing] = []
    for iface, mname in picks:
        spec = sim.agent_spec(iface)
        one, two = sim.new_local_pair(spec.ext, "agents", linkedid=chan.linkedid)
        ctx.actor.adopt(one, two)
        ctx.actor.hold(iface)
        sim.emit(ev.newchannel(one))
        sim.emit(ev.newchannel(two))
        one.cid_num, one.cid_name = chan.cid_num, chan.cid_name
        _cid(two, chan.cid_num, chan.cid_name)
        sim.emit(ev.local_bridge(one, two))
        shown = dataclasses.replace(
            one, exten=chan.exten, conn_num=chan.cid_num, conn_name=chan.cid_name
        )
        sim.emit(ev.agent_event("AgentCalled", chan, shown, ctx.q.name, iface, mname))
        sim.emit(ev.dial_begin(one, iface, caller=chan))
        one.exten, one.conn_num, one.conn_name = chan.exten, chan.cid_num, chan.cid_name
        one.application, one.app_data = "AppQueue", "(Outgoing Line)"
        will = spec.auto_answer and sim.rng.random() < spec.answer_prob
        r = Ringing(iface, mname, spec, one, two, now, will)
        new.append(r)
        ctx.dialed.append(one.name)
    for r in new:
        r.one.state = ev.RINGING
        sim.emit(ev.newstate(r.one))
    # Both orders occur on a real Asterisk (a race between two threads): the
    # traces show DialState first when one member is rung on the first attempt
    # (a2, a3), after the QueueMemberStatus events otherwise (a, a2's retry).
    dial_first = len(new) == 1 and len(ctx.dialed) == 1
    if dial_first:
        sim.emit(ev.dial_state(new[0].one, "RINGING", caller=chan))
    for r in new:
        sim.state.devstate[r.member_iface] = 2
        _qms(sim, r.member_iface)
    if not dial_first:
        for r in reversed(new):
            sim.emit(ev.dial_state(r.one, "RINGING", caller=chan))
    for r in new:
        if r.will_answer:
            ctx.actor.timer(r.spec.ring_time.sample(sim.rng), f"answer:{id(r)}")
    ctx.ringing.extend(new)


def _drop_ringing(ctx: _QueueCtx, r: Ringing, cause: int) -> None:
    """Cancelled ring (someone else answered: 26) -- the a-trace order."""
    sim = ctx.actor.sim
    sim.emit(ev.hangup_request(r.two, cause))
    sim.emit(ev.hangup(r.one, cause))
    r.one.hungup = True
    sim.emit(ev.hangup_request(r.two, 16, soft=True))
    sim.state.devstate[r.member_iface] = 1
    ctx.actor.release(r.member_iface)
    _qms(sim, r.member_iface, skip_last=True)
    sim.emit(ev.hangup(r.two, cause))
    r.two.hungup = True
    _qms(sim, r.member_iface, only_last=True)


def _ring_no_answer(ctx: _QueueCtx, only: Ringing | None = None) -> None:
    """Queue timeout for every ringing member (a2 trace), or one member that rejected."""
    sim = ctx.actor.sim
    now = sim.now()
    for r in [only] if only is not None else list(ctx.ringing):
        ring_ms = round((now - r.started) * 1000)
        sim.emit(
            ev.agent_event(
                "AgentRingNoAnswer",
                ctx.chan,
                r.one,
                ctx.q.name,
                r.member_iface,
                r.member_name,
                [("RingTime", str(ring_ms))],
            )
        )
        sim.emit(ev.dial_end(r.one, "NOANSWER", caller=ctx.chan))
        sim.emit(ev.dial_end(r.one, "CANCEL", caller=ctx.chan))
        sim.emit(ev.hangup_request(r.two, 0))
        sim.emit(ev.hangup(r.one, 0))
        r.one.hungup = True
        sim.state.devstate[r.member_iface] = 1
        ctx.actor.release(r.member_iface)
        _qms(sim, r.member_iface)
        sim.emit(ev.hangup_request(r.two, 16, soft=True))
        sim.emit(ev.hangup(r.two, 0))
        r.two.hungup = True
        ctx.ringing.remove(r)


def _cancel_all(ctx: _QueueCtx, cause: int) -> None:
    """The caller left: cancel rings (a3 order: DialEnd CANCEL twice, then hangups)."""
    sim = ctx.actor.sim
    for r in ctx.ringing:
        sim.emit(ev.dial_end(r.one, "CANCEL", caller=ctx.chan))
        sim.emit(ev.dial_end(r.one, "CANCEL", caller=ctx.chan))
        sim.emit(ev.hangup_request(r.two, cause))
        sim.emit(ev.hangup(r.one, cause))
        r.one.hungup = True


def _finish_cancelled(ctx: _QueueCtx, cause: int) -> None:
    sim = ctx.actor.sim
    for r in ctx.ringing:
        sim.emit(ev.hangup_request(r.two, 16, soft=True))
        sim.emit(ev.hangup(r.two, cause))
        r.two.hungup = True


def _release_ringing(ctx: _QueueCtx) -> None:
    sim = ctx.actor.sim
    for r in ctx.ringing:
        sim.state.devstate[r.member_iface] = 1
        ctx.actor.release(r.member_iface)
        _qms(sim, r.member_iface)
    ctx.ringing.clear()


async def run_queue(
    actor: CallActor,
    q: QueueState,
    chan: Channel,
    peer: Channel,
    *,
    patience: float | None = None,
    caller_talk: float | None = None,
    max_wait: float | None = None,
) -> QueueResult:
    """``Queue(<q>)`` on ``chan`` (``peer`` = the other Local half, the far end)."""
    sim = actor.sim
    q.waiting.append(actor)
    position = len(q.waiting)
    ctx = _QueueCtx(actor, q, chan, peer, sim.now(), position)
    actor.joined = ctx.joined
    sim.emit(ev.queue_caller("QueueCallerJoin", chan, q.name, position, len(q.waiting)))
    sim.emit(ev.channel_event("MusicOnHoldStart", chan, [("Class", "default")]))
    if patience is not None:
        actor.timer(patience, "abandon")
    actor.timer(q.spec.max_wait if max_wait is None else max_wait, "maxwait")
    state = "idle"  # idle | ringing | retry
    connected: Ringing | None = None

    def try_ring() -> str:
        if q.waiting and q.waiting[0] is not actor and len(sim.state.available(q)) <= 1:
            return "idle"  # someone ahead of us gets the one free member
        picks = _pick_members(ctx)
        if not picks:
            return "idle"
        _ring(ctx, picks)
        ctx.last_ring_size = len(picks)
        actor.timer(q.spec.timeout, f"rto:{id(ctx.ringing[-1])}")
        return "ringing"

    state = try_ring()
    while connected is None:
        sig = await actor.next()
        if sig.kind == "wake":
            if state == "idle":
                state = try_ring()
            continue
        if sig.kind == "timer":
            if sig.tag == "retry" and state == "retry":
                state = try_ring()
            elif sig.tag.startswith("rto:") and state == "ringing":
                if ctx.ringing and sig.tag == f"rto:{id(ctx.ringing[-1])}":
                    _ring_no_answer(ctx)
                    state = "retry"
                    actor.timer(q.spec.retry, "retry")
            elif sig.tag.startswith("answer:"):
                rid = sig.tag.split(":", 1)[1]
                connected = next((r for r in ctx.ringing if str(id(r)) == rid), None)
            elif sig.tag in ("abandon", "maxwait"):
                return _leave_unanswered(ctx, sig.tag)
            continue
        if sig.kind == "agent_answer":
            connected = next((r for r in ctx.ringing if r.member_iface == sig.interface), None)
            continue
        if sig.kind == "hangup":
            if sig.channel in (chan.name, peer.name):
                return _leave_unanswered(ctx, "abandon")
            rejected = next(
                (r for r in ctx.ringing if sig.channel in (r.one.name, r.two.name)), None
            )
            if rejected is not None:  # the agent's phone declined the call
                _ring_no_answer(ctx, rejected)
                if not ctx.ringing and state == "ringing":
                    state = "retry"
                    actor.timer(q.spec.retry, "retry")
            continue
        if sig.kind == "redirect" and sig.channel == chan.name:
            _cancel_all(ctx, 0)
            _finish_cancelled(ctx, 0)
            _release_ringing(ctx)
            sim.emit(ev.channel_event("MusicOnHoldStop", chan))
            _leave(ctx)
            return QueueResult("redirect", redirect=sig)
    return await _connected(ctx, connected, caller_talk)


def _leave(ctx: _QueueCtx) -> None:
    sim = ctx.actor.sim
    if ctx.actor in ctx.q.waiting:
        pos = ctx.q.waiting.index(ctx.actor) + 1
        ctx.q.waiting.remove(ctx.actor)
    else:
        pos = ctx.position
    sim.emit(ev.queue_caller("QueueCallerLeave", ctx.chan, ctx.q.name, pos, len(ctx.q.waiting)))
    sim.queue_changed()


def _leave_unanswered(ctx: _QueueCtx, why: str) -> QueueResult:
    sim = ctx.actor.sim
    chan, peer = ctx.chan, ctx.peer
    if why == "abandon":
        sim.stats.queue_abandoned += 1
        ctx.q.abandoned += 1
        sim.emit(ev.hangup_request(chan, 0))
        _cdr(sim, peer)
        sim.emit(ev.hangup(peer, 0))
        peer.hungup = True
        sim.emit(ev.channel_event("MusicOnHoldStop", chan))
        _cancel_all(ctx, 0)
        pos = ctx.q.waiting.index(ctx.actor) + 1 if ctx.actor in ctx.q.waiting else ctx.position
        hold = int(sim.now() - ctx.joined)
        sim.emit(ev.queue_caller_abandon(chan, ctx.q.name, pos, ctx.position, hold))
        _finish_cancelled(ctx, 0)
        _leave(ctx)
        _cdr(sim, chan, ctx.dialed[-1] if ctx.dialed else "", "NO ANSWER")
        _release_ringing(ctx)
        sim.emit(ev.hangup_request(chan, 16, soft=True))
        sim.emit(ev.hangup(chan, 0))
        chan.hungup = True
        return QueueResult("abandon")
    # Queue() timed out: the caller goes on in the dialplan
    sim.emit(ev.channel_event("MusicOnHoldStop", chan))
    _cancel_all(ctx, 0)
    _finish_cancelled(ctx, 0)
    _release_ringing(ctx)
    _leave(ctx)
    return QueueResult("timeout")


async def _connected(ctx: _QueueCtx, a: Ringing, caller_talk: float | None) -> QueueResult:
    sim = ctx.actor.sim
    actor = ctx.actor
    chan, peer, q = ctx.chan, ctx.peer, ctx.q
    now = sim.now()
    a.one.state = ev.UP
    sim.emit(ev.newstate(a.one))
    a.two.state = ev.UP
    sim.emit(ev.newstate(a.two))
    a.one.answered = a.two.answered = now
    sim.emit(ev.dial_end(a.one, "ANSWER", caller=chan))
    others = [r for r in ctx.ringing if r is not a]
    for r in others:
        sim.emit(ev.dial_end(r.one, "CANCEL", caller=chan))
    for r in others:
        sim.emit(ev.dial_end(r.one, "CANCEL", caller=chan))
    for r in others:
        _drop_ringing(ctx, r, 26)
    ctx.ringing = [a]
    sim.emit(ev.channel_event("MusicOnHoldStop", chan))
    _leave(ctx)
    hold = int(now - ctx.joined)
    ring = int(now - a.started)
    sim.emit(
        ev.agent_event(
            "AgentConnect",
            chan,
            a.one,
            q.name,
            a.member_iface,
            a.member_name,
            [("HoldTime", str(hold)), ("RingTime", str(ring))],
        )
    )
    sim.stats.queue_answered += 1
    bridge_id = str(uuid.UUID(int=sim.rng.getrandbits(128), version=4))
    sim.emit(ev.bridge_event("BridgeCreate", bridge_id, 0))
    a.one.bridge_id = chan.bridge_id = bridge_id
    sim.emit(ev.bridge_event("BridgeEnter", bridge_id, 1, a.one))
    sim.emit(ev.bridge_event("BridgeEnter", bridge_id, 2, chan))
    a.two.application, a.two.app_data = "Wait", "3"
    talk = a.spec.talk_time.sample(sim.rng)
    caller_first = sim.rng.random() < a.spec.caller_hangs_up_prob
    if caller_talk is not None and caller_talk < talk:
        caller_first = True
        talk = caller_talk
    if caller_first:
        actor.timer(talk, "caller_end")
    elif a.spec.auto_hangup:
        actor.timer(talk, "agent_end")
    while True:
        sig = await actor.next()
        if (sig.kind == "timer" and sig.tag == "agent_end") or (
            sig.kind in ("agent_hangup",) and sig.interface == a.member_iface
        ):
            break
        if sig.kind == "hangup" and sig.channel in (a.one.name, a.two.name):
            break
        if (sig.kind == "timer" and sig.tag == "caller_end") or (
            sig.kind == "hangup" and sig.channel in (chan.name, peer.name)
        ):
            _complete(ctx, a, "caller", hold, now, bridge_id)
            return QueueResult("caller")
        if sig.kind == "redirect" and sig.channel in (chan.name, peer.name):
            _complete(ctx, a, "transfer", hold, now, bridge_id)
            return QueueResult("redirect", redirect=sig)
    _complete(ctx, a, "agent", hold, now, bridge_id)
    return QueueResult("agent", bridge_id=bridge_id, peer_cdr_last=ctx.last_ring_size <= 1)


def _complete(
    ctx: _QueueCtx, a: Ringing, reason: str, hold: int, connected: float, bridge_id: str
) -> None:
    sim = ctx.actor.sim
    chan, peer, q = ctx.chan, ctx.peer, ctx.q
    talk = int(sim.now() - connected)
    m = q.member(a.member_iface)
    if m is not None:
        m.calls_taken += 1
        m.last_call = int(sim.now())
    q.completed += 1
    q.holdtime_total += hold
    q.talktime_total += talk
    extra = [("HoldTime", str(hold)), ("TalkTime", str(talk)), ("Reason", reason)]
    if reason == "agent":
        _cdr(sim, a.two)
        sim.emit(ev.hangup_request(a.two, 16, soft=True))
        sim.emit(ev.hangup_request(a.one, 16))
        sim.emit(ev.hangup(a.two, 16))
        a.two.hungup = True
        sim.emit(
            ev.agent_event(
                "AgentComplete", chan, a.one, q.name, a.member_iface, a.member_name, extra
            )
        )
        sim.state.devstate[a.member_iface] = 1
        ctx.actor.release(a.member_iface)
        _qms(sim, a.member_iface)
        if ctx.last_ring_size > 1:  # a trace (ringall, a loser in the same attempt)
            _cdr(sim, peer)
            _chan_cdrs(ctx, a)
            sim.emit(ev.bridge_event("BridgeLeave", bridge_id, 1, a.one))
            sim.emit(ev.hangup(a.one, 16))
        else:  # a2 trace
            sim.emit(ev.bridge_event("BridgeLeave", bridge_id, 1, a.one))
            sim.emit(ev.hangup(a.one, 16))
            _chan_cdrs(ctx, a)
        a.one.hungup = True
        sim.emit(ev.bridge_event("BridgeLeave", bridge_id, 0, chan))
        chan.bridge_id = ""
        return
    if reason == "caller":
        sim.emit(ev.hangup_request(chan, 16))
        if not peer.hungup:
            sim.emit(ev.hangup(peer, 16))
            peer.hungup = True
    sim.emit(
        ev.agent_event("AgentComplete", chan, a.one, q.name, a.member_iface, a.member_name, extra)
    )
    sim.state.devstate[a.member_iface] = 1
    ctx.actor.release(a.member_iface)
    _qms(sim, a.member_iface)
    sim.emit(ev.bridge_event("BridgeLeave", bridge_id, 1, chan))
    chan.bridge_id = ""
    sim.emit(ev.hangup_request(a.one, 16, soft=True))
    sim.emit(ev.bridge_event("BridgeLeave", bridge_id, 0, a.one))
    sim.emit(ev.bridge_event("BridgeDestroy", bridge_id, 0))
    sim.emit(ev.hangup_request(a.two, 16))
    sim.emit(ev.hangup(a.one, 16))
    a.one.hungup = True
    sim.emit(ev.hangup_request(a.two, 16, soft=True))
    sim.emit(ev.hangup(a.two, 16))
    a.two.hungup = True
    _cdr(sim, a.two)
    if reason == "caller":
        sim.emit(ev.hangup(chan, 16))
        chan.hungup = True
        _cdr(sim, chan, a.one.name)


def _chan_cdrs(ctx: _QueueCtx, a: Ringing) -> None:
    for name in ctx.dialed:
        if name != a.one.name:
            _cdr(ctx.actor.sim, ctx.chan, name, "NO ANSWER")
    _cdr(ctx.actor.sim, ctx.chan, a.one.name)


def member_override(sim: PbxSimulator, number: str) -> NumberOverride:
    return sim.scenario.overrides.get(number) or NumberOverride()
