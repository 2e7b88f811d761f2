"""AMI action handlers (replies and list formats from ``e-queue-actions`` and friends)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable

from cti.pbxsim import ami_events as ev
from cti.pbxsim.ami_events import Channel
from cti.pbxsim.call_actors import Signal
from cti.pbxsim.originate import OriginateRequest, originate, parse_callerid
from cti.pbxsim.session import AmiSession, Pairs, response
from cti.pbxsim.state import Member
from cti.pbxsim.wire import AmiMessage

Handler = Callable[[AmiSession, AmiMessage], Awaitable[None]]


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "yes", "1", "on", "y", "t")


def _list_start(s: AmiSession, a: AmiMessage, message: str) -> None:
    s.send(response(a, "Success", ("EventList", "start"), ("Message", message)))


def _list_complete(
    s: AmiSession, a: AmiMessage, name: str, items: int, *extra: tuple[str, str]
) -> None:
    pairs: Pairs = [("Event", name)]
    aid = a.get("ActionID")
    if aid is not None:
        pairs.append(("ActionID", aid))
    pairs += [("EventList", "Complete"), ("ListItems", str(items)), *extra]
    s.send(pairs)


async def ping(s: AmiSession, a: AmiMessage) -> None:
    s.send(response(a, "Success", ("Ping", "Pong"), ("Timestamp", f"{s.sim.now():.6f}")))


async def events(s: AmiSession, a: AmiMessage) -> None:
    mask = (a.get("EventMask") or "").strip().lower()
    s.events_on = mask not in ("off", "no", "false", "0", "")
    s.send(response(a, "Success", ("Events", "On" if s.events_on else "Off")))


async def originate_action(s: AmiSession, a: AmiMessage) -> None:
    channel = a.get("Channel")
    if not channel:
        s.send(response(a, "Error", ("Message", "Channel not specified")))
        return
    num, name = parse_callerid(a.get("CallerID") or "")
    variables: dict[str, str] = {}
    for v in a.get_all("Variable"):
        for item in v.split(","):
            key, sep, value = item.partition("=")
            if sep:
                variables[key.strip()] = value
    try:
        timeout = float(a.get("Timeout") or 30000) / 1000.0
        priority = int(a.get("Priority") or 1)
    except ValueError:
        s.send(response(a, "Error", ("Message", "Invalid timeout or priority")))
        return
    req = OriginateRequest(
        channel=channel,
        context=a.get("Context") or "",
        exten=a.get("Exten") or "",
        priority=priority,
        application=a.get("Application") or "",
        data=a.get("Data") or "",
        timeout=timeout,
        cid_num=num,
        cid_name=name,
        variables=variables,
        is_async=_true(a.get("Async")),
        channel_id=a.get("ChannelId") or None,
        other_channel_id=a.get("OtherChannelId") or None,
        action_id=a.get("ActionID"),
    )
    if req.is_async:
        delay = s.sim.originate_reply_delay
        if delay > 0:
            # A loaded Asterisk: the call goes ahead, its reply comes late (after the
            # client's action timeout, say) -- the dialer must not take that as a failure.
            await originate(s.sim, req)

            async def late_reply() -> None:
                await asyncio.sleep(delay)
                s.send(response(a, "Success", ("Message", "Originate successfully queued")))

            s.sim.spawn(late_reply())
            return
        s.send(response(a, "Success", ("Message", "Originate successfully queued")))
        await originate(s.sim, req)
        return
    fut = await originate(s.sim, req)
    if await fut:
        s.send(response(a, "Success", ("Message", "Originate successfully queued")))
    else:
        s.send(response(a, "Error", ("Message", "Originate failed")))


def _find_channel(s: AmiSession, name: str) -> Channel | None:
    chan = s.sim.state.channels.get(name)
    return chan if chan is not None and not chan.hungup else None


async def hangup_action(s: AmiSession, a: AmiMessage) -> None:
    name = a.get("Channel") or ""
    try:
        cause = int(a.get("Cause") or 16)
    except ValueError:
        cause = 16
    if len(name) > 2 and name.startswith("/") and name.endswith("/"):
        try:
            pattern = re.compile(name[1:-1])
        except re.error:
            s.send(response(a, "Error", ("Message", "Invalid regex")))
            return
        matched = [c for c in list(s.sim.state.channels.values()) if pattern.search(c.name)]
        s.send(
            response(
                a, "Success", ("Message", "Channels hung up will follow"), ("EventList", "start")
            )
        )
        for c in matched:
            pairs: Pairs = [("Event", "ChannelHungup"), ("Channel", c.name)]
            aid = a.get("ActionID")
            if aid is not None:
                pairs.append(("ActionID", aid))
            s.send(pairs)
        _list_complete(s, a, "ChannelsHungupListComplete", len(matched))
        for c in matched:
            _post_hangup(s, c, cause)
        return
    chan = _find_channel(s, name)
    if chan is None:
        s.send(response(a, "Error", ("Message", "No such channel")))
        return
    s.send(response(a, "Success", ("Message", "Channel Hungup")))
    _post_hangup(s, chan, cause)


def _post_hangup(s: AmiSession, chan: Channel, cause: int) -> None:
    owner = s.sim.state.owners.get(chan.name)
    if owner is not None:
        owner.post(Signal("hangup", channel=chan.name, cause=cause))


async def redirect(s: AmiSession, a: AmiMessage) -> None:
    name = a.get("Channel") or ""
    chan = _find_channel(s, name)
    if chan is None:
        s.send(response(a, "Error", ("Message", "Channel specified does not exist")))
        return
    context, exten = a.get("Context") or "", a.get("Exten") or ""
    if not context or not exten:
        s.send(response(a, "Error", ("Message", "Context and Exten are required")))
        return
    owner = s.sim.state.owners.get(chan.name)
    s.send(response(a, "Success", ("Message", "Redirect successful")))
    if owner is not None:
        owner.post(
            Signal(
                "redirect",
                channel=chan.name,
                context=context,
                exten=exten,
                priority=int(a.get("Priority") or 1),
            )
        )


def _duration(sim_now: float, chan: Channel) -> str:
    secs = int(sim_now - chan.created)
    return f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"


async def core_show_channels(s: AmiSession, a: AmiMessage) -> None:
    _list_start(s, a, "Channels will follow")
    chans = [c for c in s.sim.state.channels.values() if not c.hungup]
    now = s.sim.now()
    aid = a.get("ActionID")
    for c in chans:
        pairs: Pairs = [("Event", "CoreShowChannel")]
        if aid is not None:
            pairs.append(("ActionID", aid))
        pairs += c.block()[0:]
        pairs += [
            ("Application", c.application),
            ("ApplicationData", c.app_data),
            ("Duration", _duration(now, c)),
            ("BridgeId", c.bridge_id),
        ]
        s.send(pairs)
    _list_complete(s, a, "CoreShowChannelsComplete", len(chans))


async def status(s: AmiSession, a: AmiMessage) -> None:
    name = a.get("Channel")
    if name:
        chan = _find_channel(s, name)
        if chan is None:
            s.send(response(a, "Error", ("Message", "No such channel")))
            return
        chans = [chan]
    else:
        chans = [c for c in s.sim.state.channels.values() if not c.hungup]
    _list_start(s, a, "Channel status will follow")
    wanted = [v.strip() for v in (a.get("Variables") or "").split(",") if v.strip()]
    now = s.sim.now()
    aid = a.get("ActionID")
    for c in chans:
        pairs: Pairs = [("Event", "Status"), ("Privilege", "Call"), *c.block()]
        pairs += [
            ("Type", "Local"),
            ("DNID", ""),
            ("EffectiveConnectedLineNum", c.conn_num),
            ("EffectiveConnectedLineName", c.conn_name),
            ("TimeToHangup", "0"),
            ("BridgeID", c.bridge_id),
            ("Application", c.application),
            ("Data", c.app_data),
            ("Nativeformats", "(slin)"),
            ("Readformat", "slin"),
            ("Readtrans", ""),
            ("Writeformat", "slin"),
            ("Writetrans", ""),
            ("Callgroup", "0"),
            ("Pickupgroup", "0"),
            ("Seconds", str(int(now - c.created))),
        ]
        for var in wanted:
            pairs.append(("Variable", f"{var}={c.variables.get(var, '')}"))
        if aid is not None:
            pairs.append(("ActionID", aid))
        s.send(pairs)
    _list_complete(s, a, "StatusComplete", len(chans), ("Items", str(len(chans))))


async def getvar(s: AmiSession, a: AmiMessage) -> None:
    var = a.get("Variable") or ""
    name = a.get("Channel")
    value = ""
    if name:
        chan = _find_channel(s, name)
        if chan is None:
            s.send(response(a, "Error", ("Message", "No such channel")))
            return
        value = chan.variables.get(var, "")
    s.send(response(a, "Success", ("Variable", var), ("Value", value)))


async def setvar(s: AmiSession, a: AmiMessage) -> None:
    name = a.get("Channel")
    if name:
        chan = _find_channel(s, name)
        if chan is None:
            s.send(response(a, "Error", ("Message", "No such channel")))
            return
        chan.variables[a.get("Variable") or ""] = a.get("Value") or ""
    s.send(response(a, "Success", ("Message", "Variable Set")))


async def queue_add(s: AmiSession, a: AmiMessage) -> None:
    sim = s.sim
    qname, iface = a.get("Queue") or "", a.get("Interface") or ""
    q = sim.state.queues.get(qname)
    if q is None or not iface:
        s.send(response(a, "Error", ("Message", "Unable to add interface to queue: No such queue")))
        return
    if q.member(iface) is not None:
        s.send(response(a, "Error", ("Message", "Unable to add interface: Already there")))
        return
    paused = _true(a.get("Paused"))
    m = Member(
        iface,
        a.get("MemberName") or iface,
        membership="dynamic",
        penalty=int(a.get("Penalty") or 0),
        paused=paused,
        paused_reason=(a.get("Reason") or "") if paused else "",
        login_time=int(sim.now()),
    )
    q.members.append(m)
    sim.state.devstate.setdefault(iface, 0)
    s.send(response(a, "Success", ("Message", "Added interface to queue")))
    sim.emit(ev.queue_member_event("QueueMemberAdded", sim.state.snapshot(q, m)))
    sim.queue_changed()


async def queue_remove(s: AmiSession, a: AmiMessage) -> None:
    sim = s.sim
    q = sim.state.queues.get(a.get("Queue") or "")
    iface = a.get("Interface") or ""
    m = q.member(iface) if q is not None else None
    if q is None or m is None:
        s.send(response(a, "Error", ("Message", "Unable to remove interface: Not there")))
        return
    q.members.remove(m)
    s.send(response(a, "Success", ("Message", "Removed interface from queue")))
    sim.emit(ev.queue_member_event("QueueMemberRemoved", sim.state.snapshot(q, m)))


async def queue_pause(s: AmiSession, a: AmiMessage) -> None:
    sim = s.sim
    iface = a.get("Interface") or ""
    paused = _true(a.get("Paused"))
    reason = (a.get("Reason") or "") if paused else ""
    qname = a.get("Queue")
    targets = []
    for q in reversed(list(sim.state.queues.values())):
        if qname and q.name != qname:
            continue
        m = q.member(iface)
        if m is not None:
            targets.append((q, m))
    if not targets:
        s.send(response(a, "Error", ("Message", "Interface not found")))
        return
    msg = "Interface paused successfully" if paused else "Interface unpaused successfully"
    s.send(response(a, "Success", ("Message", msg)))
    for q, m in targets:
        m.paused = paused
        m.paused_reason = reason
        m.last_pause = int(sim.now()) if paused else m.last_pause
        sim.emit(ev.queue_member_event("QueueMemberPause", sim.state.snapshot(q, m)))
    sim.queue_changed()


async def queue_penalty(s: AmiSession, a: AmiMessage) -> None:
    sim = s.sim
    iface = a.get("Interface") or ""
    qname = a.get("Queue")
    penalty = int(a.get("Penalty") or 0)
    done = False
    for q in sim.state.queues.values():
        if qname and q.name != qname:
            continue
        m = q.member(iface)
        if m is not None:
            m.penalty = penalty
            done = True
            sim.emit(ev.queue_member_event("QueueMemberPenalty", sim.state.snapshot(q, m)))
    if not done:
        s.send(response(a, "Error", ("Message", "Invalid interface, queuename or penalty")))
        return
    s.send(response(a, "Success", ("Message", "Interface penalty set successfully")))


async def queue_status(s: AmiSession, a: AmiMessage) -> None:
    sim = s.sim
    aid = a.get("ActionID")
    member_filter = a.get("Member")
    _list_start(s, a, "Queue status will follow")
    items = 0
    now = sim.now()
    qname = a.get("Queue")
    for q in reversed(list(sim.state.queues.values())):
        if qname and q.name != qname:
            continue
        params: Pairs = [
            ("Event", "QueueParams"),
            ("Queue", q.name),
            ("Max", "0"),
            ("Strategy", q.spec.strategy),
            ("Calls", str(len(q.waiting))),
            ("Holdtime", str(q.avg_hold())),
            ("TalkTime", str(q.avg_talk())),
            ("Completed", str(q.completed)),
            ("Abandoned", str(q.abandoned)),
            ("ServiceLevel", "0"),
            ("ServicelevelPerf", "0.0"),
            ("ServicelevelPerf2", "0.0"),
            ("Weight", "0"),
        ]
        if aid is not None:
            params.append(("ActionID", aid))
        s.send(params)
        items += 1
        for m in q.members:
            if member_filter and m.interface != member_filter:
                continue
            s.send(ev.queue_member_list_item(sim.state.snapshot(q, m), aid))
            items += 1
        for pos, actor in enumerate(q.waiting, start=1):
            chan = next(
                (c for c in actor.channels if not c.hungup and c.application == "Queue"), None
            )
            if chan is None:
                continue
            entry: Pairs = [
                ("Event", "QueueEntry"),
                ("Queue", q.name),
                ("Position", str(pos)),
                ("Channel", chan.name),
                ("Uniqueid", chan.uniqueid),
                ("CallerIDNum", chan.cid_num),
                ("CallerIDName", chan.cid_name),
                ("ConnectedLineNum", chan.conn_num),
                ("ConnectedLineName", chan.conn_name),
                ("Wait", str(int(now - (actor.joined or chan.created)))),
                ("Priority", "0"),
            ]
            if aid is not None:
                entry.append(("ActionID", aid))
            s.send(entry)
            items += 1
    _list_complete(s, a, "QueueStatusComplete", items)


async def queue_summary(s: AmiSession, a: AmiMessage) -> None:
    sim = s.sim
    aid = a.get("ActionID")
    _list_start(s, a, "Queue summary will follow")
    items = 0
    qname = a.get("Queue")
    for q in reversed(list(sim.state.queues.values())):
        if qname and q.name != qname:
            continue
        logged_in = len(q.members)
        available = len(sim.state.available(q))
        pairs: Pairs = [
            ("Event", "QueueSummary"),
            ("Queue", q.name),
            ("LoggedIn", str(logged_in)),
            ("Available", str(available)),
            ("Callers", str(len(q.waiting))),
            ("HoldTime", str(q.avg_hold())),
            ("TalkTime", str(q.avg_talk())),
            ("LongestHoldTime", "0"),
        ]
        if aid is not None:
            pairs.append(("ActionID", aid))
        s.send(pairs)
        items += 1
    _list_complete(s, a, "QueueSummaryComplete", items)


async def core_status(s: AmiSession, a: AmiMessage) -> None:
    sim = s.sim
    boot = sim.now() - sim.uptime()
    date = time.strftime("%Y-%m-%d", time.gmtime(boot))
    tod = time.strftime("%H:%M:%S", time.gmtime(boot))
    s.send(
        response(
            a,
            "Success",
            ("CoreStartupDate", date),
            ("CoreStartupTime", tod),
            ("CoreReloadDate", date),
            ("CoreReloadTime", tod),
            ("CoreCurrentCalls", str(sim.active_calls())),
            ("CoreProcessedCalls", str(sim.stats.calls_originated + sim.stats.inbound_calls)),
        )
    )


async def user_event(s: AmiSession, a: AmiMessage) -> None:
    s.send(response(a, "Success", ("Message", "Event Sent")))
    pairs: Pairs = [("Event", "UserEvent"), ("Privilege", "user,all")]
    pairs += [(k, v) for k, v in a.headers if k.lower() != "action"]
    s.sim.emit(pairs)


async def command(s: AmiSession, a: AmiMessage) -> None:
    cmd = (a.get("Command") or "").strip()
    if cmd == "core show version":
        out = ["Asterisk 22.10.1 (memberline PBX simulator)"]
    elif cmd == "core restart now":
        s.send(response(a, "Success", ("Message", "Command output follows"), ("Output", "")))
        s.sim.spawn(s.sim.restart())
        return
    else:
        out = [f"No such command '{cmd}' (type 'core show help {cmd}' for other possible commands)"]
    s.send(
        response(a, "Success", ("Message", "Command output follows"), *[("Output", o) for o in out])
    )


ACTIONS: dict[str, Handler] = {
    "ping": ping,
    "events": events,
    "originate": originate_action,
    "hangup": hangup_action,
    "redirect": redirect,
    "coreshowchannels": core_show_channels,
    "status": status,
    "getvar": getvar,
    "setvar": setvar,
    "queueadd": queue_add,  # app_queue's actions: see session.QUEUE_MODULE_ACTIONS
    "queueremove": queue_remove,
    "queuepause": queue_pause,
    "queuepenalty": queue_penalty,
    "queuestatus": queue_status,
    "queuesummary": queue_summary,
    "corestatus": core_status,
    "userevent": user_event,
    "command": command,
}
