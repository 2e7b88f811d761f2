"""PBX simulator <-> AMI client <-> tracker <-> hub, all on loopback, for the e2e hub tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from cti.ami.client import AmiClient
from cti.hub import HubServer, HubSettings
from cti.pbxsim import AgentSpec, InboundSpec, PbxSimulator, QueueSpec, Scenario
from cti.pbxsim.scenario import NumberOverride, fixed
from cti.tracker import Tracker
from tests.cti.hub_support import LI_WEI

AMI_SECRET = "ami-Secret-42"
IFACE = {"1001": "Local/1001@agents/n", "1002": "Local/1002@agents/n"}


def scenario(
    *, support: bool = True, overrides: Mapping[str, NumberOverride] | None = None, **kw: Any
) -> Scenario:
    """Queue ``members`` rings only 1001, ``support`` (unless left out) only 1002; the test
    drives the agents. Li Wei answers; ``overrides`` add numbers (or replace his)."""
    agents = tuple(
        AgentSpec(ext, auto_answer=False, auto_hangup=False, ring_time=fixed(0.2))
        for ext in ("1001", "1002")
    )
    queues = [QueueSpec("members", exten="8000", members=("1001",), timeout=60.0, max_wait=600.0)]
    if support:
        queues.append(
            QueueSpec("support", exten="8001", members=("1002",), timeout=60.0, max_wait=600.0)
        )
    return Scenario(
        time_scale=0.2,
        queues=tuple(queues),
        agents=agents,
        inbound=InboundSpec(patience=fixed(600.0)),
        overrides={
            LI_WEI: NumberOverride(outcome="answer", ring_time=0.5, talk_time=600.0),
            **(overrides or {}),
        },
        **kw,
    )


@dataclass
class Stack:
    sim: PbxSimulator
    hub: HubServer
    ami: AmiClient

    async def wait(self, pred: Any, within: float = 5.0, what: str = "") -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not pred():
            if loop.time() > deadline:
                raise TimeoutError(f"timed out waiting for {what or pred}")
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def pbx_stack(
    engine: Engine,
    scen: Scenario | None = None,
    *,
    ami_ping_s: float = 2.0,
    resync_within: float = 5.0,
    sim_options: Mapping[str, Any] | None = None,
    **hub: Any,
) -> AsyncIterator[Stack]:
    """The simulator (``scen``, default ``scenario()``), a hub (``hub``: HubSettings
    overrides) and its AMI client (pinging every ``ami_ping_s``), started; yields once the
    AMI resync has shown the tracker agent 1001 (within ``resync_within`` seconds).
    ``sim_options``: more :class:`PbxSimulator` arguments (``agi_port``, ``route_agi_path``)."""
    sim = PbxSimulator(
        scen or scenario(),
        ami_users={"memberline": AMI_SECRET},
        auth_fail_delay=0.05,
        restart_gap=0.05,
        **(sim_options or {}),
    )
    await sim.start("127.0.0.1", 0)
    settings = HubSettings(port=0, outbound_context="members-out", **hub)
    server = HubServer(settings, engine, tracker=Tracker())
    ami = AmiClient(
        "127.0.0.1",
        sim.port,
        "memberline",
        AMI_SECRET,
        action_timeout=3.0,
        ping_interval=ami_ping_s,
        reconnect_initial=0.05,
        reconnect_max=0.5,
    )
    ami.subscribe(server.on_ami_message)
    server.attach_pbx(ami)
    try:
        await server.start()
        await ami.start(fail_fast=True)
        stack = Stack(sim, server, ami)
        # The resync told the tracker about the static queue members.
        await stack.wait(
            lambda: server.tracker.agent(IFACE["1001"]) is not None,
            within=resync_within,
            what="resync",
        )
        yield stack
    finally:
        await ami.close()
        await server.stop()
        await sim.stop()
