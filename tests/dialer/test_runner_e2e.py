"""The campaign runner end to end: SQLite + PBX simulator over real AMI (loopback).

Members' numbers are forced to answer / busy / no answer / congestion / reject by the
simulator's per-number overrides; the runner leases, checks, records attempts, originates
with a preset ChannelId and stores each outcome from the tracker's domain events.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, select

from crm_bridge.db import make_engine, session_scope
from crm_bridge.models import (
    CallAttempt,
    CallListEntry,
    CampaignKind,
    DialMode,
    EntryStatus,
    Member,
    MemberPhone,
)
from cti.pbxsim import AgentSpec, Dist, NumberOverride, QueueSpec, Scenario
from cti.tracker import AgentState
from dialer.dial_rules import DialRetryPolicy
from dialer.runner import RunnerSettings
from memberline.testing import AMI_USER, DialerRig, pbx_simulator, runner_on_pbx, shifted_clock
from tests.dialer.support import add_campaign

pytestmark = pytest.mark.e2e

# Noon in Shanghai on a weekday: inside every member's calling window whatever CI's clock says.
BASE = dt.datetime(2026, 6, 1, 4, 0, tzinfo=dt.UTC).timestamp()

OUTCOMES = {
    "+8613900000001": "answer",
    "+8613900000002": "busy",
    "+8613900000003": "noanswer",
    "+8613900000004": "congestion",
    "+8613900000005": "reject",
}


@dataclass
class Rig(DialerRig):
    campaign_id: int


AMI = {"secret": "s3cret-ami", "reconnect_initial": 0.1, "reconnect_max": 0.5}


def seed(engine: Engine, numbers: list[str], dnc: set[str] = frozenset()) -> int:  # type: ignore[assignment]
    with session_scope(engine) as s:
        c = add_campaign(s, "e2e", CampaignKind.POST_PURCHASE, DialMode.PROGRESSIVE)
        for i, num in enumerate(numbers):
            m = Member(
                member_no=f"E{i:03d}",
                name=f"测试会员{i}",
                joined_on=dt.date(2025, 1, 1),
                timezone="Asia/Shanghai",
                do_not_call=num in dnc,
            )
            m.phones.append(MemberPhone(e164=num))
            s.add(m)
            s.flush()
            s.add(CallListEntry(campaign_id=c.id, member_id=m.id, phone_e164=num))
        return c.id


@pytest.fixture
async def rig(sqlite_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    answer_prob = float(getattr(request, "param", {}).get("answer_prob", 1.0))
    engine = make_engine(sqlite_url)
    scenario = Scenario(
        seed=7,
        time_scale=0.1,
        queues=(QueueSpec("members", members=("1001", "1002")),),
        agents=(
            AgentSpec("1001", talk_time=Dist("fixed", 40.0), answer_prob=answer_prob),
            AgentSpec("1002", talk_time=Dist("fixed", 40.0), answer_prob=answer_prob),
        ),
        overrides={
            n: NumberOverride(outcome=o, ring_time=2.0, talk_time=30.0) for n, o in OUTCOMES.items()
        },
    )
    clock = shifted_clock(BASE)
    async with (
        pbx_simulator(scenario, users={AMI_USER: AMI["secret"]}) as sim,
        runner_on_pbx(
            engine,
            sim,
            RunnerSettings(
                owner="hub-e2e",
                tick_s=0.2,
                ring_timeout_s=10,
                policy=DialRetryPolicy(max_attempts=2, busy_s=3600),
            ),
            clock=clock,
            ami=AMI,
        ) as d,
    ):
        campaign_id = seed(engine, list(OUTCOMES))
        yield Rig(d.engine, d.sim, d.ami, d.tracker, d.runner, d.clock, campaign_id)
    engine.dispose()


async def wait_for(pred: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


def outcomes(engine: Engine) -> dict[str, list[str]]:
    with session_scope(engine) as s:
        rows = s.execute(
            select(CallAttempt.phone_e164, CallAttempt.outcome).order_by(CallAttempt.id)
        ).all()
    out: dict[str, list[str]] = {}
    for phone, outcome in rows:
        out.setdefault(str(phone), []).append(str(outcome))
    return out


async def test_runner_dials_and_stores_each_outcome(rig: Rig) -> None:
    # Agents log in to the queue through the tracker's resync (static members).
    await wait_for(lambda: len(rig.tracker.agents()) >= 2)
    await rig.runner.start()
    await wait_for(
        lambda: (
            all(o != "None" for os in outcomes(rig.engine).values() for o in os)
            and len(outcomes(rig.engine)) == len(OUTCOMES)
        )
    )
    got = {k: v[0] for k, v in outcomes(rig.engine).items()}
    assert got == {
        "+8613900000001": "answered",
        "+8613900000002": "busy",
        "+8613900000003": "no_answer",
        "+8613900000004": "congestion",
        "+8613900000005": "busy",  # Hangup(21) "call rejected": retried like busy
    }
    with session_scope(rig.engine) as s:
        entries = {e.phone_e164: e for e in s.scalars(select(CallListEntry))}
        assert entries["+8613900000001"].status is EntryStatus.DONE
        busy = entries["+8613900000002"]
        assert busy.status is EntryStatus.PENDING and busy.attempts == 1
        assert busy.next_attempt_at is not None
        # every Originate the PBX saw carried one of our attempt ids, once
        ids = [str(a.channel_id) for a in s.scalars(select(CallAttempt))]
    originated = [m.get("Uniqueid") for m in rig.sim.events if m.name == "OriginateResponse"]
    assert sorted(i for i in originated if i and i.startswith("ml-")) == sorted(ids)
    assert rig.sim.stats.calls_originated == len(OUTCOMES)


async def test_dnc_added_after_list_build_is_honoured(rig: Rig) -> None:
    with session_scope(rig.engine) as s:
        m = s.scalars(
            select(Member).join(MemberPhone).where(MemberPhone.e164 == "+8613900000001")
        ).one()
        m.do_not_call = True
    await wait_for(lambda: len(rig.tracker.agents()) >= 2)
    await rig.runner.start()
    await wait_for(lambda: len(outcomes(rig.engine)) == len(OUTCOMES) - 1)
    await asyncio.sleep(0.5)
    assert "+8613900000001" not in outcomes(rig.engine)
    with session_scope(rig.engine) as s:
        e = s.scalars(
            select(CallListEntry).where(CallListEntry.phone_e164 == "+8613900000001")
        ).one()
        assert e.status is EntryStatus.CANCELLED and e.attempts == 0


async def test_hub_crash_mid_call_never_redials_the_attempt(rig: Rig) -> None:
    """The runner dies with calls in flight; a new one (new AMI session) resumes cleanly."""
    await wait_for(lambda: len(rig.tracker.agents()) >= 2)
    await rig.runner.start()
    # wait until the answered member is talking to an agent, then "kill" the hub abruptly
    await wait_for(
        lambda: any(a.state is AgentState.ON_CALL for a in rig.tracker.agents()), within=10
    )
    assert rig.runner._task is not None
    rig.runner._task.cancel()  # everything in memory is lost, as with kill -9
    await rig.ami.close()
    placed_before = rig.sim.stats.calls_originated

    async with runner_on_pbx(
        rig.engine, rig.sim, rig.runner.settings, clock=rig.clock, ami=AMI
    ) as second:
        await (
            second.runner.start()
        )  # no sleep: the calls in flight are resolved from the channel list
        await wait_for(
            lambda: (
                len(outcomes(rig.engine)) == len(OUTCOMES)
                and all(o != "None" for os in outcomes(rig.engine).values() for o in os)
            )
        )
    with session_scope(rig.engine) as s:
        keys = [a.attempt_key for a in s.scalars(select(CallAttempt))]
    assert len(keys) == len(set(keys))
    # every attempt row maps to exactly one Originate on the PBX: nothing dialled twice
    assert rig.sim.stats.calls_originated == len(keys)
    assert placed_before <= len(keys)
    assert outcomes(rig.engine)["+8613900000001"][0] == "answered"


@pytest.mark.parametrize("rig", [{"answer_prob": 0.0}], indirect=True)
async def test_two_second_rule_abandons_and_blocks_redial(rig: Rig) -> None:
    """Agents who never pick up: the answered member hears the safe-harbour message after 2 s."""
    await wait_for(lambda: len(rig.tracker.agents()) >= 2)
    await rig.runner.start()
    await wait_for(lambda: "abandoned" in outcomes(rig.engine).get("+8613900000001", []))
    assert rig.runner.stats["abandoned"] >= 1
    ab = rig.runner.ledger.abandons(rig.campaign_id, rig.clock())
    assert ab.window_live >= 1 and ab.window_abandoned >= 1
    with session_scope(rig.engine) as s:
        e = s.scalars(
            select(CallListEntry).where(CallListEntry.phone_e164 == "+8613900000001")
        ).one()
        # no redial within 72 h of an abandoned call
        assert e.next_attempt_at is not None
        assert e.next_attempt_at.timestamp() - rig.clock() > 71 * 3600
    assert any(m.name == "QueueCallerLeave" for m in rig.sim.events)
