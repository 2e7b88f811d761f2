"""``memberline serve``'s stack answers the shipped dialplan's FastAGI scripts: the hotline
and the maintainer-first ``route-inbound`` lookup, on the one FastAGI port."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import Engine

from cti.pbxsim import AgentSpec, InboundSpec, PbxSimulator, QueueSpec, Scenario
from cti.pbxsim.scenario import NumberOverride, fixed
from memberline.config import Config, Secret
from memberline.stack import start_stack
from tests.cti.hub_support import LI_WEI, seed

pytestmark = pytest.mark.e2e

AMI_SECRET = "ami-Secret-42"


def _config(sim: PbxSimulator) -> Config:
    base = Config()
    return dataclasses.replace(
        base,
        ami=dataclasses.replace(
            base.ami, host="127.0.0.1", port=sim.port, secret=Secret(AMI_SECRET),
            reconnect_max_s=1.0,
        ),
        hub=dataclasses.replace(base.hub, bind="127.0.0.1", port=0),
        agi=dataclasses.replace(base.agi, bind="127.0.0.1", port=0, hotline_locale="en"),
        care=dataclasses.replace(base.care, greetings_in_serve=False),
        messaging=dataclasses.replace(
            base.messaging, webhook_bind="127.0.0.1", webhook_port=0,
            public_url="http://127.0.0.1",
        ),
    )  # fmt: skip


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_serve_runs_the_hotline_and_route_inbound(engine: Engine) -> None:
    seed(engine)
    scen = Scenario(
        time_scale=0.05,
        queues=(QueueSpec("members", exten="8000", members=("1001",), timeout=60.0),),
        agents=(AgentSpec("1001", auto_answer=False, auto_hangup=False, ring_time=fixed(0.2)),),
        inbound=InboundSpec(patience=fixed(600.0)),
        overrides={LI_WEI: NumberOverride("answer", 0.0, None, ("timeout", "0"))},
    )
    sim = PbxSimulator(scen, ami_users={"memberline": AMI_SECRET}, route_agi_path="route-inbound")
    await sim.start("127.0.0.1", 0)
    stack = await start_stack(_config(sim), engine=engine, local_sinks=True)
    try:
        sim.agi_port = stack.surveys.agi.port
        call = await sim.inbound_call(LI_WEI, "李伟", "members", hotline=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while not any(m.name == "AgentCalled" for m in sim.events):
            assert loop.time() < deadline, "the call never reached an agent"
            await asyncio.sleep(0.02)
        await sim.agent_answer("Local/1001@agents/n")
        await sim.agent_hangup("Local/1001@agents/n")
        assert await asyncio.wait_for(call.done, 10) == "agent"
    finally:
        await stack.stop()
        await sim.stop()
    commands = [m.get("Command") or "" for m in sim.events if m.name == "AGIExecEnd"]
    # the hotline (Li Wei's own language, zh-CN, after the English default) ...
    assert 'SET VARIABLE CHANNEL(language) "en"' in commands
    assert 'SET VARIABLE CHANNEL(language) "zh_CN"' in commands
    assert 'SET VARIABLE HOTLINE_RESULT "agent"' in commands
    # ... then route-inbound: 1001 has no console, so straight to the queue
    assert 'SET VARIABLE ML_ROUTE "logged_out"' in commands
    assert sim.stats.agi_sessions == 2
