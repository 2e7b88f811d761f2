"""The call ledger: real Asterisk 22.10.1 traces, then hypothesis over event orders.

Properties checked everywhere: every placed call is decided exactly once and ended at most
once (exactly once when all its channels are gone), no call outlives its channels, and the
counts balance (placed = decided + open; live = answered + abandoned).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.ami.framing import frame_all
from cti.ami.message import AmiMessage
from dialer.dial_rules import DialOutcome
from dialer.ledger import (
    CallKind,
    CallLedger,
    Fact,
    FactKind,
    LedgerError,
    LiveChannel,
)

TRACES = Path(__file__).parent.parent / "fixtures" / "ami-traces"


@dataclass
class Trace:
    """A trace's messages with the calls it originated: (action id, call id)."""

    messages: list[AmiMessage]
    calls: list[tuple[str, str]]


def load(name: str) -> Trace:
    msgs = frame_all((TRACES / f"{name}.txt").read_bytes())
    calls: list[tuple[str, str]] = []
    pending: str | None = None
    for m in msgs:
        aid = m.get("ActionID") or ""
        if m.kind == "response" and aid.startswith("orig-"):
            pending = aid
        elif pending and m.name == "Newchannel":
            calls.append((pending, m.get("Linkedid") or ""))
            pending = None
        elif pending and m.name == "OriginateResponse" and m.get("ActionID") == pending:
            calls.append((pending, f"never-{pending}"))  # no channel at all (bad technology)
            pending = None
    events = [m for m in msgs if m.kind == "event"]
    return Trace(events, calls)


def run(
    trace: Trace, kind: CallKind, order: list[AmiMessage] | None = None
) -> tuple[CallLedger, list[Fact]]:
    led = CallLedger()
    facts: list[Fact] = []
    for i, (aid, cid) in enumerate(trace.calls):
        led.place(cid, 1, 0.0, kind=kind, entry_id=i, action_id=aid)
        led.sent(cid, 0.0)
    for t, m in enumerate(order if order is not None else trace.messages):
        facts += led.feed(m, 1.0 + t * 0.001)
    return led, facts


def check_balance(led: CallLedger, facts: list[Fact], placed: int) -> None:
    decided = Counter(f.call.call_id for f in facts if f.kind is FactKind.DECIDED)
    ended = Counter(f.call.call_id for f in facts if f.kind is FactKind.ENDED)
    assert all(n == 1 for n in decided.values()), decided
    assert all(n == 1 for n in ended.values()), ended
    assert set(ended) <= set(decided), "a call ended without an outcome"
    for f in facts:
        if f.kind is FactKind.ENDED:
            assert f.call.outcome is not None
    n, outcomes = led.tally(1)
    assert n == placed
    assert sum(outcomes.values()) == len(decided)
    undecided = [r for r in led.calls() if r.outcome is None]
    assert len(decided) + len(undecided) == placed
    live = [
        f.call
        for f in facts
        if f.kind is FactKind.DECIDED and f.call.kind is CallKind.QUEUE and f.call.reached
    ]
    ab = led.abandons(1, 0.0)
    assert ab.window_live == len(live)
    assert ab.window_abandoned == sum(1 for r in live if r.outcome is DialOutcome.ABANDONED)


EXPECTED = {
    # trace: (kind, outcomes in placing order)
    "b-originate-answered": (CallKind.QUEUE, [DialOutcome.ANSWERED]),
    "b2-originate-channelid": (CallKind.IVR, [DialOutcome.BUSY, DialOutcome.ANSWERED]),
    "c-originate-badtech": (CallKind.QUEUE, [DialOutcome.FAILED]),
    "c-originate-busy": (CallKind.QUEUE, [DialOutcome.BUSY]),
    "c-originate-cancelled": (CallKind.QUEUE, [DialOutcome.NO_ANSWER]),
    "c-originate-congestion": (CallKind.QUEUE, [DialOutcome.CONGESTION]),
    "c-originate-hangup": (CallKind.QUEUE, [DialOutcome.NO_ANSWER]),
    "c-originate-noanswer": (CallKind.QUEUE, [DialOutcome.NO_ANSWER]),
    "c-originate-nosuchexten": (CallKind.QUEUE, [DialOutcome.FAILED]),
    "c-originate-reject": (CallKind.QUEUE, [DialOutcome.BUSY]),
    "c-originate-silent": (CallKind.QUEUE, [DialOutcome.NO_ANSWER]),
    "c-originate-userbusy": (CallKind.QUEUE, [DialOutcome.BUSY]),
    "h-originate-failed-ivr": (CallKind.IVR, [DialOutcome.BUSY]),
    "f-core-restart-with-call": (CallKind.QUEUE, [DialOutcome.INTERRUPTED]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_traces_in_real_order(name: str) -> None:
    kind, want = EXPECTED[name]
    trace = load(name)
    led, facts = run(trace, kind)
    decided = {f.call.call_id: f.outcome for f in facts if f.kind is FactKind.DECIDED}
    assert [decided.get(cid) for _, cid in trace.calls] == want
    if not name.startswith("c-originate-badtech"):
        # Every channel hung up in the trace: no call outlives its channels (no resync).
        assert led.calls() == []
    check_balance(led, facts, len(trace.calls))


def test_answered_queue_call_records_the_wait_to_the_agent() -> None:
    trace = load("b-originate-answered")
    _led, facts = run(trace, CallKind.QUEUE)
    rec = next(f.call for f in facts if f.kind is FactKind.DECIDED)
    assert rec.agent == "Local/1001@agents/n"
    assert rec.bridge_wait_s is not None and 0 <= rec.bridge_wait_s <= 2.0


def test_hangup_before_originate_response_frees_the_line() -> None:
    """Real Asterisk can send the member's Hangup before the OriginateResponse."""
    trace = load("h-originate-failed-ivr")
    led, facts = run(trace, CallKind.QUEUE)
    ended = [f for f in facts if f.kind is FactKind.ENDED]
    assert len(ended) == 1 and led.counts(1, 5.0).open == 0
    assert ended[0].outcome is DialOutcome.BUSY


TRACE_NAMES = sorted(EXPECTED)


@settings(
    max_examples=int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "150")),
    suppress_health_check=[HealthCheck.too_slow],
    deadline=None,
)
@given(st.sampled_from(TRACE_NAMES), st.data())
def test_any_order_of_a_real_trace_decides_each_call_once(name: str, data: st.DataObject) -> None:
    kind = EXPECTED[name][0]
    trace = load(name)
    order = data.draw(st.permutations(trace.messages))
    led, facts = run(trace, kind, order)
    check_balance(led, facts, len(trace.calls))
    # Whatever is left open is settled by the next channel list (nothing alive).
    facts += led.resync(99.0, [], connected_at=50.0)
    assert led.calls() == []
    check_balance(led, facts, len(trace.calls))
    decided = [f for f in facts if f.kind is FactKind.DECIDED]
    assert len(decided) == len(trace.calls)


# ---------------------------------------------------------------- synthetic calls


def ev(name: str, **headers: str) -> AmiMessage:
    return AmiMessage.build("event", name, dict(headers))


@dataclass(frozen=True)
class Script:
    """One call's life as AMI events (relative times), and what the ledger must say."""

    events: tuple[tuple[float, AmiMessage], ...]
    want: DialOutcome | None
    """None: the outcome depends on timing/order (only the balance is checked)."""


def script(cid: str, plan: str, wait: float) -> Script:
    one, two = cid, f"{cid}-2"
    new = [
        (0.0, ev("Newchannel", Uniqueid=one, Linkedid=cid)),
        (0.0, ev("Newchannel", Uniqueid=two, Linkedid=cid)),
    ]

    def up(t: float) -> list[tuple[float, AmiMessage]]:
        return [
            (t, ev("Newstate", Uniqueid=two, Linkedid=cid, ChannelStateDesc="Up")),
            (t, ev("Newstate", Uniqueid=one, Linkedid=cid, ChannelStateDesc="Up")),
            (t, ev("OriginateResponse", ActionID=f"dial-{cid}", Response="Success", Reason="4")),
        ]

    def gone(t: float, cause: str = "16") -> list[tuple[float, AmiMessage]]:
        return [
            (t, ev("Hangup", Uniqueid=two, Linkedid=cid, Cause=cause)),
            (t, ev("Hangup", Uniqueid=one, Linkedid=cid, Cause="0")),
        ]

    if plan == "busy":
        fail = ev("OriginateResponse", ActionID=f"dial-{cid}", Response="Failure", Reason="5")
        return Script(tuple([*new, *gone(1.0, "17"), (1.0, fail)]), DialOutcome.BUSY)
    if plan == "noanswer":
        fail = ev("OriginateResponse", ActionID=f"dial-{cid}", Response="Failure", Reason="3")
        return Script(tuple([*new, *gone(25.0, "19"), (25.0, fail)]), DialOutcome.NO_ANSWER)
    if plan == "bridged":
        agent = [
            (3.0 + wait, ev("QueueCallerJoin", Uniqueid=one, Linkedid=cid, Queue="members")),
            (
                3.0 + wait,
                ev("AgentConnect", Uniqueid=one, Linkedid=cid, Interface="Local/1001@agents/n"),
            ),
        ]
        # at the boundary itself float rounding of the clock decides: either is true
        want = (
            DialOutcome.ANSWERED
            if wait < 1.999
            else DialOutcome.ABANDONED
            if wait > 2.001
            else None
        )
        return Script(tuple([*new, *up(3.0), *agent, *gone(60.0)]), want)
    if plan == "dropped":
        harbour = (
            5.0,
            ev("Newexten", Uniqueid=one, Linkedid=cid, Application="Playback",
               AppData="memberline/safe-harbour"),
        )  # fmt: skip
        return Script(tuple([*new, *up(3.0), harbour, *gone(11.0)]), DialOutcome.ABANDONED)
    raise AssertionError(plan)


PLANS = st.sampled_from(["busy", "noanswer", "bridged", "dropped"])


@settings(
    max_examples=int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "200")),
    suppress_health_check=[HealthCheck.too_slow],
    deadline=None,
)
@given(
    st.lists(st.tuples(PLANS, st.floats(0.0, 4.0), st.floats(0.0, 30.0)), min_size=1, max_size=6),
    st.randoms(use_true_random=False),
    st.booleans(),
)
def test_interleaved_calls_in_time_order_get_their_true_outcome(
    calls: list[tuple[str, float, float]], rnd: object, timeouts: bool
) -> None:
    led = CallLedger()
    timeline: list[tuple[float, int, AmiMessage]] = []
    wants: dict[str, DialOutcome | None] = {}
    for i, (plan, wait, start) in enumerate(calls):
        cid = f"c{i}"
        led.place(cid, 1, start, entry_id=i)
        if timeouts and i % 2:
            led.send_unknown(cid, start + 10)  # no reply to the action: stays unknown
        else:
            led.sent(cid, start)
        s = script(cid, plan, wait)
        wants[cid] = s.want
        timeline += [(start + t, n, m) for n, (t, m) in enumerate(s.events)]
    timeline.sort(key=lambda x: (x[0], x[1]))
    facts: list[Fact] = []
    for at, _n, m in timeline:
        facts += led.expire(at)
        facts += led.feed(m, at)
    assert led.calls() == []
    decided = {f.call.call_id: f.call for f in facts if f.kind is FactKind.DECIDED}
    for cid, want in wants.items():
        if want is None:
            assert decided[cid].outcome in (DialOutcome.ANSWERED, DialOutcome.ABANDONED)
            continue
        assert decided[cid].outcome is want, (cid, decided[cid])
        if want is DialOutcome.ABANDONED and decided[cid].bridged_at is None:
            assert decided[cid].safe_harbour or decided[cid].bridge_wait_s is None
    check_balance(led, facts, len(calls))
    _n, outcomes = led.tally(1)
    ab = led.abandons(1, 100.0)
    assert ab.window_abandoned == outcomes.get(DialOutcome.ABANDONED, 0)
    assert ab.window_live == outcomes.get(DialOutcome.ABANDONED, 0) + outcomes.get(
        DialOutcome.ANSWERED, 0
    )


@settings(
    max_examples=int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "200")),
    suppress_health_check=[HealthCheck.too_slow],
    deadline=None,
)
@given(
    st.lists(st.tuples(PLANS, st.floats(0.0, 4.0)), min_size=1, max_size=4),
    st.data(),
)
def test_any_order_any_restart_each_call_decided_once(
    calls: list[tuple[str, float]], data: st.DataObject
) -> None:
    led = CallLedger()
    msgs: list[AmiMessage] = []
    for i, (plan, wait) in enumerate(calls):
        led.place(f"c{i}", 1, 0.0, entry_id=i)
        msgs += [m for _t, m in script(f"c{i}", plan, wait).events]
    order = data.draw(st.permutations(msgs))
    cut = data.draw(st.integers(0, len(order)))
    facts: list[Fact] = []
    for t, m in enumerate(order[:cut]):
        facts += led.feed(m, 1.0 + t)
        facts += led.expire(1.0 + t)
    # A PBX restart: the rest never arrives; the new connection lists no channel.
    facts += led.feed(ev("Shutdown", Restart="True"), 500.0)
    facts += led.resync(501.0, [], connected_at=500.5)
    assert led.calls() == []
    check_balance(led, facts, len(calls))
    assert len([f for f in facts if f.kind is FactKind.DECIDED]) == len(calls)


# ---------------------------------------------------------------- unit behaviour


def test_originate_timeout_stays_unknown_until_its_channel_says() -> None:
    led = CallLedger()
    led.place("x", 1, 0.0)
    led.send_unknown("x", 10.0)
    assert led.get("x") is not None and led.get("x").send == "unknown"  # type: ignore[union-attr]
    assert led.counts(1, 30.0).dialling_s == (30.0,)
    assert led.expire(100.0) == []  # no timer decides it
    # The call was really dialling: its events arrive and decide it.
    led.feed(ev("Newchannel", Uniqueid="x", Linkedid="x"), 31.0)
    led.feed(ev("Newstate", Uniqueid="x", Linkedid="x", ChannelStateDesc="Up"), 32.0)
    facts = led.feed(ev("Hangup", Uniqueid="x", Linkedid="x", Cause="16"), 40.0)
    assert [f.kind for f in facts] == [FactKind.DECIDED, FactKind.ENDED]
    assert facts[0].outcome is DialOutcome.ABANDONED  # answered, no agent ever


def test_unknown_originate_with_no_channel_on_the_next_list_is_interrupted() -> None:
    led = CallLedger()
    led.place("x", 1, 0.0)
    led.send_unknown("x", 10.0)
    assert led.resync(20.0, [], connected_at=0.0) == []  # placed on this connection: wait
    facts = led.resync(60.0, [], connected_at=50.0)
    assert [f.outcome for f in facts] == [DialOutcome.INTERRUPTED, DialOutcome.INTERRUPTED]


def test_resync_keeps_live_calls_and_an_adopted_ringing_call_ends_by_its_cause() -> None:
    led = CallLedger()
    led.adopt("r", 1, 0.0, entry_id=1)
    led.adopt("q", 1, 0.0, entry_id=2)
    facts = led.resync(
        10.0,
        [
            LiveChannel("r", "r", up=False),
            LiveChannel("q", "q", up=True, application="Queue"),
            LiveChannel("other", "other", up=True),
        ],
        connected_at=5.0,
    )
    assert facts == []
    assert led.counts(1, 10.0).waiting == 1  # q: answered before the restart, in the queue
    out = led.feed(ev("Hangup", Uniqueid="r", Linkedid="r", Cause="19"), 20.0)
    assert out[0].outcome is DialOutcome.NO_ANSWER  # still ringing at restart: not abandoned
    out = led.feed(
        ev("AgentConnect", Uniqueid="q", Linkedid="q", Interface="PJSIP/1001", HoldTime="1"), 21
    )
    assert out[0].outcome is DialOutcome.ANSWERED and out[0].call.bridge_wait_s == 1.0


def test_call_resumed_after_a_hub_restart_is_answered() -> None:
    led = CallLedger()
    led.adopt("a", 1, 0.0)
    out = led.resumed("a", "PJSIP/1001", 5.0)
    assert out[0].outcome is DialOutcome.ANSWERED and out[0].call.agent == "PJSIP/1001"


def test_late_bridge_is_abandoned_whatever_the_dialplan_did() -> None:
    led = CallLedger()
    led.place("z", 1, 0.0)
    led.feed(ev("Newstate", Uniqueid="z", Linkedid="z", ChannelStateDesc="Up"), 1.0)
    out = led.feed(ev("AgentConnect", Uniqueid="z", Linkedid="z", Interface="PJSIP/1"), 3.5)
    assert out[0].outcome is DialOutcome.ABANDONED and out[0].call.bridge_wait_s == 2.5
    assert led.abandons(1, 4.0).hour_abandoned == 1.0


def test_amd_starts_the_clock_at_the_verdict_and_machine_is_an_outcome() -> None:
    led = CallLedger()
    led.place("h", 1, 0.0, amd=True)
    led.place("m", 1, 0.0, amd=True)
    for cid in ("h", "m"):
        led.feed(ev("Newstate", Uniqueid=cid, Linkedid=cid, ChannelStateDesc="Up"), 1.0)
    led.feed(ev("VarSet", Uniqueid="h", Linkedid="h", Variable="AMDSTATUS", Value="HUMAN"), 4.0)
    out = led.feed(
        ev("VarSet", Uniqueid="m", Linkedid="m", Variable="AMDSTATUS", Value="MACHINE"), 4.5
    )
    assert out[0].outcome is DialOutcome.MACHINE
    assert led.expire(5.5) == []  # 1.5 s since the verdict, 4.5 s since the answer
    out = led.feed(ev("AgentConnect", Uniqueid="h", Linkedid="h", Interface="PJSIP/1"), 5.8)
    assert out[0].outcome is DialOutcome.ANSWERED


def test_a_restart_cut_ringing_call_is_interrupted_not_failed() -> None:
    led = CallLedger()
    led.place("k", 1, 0.0)
    led.feed(ev("Newchannel", Uniqueid="k", Linkedid="k"), 0.1)
    led.feed(ev("SoftHangupRequest", Uniqueid="k", Linkedid="k", Cause="4"), 3.0)
    out = led.feed(ev("Hangup", Uniqueid="k", Linkedid="k", Cause="0"), 3.0)
    assert out[0].outcome is DialOutcome.INTERRUPTED


def test_a_call_is_never_placed_twice() -> None:
    led = CallLedger()
    led.place("d", 1, 0.0)
    led.send_failed("d", 0.1)
    with pytest.raises(LedgerError):
        led.place("d", 1, 1.0)


def test_agent_first_member_leg_decides() -> None:
    led = CallLedger()
    led.place("p", 1, 0.0, kind=CallKind.AGENT_FIRST, agent="Local/1001@agents/n")
    assert led.counts(1, 0.0).agents_held == frozenset({"Local/1001@agents/n"})
    led.feed(ev("Newchannel", Uniqueid="p", Linkedid="p"), 0.1)
    led.feed(ev("Newstate", Uniqueid="p", Linkedid="p", ChannelStateDesc="Up"), 2.0)
    out = led.feed(
        ev(
            "DialEnd",
            Channel="Local/1001@agents-0001;2",
            Uniqueid="p-2",
            Linkedid="p",
            DestChannel="PJSIP/trunk-0002",
            DestUniqueid="p.9",
            DialStatus="BUSY",
        ),
        5.0,
    )
    assert out[0].outcome is DialOutcome.BUSY


def test_resync_finds_a_call_bridged_to_an_agent_while_nobody_listened() -> None:
    led = CallLedger()
    led.adopt("b", 1, 0.0)
    out = led.resync(
        5.0, [LiveChannel("b", "b", up=True, application="Queue", bridged=True)], connected_at=1.0
    )
    assert [f.outcome for f in out] == [DialOutcome.ANSWERED]
    assert out[0].call.bridge_wait_s is None
