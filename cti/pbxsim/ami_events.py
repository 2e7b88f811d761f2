"""Builders for the AMI events of Asterisk 22.10.1 (pure functions).

Header names and order are copied from the real traces in
``tests/fixtures/ami-traces/`` (``event-fields.txt``): the channel snapshot block, the
``Dest``-prefixed block of Dial*/Agent* events, ``LocalOne``/``LocalTwo`` in
LocalBridge, ``Cause-txt`` with a hyphen, ``UniqueID`` in Cdr, numeric
QueueMemberStatus ``Status`` and so on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

Pairs = list[tuple[str, str]]

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
DOWN, RING, RINGING, UP, BUSY = 0, 4, 5, 6, 7

CAUSE_TEXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    19: "User alerting, no answer",
    21: "Call Rejected",
    26: "Answered elsewhere",
    34: "Circuit/channel congestion",
}

UNKNOWN = "<unknown>"


@dataclass
class Channel:
    """A channel's snapshot as AMI shows it, plus simulator bookkeeping."""

    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    priority: int = 1
    state: int = DOWN
    cid_num: str = UNKNOWN
    cid_name: str = UNKNOWN
    conn_num: str = UNKNOWN
    conn_name: str = UNKNOWN
    language: str = "en"
    accountcode: str = ""
    application: str = ""
    app_data: str = ""
    bridge_id: str = ""
    created: float = 0.0
    answered: float | None = None
    variables: dict[str, str] = field(default_factory=dict)
    hungup: bool = False

    def block(self, prefix: str = "") -> Pairs:
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", str(self.state)),
            (f"{prefix}ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (f"{prefix}CallerIDNum", self.cid_num),
            (f"{prefix}CallerIDName", self.cid_name),
            (f"{prefix}ConnectedLineNum", self.conn_num),
            (f"{prefix}ConnectedLineName", self.conn_name),
            (f"{prefix}Language", self.language),
            (f"{prefix}AccountCode", self.accountcode),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", str(self.priority)),
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Linkedid", self.linkedid),
        ]


def _ev(name: str, privilege: str, rest: Pairs) -> Pairs:
    return [("Event", name), ("Privilege", privilege), *rest]


def channel_event(name: str, chan: Channel, extra: Pairs | None = None) -> Pairs:
    """Newchannel, Newstate, MusicOnHoldStop, MixMonitorStart ... (call class)."""
    return _ev(name, "call,all", chan.block() + (extra or []))


def newchannel(chan: Channel) -> Pairs:
    return channel_event("Newchannel", chan)


def newstate(chan: Channel) -> Pairs:
    return channel_event("Newstate", chan)


def newexten(chan: Channel) -> Pairs:
    """The channel's dialplan runs ``application(app_data)`` (dialplan class)."""
    return _ev(
        "Newexten",
        "dialplan,all",
        [
            *chan.block(),
            ("Extension", chan.exten),
            ("Application", chan.application),
            ("AppData", chan.app_data),
        ],
    )


def varset(chan: Channel, variable: str, value: str) -> Pairs:
    """``Set()`` or an application sets a channel variable (dialplan class)."""
    return _ev("VarSet", "dialplan,all", [*chan.block(), ("Variable", variable), ("Value", value)])


def hangup_request(chan: Channel, cause: int, soft: bool = False) -> Pairs:
    name = "SoftHangupRequest" if soft else "HangupRequest"
    return channel_event(name, chan, [("Cause", str(cause))])


def hangup(chan: Channel, cause: int) -> Pairs:
    return channel_event(
        "Hangup", chan, [("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown"))]
    )


def local_bridge(one: Channel, two: Channel) -> Pairs:
    return _ev(
        "LocalBridge",
        "call,all",
        one.block("LocalOne")
        + two.block("LocalTwo")
        + [("Context", two.context), ("Exten", two.exten), ("LocalOptimization", "No")],
    )


def dial_begin(dest: Channel, dial_string: str, caller: Channel | None = None) -> Pairs:
    """DialBegin; from an Originate/call file there is no caller block at all."""
    if caller is None:
        return _ev("DialBegin", "call,all", [*dest.block("Dest"), ("DialString", dial_string)])
    return _ev(
        "DialBegin",
        "call,all",
        caller.block() + dest.block("Dest") + [("DialString", dial_string)],
    )


def dial_state(dest: Channel, status: str, caller: Channel | None = None) -> Pairs:
    if caller is None:
        return _ev("DialState", "call,all", [*dest.block("Dest"), ("DialStatus", status)])
    return _ev(
        "DialState", "call,all", caller.block() + dest.block("Dest") + [("DialStatus", status)]
    )


def dial_end(dest: Channel, status: str, caller: Channel | None = None) -> Pairs:
    if caller is None:
        return _ev("DialEnd", "call,all", [*dest.block("Dest"), ("DialStatus", status)])
    return _ev(
        "DialEnd", "call,all", caller.block() + dest.block("Dest") + [("DialStatus", status)]
    )


def queue_caller(name: str, chan: Channel, queue: str, position: int, count: int) -> Pairs:
    """QueueCallerJoin / QueueCallerLeave."""
    return _ev(
        name,
        "agent,all",
        [*chan.block(), ("Queue", queue), ("Position", str(position)), ("Count", str(count))],
    )


def queue_caller_abandon(
    chan: Channel, queue: str, position: int, original: int, hold: int
) -> Pairs:
    return _ev(
        "QueueCallerAbandon",
        "agent,all",
        [
            *chan.block(),
            ("Queue", queue),
            ("Position", str(position)),
            ("OriginalPosition", str(original)),
            ("HoldTime", str(hold)),
        ],
    )


def agent_event(
    name: str,
    caller: Channel,
    dest: Channel,
    queue: str,
    interface: str,
    member_name: str,
    extra: Pairs | None = None,
) -> Pairs:
    """AgentCalled / AgentConnect / AgentComplete / AgentRingNoAnswer."""
    return _ev(
        name,
        "agent,all",
        caller.block()
        + dest.block("Dest")
        + [("Queue", queue), ("Interface", interface), ("MemberName", member_name)]
        + (extra or []),
    )


def bridge_block(bridge_id: str, num_channels: int) -> Pairs:
    return [
        ("BridgeUniqueid", bridge_id),
        ("BridgeType", "basic"),
        ("BridgeTechnology", "simple_bridge"),
        ("BridgeCreator", UNKNOWN),
        ("BridgeName", UNKNOWN),
        ("BridgeNumChannels", str(num_channels)),
        ("BridgeVideoSourceMode", "none"),
    ]


def bridge_event(name: str, bridge_id: str, num: int, chan: Channel | None = None) -> Pairs:
    """BridgeCreate / BridgeDestroy (no channel) and BridgeEnter / BridgeLeave."""
    return _ev(name, "call,all", bridge_block(bridge_id, num) + (chan.block() if chan else []))


@dataclass
class MemberSnapshot:
    """What the QueueMember* events report about one queue member."""

    queue: str
    name: str
    interface: str
    membership: str = "static"
    penalty: int = 0
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    in_call: int = 0
    status: int = 1
    paused: bool = False
    paused_reason: str = ""
    wrapuptime: int = 0


def queue_member_event(name: str, m: MemberSnapshot) -> Pairs:
    """QueueMemberStatus / Pause / Added / Removed / Penalty (MemberName, Interface)."""
    return _ev(
        name,
        "agent,all",
        [
            ("Queue", m.queue),
            ("MemberName", m.name),
            ("Interface", m.interface),
            ("StateInterface", m.interface),
            ("Membership", m.membership),
            ("Penalty", str(m.penalty)),
            ("CallsTaken", str(m.calls_taken)),
            ("LastCall", str(m.last_call)),
            ("LastPause", str(m.last_pause)),
            ("LoginTime", str(m.login_time)),
            ("InCall", str(m.in_call)),
            ("Status", str(m.status)),
            ("Paused", "1" if m.paused else "0"),
            ("PausedReason", m.paused_reason),
            ("Ringinuse", "0"),
            ("Wrapuptime", str(m.wrapuptime)),
        ],
    )


def queue_member_list_item(m: MemberSnapshot, action_id: str | None) -> Pairs:
    """The QueueStatus list item: ``Name``/``Location``, no Privilege, no Ringinuse."""
    pairs: Pairs = [
        ("Event", "QueueMember"),
        ("Queue", m.queue),
        ("Name", m.name),
        ("Location", m.interface),
        ("StateInterface", m.interface),
        ("Membership", m.membership),
        ("Penalty", str(m.penalty)),
        ("CallsTaken", str(m.calls_taken)),
        ("LastCall", str(m.last_call)),
        ("LastPause", str(m.last_pause)),
        ("LoginTime", str(m.login_time)),
        ("InCall", str(m.in_call)),
        ("Status", str(m.status)),
        ("Paused", "1" if m.paused else "0"),
        ("PausedReason", m.paused_reason),
        ("Wrapuptime", str(m.wrapuptime)),
    ]
    return _with_action_id(pairs, action_id)


def _with_action_id(pairs: Pairs, action_id: str | None) -> Pairs:
    if action_id is not None:
        pairs.append(("ActionID", action_id))
    return pairs


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def cdr(
    chan: Channel,
    *,
    source: str,
    destination: str,
    dest_context: str,
    callerid: str,
    dest_channel: str,
    last_app: str,
    last_data: str,
    start: float,
    answer: float | None,
    end: float,
    disposition: str,
) -> Pairs:
    duration = int(end - start)
    billable = int(end - answer) if answer is not None else 0
    return _ev(
        "Cdr",
        "cdr,all",
        [
            ("AccountCode", chan.accountcode),
            ("Source", source),
            ("Destination", destination),
            ("DestinationContext", dest_context),
            ("CallerID", callerid),
            ("Channel", chan.name),
            ("DestinationChannel", dest_channel),
            ("LastApplication", last_app),
            ("LastData", last_data),
            ("StartTime", fmt_time(start)),
            ("AnswerTime", fmt_time(answer)),
            ("EndTime", fmt_time(end)),
            ("Duration", str(duration)),
            ("BillableSeconds", str(billable)),
            ("Disposition", disposition),
            ("AMAFlags", "DOCUMENTATION"),
            ("UniqueID", chan.uniqueid),
            ("UserField", ""),
        ],
    )


def callerid_string(num: str, name: str) -> str:
    if name and name != UNKNOWN:
        return f'"{name}" <{num}>'
    return num


def originate_response(
    action_id: str | None,
    success: bool,
    channel: str,
    context: str,
    exten: str,
    reason: int,
    uniqueid: str,
    cid_num: str,
    cid_name: str,
) -> Pairs:
    pairs: Pairs = [("Event", "OriginateResponse"), ("Privilege", "call,all")]
    if action_id is not None:
        pairs.append(("ActionID", action_id))
    pairs += [
        ("Response", "Success" if success else "Failure"),
        ("Channel", channel),
        ("Context", context),
        ("Exten", exten),
        ("Reason", str(reason)),
        ("Uniqueid", uniqueid),
        ("CallerIDNum", cid_num),
        ("CallerIDName", cid_name),
    ]
    return pairs


def agi_exec(chan: Channel, command_id: int, command: str, result: tuple[int, str] | None) -> Pairs:
    """AGIExecStart (``result`` None) / AGIExecEnd (ResultCode, Result)."""
    extra: Pairs = [("CommandId", str(command_id)), ("Command", command)]
    if result is None:
        return _ev("AGIExecStart", "agi,all", chan.block() + extra)
    code, text = result
    return _ev(
        "AGIExecEnd",
        "agi,all",
        chan.block() + extra + [("ResultCode", str(code)), ("Result", text)],
    )


def dtmf(chan: Channel, digit: str, end: bool, duration_ms: int = 100) -> Pairs:
    if end:
        extra: Pairs = [
            ("Digit", digit),
            ("DurationMs", str(duration_ms)),
            ("Direction", "Received"),
        ]
        return _ev("DTMFEnd", "dtmf,all", chan.block() + extra)
    return _ev(
        "DTMFBegin", "dtmf,all", [*chan.block(), ("Digit", digit), ("Direction", "Received")]
    )


def fully_booted(uptime: int, last_reload: int) -> Pairs:
    return _ev(
        "FullyBooted",
        "system,all",
        [("Uptime", str(uptime)), ("LastReload", str(last_reload)), ("Status", "Fully Booted")],
    )


def fully_booted_broadcast(uptime: int, last_reload: int) -> Pairs:
    """FullyBooted as broadcast when the boot completes after an early login
    (g-restart-early-login: ``Status`` first, unlike the per-login form)."""
    return _ev(
        "FullyBooted",
        "system,all",
        [("Status", "Fully Booted"), ("Uptime", str(uptime)), ("LastReload", str(last_reload))],
    )


def shutdown(restart: bool) -> Pairs:
    return _ev(
        "Shutdown",
        "system,all",
        [("Shutdown", "Cleanly"), ("Restart", "True" if restart else "False")],
    )


def event_tv(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def successful_auth(
    ts: float, user: str, session_id: str, local: tuple[str, int], remote: tuple[str, int]
) -> Pairs:
    tv = event_tv(ts)
    return _ev(
        "SuccessfulAuth",
        "security,all",
        [
            ("EventTV", tv),
            ("Severity", "Informational"),
            ("Service", "AMI"),
            ("EventVersion", "1"),
            ("AccountID", user),
            ("SessionID", session_id),
            ("LocalAddress", f"IPV4/TCP/{local[0]}/{local[1]}"),
            ("RemoteAddress", f"IPV4/TCP/{remote[0]}/{remote[1]}"),
            ("UsingPassword", "0"),
            ("SessionTV", tv),
        ],
    )
