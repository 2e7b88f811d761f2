"""AMD in the call ledger: verification calls and the estimated false positives (pure).

A machine verdict sampled for verification reaches an agent only when one is free at once;
it is no live answer until the agent says what was there. Every machine hang-up counts as
the estimated share of a person AMD hung up on (Ofcom), in the abandoned and the live
counts alike. Hypothesis drives whole campaigns of AMD calls through the ledger's events and
checks its statistic against an independent count.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.ami.message import AmiMessage
from dialer.dial_rules import DialOutcome
from dialer.ledger import (
    CallLedger,
    FactKind,
    WindowCounts,
    amd_false_positive_share,
    window_abandons,
)


def ev(name: str, **headers: str) -> AmiMessage:
    return AmiMessage.build("event", name, dict(headers))


# ---------------------------------------------------------------- the pure estimate
counts = st.integers(0, 10_000)


@given(counts, st.data())
def test_share_is_a_probability_near_the_measured_share(verified: int, data: st.DataObject) -> None:
    live = data.draw(st.integers(0, verified))
    p = amd_false_positive_share(verified, live)
    assert 0.0 < p < 1.0
    if verified:
        # within one prior sample's pull of the measured share
        assert abs(p - live / verified) <= 1.0 / (verified + 2) + 1e-12


@given(counts, st.data())
def test_share_grows_with_people_found_and_falls_with_machines_found(
    verified: int, data: st.DataObject
) -> None:
    live = data.draw(st.integers(0, verified))
    p = amd_false_positive_share(verified, live)
    assert amd_false_positive_share(verified + 1, live + 1) > p  # one more person found
    assert amd_false_positive_share(verified + 1, live) < p  # one more machine confirmed


def test_share_without_evidence_is_a_half_and_bad_counts_are_refused() -> None:
    assert amd_false_positive_share(0, 0) == 0.5
    for bad in ((-1, 0), (2, 3), (2, -1)):
        with pytest.raises(ValueError):
            amd_false_positive_share(*bad)


windows = st.builds(
    lambda live, ab, machine, verified, vl: WindowCounts(
        abandoned=float(min(ab, live)),
        live=float(live),
        machine=float(machine),
        verified=float(verified),
        verified_live=float(min(vl, verified)),
    ),
    counts,
    counts,
    counts,
    counts,
    counts,
)


@given(windows)
def test_false_positives_count_as_abandoned_live_answers(w: WindowCounts) -> None:
    abandoned, live, fp, share = window_abandons(w)
    assert fp == pytest.approx(share * w.machine)
    assert abandoned == pytest.approx(w.abandoned + fp) and live == pytest.approx(w.live + fp)
    assert 0.0 <= abandoned <= live
    if w.machine == 0:
        assert (abandoned, live, fp) == (w.abandoned, w.live, 0.0)
    # counting the false positives never makes the rate look better
    if w.live:
        assert abandoned / live >= w.abandoned / w.live - 1e-12


# ---------------------------------------------------------------- the ledger, end to end
@dataclass(frozen=True)
class AmdCall:
    machine: bool
    """AMD's verdict."""
    verify: bool
    """Sampled for verification at placing."""
    agent_free: bool
    """An agent was ready at the verdict (the dialplan's test)."""
    bridge_s: float
    """Verdict -> agent (when it goes to the queue)."""
    finding: bool | None
    """The agent's disposition of a verification call: a person, a machine, or none yet."""


calls = st.lists(
    st.builds(
        AmdCall,
        st.booleans(),
        st.booleans(),
        st.booleans(),
        st.sampled_from([0.3, 1.5, 3.0]),
        st.sampled_from([True, False, None]),
    ),
    max_size=30,
)


def play(led: CallLedger, i: int, c: AmdCall) -> tuple[list[DialOutcome], bool]:
    """One AMD call through the shipped dialplan's events; (outcomes decided, routed)."""
    cid, t0 = f"c{i}", i * 10.0
    led.place(cid, 1, t0, amd=True, amd_verify=c.verify)
    led.sent(cid, t0)
    f = led.feed(ev("Newstate", Uniqueid=cid, Linkedid=cid, ChannelStateDesc="Up"), t0 + 1)
    value = "MACHINE" if c.machine else "HUMAN"
    verdict = ev("VarSet", Uniqueid=cid, Linkedid=cid, Variable="AMDSTATUS", Value=value)
    f += led.feed(verdict, t0 + 2)
    routed = not c.machine or (c.verify and c.agent_free)
    if routed:
        f += led.feed(ev("QueueCallerJoin", Uniqueid=cid, Linkedid=cid), t0 + 2)
        if c.bridge_s > 2.0:
            f += led.expire(t0 + 4.1)  # the runner's tick
        connect = ev("AgentConnect", Uniqueid=cid, Linkedid=cid, Interface="PJSIP/1")
        f += led.feed(connect, t0 + 2 + c.bridge_s)
    else:
        f += led.feed(ev("Newexten", Uniqueid=cid, Linkedid=cid, Application="Hangup"), t0 + 2)
    f += led.feed(ev("Hangup", Uniqueid=cid, Linkedid=cid, Cause="16"), t0 + 8)
    if c.machine and routed and c.finding is not None:
        led.verified(cid, 1, live=c.finding, at=t0 + 9)
    return [x.outcome for x in f if x.kind is FactKind.DECIDED], routed


def expected(c: AmdCall) -> tuple[DialOutcome, WindowCounts]:
    """What must be decided and counted, from the rules (not from the ledger's code)."""
    late = c.bridge_s > 2.0
    if not c.machine:
        out = DialOutcome.ABANDONED if late else DialOutcome.ANSWERED
        return out, WindowCounts(abandoned=float(late), live=1.0)
    if not (c.verify and c.agent_free) or late:
        return DialOutcome.MACHINE, WindowCounts(machine=1.0)  # hung up, or not verified
    if c.finding is None:
        return DialOutcome.ANSWERED, WindowCounts()  # waiting for the agent's word
    person = float(c.finding)
    return DialOutcome.ANSWERED, WindowCounts(live=person, verified=1.0, verified_live=person)


@settings(max_examples=300, deadline=None)
@given(calls)
def test_every_amd_call_counts_once_by_what_it_was(plan: list[AmdCall]) -> None:
    led = CallLedger(safe_harbour_s=2.0)
    want = WindowCounts()
    sampled = routed_n = pending = 0
    for i, c in enumerate(plan):
        outs, routed = play(led, i, c)
        out, counted = expected(c)
        assert outs == [out], (c, outs)
        want = want + counted
        if c.machine and c.verify:
            sampled += 1
            routed_n += routed
        pending += c.machine and routed and not c.bridge_s > 2.0 and c.finding is None
    assert led.calls() == []  # nothing left in flight
    at = len(plan) * 10.0
    ab = led.abandons(1, at)
    abandoned, live, fp, share = window_abandons(want)
    assert (ab.window_abandoned, ab.window_live) == (pytest.approx(abandoned), pytest.approx(live))
    assert ab.window_amd_false_positives == pytest.approx(fp)
    assert ab.amd_fp_share == pytest.approx(share)
    # every call is within the hour here: the hour says the same
    assert (ab.hour_abandoned, ab.hour_live) == (pytest.approx(abandoned), pytest.approx(live))
    assert led.pending_verification(1) == pending
    assert led.verification_reach(1) == (routed_n / sampled if sampled else 1.0)
    placed, decided = led.tally(1)
    assert placed == sum(decided.values()) == len(plan)


@given(windows, calls)
@settings(max_examples=100, deadline=None)
def test_stored_window_and_new_decisions_add_up(base: WindowCounts, plan: list[AmdCall]) -> None:
    """The runner reads the window from the database, then the ledger adds what it decides:
    the statistic is window_abandons() of the sum, the false-positive share over both."""
    led = CallLedger(safe_harbour_s=2.0)
    led.set_window(
        1,
        base.abandoned,
        base.live,
        machine=base.machine,
        verified=base.verified,
        verified_live=base.verified_live,
    )
    want = base
    for i, c in enumerate(plan):
        play(led, i, c)
        want = want + expected(c)[1]
    ab = led.abandons(1, len(plan) * 10.0)
    abandoned, live, _, share = window_abandons(want)
    assert ab.window_abandoned == pytest.approx(abandoned)
    assert ab.window_live == pytest.approx(live)
    assert ab.amd_fp_share == pytest.approx(share)


def test_hour_window_forgets_old_machine_hangups_but_keeps_the_share() -> None:
    led = CallLedger()
    play(led, 0, AmdCall(True, False, False, 0.3, None))  # a machine hung up at t=2
    play(led, 1, AmdCall(True, True, True, 0.3, True))  # a verified person at t=12
    ab = led.abandons(1, 100.0)
    assert ab.amd_fp_share == pytest.approx(2 / 3)  # (1 + 1) / (1 + 2)
    assert ab.hour_abandoned == pytest.approx(2 / 3) and ab.hour_live == pytest.approx(5 / 3)
    later = led.abandons(1, 3603.0)  # the hang-up (decided at 2 s) left the hour
    assert later.hour_abandoned == 0.0 and later.hour_live == 1.0
    assert later.window_abandoned == pytest.approx(2 / 3)  # still in the legal window
