"""Every campaign call accounted for, end to end: runner + call ledger over real AMI against
the PBX simulator (loopback), through the faults real Asterisk produces.

Each test checks the ledger's promises on the database and on the PBX: every attempt gets
exactly one true outcome, nothing is dialled twice (one Originate per attempt row), no call
is left in flight once its channels are gone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, select

from crm_bridge.db import make_engine, session_scope
from crm_bridge.models import (
    CallAttempt,
    CallListEntry,
    CampaignKind,
    DialMode,
    Member,
    MemberPhone,
    SurveyResponse,
)
from cti.pbxsim import AgentSpec, Dist, NumberOverride, QueueSpec, Scenario
from cti.pbxsim.scenario import OutboundSpec
from dialer.dial_rules import DialRetryPolicy
from dialer.ledger import WindowCounts, window_abandons
from dialer.outcomes import answer_to_agent, window_counts
from dialer.runner import RunnerSettings
from memberline.cli import main
from memberline.testing import AMI_USER, DialerRig, pbx_simulator, runner_on_pbx, shifted_clock
from surveys.service import start_survey_services
from tests.dialer.support import ALL_DAY, add_campaign

pytestmark = pytest.mark.e2e

BASE = dt.datetime(2026, 6, 1, 4, 0, tzinfo=dt.UTC).timestamp()
SCALE = 0.1
"""Simulated seconds -> real seconds."""


@dataclass
class Rig(DialerRig):
    campaign_id: int


def seed(engine: Engine, numbers: list[str], mode: DialMode, survey: str | None, amd: str) -> int:
    with session_scope(engine) as s:
        c = add_campaign(s, f"ledger-{mode.value}", CampaignKind.POST_PURCHASE, mode)
        c.survey_name = survey
        c.amd_mode = amd
        for i, num in enumerate(numbers):
            m = Member(
                member_no=f"L{i:03d}",
                name=f"账本会员{i}",
                joined_on=dt.date(2025, 1, 1),
                timezone="Asia/Shanghai",
            )
            m.phones.append(MemberPhone(e164=num))
            s.add(m)
            s.flush()
            s.add(CallListEntry(campaign_id=c.id, member_id=m.id, phone_e164=num))
        return c.id


@asynccontextmanager
async def rig(
    url: str,
    numbers: dict[str, NumberOverride],
    *,
    mode: DialMode = DialMode.PROGRESSIVE,
    survey: str | None = None,
    agents: tuple[AgentSpec, ...] = (
        AgentSpec("1001", talk_time=Dist("fixed", 40.0)),
        AgentSpec("1002", talk_time=Dist("fixed", 40.0)),
    ),
    reply_delay: float = 0.0,
    action_timeout: float = 5.0,
    agi_port: int = 0,
    ring_timeout_s: int = 10,
    amd: str = "off",
    outbound: OutboundSpec | None = None,
) -> AsyncIterator[Rig]:
    engine = make_engine(url)
    scenario = Scenario(
        seed=11,
        time_scale=SCALE,
        queues=(QueueSpec("members", members=tuple(a.ext for a in agents)),),
        agents=agents,
        overrides=numbers,
        outbound=outbound or OutboundSpec(),
    )
    sim_options = {"agi_port": agi_port, "originate_reply_delay": reply_delay}
    async with (
        pbx_simulator(scenario, users={AMI_USER: "s3cret-ami"}, **sim_options) as sim,
        runner_on_pbx(
            engine,
            sim,
            RunnerSettings(
                owner="hub-ledger",
                tick_s=0.1,
                ring_timeout_s=ring_timeout_s,
                window=ALL_DAY,
                # the 2-second rule in the simulator's time
                safe_harbour_s=2.0 * SCALE,
                policy=DialRetryPolicy(max_attempts=3, busy_s=3600),
            ),
            clock=shifted_clock(BASE),
            ami={
                "secret": "s3cret-ami",
                "reconnect_initial": 0.05,
                "reconnect_max": 0.3,
                "action_timeout": action_timeout,
            },
        ) as d,
    ):
        cid = seed(engine, list(numbers), mode, survey, amd)
        try:
            yield Rig(d.engine, d.sim, d.ami, d.tracker, d.runner, d.clock, cid)
        finally:
            engine.dispose()


async def wait_for(pred: Callable[[], bool], within: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in time: {what}")
        await asyncio.sleep(0.05)


def attempts(engine: Engine) -> list[CallAttempt]:
    with session_scope(engine) as s:
        rows = list(s.scalars(select(CallAttempt).order_by(CallAttempt.id)))
        s.expunge_all()
        return rows


def by_phone(engine: Engine) -> dict[str, list[CallAttempt]]:
    out: dict[str, list[CallAttempt]] = {}
    for a in attempts(engine):
        out.setdefault(str(a.phone_e164), []).append(a)
    return out


def all_decided(r: Rig, n: int) -> bool:
    rows = attempts(r.engine)
    return len(rows) >= n and all(a.outcome is not None for a in rows)


def check_accounting(r: Rig) -> None:
    rows = attempts(r.engine)
    assert all(a.outcome is not None for a in rows)
    keys = [a.attempt_key for a in rows]
    assert len(keys) == len(set(keys))
    # one Originate per attempt row: nothing dialled twice
    assert r.sim.stats.calls_originated == len(rows)
    placed, decided = r.runner.ledger.tally(r.campaign_id)
    assert sum(decided.values()) == placed == len(rows)


async def no_flight_left(r: Rig) -> None:
    await wait_for(lambda: r.runner.ledger.calls() == [], within=15, what="ledger empty")
    # ... and what it decided is stored (one writer task, in order): every call's end too
    await wait_for(
        lambda: all(a.ended_at and a.hangup_by for a in attempts(r.engine)), what="ends stored"
    )
    counts = r.runner.ledger.counts(r.campaign_id, r.clock())
    assert counts.dialling_s == () and counts.waiting == 0 and counts.open == 0


OUTCOMES = {
    "+8613900000011": NumberOverride(outcome="answer", ring_time=2.0, talk_time=20.0),
    "+8613900000012": NumberOverride(outcome="busy"),
    "+8613900000013": NumberOverride(outcome="noanswer", ring_time=30.0),
    "+8613900000014": NumberOverride(outcome="congestion"),
}


async def test_hangup_before_originate_response_and_a_late_reply(sqlite_url: str) -> None:
    """The Originate's reply comes after the client's action timeout (a loaded PBX), and a
    failed call's Hangup comes before its OriginateResponse (the `failed` extension runs
    first, as on Asterisk 22): every call still gets its true outcome, no line leaks."""
    async with rig(sqlite_url, OUTCOMES, reply_delay=0.6, action_timeout=0.2) as r:
        await wait_for(lambda: len(r.tracker.agents()) >= 2, what="agents")
        await r.runner.start()
        await wait_for(lambda: all_decided(r, len(OUTCOMES)), what="outcomes")
        got = {k: v[0].outcome for k, v in by_phone(r.engine).items()}
        assert got == {
            "+8613900000011": "answered",
            "+8613900000012": "busy",
            "+8613900000013": "no_answer",
            "+8613900000014": "congestion",
        }
        # the failed calls' `failed` extension ran on a dummy channel, before the response
        names = [m.name for m in r.sim.events]
        assert "Newchannel" in names
        dummy = [
            i
            for i, m in enumerate(r.sim.events)
            if m.name == "Newchannel" and m.get("Channel") == "OutgoingSpoolFailed"
        ]
        assert len(dummy) == 3
        await no_flight_left(r)
        check_accounting(r)


async def test_pbx_restart_mid_campaign_interrupts_cut_calls(sqlite_url: str) -> None:
    numbers = {
        "+8613900000021": NumberOverride(outcome="answer", ring_time=1.0, talk_time=300.0),
        "+8613900000022": NumberOverride(outcome="noanswer", ring_time=300.0),
        "+8613900000023": NumberOverride(outcome="noanswer", ring_time=300.0),
    }
    agents = tuple(
        AgentSpec(ext, talk_time=Dist("fixed", 300.0)) for ext in ("1001", "1002", "1003")
    )
    async with rig(sqlite_url, numbers, agents=agents, ring_timeout_s=60) as r:
        await wait_for(lambda: len(r.tracker.agents()) >= 3, what="agents")
        await r.runner.start()
        await wait_for(
            lambda: (
                any(a.outcome == "answered" for a in attempts(r.engine))
                and len(attempts(r.engine)) == 3
            ),
            what="one talking, two ringing",
        )
        await r.sim.restart()  # `core restart now`: every call cut
        await wait_for(lambda: all_decided(r, 3), what="outcomes after the restart")
        got = {k: v[0].outcome for k, v in by_phone(r.engine).items()}
        assert got == {
            "+8613900000021": "answered",  # an agent had it: a true answer, kept
            "+8613900000022": "interrupted",  # cut while ringing: not the member's failure
            "+8613900000023": "interrupted",
        }
        with session_scope(r.engine) as s:
            for e in s.scalars(select(CallListEntry)):
                if e.last_outcome == "interrupted":
                    # retried soon (policy.interrupted_s), not in 24 h like a failure
                    assert e.next_attempt_at is not None
                    due = e.next_attempt_at.replace(tzinfo=dt.UTC).timestamp()
                    assert due - r.clock() <= DialRetryPolicy().interrupted_s + 5
        await no_flight_left(r)
        check_accounting(r)


async def test_hub_restart_resolves_calls_from_the_channel_list(sqlite_url: str) -> None:
    """The runner dies with calls ringing; a new one adopts them with no sleep and the
    calls' own ends decide them (no answer stays no answer, never abandoned)."""
    numbers = {
        "+8613900000031": NumberOverride(outcome="noanswer", ring_time=100.0),
        "+8613900000032": NumberOverride(outcome="answer", ring_time=5.0, talk_time=200.0),
    }
    async with rig(sqlite_url, numbers, ring_timeout_s=30) as r:
        await wait_for(lambda: len(r.tracker.agents()) >= 2, what="agents")
        await r.runner.start()
        await wait_for(
            lambda: len(attempts(r.engine)) == 2 and r.sim.stats.calls_originated == 2,
            what="both dialling",
        )
        assert r.runner._task is not None
        r.runner._task.cancel()  # the hub dies: everything in memory is gone
        await r.ami.close()
        async with runner_on_pbx(
            r.engine, r.sim, r.runner.settings, clock=r.clock, ami={"secret": "s3cret-ami"}
        ) as second:
            await second.runner.start()
            await wait_for(lambda: all_decided(r, 2), what="outcomes")
            await wait_for(lambda: second.runner.ledger.calls() == [], what="ledger empty")
        got = {k: v[0].outcome for k, v in by_phone(r.engine).items()}
        # ringing at the restart: its own end decides (not "answered_at = now" any more)
        assert got["+8613900000031"] == "no_answer"
        assert got["+8613900000032"] in ("answered", "abandoned")
        assert r.sim.stats.calls_originated == 2


def campaign_status(url: str, campaign_id: int, capsys: pytest.CaptureFixture[str]) -> dict:
    """``memberline campaign status <id>`` as an operator runs it (JSON)."""
    capsys.readouterr()
    assert main(["campaign", "status", str(campaign_id), "--db", url]) == 0
    return json.loads(capsys.readouterr().out)


async def test_live_answer_bridged_at_once_stores_its_wait(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The agent answers 0.5 s (simulated) after the member: the wait is measured by the
    ledger, stored on the attempt row and reported by `memberline campaign status`."""
    numbers = {"+8613900000045": NumberOverride(outcome="answer", ring_time=1.0, talk_time=10.0)}
    quick = (AgentSpec("1001", ring_time=Dist("fixed", 0.5), talk_time=Dist("fixed", 10.0)),)
    async with rig(db_url, numbers, agents=quick) as r:
        await wait_for(lambda: len(r.tracker.agents()) >= 1, what="agents")
        await r.runner.start()
        await wait_for(lambda: all_decided(r, 1), what="outcome")
        await no_flight_left(r)
        (row,) = attempts(r.engine)
        assert row.outcome == "answered"
        assert row.bridge_wait_s is not None
        assert 0.0 <= row.bridge_wait_s <= r.runner.settings.safe_harbour_s
        st = campaign_status(db_url, r.campaign_id, capsys)
        assert st["answer_to_agent"]["timed"] == 1
        assert st["answer_to_agent"]["max_s"] == pytest.approx(row.bridge_wait_s, abs=1e-3)
        check_accounting(r)


async def test_live_answer_waiting_3s_is_abandoned_with_safe_harbour_and_72h(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    numbers = {"+8613900000041": NumberOverride(outcome="answer", ring_time=1.0, talk_time=60.0)}
    slow = (AgentSpec("1001", ring_time=Dist("fixed", 3.0), talk_time=Dist("fixed", 30.0)),)
    async with rig(db_url, numbers, agents=slow) as r:
        await wait_for(lambda: len(r.tracker.agents()) >= 1, what="agents")
        await r.runner.start()
        await wait_for(lambda: all_decided(r, 1), what="outcome")
        await no_flight_left(r)
        (row,) = attempts(r.engine)
        assert row.outcome == "abandoned"
        assert row.ended_at is not None and row.hangup_by == "system"
        # no agent ever came: the wait stored is live answer -> the end of the call, past
        # the 2-second rule (the queue's 2 s, then the safe-harbour message)
        assert row.bridge_wait_s is not None
        assert row.bridge_wait_s > r.runner.settings.safe_harbour_s
        answered = row.answered_at.replace(tzinfo=dt.UTC).timestamp()
        ended = row.ended_at.replace(tzinfo=dt.UTC).timestamp()
        assert row.bridge_wait_s == pytest.approx(ended - answered, abs=0.05)
        st = campaign_status(db_url, r.campaign_id, capsys)
        assert st["answer_to_agent"]["timed"] == 1
        assert st["answer_to_agent"]["max_s"] == pytest.approx(row.bridge_wait_s, abs=1e-3)
        with session_scope(r.engine) as s:  # the rule in the simulator's time (2 s x SCALE)
            waits = answer_to_agent(s, [r.campaign_id], r.runner.settings.safe_harbour_s)
        assert waits[r.campaign_id]["over_rule"] == 1
        assert r.runner.stats["abandoned"] == 1
        assert r.runner.stats["abandoned_without_safe_harbour"] == 0
        (st,) = r.runner.status()
        assert st["abandoned_without_safe_harbour"] == 0 and st["answer_to_agent_over_rule"] == 0
        played = [
            m
            for m in r.sim.events
            if m.name == "Newexten"
            and m.get("Linkedid") == row.channel_id
            and m.get("AppData") == "memberline/safe-harbour"
        ]
        assert played, "the safe-harbour message was not played"
        with session_scope(r.engine) as s:
            e = s.scalars(select(CallListEntry)).one()
            assert e.next_attempt_at is not None
            due = e.next_attempt_at.replace(tzinfo=dt.UTC).timestamp()
            assert due - r.clock() > 71 * 3600  # no redial within 72 h of an abandoned call
        ab = r.runner.ledger.abandons(r.campaign_id, r.clock())
        assert (ab.window_abandoned, ab.window_live) == (1.0, 1.0)
        check_accounting(r)


async def test_failed_ivr_call_opens_no_survey_and_ivr_calls_get_their_end(
    sqlite_url: str,
) -> None:
    engine = make_engine(sqlite_url)
    services = await start_survey_services(engine, agi_host="127.0.0.1", agi_port=0)
    numbers = {
        "+8613900000051": NumberOverride(outcome="busy"),
        "+8613900000052": NumberOverride(
            outcome="answer", ring_time=1.0, survey=("early:4", "9", "2")
        ),
    }
    try:
        async with rig(
            sqlite_url,
            numbers,
            mode=DialMode.IVR,
            survey="satisfaction",
            agi_port=services.agi.port,
        ) as r:
            await r.runner.start()
            await wait_for(lambda: all_decided(r, 2), what="outcomes")
            await no_flight_left(r)
            rows = by_phone(r.engine)
            busy, answered = rows["+8613900000051"][0], rows["+8613900000052"][0]
            assert busy.outcome == "busy"
            assert answered.outcome == "answered"
            for row in (busy, answered):
                assert row.ended_at is not None and row.hangup_by is not None
            with session_scope(r.engine) as s:
                responses = list(s.scalars(select(SurveyResponse)))
                # one survey for the answered call; none for the failed one's dummy channel
                assert [x.response_key for x in responses] == [answered.channel_id]
                # the 4 pressed during the intro is the CSAT answer, not lost
                assert responses[0].csat == 4
            check_accounting(r)
    finally:
        await services.close()
        engine.dispose()


EXACT_AMD = OutboundSpec(amd_human_as_machine=0.0, amd_machine_as_human=0.0)
AMD_NUMBERS = {
    "+8613900000061": NumberOverride(outcome="answer", ring_time=1.0, talk_time=20.0),
    "+8613900000062": NumberOverride(outcome="voicemail", ring_time=1.0, talk_time=20.0),
}


async def test_amd_on_hangs_up_machines_and_starts_the_clock_at_the_verdict(
    sqlite_url: str,
) -> None:
    async with rig(sqlite_url, AMD_NUMBERS, amd="on", outbound=EXACT_AMD) as r:
        await wait_for(lambda: len(r.tracker.agents()) >= 2, what="agents")
        await r.runner.start()
        await wait_for(lambda: all_decided(r, 2), what="outcomes")
        await no_flight_left(r)
        (st,) = r.runner.status()
        assert 0 <= st["answer_to_agent_max_s"] <= r.runner.settings.safe_harbour_s
        got = {k: v[0].outcome for k, v in by_phone(r.engine).items()}
        # the person reached an agent within 2 s of AMD's verdict (not of the answer:
        # AMD listened 1.6 s first); the machine was hung up, recorded as `machine`
        assert got == {"+8613900000061": "answered", "+8613900000062": "machine"}
        statuses = {
            m.get("Linkedid"): m.get("Value")
            for m in r.sim.events
            if m.name == "VarSet" and m.get("Variable") == "AMDSTATUS"
        }
        assert sorted(v or "" for v in statuses.values()) == ["HUMAN", "MACHINE"]
        check_accounting(r)


def stored_window(r: Rig) -> WindowCounts:
    with session_scope(r.engine) as s:
        return window_counts(s, [r.campaign_id])[r.campaign_id]


async def test_amd_auto_routes_machine_verdicts_to_agents_and_learns_from_dispositions(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The trial routes a machine verdict to a free agent. It is no live answer until the
    agent's disposition says what was there; then it counts by that (here: a machine, a
    verified AMD verdict), in the ledger and in the stored window alike."""
    numbers = {
        "+8613900000061": NumberOverride(outcome="answer", ring_time=1.0, talk_time=20.0),
        # answers later: the person's call has its agent by the machine's verdict
        "+8613900000062": NumberOverride(outcome="voicemail", ring_time=6.0, talk_time=20.0),
    }
    async with rig(db_url, numbers, amd="auto", outbound=EXACT_AMD) as r:
        await wait_for(lambda: len(r.tracker.agents()) >= 2, what="agents")
        await r.runner.start()
        await wait_for(lambda: all_decided(r, 2), what="outcomes")
        camp = r.runner.campaigns[r.campaign_id]
        assert camp.amd.verify_probability() == 1.0  # the trial: machine verdicts verified
        rows = by_phone(r.engine)
        got = {k: v[0].outcome for k, v in rows.items()}
        assert got == {"+8613900000061": "answered", "+8613900000062": "answered"}
        assert rows["+8613900000062"][0].amd_status == "MACHINE"
        assert rows["+8613900000061"][0].amd_status == "HUMAN"
        # the verification call waits for its disposition: one live answer so far, not two
        ab = r.runner.ledger.abandons(r.campaign_id, r.clock())
        assert (ab.window_abandoned, ab.window_live) == (0.0, 1.0)
        assert r.runner.ledger.pending_verification(r.campaign_id) == 1
        assert stored_window(r) == WindowCounts(live=1.0)
        before = camp.amd.false_positive_rate()[0]
        # the agents' wrap-ups: the person was a person, the machine verdict was right
        with session_scope(r.engine) as s:
            for a in s.scalars(select(CallAttempt)):
                machine = (a.phone_e164 or "").endswith("62")
                a.disposition = "voicemail" if machine else "satisfied"
        await wait_for(lambda: not r.runner._amd_pending, what="dispositions read")
        # one live answer AMD called human: the false-positive estimate drops
        assert camp.amd.false_positive_rate()[0] < before
        assert r.runner.ledger.pending_verification(r.campaign_id) == 0
        ab = r.runner.ledger.abandons(r.campaign_id, r.clock())
        assert (ab.window_abandoned, ab.window_live) == (0.0, 1.0)  # a machine: not live
        assert stored_window(r) == WindowCounts(live=1.0, verified=1.0)
        st = campaign_status(db_url, r.campaign_id, capsys)
        assert st["abandonment"]["rate"] == 0.0 and st["abandonment"]["amd_verified"] == 1
        await no_flight_left(r)
        check_accounting(r)


async def test_amd_verification_needs_a_free_agent_and_machine_hangups_count_their_share(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No agent ready when AMD calls the second answer a machine (one talks to the person,
    the other went on a break): the sampled verdict is hung up at once (nobody is left
    waiting past 2 s, no abandon shown), and the machine hang-up counts as the estimated
    share of a person AMD hung up on (Ofcom): 1/2 with no verified sample yet."""
    numbers = {
        "+8613900000071": NumberOverride(outcome="answer", ring_time=1.0, talk_time=100.0),
        "+8613900000072": NumberOverride(outcome="voicemail", ring_time=8.0, talk_time=20.0),
    }
    agents = tuple(AgentSpec(ext, talk_time=Dist("fixed", 100.0)) for ext in ("1001", "1002"))
    async with rig(db_url, numbers, agents=agents, amd="auto", outbound=EXACT_AMD) as r:
        await wait_for(lambda: len(r.tracker.agents()) >= 2, what="agents")
        await r.runner.start()
        await wait_for(
            lambda: (
                [a.outcome for a in attempts(r.engine)] in (["answered", None], [None, "answered"])
            ),
            what="the person with an agent, the machine still ringing",
        )
        for ext in ("1001", "1002"):  # a break: no agent is ready for the machine verdict
            await r.ami.send_action(
                {"Action": "QueuePause", "Interface": f"Local/{ext}@agents/n", "Paused": "true"}
            )
        await wait_for(lambda: all_decided(r, 2), what="outcomes")
        rows = by_phone(r.engine)
        got = {k: v[0].outcome for k, v in rows.items()}
        assert got == {"+8613900000071": "answered", "+8613900000072": "machine"}
        # the dialplan hung the sampled verdict up: it never joined the queue
        machine_id = rows["+8613900000072"][0].channel_id
        assert not any(
            m.name == "QueueCallerJoin" and m.get("Linkedid") == machine_id for m in r.sim.events
        )
        assert r.runner.ledger.verification_reach(r.campaign_id) == 0.0
        ab = r.runner.ledger.abandons(r.campaign_id, r.clock())
        assert ab.amd_fp_share == 0.5
        assert (ab.window_abandoned, ab.window_live) == (0.5, 1.5)
        assert (ab.hour_abandoned, ab.hour_live) == (0.5, 1.5)
        w = stored_window(r)
        assert w == WindowCounts(live=1.0, machine=1.0)
        assert window_abandons(w)[:2] == (0.5, 1.5)  # the stored rows say the same
        st = campaign_status(db_url, r.campaign_id, capsys)
        assert st["abandonment"]["rate"] == pytest.approx(1 / 3, abs=1e-4)
        assert st["abandonment"]["amd_false_positives_counted"] == 0.5
        (live,) = r.runner.status()
        assert live["abandon_rate"] == pytest.approx(1 / 3)
        assert r.runner.stats["abandoned"] == 0
        check_accounting(r)
