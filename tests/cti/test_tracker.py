"""Tracker: replay of every real trace with the exact domain events, plus unit and fuzz tests."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cti.ami.framing import frame_all
from cti.ami.message import RESYNC_START, AmiMessage
from cti.tracker import (
    AgentRinging,
    AgentRingStopped,
    AgentState,
    AgentStateChanged,
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
    Direction,
    DomainEvent,
    OriginateResult,
    Party,
    Tracker,
)
from tests.fixtures import AMI_TRACES as TRACES


def summ(e: DomainEvent) -> tuple[Any, ...]:
    n = type(e).__name__
    if isinstance(e, ConversationStarted):
        return (n, e.conversation_id)
    if isinstance(e, CallQueued):
        return (n, e.conversation_id, e.queue, e.caller_num, e.caller_name)
    if isinstance(e, AgentRinging):
        return (
            n,
            e.conversation_id,
            e.queue,
            e.interface,
            e.member_name,
            e.caller_num,
            e.caller_name,
            e.uniqueid,
            e.agent_channel,
        )
    if isinstance(e, AgentRingStopped):
        return (n, e.interface, e.reason, e.ring_time_ms)
    if isinstance(e, CallAnswered):
        return (n, e.interface, e.hold_time, e.ring_time)
    if isinstance(e, CallAbandoned):
        return (n, e.queue, e.position, e.hold_time)
    if isinstance(e, CallCompleted):
        return (n, e.interface, e.talk_time, str(e.hung_up_by))
    if isinstance(e, OriginateResult):
        return (n, e.action_id, e.conversation_id, str(e.outcome), e.reason, e.cause)
    if isinstance(e, ConversationEnded):
        return (
            n,
            e.conversation_id,
            str(e.direction),
            e.outcome,
            None if e.hung_up_by is None else str(e.hung_up_by),
            e.interface,
        )
    if isinstance(e, AgentStateChanged):
        return (n, e.interface, str(e.previous), str(e.state), e.pause_reason)
    return (n,)


def replay(name: str, tracker: Tracker | None = None) -> tuple[Tracker, list[DomainEvent]]:
    t = tracker or Tracker()
    out: list[DomainEvent] = []
    for i, m in enumerate(frame_all((TRACES / f"{name}.txt").read_bytes())):
        out += t.feed(m, float(i))
    return t, out


# Reviewed by hand against sequences.txt: who rang, who answered, why a ring stopped,
# and the OriginateResponse reason refined by the Hangup cause (userbusy/reject give Reason 0).
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "a-inbound-queue-call": [
        ("ConversationStarted", "1795349443.0"),
        ("CallQueued", "1795349443.0", "members", "+8613800138000", "Li Wei"),
        (
            "AgentRinging",
            "1795349443.0",
            "members",
            "Local/1002@agents/n",
            "Agent 1002",
            "+8613800138000",
            "Li Wei",
            "1795349443.1",
            "Local/1002@agents-00000001;1",
        ),
        ("AgentStateChanged", "Local/1002@agents/n", "logged_out", "ringing", ""),
        (
            "AgentRinging",
            "1795349443.0",
            "members",
            "Local/1001@agents/n",
            "Agent 1001",
            "+8613800138000",
            "Li Wei",
            "1795349443.1",
            "Local/1001@agents-00000002;1",
        ),
        ("AgentStateChanged", "Local/1001@agents/n", "logged_out", "ringing", ""),
        ("AgentRingStopped", "Local/1002@agents/n", "answered_elsewhere", None),
        ("AgentStateChanged", "Local/1002@agents/n", "ringing", "available", ""),
        ("CallAnswered", "Local/1001@agents/n", 1, 1),
        ("AgentStateChanged", "Local/1001@agents/n", "ringing", "on_call", ""),
        ("CallCompleted", "Local/1001@agents/n", 3, "agent"),
        ("AgentStateChanged", "Local/1001@agents/n", "on_call", "wrap_up", ""),
        (
            "ConversationEnded",
            "1795349443.0",
            "inbound",
            "answered",
            "agent",
            "Local/1001@agents/n",
        ),
    ],
    "a2-inbound-queue-ringnoanswer": [
        ("ConversationStarted", "1795349451.6"),
        ("CallQueued", "1795349451.6", "members-linear", "+8613800138000", "Li Wei"),
        (
            "AgentRinging",
            "1795349451.6",
            "members-linear",
            "Local/1002@agents/n",
            "Agent 1002",
            "+8613800138000",
            "Li Wei",
            "1795349451.7",
            "Local/1002@agents-00000004;1",
        ),
        ("AgentStateChanged", "Local/1002@agents/n", "logged_out", "ringing", ""),
        ("AgentRingStopped", "Local/1002@agents/n", "no_answer", 3000),
        ("AgentStateChanged", "Local/1002@agents/n", "ringing", "available", ""),
        (
            "AgentRinging",
            "1795349451.6",
            "members-linear",
            "Local/1001@agents/n",
            "Agent 1001",
            "+8613800138000",
            "Li Wei",
            "1795349451.7",
            "Local/1001@agents-00000005;1",
        ),
        ("AgentStateChanged", "Local/1001@agents/n", "logged_out", "ringing", ""),
        ("CallAnswered", "Local/1001@agents/n", 5, 1),
        ("AgentStateChanged", "Local/1001@agents/n", "ringing", "on_call", ""),
        ("CallCompleted", "Local/1001@agents/n", 3, "agent"),
        ("AgentStateChanged", "Local/1001@agents/n", "on_call", "wrap_up", ""),
        (
            "ConversationEnded",
            "1795349451.6",
            "inbound",
            "answered",
            "agent",
            "Local/1001@agents/n",
        ),
    ],
    "a3-inbound-queue-abandon": [
        ("ConversationStarted", "1795349463.12"),
        ("CallQueued", "1795349463.12", "support", "+8613800138000", "Li Wei"),
        (
            "AgentRinging",
            "1795349463.12",
            "support",
            "Local/1002@agents/n",
            "Agent 1002",
            "+8613800138000",
            "Li Wei",
            "1795349463.13",
            "Local/1002@agents-00000007;1",
        ),
        ("AgentStateChanged", "Local/1002@agents/n", "logged_out", "ringing", ""),
        ("AgentRingStopped", "Local/1002@agents/n", "caller_left", None),
        ("AgentStateChanged", "Local/1002@agents/n", "ringing", "available", ""),
        ("CallAbandoned", "support", 1, 4),
        ("ConversationEnded", "1795349463.12", "inbound", "abandoned", None, None),
    ],
    "b-originate-answered": [
        ("ConversationStarted", "1795349471.16"),
        ("OriginateResult", "orig-42-answer", "1795349471.16", "answered", 4, None),
        ("CallQueued", "1795349471.16", "members", "4000", "Outbound Campaign"),
        (
            "AgentRinging",
            "1795349471.16",
            "members",
            "Local/1002@agents/n",
            "Agent 1002",
            "4000",
            "Outbound Campaign",
            "1795349471.16",
            "Local/1002@agents-00000009;1",
        ),
        ("AgentStateChanged", "Local/1002@agents/n", "logged_out", "ringing", ""),
        (
            "AgentRinging",
            "1795349471.16",
            "members",
            "Local/1001@agents/n",
            "Agent 1001",
            "4000",
            "Outbound Campaign",
            "1795349471.16",
            "Local/1001@agents-0000000a;1",
        ),
        ("AgentStateChanged", "Local/1001@agents/n", "logged_out", "ringing", ""),
        ("AgentRingStopped", "Local/1002@agents/n", "answered_elsewhere", None),
        ("AgentStateChanged", "Local/1002@agents/n", "ringing", "available", ""),
        ("CallAnswered", "Local/1001@agents/n", 1, 1),
        ("AgentStateChanged", "Local/1001@agents/n", "ringing", "on_call", ""),
        ("CallCompleted", "Local/1001@agents/n", 4, "agent"),
        ("AgentStateChanged", "Local/1001@agents/n", "on_call", "wrap_up", ""),
        (
            "ConversationEnded",
            "1795349471.16",
            "outbound",
            "answered",
            "agent",
            "Local/1001@agents/n",
        ),
    ],
    "b2-originate-channelid": [
        ("ConversationStarted", "cti-46-busy-1"),
        ("OriginateResult", "orig-46-busy", "cti-46-busy-1", "busy", 5, None),
        ("ConversationEnded", "cti-46-busy-1", "outbound", "busy", None, None),
        ("ConversationStarted", "cti-46-answer-1"),
        ("OriginateResult", "orig-46-answer", "cti-46-answer-1", "answered", 4, None),
        ("ConversationEnded", "cti-46-answer-1", "outbound", "answered", None, None),
    ],
    "c-originate-badtech": [
        ("OriginateResult", "orig-43-badtech", None, "failed", 0, None),
    ],
    "c-originate-busy": [
        ("ConversationStarted", "1795349495.26"),
        ("OriginateResult", "orig-43-busy", "1795349495.26", "busy", 5, None),
        ("ConversationEnded", "1795349495.26", "outbound", "busy", None, None),
    ],
    "c-originate-cancelled": [
        ("ConversationStarted", "1795349513.38"),
        ("OriginateResult", "orig-43-cancelled", "1795349513.38", "failed", 0, 16),
        ("ConversationEnded", "1795349513.38", "outbound", "failed", None, None),
    ],
    "c-originate-congestion": [
        ("ConversationStarted", "1795349498.28"),
        ("OriginateResult", "orig-43-congestion", "1795349498.28", "congestion", 8, None),
        ("ConversationEnded", "1795349498.28", "outbound", "congestion", None, None),
    ],
    "c-originate-hangup": [
        ("ConversationStarted", "1795349500.30"),
        ("OriginateResult", "orig-43-hangup", "1795349500.30", "failed", 0, 16),
        ("ConversationEnded", "1795349500.30", "outbound", "failed", None, None),
    ],
    "c-originate-noanswer": [
        ("ConversationStarted", "1795349480.22"),
        ("ConversationEnded", "1795349480.22", "unknown", "ended", None, None),
        ("OriginateResult", "orig-43-noanswer", "1795349480.22", "no_answer", 3, None),
    ],
    "c-originate-nosuchexten": [
        ("ConversationStarted", "1795349508.36"),
        ("OriginateResult", "orig-43-nosuchexten", "1795349508.36", "failed", 0, 0),
        ("ConversationEnded", "1795349508.36", "outbound", "failed", None, None),
    ],
    "c-originate-reject": [
        ("ConversationStarted", "1795349505.34"),
        ("OriginateResult", "orig-43-reject", "1795349505.34", "rejected", 0, 21),
        ("ConversationEnded", "1795349505.34", "outbound", "rejected", None, None),
    ],
    "c-originate-silent": [
        ("ConversationStarted", "1795349488.24"),
        ("OriginateResult", "orig-43-silent", "1795349488.24", "no_answer", 3, None),
        ("ConversationEnded", "1795349488.24", "outbound", "no_answer", None, None),
    ],
    "c-originate-userbusy": [
        ("ConversationStarted", "1795349503.32"),
        ("OriginateResult", "orig-43-userbusy", "1795349503.32", "busy", 0, 17),
        ("ConversationEnded", "1795349503.32", "outbound", "busy", None, None),
    ],
    "e-queue-actions": [
        ("AgentStateChanged", "Local/1001@agents/n", "logged_out", "available", ""),
        ("AgentStateChanged", "Local/1002@agents/n", "logged_out", "available", ""),
        ("AgentStateChanged", "Local/1001@agents/n", "available", "paused", "Lunch break"),
        ("AgentStateChanged", "Local/1001@agents/n", "paused", "available", ""),
        ("AgentStateChanged", "Local/1003@agents/n", "logged_out", "available", ""),
        ("AgentStateChanged", "Local/1003@agents/n", "available", "logged_out", ""),
        ("ConversationStarted", "1795349540.46"),
        ("OriginateResult", "orig-44-hold", "1795349540.46", "answered", 4, None),
        ("ConversationEnded", "1795349540.46", "outbound", "answered", None, None),
    ],
    "f-core-restart-with-call": [
        ("ConversationStarted", "1795349580.0"),
        ("OriginateResult", "orig-45-hold", "1795349580.0", "answered", 4, None),
        ("ConversationEnded", "1795349580.0", "outbound", "answered", None, None),
    ],
}


def test_replay_each_trace_exact_domain_events() -> None:
    for name, expected in EXPECTED.items():
        t, events = replay(name)
        assert [summ(e) for e in events] == expected, name
        assert t.size()[:2] == (0, 0), name  # every conversation finished and was dropped
        assert t.anomalies == 0, name


def ev(name: str, **headers: str) -> AmiMessage:
    return AmiMessage.build("event", name, headers)


def test_chinese_caller_name_reaches_agent_ringing() -> None:
    raw = (
        (TRACES / "a-inbound-queue-call.txt")
        .read_bytes()
        .replace(b"CallerIDName: Li Wei", "CallerIDName: 李伟".encode())
    )
    t = Tracker()
    fr_events: list[DomainEvent] = []
    msgs = frame_all(raw, chunk_size=7)
    for i, m in enumerate(msgs):
        fr_events += t.feed(m, float(i))
    ringing = [e for e in fr_events if isinstance(e, AgentRinging)]
    assert {e.caller_name for e in ringing} == {"李伟"}


def test_wallboard_and_snapshots_mid_call() -> None:
    msgs = frame_all((TRACES / "a-inbound-queue-call.txt").read_bytes())
    t = Tracker()
    seen = set()
    for i, m in enumerate(msgs):
        t.feed(m, float(i))
        wb = t.wallboard()
        seen.add((wb.waiting, wb.ringing, wb.talking))
        if m.name == "AgentConnect":
            (conv,) = t.conversations()
            assert conv.interface == "Local/1001@agents/n"
            assert conv.caller_name == "Li Wei"
            agent = t.agent("Local/1001@agents/n")
            assert agent is not None and agent.state is AgentState.ON_CALL
            assert agent.conversation_id == conv.conversation_id
    assert (1, 0, 0) in seen  # queued, nobody ringing yet
    assert (1, 1, 0) in seen  # ringing
    assert (0, 0, 1) in seen  # talking
    assert t.wallboard().agents[AgentState.WRAP_UP] == 1


def test_wrap_up_ends_by_hub_or_timeout() -> None:
    t, _ = replay("a-inbound-queue-call", Tracker(wrap_up_timeout=None))
    a = t.agent("Local/1001@agents/n")
    assert a is not None and a.state is AgentState.WRAP_UP
    assert t.tick(1e6) == []  # no timeout configured: wrap-up waits for the hub
    (ev_,) = t.end_wrap_up("Local/1001@agents/n", 1e6 + 1)
    assert isinstance(ev_, AgentStateChanged) and ev_.state is AgentState.AVAILABLE

    t, events = replay("a-inbound-queue-call", Tracker(wrap_up_timeout=30.0))
    done = next(e for e in events if isinstance(e, CallCompleted))
    assert t.tick(done.at + 29.0) == []
    (ev_,) = t.tick(done.at + 30.0)
    assert isinstance(ev_, AgentStateChanged)
    assert (ev_.previous, ev_.state) == (AgentState.WRAP_UP, AgentState.AVAILABLE)


def test_pause_reason_and_queue_login_logout() -> None:
    t = Tracker()
    iface = "PJSIP/2001"
    out = t.feed(
        ev("QueueMemberAdded", Queue="q1", Interface=iface, MemberName="Ann", Paused="0"), 1.0
    )
    assert [(e.previous, e.state) for e in out if isinstance(e, AgentStateChanged)] == [
        (AgentState.LOGGED_OUT, AgentState.AVAILABLE)
    ]
    out = t.feed(
        ev(
            "QueueMemberPause",
            Queue="q1",
            Interface=iface,
            MemberName="Ann",
            Paused="1",
            PausedReason="Lunch",
        ),
        2.0,
    )
    assert isinstance(out[0], AgentStateChanged) and out[0].pause_reason == "Lunch"
    out = t.feed(
        ev(
            "QueueMemberPause",
            Queue="q1",
            Interface=iface,
            MemberName="Ann",
            Paused="1",
            PausedReason="Training",
        ),
        3.0,
    )
    assert isinstance(out[0], AgentStateChanged) and out[0].pause_reason == "Training"
    view = t.agent(iface)
    assert view is not None and view.state is AgentState.PAUSED and view.since == 2.0
    out = t.feed(ev("QueueMemberRemoved", Queue="q1", Interface=iface, MemberName="Ann"), 4.0)
    assert isinstance(out[0], AgentStateChanged) and out[0].state is AgentState.LOGGED_OUT
    # a logged-out agent idle longer than stale_agent_after is forgotten
    t2 = Tracker(stale_agent_after=100.0)
    t2.feed(ev("QueueMemberAdded", Queue="q1", Interface=iface, MemberName="Ann", Paused="0"), 1.0)
    t2.feed(ev("QueueMemberRemoved", Queue="q1", Interface=iface, MemberName="Ann"), 2.0)
    t2.tick(50.0)
    assert t2.agent(iface) is not None
    t2.tick(103.0)
    assert t2.agent(iface) is None


def _channel(uid: str, lid: str, name: str, event: str = "Newchannel") -> AmiMessage:
    return ev(event, Channel=name, Uniqueid=uid, Linkedid=lid, CallerIDNum="100", CallerIDName="X")


def test_hold_and_transfers() -> None:
    t = Tracker()
    t.feed(_channel("1.1", "1.1", "PJSIP/a-1"), 0.0)
    out = t.feed(ev("Hold", Channel="PJSIP/a-1", Uniqueid="1.1", Linkedid="1.1"), 1.0)
    assert out == [CallHeld(1.0, "1.1", "PJSIP/a-1", True)]
    view = t.conversation("1.1")
    assert view is not None and view.held
    out = t.feed(ev("Unhold", Channel="PJSIP/a-1", Uniqueid="1.1", Linkedid="1.1"), 2.0)
    assert out == [CallHeld(2.0, "1.1", "PJSIP/a-1", False)]
    out = t.feed(
        ev(
            "BlindTransfer",
            Result="Success",
            TransfererLinkedid="1.1",
            TransfereeLinkedid="1.1",
            Extension="200",
            Context="agents",
        ),
        3.0,
    )
    assert out == [CallTransferred(3.0, "1.1", "blind", "200@agents", "Success")]
    out = t.feed(
        ev(
            "AttendedTransfer",
            Result="Success",
            OrigTransfererLinkedid="1.1",
            SecondTransfererLinkedid="2.2",
        ),
        4.0,
    )
    assert out == [CallTransferred(4.0, "1.1", "attended", "2.2", "Success")]


def test_resync_drops_channels_and_members_not_listed() -> None:
    t = Tracker()
    t.feed(_channel("1.1", "1.1", "PJSIP/a-1"), 0.0)
    t.feed(_channel("2.1", "2.1", "PJSIP/b-1"), 0.0)
    t.feed(ev("QueueMemberAdded", Queue="q1", Interface="PJSIP/x", MemberName="X", Paused="0"), 0.0)
    t.feed(ev("QueueMemberAdded", Queue="q1", Interface="PJSIP/y", MemberName="Y", Paused="0"), 0.0)
    t.feed(ev(RESYNC_START), 10.0)
    t.feed(_channel("3.1", "3.1", "PJSIP/c-1"), 10.5)  # new call during the resync: kept
    t.feed(_channel("1.1", "1.1", "PJSIP/a-1", event="CoreShowChannel"), 11.0)
    t.feed(
        _channel("9.1", "9.1", "PJSIP/z-1", event="CoreShowChannel"), 11.0
    )  # unknown to us: learned
    out = t.feed(ev("CoreShowChannelsComplete", EventList="Complete", ListItems="2"), 12.0)
    assert [(type(e).__name__, getattr(e, "conversation_id", None)) for e in out] == [
        ("ConversationEnded", "2.1")
    ]
    assert sorted(c.conversation_id for c in t.conversations()) == ["1.1", "3.1", "9.1"]
    t.feed(
        ev(
            "QueueMember",
            Queue="q1",
            Location="PJSIP/x",
            Name="X",
            Paused="1",
            PausedReason="Break",
            InCall="0",
        ),
        13.0,
    )
    out = t.feed(ev("QueueStatusComplete", EventList="Complete"), 14.0)
    assert [(e.interface, e.state) for e in out if isinstance(e, AgentStateChanged)] == [
        ("PJSIP/y", AgentState.LOGGED_OUT)
    ]
    x = t.agent("PJSIP/x")
    assert x is not None and x.state is AgentState.PAUSED and x.pause_reason == "Break"
    # a QueueStatus outside a resync only adds facts
    assert t.feed(ev("QueueStatusComplete", EventList="Complete"), 15.0) == []


def _shown(
    uid: str, name: str, bridge: str = "", app: str = "", data: str = "", **kw: str
) -> AmiMessage:
    """A CoreShowChannel list item of conversation 5.0 (field names as e-queue-actions)."""
    fields = {
        "Channel": name, "ChannelState": "6", "ChannelStateDesc": "Up", "Uniqueid": uid,
        "Linkedid": "5.0", "CallerIDNum": "+8613800138000", "CallerIDName": "李伟",
        "Application": app, "ApplicationData": data, "Duration": "00:01:05", "BridgeId": bridge,
    }  # fmt: skip
    return ev("CoreShowChannel", **{**fields, **kw})


def test_resync_after_a_hub_restart_takes_up_a_call_in_progress() -> None:
    """A fresh tracker (the hub restarted) learns from the resync lists that agent 1001 is
    talking to a queue caller, says so once, and then follows the call to its end."""
    t = Tracker()
    t.feed(ev(RESYNC_START), 100.0)
    items = [
        _shown("5.0", "Local/4001@from-pstn-00000001;1", app="AppDial"),
        _shown("5.1", "Local/4001@from-pstn-00000001;2", "b-1", "Queue", "members,t,,,300"),
        _shown("5.2", "Local/1001@agents-00000002;1", "b-1", "AppQueue", "(Outgoing Line)"),
        _shown("5.3", "Local/1001@agents-00000002;2", "b-2", "Wait", "600"),
        _shown("5.4", "PJSIP/1001-00000003", "b-2", "AppDial", "(Outgoing Line)"),
    ]
    out: list[DomainEvent] = []
    for item in items:
        out += t.feed(item, 100.1)
    out += t.feed(ev("CoreShowChannelsComplete", EventList="Complete", ListItems="5"), 100.2)
    assert [type(e).__name__ for e in out] == ["ConversationStarted"]
    member = {"Queue": "members", "Location": "Local/1001@agents/n", "Name": "王芳"}
    out = t.feed(ev("QueueMember", **member, Paused="0", InCall="1", Status="2"), 100.3)
    out += t.feed(ev("QueueStatusComplete", EventList="Complete"), 100.4)
    resumed = [e for e in out if isinstance(e, CallResumed)]
    assert resumed == [
        CallResumed(
            100.4, "5.0", "members", "Local/1001@agents/n", "王芳",
            "Local/1001@agents-00000002;1", "Local/4001@from-pstn-00000001;2",
            "+8613800138000", "李伟", Direction.INBOUND, 65,
        )
    ]  # fmt: skip
    agent = t.agent("Local/1001@agents/n")
    assert agent is not None and agent.state is AgentState.ON_CALL
    conv = t.conversation("5.0")
    assert conv is not None and conv.state is ConversationState.TALKING
    # a second resync (AMI reconnect) does not take it up twice
    t.feed(ev(RESYNC_START), 110.0)
    for item in items:
        t.feed(item, 110.1)
    again = t.feed(ev("CoreShowChannelsComplete", EventList="Complete"), 110.2)
    again += t.feed(ev("QueueMember", **member, Paused="0", InCall="1"), 110.3)
    again += t.feed(ev("QueueStatusComplete", EventList="Complete"), 110.4)
    assert not [e for e in again if isinstance(e, CallResumed)]
    # the call ends as any other: completed by the agent, wrap-up, conversation ended
    end = t.feed(
        ev("AgentComplete", Queue="members", Interface="Local/1001@agents/n", MemberName="王芳",
           Linkedid="5.0", Uniqueid="5.1", TalkTime="70", HoldTime="3", Reason="agent"),
        120.0,
    )  # fmt: skip
    completed = [e for e in end if isinstance(e, CallCompleted)]
    assert len(completed) == 1 and completed[0].hung_up_by is Party.AGENT
    for uid in ("5.4", "5.3", "5.2", "5.1", "5.0"):
        end += t.feed(ev("Hangup", Uniqueid=uid, Linkedid="5.0", Cause="16"), 120.1)
    assert any(isinstance(e, ConversationEnded) for e in end)
    agent = t.agent("Local/1001@agents/n")
    assert agent is not None and agent.state is AgentState.WRAP_UP
    assert t.size()[0] == 0


def test_resync_does_not_take_up_a_bridge_without_exactly_one_agent() -> None:
    t = Tracker()
    t.feed(ev("QueueMemberAdded", Queue="q", Interface="PJSIP/1001", MemberName="A"), 0.0)
    t.feed(ev("QueueMemberAdded", Queue="q", Interface="PJSIP/1002", MemberName="B"), 0.0)
    t.feed(ev(RESYNC_START), 1.0)
    out: list[DomainEvent] = []
    for uid, name in (("5.1", "PJSIP/1001-0000000a"), ("5.2", "PJSIP/1002-0000000b")):
        out += t.feed(_shown(uid, name, "b-9", "Dial"), 1.1)  # two agents on one bridge
    out += t.feed(_shown("6.1", "PJSIP/trunk-0000000c", "", Linkedid="6.1"), 1.1)  # not bridged
    out += t.feed(ev("CoreShowChannelsComplete", EventList="Complete"), 1.2)
    out += t.feed(ev("QueueStatusComplete", EventList="Complete"), 1.3)
    assert not [e for e in out if isinstance(e, CallResumed)]


def test_shutdown_ends_every_conversation() -> None:
    t = Tracker()
    t.feed(_channel("1.1", "1.1", "PJSIP/a-1"), 0.0)
    t.feed(_channel("1.2", "1.1", "PJSIP/a-2"), 0.0)
    out = t.feed(ev("Shutdown", Shutdown="Cleanly", Restart="True"), 1.0)
    assert [type(e).__name__ for e in out] == ["ConversationEnded"]
    assert t.size()[:2] == (0, 0)


def test_memory_flat_over_a_long_replay() -> None:
    msgs = frame_all((TRACES / "rate-200.txt").read_bytes()) + frame_all(
        (TRACES / "a-inbound-queue-call.txt").read_bytes()
    )
    t = Tracker(recent_limit=100)
    now = 0.0
    for _ in range(5):
        for m in msgs:
            now += 0.001
            t.feed(m, now)
        assert t.size()[:2] == (0, 0)
        assert len(t._recent) <= 100
    assert t.peak_conversations >= 90  # rate-200 peaks at 96 concurrent calls


# --- fuzzing ----------------------------------------------------------------------------

_IDS = st.sampled_from(["1.1", "1.2", "1.3", "2.1", "2.2", "<unknown>", ""])
_IFACES = st.sampled_from(["Local/1001@agents/n", "Local/1002@agents/n", "PJSIP/9"])
_NAMES = st.sampled_from(
    [
        "Newchannel",
        "Hangup",
        "QueueCallerJoin",
        "QueueCallerLeave",
        "QueueCallerAbandon",
        "AgentCalled",
        "AgentRingNoAnswer",
        "AgentConnect",
        "AgentComplete",
        "OriginateResponse",
        "Hold",
        "Unhold",
        "BlindTransfer",
        "AttendedTransfer",
        "QueueMemberAdded",
        "QueueMemberRemoved",
        "QueueMemberPause",
        "QueueMemberStatus",
        "QueueMember",
        "CoreShowChannel",
        "CoreShowChannelsComplete",
        "QueueStatusComplete",
        "Shutdown",
        RESYNC_START,
        "Rename",
        "VarSet",
    ]
)


@st.composite
def _events(draw: st.DrawFn) -> AmiMessage:
    name = draw(_NAMES)
    headers = {
        "Uniqueid": draw(_IDS),
        "Linkedid": draw(_IDS),
        "DestUniqueid": draw(_IDS),
        "Channel": draw(st.sampled_from(["Local/x@y-0001;1", "Local/x@y", "PJSIP/a-2"])),
        "Interface": draw(_IFACES),
        "Location": draw(_IFACES),
        "Queue": draw(st.sampled_from(["q1", "q2"])),
        "Paused": draw(st.sampled_from(["0", "1", ""])),
        "Reason": draw(st.sampled_from(["0", "3", "4", "5", "agent", "caller", "x"])),
        "Cause": draw(st.sampled_from(["16", "17", "21", "19", "34", "0", "junk"])),
        "InCall": draw(st.sampled_from(["0", "1"])),
        "ActionID": draw(st.sampled_from(["a1", "a2"])),
    }
    keep = draw(st.lists(st.sampled_from(sorted(headers)), unique=True))
    return AmiMessage.build("event", name, {k: headers[k] for k in keep})


@settings(max_examples=150, deadline=None)
@given(seq=st.lists(_events(), max_size=40), wrap=st.sampled_from([None, 5.0]))
def test_fuzz_any_sequence_no_exception_and_bounded(
    seq: list[AmiMessage], wrap: float | None
) -> None:
    t = Tracker(wrap_up_timeout=wrap, stale_agent_after=10.0, max_conversation_age=100.0)
    now = 0.0
    for m in seq:
        now += 1.0
        t.feed(m, now)
        t.wallboard()
        t.agents()
        t.conversations()
    # end every call: all channels hang up, then time passes
    for uid in ["1.1", "1.2", "1.3", "2.1", "2.2", "<unknown>", ""]:
        t.feed(ev("Hangup", Uniqueid=uid, Cause="16"), now + 1)
    t.feed(ev("Shutdown"), now + 2)
    t.tick(now + 500.0)  # silent conversations (no channel known) expire
    for iface in ["Local/1001@agents/n", "Local/1002@agents/n", "PJSIP/9"]:
        t.end_wrap_up(iface, now + 501)
        for q in ("q1", "q2"):
            t.feed(ev("QueueMemberRemoved", Queue=q, Interface=iface), now + 501)
    t.tick(now + 1000.0)
    assert t.size() == (0, 0, 0)
    assert not t._by_dial


def test_impossible_transition_is_an_event_naming_its_cause() -> None:
    """A logged-out agent rung by a queue (its removal and the call crossed): the state is
    applied (AMI is the truth) and a TransitionAnomaly names the AMI event."""
    from cti.tracker import TransitionAnomaly

    t = Tracker()
    iface = "PJSIP/9001"
    t.feed(ev("QueueMemberAdded", Queue="q1", Interface=iface, MemberName="Ann", Paused="0"), 1.0)
    t.feed(ev("QueueMemberRemoved", Queue="q1", Interface=iface, MemberName="Ann"), 2.0)
    t.feed(_channel("5.1", "5.1", "PJSIP/c-1"), 3.0)
    out = t.feed(
        ev(
            "AgentCalled",
            Queue="q1",
            Interface=iface,
            MemberName="Ann",
            Uniqueid="5.1",
            Linkedid="5.1",
            Channel="PJSIP/c-1",
            DestChannel="PJSIP/9001-1",
            DestUniqueid="5.2",
        ),
        4.0,
    )
    bad = [e for e in out if isinstance(e, TransitionAnomaly)]
    assert [(a.interface, a.previous, a.state, a.event) for a in bad] == [
        (iface, AgentState.LOGGED_OUT, AgentState.RINGING, "AgentCalled")
    ]
    assert t.anomalies == 1
    assert t.agent(iface).state is AgentState.RINGING  # type: ignore[union-attr]
