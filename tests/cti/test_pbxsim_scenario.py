"""Scenario loading, distributions, arrivals, caps, post-call survey, the CLI."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
from pathlib import Path

import pytest

from cti.pbxsim import (
    AgentSpec,
    Caller,
    Dist,
    InboundSpec,
    NumberOverride,
    PbxSimulator,
    QueueSpec,
    Scenario,
    ScenarioError,
    load_scenario,
    scenario_from_dict,
)
from tests.cti.pbxsim_helpers import AmiClient, name_of

DEMO = Path(__file__).resolve().parents[2] / "cti" / "pbxsim" / "demo_scenario.toml"


def test_demo_scenario_loads() -> None:
    sc = load_scenario(DEMO)
    assert [q.name for q in sc.queues] == ["members"]
    assert sc.inbound.callers[0] == Caller("+8613800138000", "李伟")
    assert sc.overrides["+8613800138000"] == NumberOverride("answer", 2.0, None, ("5", "10", "2"))
    assert sc.agents[0].ring_time == Dist("normal", 3.0, 1.0, 1.0)
    assert sc.agents[2].interface == "Local/1003@agents/n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"bogus": 1}, "unknown keys"),
        ({"queues": [{"name": "q", "strategy": "random"}]}, "unknown strategy"),
        ({"queues": [{"name": "q", "members": ["9"]}]}, "not an agent"),
        ({"overrides": {"+1": {"outcome": "maybe"}}}, "unknown outcome"),
        ({"agents": [{"ext": "1", "ring_time": "soon"}]}, "expected a number or a table"),
        ({"time_scale": 0}, "time_scale"),
    ],
)
def test_scenario_errors_are_clear(data: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        scenario_from_dict(data)


def test_bad_toml_is_a_scenario_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = = 1\n")
    with pytest.raises(ScenarioError):
        load_scenario(bad)


def test_distributions() -> None:
    rng = random.Random(3)
    logn = [Dist("lognormal", 120.0, 60.0).sample(rng) for _ in range(20000)]
    assert statistics.fmean(logn) == pytest.approx(120.0, rel=0.05)
    assert statistics.pstdev(logn) == pytest.approx(60.0, rel=0.1)
    norm = [Dist("normal", 3.0, 1.0, low=1.0).sample(rng) for _ in range(2000)]
    assert min(norm) >= 1.0
    assert Dist("fixed", 7.0).sample(rng) == 7.0


@pytest.mark.e2e
async def test_poisson_arrivals_use_supplied_callers() -> None:
    callers = (Caller("+8613800138000", "李伟"), Caller("+14155550100", "Mary Smith"))
    sc = Scenario(
        time_scale=0.002,
        inbound=InboundSpec(
            rate_per_minute=60.0, queue="members", callers=callers, patience=Dist("fixed", 2.0)
        ),
        agents=(
            AgentSpec("1001", ring_time=Dist("fixed", 0.5), talk_time=Dist("fixed", 1.0)),
            AgentSpec("1002"),
        ),
    )
    sim = PbxSimulator(sc)
    await sim.start()
    try:
        await asyncio.sleep(0.6)  # about 60 simulated seconds -> about 60 arrivals
        expected = sim.uptime()  # one per simulated second
    finally:
        await sim.stop()
    assert 0.5 * expected <= sim.stats.inbound_calls <= 1.6 * expected
    joins = [m for m in sim.events if m.name == "QueueCallerJoin"]
    assert {m.get("CallerIDNum") for m in joins} <= {"+8613800138000", "+14155550100"}
    assert sim.active_calls() == 0


async def test_max_calls_cap_fails_like_maxcalls() -> None:
    sim = PbxSimulator(Scenario(time_scale=0.01, max_calls=1))
    await sim.start()
    c = await AmiClient.connect(sim.port)
    try:
        await c.login()
        first = c.send(
            "Originate",
            Channel="Local/hold@members-sim",
            Context="outbound",
            Exten="park",
            Async="true",
        )
        await c.event("OriginateResponse", ActionID=first)
        second = c.send(
            "Originate",
            Channel="Local/hold@members-sim",
            Context="outbound",
            Exten="park",
            Async="true",
        )
        resp = dict(await c.event("OriginateResponse", ActionID=second))
        assert (resp["Reason"], resp["Channel"], resp["Uniqueid"]) == (
            "0",
            "Local/hold@members-sim",
            "<unknown>",
        )
        assert sim.stats.rejected_max_calls == 1
    finally:
        await c.close()
        await sim.stop()


async def test_post_call_survey_after_agent_hangs_up() -> None:
    received: list[bytes] = []
    done = asyncio.Event()

    async def agi(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env = await reader.readuntil(b"\n\n")
        received.append(env)
        for cmd in (b"ANSWER\n", b"GET DATA csat 3000 1\n"):
            writer.write(cmd)
            received.append(await reader.readline())
        writer.close()
        done.set()

    server = await asyncio.start_server(agi, "127.0.0.1", 0)
    number = "+8613800138000"
    sc = Scenario(
        time_scale=0.01,
        queues=(QueueSpec("members", exten="8000", members=("1001",), after_agent="surveys,csat"),),
        agents=(AgentSpec("1001", ring_time=Dist("fixed", 1.0), talk_time=Dist("fixed", 5.0)),),
        overrides={number: NumberOverride(survey=("2",))},
    )
    sim = PbxSimulator(sc, agi_port=server.sockets[0].getsockname()[1])
    await sim.start()
    try:
        handle = await sim.inbound_call(number, "李伟", queue="members", patience=60)
        await asyncio.wait_for(done.wait(), 5)
        assert await asyncio.wait_for(handle.done, 5) == "agent"
    finally:
        await sim.stop()
        server.close()
    env = received[0].decode()
    assert f"agi_channel: {handle.queue_channel}\n" in env
    assert "agi_callerid: +8613800138000\n" in env and "agi_calleridname: 李伟\n" in env
    assert received[1:] == [b"200 result=0\n", b"200 result=2\n"]
    names = [m.name for m in sim.events]
    assert names.index("AgentComplete") < names.index("AGIExecStart")


async def test_redirect_queue_caller_into_survey() -> None:
    got: list[bytes] = []
    done = asyncio.Event()

    async def agi(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.readuntil(b"\n\n"))
        writer.close()
        done.set()

    server = await asyncio.start_server(agi, "127.0.0.1", 0)
    sc = Scenario(
        time_scale=0.01,
        queues=(QueueSpec("members", exten="8000", members=("1001",)),),
        agents=(AgentSpec("1001", ring_time=Dist("fixed", 1.0), auto_hangup=False),),
    )
    sim = PbxSimulator(sc, agi_port=server.sockets[0].getsockname()[1])
    await sim.start()
    c = await AmiClient.connect(sim.port)
    try:
        await c.login()
        handle = await sim.inbound_call("+8613800138000", "Li Wei", patience=60)
        await c.event("AgentConnect")
        aid = c.send(
            "Redirect", Channel=handle.queue_channel, Context="surveys", Exten="csat", Priority="1"
        )
        assert dict(await c.response(aid))["Message"] == "Redirect successful"
        complete = dict(await c.event("AgentComplete"))
        assert complete["Reason"] == "transfer"
        await asyncio.wait_for(done.wait(), 5)
        assert await asyncio.wait_for(handle.done, 5) == "redirect"
    finally:
        await c.close()
        await sim.stop()
        server.close()
    assert b"agi_network_script: survey?name=csat\n" in got[0]


@pytest.mark.e2e
async def test_cli_simulate_pbx(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "memberline",
        "simulate-pbx",
        "--port",
        "0",
        "--seconds",
        "3",
        "--scenario",
        str(DEMO),
        "--time-scale",
        "0.01",
        "--ami-secret",
        "s3cret",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None and proc.stdout is not None
    line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
    port = int(line.rsplit(":", 1)[1])
    c = await AmiClient.connect(port)
    try:
        assert dict(await c.login("memberline", "s3cret"))["Message"] == "Authentication accepted"
        joined = await c.event("QueueCallerJoin", wait=10)
        assert name_of(joined) == "QueueCallerJoin"
    finally:
        await c.close()
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0
    stats = json.loads(out)
    assert stats["inbound_calls"] >= 1


async def test_postcall_wait_then_setvar_and_redirect_to_survey() -> None:
    """docs/surveys.md flow: Queue() then Wait(5); the hub Setvars and Redirects to survey,start."""
    got: list[bytes] = []
    done = asyncio.Event()

    async def agi(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.readuntil(b"\n\n"))
        writer.write(b"GET VARIABLE MEMBER_ID\n")
        got.append(await reader.readline())
        writer.close()
        done.set()

    server = await asyncio.start_server(agi, "127.0.0.1", 0)
    sc = Scenario(
        time_scale=0.01,
        queues=(QueueSpec("members", exten="8000", members=("1001",), after_agent="Wait(5)"),),
        agents=(AgentSpec("1001", ring_time=Dist("fixed", 1.0), talk_time=Dist("fixed", 2.0)),),
    )
    sim = PbxSimulator(
        sc, agi_port=server.sockets[0].getsockname()[1], survey_agi_path="survey?name=satisfaction"
    )
    await sim.start()
    c = await AmiClient.connect(sim.port)
    try:
        await c.login()
        handle = await sim.inbound_call("+8613800138000", "Li Wei", patience=60)
        await c.event("AgentComplete")
        aid = c.send("Setvar", Channel=handle.queue_channel, Variable="MEMBER_ID", Value="42")
        assert dict(await c.response(aid))["Message"] == "Variable Set"
        aid = c.send(
            "Redirect", Channel=handle.queue_channel, Context="survey", Exten="start", Priority="1"
        )
        assert dict(await c.response(aid))["Message"] == "Redirect successful"
        await asyncio.wait_for(done.wait(), 5)
        await asyncio.wait_for(handle.done, 5)
    finally:
        await c.close()
        await sim.stop()
        server.close()
    assert b"agi_network_script: survey?name=satisfaction\n" in got[0]
    assert got[1] == b"200 result=1 (42)\n"


@pytest.mark.parametrize(("ring", "connects"), [(1.0, True), (5.0, False)])
async def test_campaign_context_two_second_rule(ring: float, connects: bool) -> None:
    number = "+8613800138000"
    sc = Scenario(
        time_scale=0.01,
        queues=(QueueSpec("members", exten="8000", members=("1001",)),),
        agents=(AgentSpec("1001", ring_time=Dist("fixed", ring), talk_time=Dist("fixed", 3.0)),),
        overrides={number: NumberOverride("answer", ring_time=1.0, talk_time=30.0)},
    )
    sim = PbxSimulator(sc)
    await sim.start()
    c = await AmiClient.connect(sim.port)
    try:
        await c.login()
        aid = c.send(
            "Originate",
            Channel=f"Local/{number}@members-out/n",
            Context="campaign",
            Exten="members",
            Async="true",
            ChannelId="att-9",
        )
        assert dict(await c.event("OriginateResponse", ActionID=aid))["Reason"] == "4"
        await c.event("QueueCallerLeave", Linkedid="att-9")
        assert await sim.wait_idle(5)
    finally:
        await c.close()
        await sim.stop()
    names = [m.name for m in sim.events if m.get("Linkedid") in ("att-9", None)]
    assert ("AgentConnect" in names) is connects
    if not connects:
        leave = next(m for m in sim.events if m.name == "QueueCallerLeave")
        last = [m for m in sim.events if m.name == "Hangup"][-1]
        last_hangup = len(names) - 1 - names[::-1].index("Hangup")
        assert names.index("QueueCallerLeave") < last_hangup
        assert last.get("Uniqueid") == "att-9" and leave.get("Count") == "0"
