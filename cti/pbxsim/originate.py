"""Originate: the dial phase (OriginateResponse reasons as on Asterisk 22) and the dialplan.

Where an answered ``;1`` goes (Originate ``Context``/``Exten``, or
``Application``/``Data``) -- see :func:`resolve`:

* ``outbound,agent-queue``: ``Queue(members)`` (the lab dialplan of the traces);
* ``outbound,park``: ``Wait(30)``;
* ``queues,<queue>``: ``Queue(<queue>)``;
* ``campaign,<queue>``: ``Queue(<queue>,,,,2)`` then ``Playback(memberline/safe-harbour)``
  (the dialer's 2-second rule: no agent within 2 s -> message, hang up);
* ``survey,start`` / ``survey,start-case``:
  ``AGI(agi://<agi_host>:<agi_port>/<survey_agi_path>[,${SURVEY_CASE}])``;
* ``surveys,<name>``: ``AGI(agi://<agi_host>:<agi_port>/survey?name=<name>,<args>)``
  with the args from ``${SURVEY_ARGS}`` split on ``|``;
* ``members-out,<number>`` and ``outbound,<number>``:
  ``Dial(Local/<number>@members-out/n)`` (click-to-dial: agent first, then member);
* ``Application: Queue|AGI|Wait`` with ``Data`` as in Asterisk.

Anything else: the channel is hung up at once (no such extension).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cti.pbxsim import ami_events as ev
from cti.pbxsim.ami_events import UNKNOWN, Channel
from cti.pbxsim.call_actors import (
    CallActor,
    Signal,
    _cdr,
    _cid,
    _hangup_pair,
    _hangup_pair_bridge,
    member_override,
    parse_target,
    run_queue,
)

if TYPE_CHECKING:
    from cti.pbxsim.sim import PbxSimulator

log = logging.getLogger(__name__)

LAB_EXTENS: dict[str, tuple[str, float | None, float | None]] = {
    "answer": ("answer", 1.0, 8.0),
    "hold": ("answer", 0.0, 30.0),
    "noanswer": ("noanswer", None, None),
    "silent": ("silent", None, None),
    "busy": ("busy", None, None),
    "congestion": ("congestion", None, None),
    "hangup": ("hangup", None, None),
    "userbusy": ("userbusy", None, None),
    "reject": ("reject", None, None),
    "survey-dtmf": ("answer", 0.0, None),
    "survey-silent": ("answer", 0.0, None),
    "survey-hangup": ("answer", 0.0, None),
}
"""The ``members-sim`` extensions of the lab dialplan: (outcome, ring s, talk s)."""

SAFE_HARBOUR_S = 2.0
"""``campaign`` context: seconds in queue before the call counts as abandoned."""
SAFE_HARBOUR_PROMPT = "memberline/safe-harbour"
"""The prompt the shipped dialplan plays (``docs/asterisk/extensions.conf``)."""
SAFE_HARBOUR_MESSAGE_S = 6.0
"""Length of the safe-harbour message (business name and callback number)."""

LAB_SURVEY = {"survey-dtmf": ("4",), "survey-silent": ("timeout",), "survey-hangup": ("hangup",)}


@dataclass
class OriginateRequest:
    channel: str
    context: str = ""
    exten: str = ""
    priority: int = 1
    application: str = ""
    data: str = ""
    timeout: float = 30.0
    cid_num: str = ""
    cid_name: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    is_async: bool = False
    channel_id: str | None = None
    other_channel_id: str | None = None
    action_id: str | None = None
    failed_reason: int | None = None
    """Set when the dial failed and the context's ``failed`` extension is still to run."""


@dataclass
class Callee:
    """How the called party (;2 side) behaves."""

    outcome: str
    ring: float
    talk: float | None
    """Seconds after answering until this party hangs up (None = never by itself)."""
    survey: list[str] | None = None
    is_agent_iface: str = ""


def parse_callerid(value: str) -> tuple[str, str]:
    """``"Name" <num>`` / ``Name <num>`` / ``num`` -> (num, name)."""
    value = value.strip()
    if "<" in value and value.endswith(">"):
        name, _, num = value[:-1].rpartition("<")
        return num.strip(), name.strip().strip('"')
    return value, ""


def _callee(sim: PbxSimulator, exten: str, context: str) -> Callee:
    rng = sim.rng
    if context == "agents":
        iface = f"Local/{exten}@agents/n"
        spec = sim.agent_spec(iface)
        answers = spec.auto_answer and rng.random() < spec.answer_prob
        outcome = "answer" if answers else ("manual" if not spec.auto_answer else "noanswer")
        agent_talk = spec.talk_time.sample(rng) if spec.auto_hangup else None
        return Callee(outcome, spec.ring_time.sample(rng), agent_talk, is_agent_iface=iface)
    ov = member_override(sim, exten)
    out = sim.scenario.outbound
    if context == "members-sim" and ov.outcome is None:
        if exten not in LAB_EXTENS:
            return Callee("nosuchexten", 0.0, None)
        lab_outcome, lab_ring, lab_talk = LAB_EXTENS[exten]
        lab_survey = list(LAB_SURVEY.get(exten, ()))
        return Callee(lab_outcome, lab_ring or 0.0, lab_talk, lab_survey or None)
    if ov.outcome is not None:
        outcome = ov.outcome
    else:
        r = rng.random()
        outcome = "answer"
        acc = 0.0
        for name, p in (
            ("answer", out.p_answer),
            ("voicemail", out.p_voicemail),
            ("noanswer", out.p_noanswer),
            ("busy", out.p_busy),
            ("congestion", out.p_congestion),
        ):
            acc += p
            if r < acc:
                outcome = name
                break
        else:
            outcome = "noanswer"
    ring = ov.ring_time if ov.ring_time is not None else out.ring_time.sample(rng)
    if ov.talk_time is not None:
        talk: float | None = ov.talk_time
    elif outcome == "voicemail":
        talk = out.voicemail_time.sample(rng)
    else:
        talk = out.talk_time.sample(rng)
    survey = list(ov.survey) if ov.survey is not None else None
    if outcome == "voicemail" and survey is None:
        survey = ["timeout"] * 50
    return Callee(outcome, ring, talk, survey)


async def originate(sim: PbxSimulator, req: OriginateRequest) -> asyncio.Future[bool]:
    """Start the call; the returned future resolves when the dial phase ends (answered?)."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[bool] = loop.create_future()
    sim.stats.calls_originated += 1
    tech, _, rest = req.channel.partition("/")
    target, _, _opts = rest.partition("/")
    exten, at, context = target.partition("@")
    if tech != "Local" or not at or not exten or sim.active_calls() >= sim.scenario.max_calls:
        if sim.active_calls() >= sim.scenario.max_calls:
            sim.stats.rejected_max_calls += 1
        _fail_response(sim, req, 0)
        run_failed_exten(sim, req)
        result.set_result(False)
        return result
    actor = CallActor(sim)
    one, two = sim.new_local_pair(exten, context, ids=(req.channel_id, req.other_channel_id))
    actor.adopt(one, two)
    callee = _callee(sim, exten, context)
    actor.task = sim.spawn(_run(actor, req, one, two, callee, target, result))
    return result


FAILED_EXTEN_CONTEXTS = frozenset({"campaign", "surveys"})
"""Contexts of the shipped dialplan (docs/asterisk/extensions.conf) with a ``failed``
extension: a failed Originate into them runs it (NoOp, Hangup) on an ``OutgoingSpoolFailed``
dummy channel before the OriginateResponse (h-originate-failed-ivr)."""


def _fail_response(sim: PbxSimulator, req: OriginateRequest, reason: int) -> None:
    if req.context in FAILED_EXTEN_CONTEXTS and req.failed_reason is None:
        # Asterisk runs `failed` on the originate thread; the response comes after it.
        req.failed_reason = reason
        return
    sim.stats.originate_failed += 1
    if not req.is_async:
        return
    sim.emit(
        ev.originate_response(
            req.action_id,
            False,
            req.channel,
            req.context,
            req.exten,
            reason,
            req.channel_id or UNKNOWN,
            req.cid_num or UNKNOWN,
            req.cid_name or UNKNOWN,
        )
    )


def run_failed_exten(sim: PbxSimulator, req: OriginateRequest) -> None:
    """The ``failed`` extension on a dummy channel with a fresh id (not the ChannelId),
    carrying REASON and the call's variables, then the deferred OriginateResponse."""
    reason = req.failed_reason
    if reason is None:
        return
    uid = sim.next_uniqueid()
    dummy = Channel("OutgoingSpoolFailed", uid, uid, req.context, "failed", created=sim.now())
    dummy.cid_num, dummy.cid_name = req.cid_num or UNKNOWN, req.cid_name or UNKNOWN
    sim.emit(ev.newchannel(dummy))
    for name, value in [("REASON", str(reason)), *req.variables.items()]:
        sim.emit(ev.varset(dummy, name, value))
    dummy.application, dummy.app_data = "NoOp", f"failed {req.variables.get('MEMBER_ID', '')}"
    sim.emit(ev.newexten(dummy))
    dummy.priority = 2
    dummy.application, dummy.app_data = "Hangup", ""
    sim.emit(ev.newexten(dummy))
    sim.emit(ev.hangup_request(dummy, 16, soft=True))
    sim.emit(ev.hangup(dummy, 16))
    _fail_response(sim, req, reason)


def _ok_response(sim: PbxSimulator, req: OriginateRequest, one: Channel) -> None:
    sim.stats.originate_answered += 1
    if not req.is_async:
        return
    sim.emit(
        ev.originate_response(
            req.action_id,
            True,
            one.name,
            req.context,
            req.exten,
            4,
            one.uniqueid,
            req.cid_num or UNKNOWN,
            req.cid_name or UNKNOWN,
        )
    )


async def _run(
    actor: CallActor,
    req: OriginateRequest,
    one: Channel,
    two: Channel,
    callee: Callee,
    dial_string: str,
    result: asyncio.Future[bool],
) -> None:
    sim = actor.sim
    outcome = "done"
    try:
        sim.emit(ev.newchannel(one))
        sim.emit(ev.newchannel(two))
        for c in (one, two):
            c.variables.update(req.variables)
            _cid(c, req.cid_num, req.cid_name)
        answered = await _dial(actor, req, one, two, callee, dial_string)
        if not answered:
            run_failed_exten(sim, req)
        if not result.done():
            result.set_result(answered)
        if answered:
            one.context = req.context or one.context
            one.exten = req.exten or one.exten
            await run_dialplan(
                actor,
                one,
                two,
                req.context,
                req.exten,
                req.application,
                req.data,
                callee,
                dial_timeout=req.timeout,
            )
    except asyncio.CancelledError:
        outcome = "killed"
        if not result.done():
            result.set_result(False)
        raise
    except Exception:
        log.exception("simulated originate failed")
        if not result.done():
            result.set_result(False)
    finally:
        if outcome != "killed":
            actor.finish(outcome)


async def _dial(
    actor: CallActor,
    req: OriginateRequest,
    one: Channel,
    two: Channel,
    callee: Callee,
    dial_string: str,
) -> bool:
    """Dial phase of an Originate, event orders from the c-originate-* traces: refused
    before ringing (:data:`_REFUSED`), else rung until answered, timed out or hung up."""
    sim = actor.sim
    refuse = _REFUSED.get(callee.outcome)
    if refuse is not None:
        refuse(sim, req, one, two, dial_string)
        return False
    sim.emit(ev.local_bridge(one, two))
    sim.emit(ev.dial_begin(one, dial_string))
    if not await _ring(actor, req, one, two, callee):
        return False
    _answered(sim, req, one, two)
    return True


def _no_such_exten(
    sim: PbxSimulator, req: OriginateRequest, one: Channel, two: Channel, dial_string: str
) -> None:
    sim.emit(ev.hangup(two, 0))
    two.hungup = True
    _fail_response(sim, req, 0)
    sim.emit(ev.hangup(one, 0))
    one.hungup = True


def _rejected(
    sim: PbxSimulator,
    req: OriginateRequest,
    one: Channel,
    two: Channel,
    dial_string: str,
    *,
    cause: int,
    status: str,
) -> None:
    """``reject`` (cause 21, NOANSWER) and ``userbusy`` (cause 17, BUSY)."""
    emit = sim.emit
    emit(ev.local_bridge(one, two))
    _fail_response(sim, req, 0)
    emit(ev.hangup_request(two, 16, soft=True))
    emit(ev.dial_begin(one, dial_string))
    emit(ev.hangup_request(one, cause))
    emit(ev.dial_end(one, status))
    emit(ev.hangup(one, cause))
    emit(ev.hangup(two, cause))
    one.hungup = two.hungup = True


def _hung_up_at_once(
    sim: PbxSimulator, req: OriginateRequest, one: Channel, two: Channel, dial_string: str
) -> None:
    emit = sim.emit
    emit(ev.local_bridge(one, two))
    emit(ev.dial_begin(one, dial_string))
    emit(ev.hangup_request(two, 16, soft=True))
    _fail_response(sim, req, 0)
    emit(ev.hangup_request(one, 16))
    emit(ev.hangup(two, 16))
    emit(ev.dial_end(one, "NOANSWER"))
    emit(ev.hangup(one, 16))
    one.hungup = two.hungup = True


def _busy(
    sim: PbxSimulator, req: OriginateRequest, one: Channel, two: Channel, dial_string: str
) -> None:
    """c-originate-busy order."""
    emit = sim.emit
    emit(ev.local_bridge(one, two))
    _fail_response(sim, req, 5)
    two.state = ev.BUSY
    emit(ev.newstate(two))
    emit(ev.dial_begin(one, dial_string))
    emit(ev.dial_end(one, "BUSY"))
    emit(ev.hangup_request(two, 0))
    emit(ev.hangup(one, 0))
    emit(ev.hangup_request(two, 16, soft=True))
    emit(ev.hangup(two, 17))
    one.hungup = two.hungup = True


def _congested(
    sim: PbxSimulator, req: OriginateRequest, one: Channel, two: Channel, dial_string: str
) -> None:
    """c-originate-congestion order."""
    emit = sim.emit
    emit(ev.local_bridge(one, two))
    emit(ev.dial_begin(one, dial_string))
    two.state = ev.BUSY
    emit(ev.newstate(two))
    emit(ev.dial_end(one, "CONGESTION"))
    _fail_response(sim, req, 8)
    emit(ev.hangup_request(two, 0))
    emit(ev.hangup_request(two, 16, soft=True))
    emit(ev.hangup(two, 34))
    emit(ev.hangup(one, 0))
    one.hungup = two.hungup = True


_REFUSED: dict[str, Callable[..., None]] = {
    "nosuchexten": _no_such_exten,
    "reject": functools.partial(_rejected, cause=21, status="NOANSWER"),
    "userbusy": functools.partial(_rejected, cause=17, status="BUSY"),
    "hangup": _hung_up_at_once,
    "busy": _busy,
    "congestion": _congested,
}
"""Callee outcomes that end the Originate before the phone rings, each in its trace's order."""


async def _ring(
    actor: CallActor, req: OriginateRequest, one: Channel, two: Channel, callee: Callee
) -> bool:
    """Ring (a ``silent`` callee never signals ringing) until the callee answers (True),
    the Originate's timeout passes or a channel hangs up (False, all hung up)."""
    sim, emit, kind = actor.sim, actor.sim.emit, callee.outcome
    ringing = kind != "silent" and (kind != "answer" or callee.ring > 0)
    if ringing:
        one.state = ev.RINGING
        emit(ev.newstate(one))
        emit(ev.dial_state(one, "RINGING"))
    if callee.is_agent_iface:
        actor.hold(callee.is_agent_iface)
        sim.state.devstate[callee.is_agent_iface] = 2
    actor.timer(req.timeout, "dial_timeout")
    if kind in ("answer", "voicemail"):
        actor.timer(callee.ring, "answer")
    while True:
        sig = await actor.next()
        if sig.kind == "timer" and sig.tag == "answer":
            return True
        if sig.kind == "agent_answer":
            return True
        if sig.kind == "timer" and sig.tag == "dial_timeout":
            _timed_out(sim, req, one, two, ringing)
            _release_agent(actor, callee)
            return False
        if sig.kind == "hangup" and sig.channel in (one.name, two.name):
            _hung_up_while_ringing(sim, req, one, two)
            _release_agent(actor, callee)
            return False


def _timed_out(
    sim: PbxSimulator, req: OriginateRequest, one: Channel, two: Channel, ringing: bool
) -> None:
    emit = sim.emit
    emit(ev.hangup_request(two, 19))
    if not ringing:  # c-originate-silent order
        _fail_response(sim, req, 3)
    emit(ev.hangup(one, 19))
    emit(ev.hangup_request(two, 16, soft=True))
    emit(ev.hangup(two, 19))
    one.hungup = two.hungup = True
    if ringing:  # c-originate-noanswer order
        _fail_response(sim, req, 3)


def _hung_up_while_ringing(
    sim: PbxSimulator, req: OriginateRequest, one: Channel, two: Channel
) -> None:
    emit = sim.emit
    emit(ev.dial_end(one, "NOANSWER"))
    emit(ev.hangup_request(two, 16))
    emit(ev.hangup(one, 16))
    _fail_response(sim, req, 0)
    emit(ev.hangup_request(two, 16, soft=True))
    emit(ev.hangup(two, 16))
    one.hungup = two.hungup = True


def _answered(sim: PbxSimulator, req: OriginateRequest, one: Channel, two: Channel) -> None:
    """The callee answered: OriginateResponse Success, both legs Up, DialEnd ANSWER."""
    now = sim.now()
    one.answered = two.answered = now
    _ok_response(sim, req, one)
    two.state = ev.UP
    sim.emit(ev.newstate(two))
    one.state = ev.UP
    sim.emit(ev.newstate(one))
    sim.emit(ev.dial_end(one, "ANSWER"))


def _release_agent(actor: CallActor, callee: Callee) -> None:
    if callee.is_agent_iface:
        actor.sim.state.devstate[callee.is_agent_iface] = 1
        actor.release(callee.is_agent_iface)


@dataclass
class Step:
    kind: str  # queue | agi | wait | dial | none
    arg: str = ""
    args: tuple[str, ...] = ()
    seconds: float = 0.0


def resolve(
    sim: PbxSimulator, chan: Channel, context: str, exten: str, application: str, data: str
) -> Step:
    """Map an Originate/Redirect target to what the simulator runs (module docstring)."""
    base = f"agi://{sim.agi_host}:{sim.agi_port}"
    if application:
        app = application.lower()
        parts = data.split(",")
        if app == "queue":
            return Step("queue", parts[0])
        if app == "agi":
            return Step("agi", parts[0], tuple(parts[1:]))
        if app == "wait":
            return Step("wait", seconds=float(parts[0] or 0))
        return Step("none")
    if context == "outbound" and exten == "agent-queue":
        return Step("queue", "members")
    if context == "outbound" and exten == "park":
        return Step("wait", seconds=30.0)
    if context == "queues":
        return Step("queue", exten)
    if context == "campaign":
        # Queue(<queue>,,,,2) then Playback(safe-harbour): the 2-second rule
        return Step("queue", exten, seconds=SAFE_HARBOUR_S)
    if context == "survey" and exten == "start":
        return Step("agi", f"{base}/{sim.survey_agi_path}")
    if context == "survey" and exten == "start-case":
        return Step(
            "agi", f"{base}/{sim.survey_agi_path}", (chan.variables.get("SURVEY_CASE", ""),)
        )
    if context == "surveys":
        extra = chan.variables.get("SURVEY_ARGS", "")
        return Step("agi", f"{base}/survey?name={exten}", tuple(a for a in extra.split("|") if a))
    if context == "members-out" or context == "outbound":
        return Step("dial", exten)
    return Step("none")


def _verification_taken(sim: PbxSimulator, one: Channel, queue: str) -> bool:
    """The shipped dialplan's test for a machine verdict: sampled for verification
    (MEMBERLINE_AMD_VERIFY=1) and ``QUEUE_MEMBER(q,ready) > QUEUE_WAITING_COUNT(q)``."""
    if one.variables.get("MEMBERLINE_AMD_VERIFY") != "1":
        return False
    q = sim.state.queues.get(queue)
    return q is not None and len(sim.state.available(q)) > len(q.waiting)


async def run_dialplan(
    actor: CallActor,
    one: Channel,
    two: Channel,
    context: str,
    exten: str,
    app: str,
    data: str,
    callee: Callee,
    *,
    dial_timeout: float = 30.0,
) -> None:
    """``one`` runs ``context,exten`` (or ``app(data)``) while ``two``'s party may hang up."""
    sim = actor.sim
    one.priority = 2
    if callee.talk is not None:
        actor.timer(callee.talk, "callee_end")
    started = sim.now()
    amd_done = False
    while True:
        step = resolve(sim, one, context, exten, app, data)
        if step.kind == "queue" and step.seconds and not amd_done:
            amd_done = True
            if one.variables.get("MEMBERLINE_AMD") == "1":
                verdict = await run_amd(actor, one, two, callee)
                if isinstance(verdict, Signal):
                    context, exten, app, data = _redirect_target(one, verdict)
                    continue
                if verdict is None:
                    return  # the member hung up during the greeting
                if verdict == "MACHINE" and not _verification_taken(sim, one, step.arg):
                    one.priority += 1
                    one.application, one.app_data = "Hangup", ""
                    sim.emit(ev.newexten(one))
                    _hangup_pair(sim, one, two, 16)
                    return
        if step.kind == "queue" and step.arg in sim.state.queues:
            one.application, one.app_data = "Queue", f"{step.arg},t,,,60"
            remaining = None
            if callee.talk is not None:
                remaining = max(0.0, callee.talk - (sim.now() - started))
            res = await run_queue(
                actor,
                sim.state.queues[step.arg],
                one,
                two,
                patience=sim.scenario.inbound.patience.sample(sim.rng),
                caller_talk=remaining,
                max_wait=step.seconds or None,
            )
            if res.outcome == "timeout" and step.seconds:
                # no agent in time: the safe-harbour message, then hang up
                one.application, one.app_data = "Playback", SAFE_HARBOUR_PROMPT
                sim.emit(ev.newexten(one))
                sig = await wait_on_call(actor, one, two, SAFE_HARBOUR_MESSAGE_S, then_hangup=True)
                if sig is not None:
                    context, exten, app, data = _redirect_target(one, sig)
                    continue
                return
            after = sim.state.queues[step.arg].spec.after_agent
            if res.outcome == "agent" and after:
                if res.bridge_id:
                    sim.emit(ev.bridge_event("BridgeDestroy", res.bridge_id, 0))
                context, exten, app, data = parse_target(after)
                continue
            if res.outcome in ("agent", "timeout"):
                _hangup_pair_bridge(sim, one, two, res.bridge_id, res.peer_cdr_last)
                return
            if res.outcome == "redirect" and res.redirect is not None:
                context, exten, app, data = _redirect_target(one, res.redirect)
                continue
            return
        if step.kind == "agi":
            from cti.pbxsim.agi import run_agi

            one.application, one.app_data = "AGI", ",".join((step.arg, *step.args))
            res2 = await run_agi(actor, one, two, step.arg, step.args, callee)
            if res2.redirect is not None:
                context, exten, app, data = _redirect_target(one, res2.redirect)
                continue
            if not res2.callee_gone:
                _hangup_pair(sim, one, two, 16)
            else:
                _cdr(sim, one)
                sim.emit(ev.hangup_request(one, 16, soft=True))
                sim.emit(ev.hangup(one, 16))
                one.hungup = True
            return
        if step.kind == "dial":
            from cti.pbxsim.dial import run_dial

            sig = await run_dial(actor, one, two, step.arg, dial_timeout)
            if sig is not None:
                context, exten, app, data = _redirect_target(one, sig)
                continue
            return
        if step.kind == "wait":
            one.application, one.app_data = "Wait", f"{int(step.seconds)}"
            sig = await wait_on_call(actor, one, two, step.seconds)
            if sig is not None:
                context, exten, app, data = _redirect_target(one, sig)
                continue
            return
        _hangup_pair(sim, one, two, 16)
        return


def _redirect_target(chan: Channel, sig: Signal) -> tuple[str, str, str, str]:
    chan.context, chan.exten, chan.priority = sig.context, sig.exten, sig.priority
    return sig.context, sig.exten, "", ""


async def run_amd(
    actor: CallActor, one: Channel, two: Channel, callee: Callee
) -> str | Signal | None:
    """``AMD()`` of the shipped campaign context: listens to the greeting, then sets
    AMDSTATUS/AMDCAUSE (VarSet events; the runner's ledger reads AMDSTATUS). A verdict,
    None when the member hung up meanwhile, or a Redirect's signal."""
    sim = actor.sim
    out = sim.scenario.outbound
    machine = callee.outcome == "voicemail"
    rng = sim.rng
    if machine:
        verdict = "HUMAN" if rng.random() < out.amd_machine_as_human else "MACHINE"
        listen = out.amd_machine_time.sample(rng)
    else:
        verdict = "MACHINE" if rng.random() < out.amd_human_as_machine else "HUMAN"
        listen = out.amd_human_time.sample(rng)
    one.priority += 1
    one.application, one.app_data = "AMD", ""
    sim.emit(ev.newexten(one))
    actor.timer(listen, "amd_end")
    while True:
        sig = await actor.next()
        if sig.kind == "timer" and sig.tag == "amd_end":
            break
        if sig.kind == "timer" and sig.tag == "callee_end":
            sim.emit(ev.varset(one, "AMDSTATUS", "HANGUP"))
            callee_hangs_up(sim, one, two)
            return None
        if sig.kind == "hangup" and sig.channel in (one.name, two.name):
            target, other = (one, two) if sig.channel == one.name else (two, one)
            action_hangup(sim, target, other, sig.cause)
            return None
        if sig.kind == "redirect" and sig.channel == one.name:
            return sig
    cause = "LONGGREETING-3200-1500" if verdict == "MACHINE" else "HUMAN-1600-800"
    sim.emit(ev.varset(one, "AMDSTATUS", verdict))
    sim.emit(ev.varset(one, "AMDCAUSE", cause))
    return verdict


async def wait_on_call(
    actor: CallActor, chan: Channel, peer: Channel, seconds: float, *, then_hangup: bool = False
) -> Signal | None:
    """``Wait(n)`` on ``chan``; ends by itself, by the callee, by Hangup or Redirect.
    ``then_hangup``: the dialplan's next step is ``Hangup()`` (its Newexten is shown)."""
    sim = actor.sim
    actor.timer(seconds, "wait_end")
    while True:
        sig = await actor.next()
        if sig.kind == "timer" and sig.tag == "wait_end":
            if then_hangup:
                chan.priority += 1
                chan.application, chan.app_data = "Hangup", ""
                sim.emit(ev.newexten(chan))
            _hangup_pair(sim, chan, peer, 16)
            return None
        if sig.kind == "timer" and sig.tag == "callee_end":
            callee_hangs_up(sim, chan, peer)
            return None
        if sig.kind == "hangup" and sig.channel in (chan.name, peer.name):
            target, other = (chan, peer) if sig.channel == chan.name else (peer, chan)
            action_hangup(sim, target, other, sig.cause)
            return None
        if sig.kind == "redirect" and sig.channel == chan.name:
            return sig


def callee_hangs_up(sim: PbxSimulator, chan: Channel, peer: Channel) -> None:
    """The called party hangs up while ``chan`` runs dialplan (d-hangup trace order)."""
    sim.emit(ev.hangup_request(peer, 16, soft=True))
    sim.emit(ev.hangup_request(chan, 16))
    sim.emit(ev.hangup(peer, 16))
    peer.hungup = True
    _cdr(sim, peer)
    _cdr(sim, chan)
    sim.emit(ev.hangup_request(chan, 16, soft=True))
    sim.emit(ev.hangup(chan, 16))
    chan.hungup = True


def action_hangup(sim: PbxSimulator, target: Channel, other: Channel, cause: int) -> None:
    """``Action: Hangup`` on an up Local half (e-queue-actions order)."""
    sim.emit(ev.hangup_request(target, 16, soft=True))
    sim.emit(ev.hangup_request(other, cause))
    _cdr(sim, target)
    sim.emit(ev.hangup(target, cause))
    target.hungup = True
    sim.emit(ev.hangup_request(other, 16, soft=True))
    sim.emit(ev.hangup(other, cause))
    other.hungup = True
    _cdr(sim, other)
