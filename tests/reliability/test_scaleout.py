"""Scale-out, proven: two hubs, ONE PostgreSQL, TWO PBX simulators, ONE campaign.

Each hub is a whole ``start_stack`` (AMI client, tracker, console hub, campaign runner,
survey FastAGI, webhooks, outbox worker) attached to its own simulator, as in production
each hub has its own Asterisk. Both lease entries of the same progressive campaign and
rows of the same outbox; one pair of local sinks (SMS + SMTP) receives what BOTH
workers send, so a message sent twice by two hubs would show up there.

Proven, from what crossed the sockets and rows written:

* every (entry, attempt number) was originated exactly once across both PBXs, and each
  PBX carried part of the campaign; no attempt key twice; no attempt marked
  ``interrupted`` (hub B starting while hub A has calls in flight must not "recover" them);
* every outbox row reached the sinks at most once (SMS by outbox id, email by Message-ID);
* an agent whose phone is on hub A's PBX and whose console is on hub B gets the screen pop
  and the call states of a call ringing on hub A's PBX (LISTEN/NOTIFY), with the member in
  reach on hub B;
* a supervisor on either hub sees the other hub's agents and summed figures on the wallboard.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from crm_bridge.db import make_engine, session_scope
from crm_bridge.models import (
    Agent,
    CallAttempt,
    CallListEntry,
    CampaignKind,
    Channel,
    DialMode,
    EntryStatus,
    Member,
    MemberPhone,
    OutboxMessage,
    OutboxStatus,
    Role,
)
from cti.pbxsim import AgentSpec, NumberOverride, PbxSimulator, QueueSpec, Scenario
from cti.pbxsim.scenario import fixed
from dialer.dial_rules import CallingWindow, DialRetryPolicy
from dialer.fallback.outbox import enqueue
from dialer.fallback.purposes import Purpose
from dialer.fallback.sinks import LocalSinks
from dialer.runner import RunnerSettings
from memberline.agentbot import AgentBot
from memberline.config import Config, Secret
from memberline.stack import Stack, start_stack
from tests.cti.hub_support import PASSWORD, Console, _pw_hash
from tests.dialer.support import add_campaign

pytestmark = [pytest.mark.e2e, pytest.mark.pg]

AMI_USER, AMI_SECRET = "memberline", "scaleout-ami-secret"
BOTS_A = ("1001", "1002", "1003")
BOTS_B = ("1004", "1005", "1006")
CROSS = "2001"  # phone on PBX A, console on hub B
SUPERVISOR = "9001"
N_ANSWER, N_BUSY, N_NOANSWER = 44, 8, 8
GREETED = 24  # extra outbox rows (email greetings) both workers compete for


def _zone_at_one_pm() -> str:
    """A fixed-offset zone where it is about 13:00 now: inside any calling window."""
    off = 13 - dt.datetime.now(dt.UTC).hour
    if off > 14:
        off -= 24
    if off < -12:
        off += 24
    return f"Etc/GMT-{off}" if off >= 0 else f"Etc/GMT+{-off}"


def _number(i: int) -> str:
    return f"+86139{i:08d}"


def _outcome(i: int) -> str:
    if i < N_ANSWER:
        return "answer"
    if i < N_ANSWER + N_BUSY:
        return "busy"
    return "noanswer"


N_ENTRIES = N_ANSWER + N_BUSY + N_NOANSWER


def _scenario(agents: tuple[str, ...], seed: int, vip: tuple[str, ...] = ()) -> Scenario:
    specs = [AgentSpec(ext, ring_time=fixed(1.0), talk_time=fixed(5.0)) for ext in agents] + [
        AgentSpec(ext, auto_answer=False, auto_hangup=False, ring_time=fixed(0.5)) for ext in vip
    ]
    queues = [QueueSpec("members", exten="8000", members=agents, timeout=30.0, max_wait=600.0)]
    if vip:
        queues.append(QueueSpec("vip", exten="8001", members=vip, timeout=600.0, max_wait=600.0))
    return Scenario(
        seed=seed,
        time_scale=0.1,
        queues=tuple(queues),
        agents=tuple(specs),
        overrides={
            _number(i): NumberOverride(outcome=_outcome(i), ring_time=2.0, talk_time=120.0)
            for i in range(N_ENTRIES)
        },
    )


def _seed(engine: Engine) -> int:
    tz = _zone_at_one_pm()
    with session_scope(engine) as s:
        for code in (*BOTS_A, *BOTS_B, CROSS, SUPERVISOR, "9002"):
            role = Role.SUPERVISOR if code.startswith("9") else Role.AGENT
            s.add(
                Agent(
                    code=code,
                    extension=code,
                    name=f"Agent {code}",
                    role=role,
                    password_hash=_pw_hash(),
                )
            )
        c = add_campaign(s, "scale-out", CampaignKind.POST_PURCHASE, DialMode.PROGRESSIVE)
        for i in range(N_ENTRIES + GREETED):
            m = Member(
                member_no=f"S{i:04d}",
                name=f"扩容会员{i}",
                joined_on=dt.date(2025, 1, 1),
                timezone=tz,
                email=f"m{i}@example.com",
            )
            m.phones.append(MemberPhone(e164=_number(i)))
            s.add(m)
            s.flush()
            if i < N_ENTRIES:
                s.add(CallListEntry(campaign_id=c.id, member_id=m.id, phone_e164=_number(i)))
            else:
                enqueue(s, Purpose.DORMANT_GREETING, m.id, Channel.EMAIL)
        return c.id


def _config(url: str, sinks: LocalSinks, sim: PbxSimulator) -> Config:
    base = Config()
    return dataclasses.replace(
        base,
        database=dataclasses.replace(base.database, url=url),
        ami=dataclasses.replace(
            base.ami,
            host="127.0.0.1",
            port=sim.port,
            username=AMI_USER,
            secret=Secret(AMI_SECRET),
            reconnect_max_s=1.0,
        ),
        hub=dataclasses.replace(base.hub, bind="127.0.0.1", port=0),
        agi=dataclasses.replace(base.agi, bind="127.0.0.1", port=0),
        # the outbox figures below count this test's rows only (no greetings on a holiday)
        care=dataclasses.replace(base.care, greetings_in_serve=False),
        messaging=dataclasses.replace(
            base.messaging,
            # quiet hours off (start == end) and a roomy cap: the test's clock is any time
            quiet_start="00:00",
            quiet_end="00:00",
            daily_cap_per_member=10,
            twilio_account_sid=sinks.sms.account_sid,
            twilio_auth_token=Secret(sinks.sms.auth_token),
            twilio_base_url=sinks.sms.base_url,
            smtp_host="127.0.0.1",
            smtp_port=sinks.mail.port,
            smtp_tls="none",
            webhook_bind="127.0.0.1",
            webhook_port=0,
            public_url="http://127.0.0.1",
        ),
    )


def _runner(owner: str) -> RunnerSettings:
    return RunnerSettings(
        owner=owner,
        window=CallingWindow(dt.time(8), dt.time(21)),
        policy=DialRetryPolicy(
            busy_s=1,
            no_answer_s=1,
            congestion_s=1,
            failed_s=1,
            max_attempts=2,
            max_attempts_per_member_per_day=5,
            # Progressive pacing counts agents finishing their wrap-up as about to be free;
            # at time_scale 0.1 the 2-second rule is 0.2 s, so a few answered members are
            # abandoned (safe-harbour) -- they come back as attempt 2, which is fine here.
            no_redial_after_abandon_s=1,
        ),
        tick_s=0.2,
        ring_timeout_s=3,
        trunk=Config().ami.trunk,
    )


async def _wait(pred: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _wait_db(engine: Engine, fn: Callable[[Any], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while True:
        done = await asyncio.to_thread(_check, engine, fn)
        if done:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {_progress(engine)}")
        await asyncio.sleep(0.3)


def _progress(engine: Engine) -> dict[str, Any]:
    with session_scope(engine) as s:
        entries = s.execute(
            select(CallListEntry.status, func.count()).group_by(CallListEntry.status)
        ).all()
        outcomes = s.execute(
            select(CallAttempt.outcome, func.count()).group_by(CallAttempt.outcome)
        ).all()
        outbox = s.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    return {
        "entries": {str(k): n for k, n in entries},
        "attempts": {str(k): n for k, n in outcomes},
        "outbox": {str(k): n for k, n in outbox},
    }


def _check(engine: Engine, fn: Callable[[Any], bool]) -> bool:
    with session_scope(engine) as s:
        return fn(s)


def _campaign_done(s: Any) -> bool:
    open_ = s.scalar(
        select(func.count()).where(
            CallListEntry.status.in_([EntryStatus.PENDING, EntryStatus.LEASED, EntryStatus.DIALING])
        )
    )
    unresolved = s.scalar(
        select(func.count()).where(CallAttempt.entry_id.is_not(None), CallAttempt.outcome.is_(None))
    )
    return open_ == 0 and unresolved == 0


def _outbox_done(s: Any) -> bool:
    rows = s.execute(select(OutboxMessage.status)).scalars().all()
    busy = {OutboxStatus.PENDING, OutboxStatus.LEASED, OutboxStatus.SENDING}
    # every exhausted entry queued its SMS; every greeting its email
    return len(rows) >= N_BUSY + N_NOANSWER + GREETED and not any(r in busy for r in rows)


def _channel_ids(sim: PbxSimulator) -> list[str]:
    return [
        str(m.get("Uniqueid"))
        for m in sim.events
        if m.name == "OriginateResponse" and str(m.get("Uniqueid") or "").startswith("ml-")
    ]


async def test_two_hubs_one_database_one_campaign(pg_url: str) -> None:
    t0 = time.monotonic()
    engine = make_engine(pg_url)
    await asyncio.to_thread(_seed, engine)
    sinks = await LocalSinks.start()
    sim_a = PbxSimulator(_scenario(BOTS_A, 1, vip=(CROSS,)), ami_users={AMI_USER: AMI_SECRET})
    sim_b = PbxSimulator(_scenario(BOTS_B, 2), ami_users={AMI_USER: AMI_SECRET})
    await sim_a.start("127.0.0.1", 0)
    await sim_b.start("127.0.0.1", 0)
    stacks: list[Stack] = []
    bots: list[AgentBot] = []
    consoles: list[Console] = []
    try:
        a = await start_stack(
            _config(pg_url, sinks, sim_a), runner=_runner("hub-a"), local_sinks=False, owner="hub-a"
        )
        stacks.append(a)
        sim_a.agi_port = a.surveys.agi.port
        for i, code in enumerate(BOTS_A):
            bot = AgentBot("127.0.0.1", a.hub.hub.port, code, PASSWORD, wrap_s=(0.3, 0.1), seed=i)
            bots.append(bot)
            await bot.start()
        # Hub B comes up while hub A has calls in flight: its start-up recovery must leave
        # hub A's attempts alone (they are not on PBX B).
        await _wait(lambda: sim_a.stats.calls_originated >= 2, 15, "hub A dialling")
        b = await start_stack(
            _config(pg_url, sinks, sim_b), runner=_runner("hub-b"), local_sinks=False, owner="hub-b"
        )
        stacks.append(b)
        sim_b.agi_port = b.surveys.agi.port
        for i, code in enumerate(BOTS_B):
            bot = AgentBot(
                "127.0.0.1", b.hub.hub.port, code, PASSWORD, wrap_s=(0.3, 0.1), seed=9 + i
            )
            bots.append(bot)
            await bot.start()
        assert a.bus is not None and b.bus is not None
        await _wait(lambda: a.bus.listening.is_set() and b.bus.listening.is_set(), 5, "LISTEN")

        # -- cross-hub pop: agent 2001's phone is on PBX A, their console on hub B
        cross = Console(b.hub.hub, CROSS)
        sup_a = Console(a.hub.hub, SUPERVISOR)
        sup_b = Console(b.hub.hub, "9002")
        for c in (cross, sup_a, sup_b):
            consoles.append(c)
            await c.__aenter__()
        await _wait(lambda: a.bus.present(CROSS), 5, "hub A learning 2001 is on hub B")
        caller = _number(N_ENTRIES)  # a member (greeting-only), not on the call list
        mark = cross.mark()
        await sim_a.inbound_call(caller, "Caller", queue="vip", patience=600.0)
        pop = await cross.wait_for("screen_pop", within=5, after=mark)
        assert pop["kind"] == "member" and pop["queue"] == "vip"
        assert pop["profile"]["member"]["name"] == f"扩容会员{N_ENTRIES}"
        with session_scope(engine) as s:
            mid = s.scalar(select(MemberPhone.member_id).where(MemberPhone.e164 == caller))
        assert mid is not None and b.hub.hub.granted(CROSS, mid)  # in reach where they act
        assert not a.hub.hub.sessions.logged_in(CROSS)  # it really came over the bus
        call_id = pop["call_id"]
        iface = f"Local/{CROSS}@agents/n"
        assert await sim_a.agent_answer(iface)
        await cross.wait_for(
            "call_state", lambda d: d["call_id"] == call_id and d["state"] == "up", 5, after=mark
        )
        assert await sim_a.agent_hangup(iface)
        await cross.wait_for(
            "call_state", lambda d: d["call_id"] == call_id and d["state"] == "ended", 5, after=mark
        )

        # -- wallboards: each supervisor sees the other hub's agents
        def sees(
            con: Console, other: str, codes: tuple[str, ...]
        ) -> Callable[[dict[str, Any]], bool]:
            def pred(d: dict[str, Any]) -> bool:
                rows = {r["agent"]: r for r in d["agents"]}
                return other in d.get("hubs", []) and all(
                    rows[c]["state"] != "logged_out" and rows[c].get("hub") == other for c in codes
                )

            return pred

        await sup_a.request("wallboard_subscribe")
        await sup_b.request("wallboard_subscribe")
        wb_a = await sup_a.wait_for("wallboard", sees(sup_a, "hub-b", BOTS_B), within=6)
        wb_b = await sup_b.wait_for("wallboard", sees(sup_b, "hub-a", (*BOTS_A, CROSS)), within=6)
        for wb in (wb_a, wb_b):
            logged_in = sum(n for st, n in wb["agents_by_state"].items() if st != "logged_out")
            assert logged_in == len(BOTS_A) + len(BOTS_B) + 1  # the whole centre, each once
        # the cross agent's row on hub B's own board comes from hub A (whose PBX has the phone)
        assert {r["agent"]: r for r in wb_b["agents"]}[CROSS]["hub"] == "hub-a"

        # -- the campaign and the outbox run to the end on both hubs
        await _wait_db(engine, _campaign_done, 40, "every entry finished")
        await _wait_db(engine, _outbox_done, 20, "every outbox row sent")
    finally:
        for bot in bots:
            with contextlib.suppress(Exception):
                await bot.stop()
        for c in consoles:
            with contextlib.suppress(Exception):
                await c.__aexit__(None, None, None)
        for st in stacks:
            await st.stop()
        await sim_a.stop()
        await sim_b.stop()
        await sinks.stop()

    # -- dialled at most once per attempt, across BOTH PBXs
    ids_a, ids_b = _channel_ids(sim_a), _channel_ids(sim_b)
    assert ids_a and ids_b, "both hubs should have dialled part of the campaign"
    per_attempt = collections.Counter(
        tuple(map(int, re.match(r"ml-(\d+)-(\d+)-", cid).groups()))  # type: ignore[union-attr]
        for cid in ids_a + ids_b
    )
    assert per_attempt and max(per_attempt.values()) == 1, per_attempt.most_common(3)
    with session_scope(engine) as s:
        attempts = s.execute(
            select(CallAttempt.attempt_key, CallAttempt.channel_id, CallAttempt.outcome).where(
                CallAttempt.entry_id.is_not(None)
            )
        ).all()
        entries = {e.id: e for e in s.scalars(select(CallListEntry))}
        outbox = s.scalars(select(OutboxMessage)).all()
        owners = collections.Counter(
            o
            for (o,) in s.execute(
                select(CallListEntry.lease_owner).where(CallListEntry.lease_owner.is_not(None))
            )
        )
    keys = [k for k, _, _ in attempts]
    assert len(keys) == len(set(keys))
    assert sorted(str(c) for _, c, _ in attempts) == sorted(ids_a + ids_b)
    assert "interrupted" not in {o for _, _, o in attempts}
    assert sim_a.stats.calls_originated + sim_b.stats.calls_originated == len(attempts)
    assert not owners  # no lease left behind
    by_status = collections.Counter(e.status for e in entries.values())
    exhausted = by_status[EntryStatus.EXHAUSTED]
    assert by_status[EntryStatus.DONE] + exhausted == N_ENTRIES
    assert exhausted >= N_BUSY + N_NOANSWER  # (+ answered members abandoned twice)
    assert len(attempts) == sum(e.attempts for e in entries.values())

    # -- outbox rows sent once: what the ONE pair of sinks received from both workers
    sms_by_row = sinks.sms.by_callback_id()
    assert all(len(v) == 1 for v in sms_by_row.values()), {
        k: len(v) for k, v in sms_by_row.items() if len(v) > 1
    }
    mail_ids = collections.Counter(m.message_id for m in sinks.mail.mails)
    assert all(n == 1 for n in mail_ids.values()), mail_ids.most_common(3)
    sent = [r for r in outbox if r.status in (OutboxStatus.SENT, OutboxStatus.DELIVERED)]
    assert len(sinks.sms.messages) == sum(1 for r in sent if r.channel is Channel.SMS)
    assert len(sinks.mail.mails) == sum(1 for r in sent if r.channel is Channel.EMAIL)
    assert sum(1 for r in sent if r.channel is Channel.SMS) == exhausted
    assert sum(1 for r in sent if r.channel is Channel.EMAIL) >= GREETED
    engine.dispose()
    assert time.monotonic() - t0 < 60
