"""PBX simulator <-> AMI client <-> tracker <-> hub, all on loopback, for the e2e hub tests
(the CTI tests' scenario and seed on :mod:`memberline.testing`'s rigs)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from sqlalchemy import Engine

from cti.hub import HubSettings
from cti.pbxsim import AgentSpec, InboundSpec, QueueSpec, Scenario
from cti.pbxsim.scenario import NumberOverride, fixed
from memberline.testing import AMI_SECRET, HubRig, hub_on_pbx, pbx_simulator
from tests.cti.hub_support import LI_WEI

__all__ = ["AMI_SECRET", "IFACE", "Stack", "pbx_stack", "scenario"]

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


Stack = HubRig


@contextlib.asynccontextmanager
async def pbx_stack(
    engine: Engine,
    scen: Scenario | None = None,
    *,
    ami_ping_s: float = 2.0,
    resync_within: float = 5.0,
    sim_options: Mapping[str, Any] | None = None,
    **hub: Any,
) -> AsyncIterator[HubRig]:
    """The simulator (``scen``, default ``scenario()``), a hub (``hub``: HubSettings
    overrides) and its AMI client (pinging every ``ami_ping_s``), started; yields once the
    AMI resync has shown the tracker agent 1001 (within ``resync_within`` seconds).
    ``sim_options``: more :class:`PbxSimulator` arguments (``agi_port``, ``route_agi_path``)."""
    opts = {"auth_fail_delay": 0.05, "restart_gap": 0.05, **(sim_options or {})}
    async with (
        pbx_simulator(scen or scenario(), **opts) as sim,
        hub_on_pbx(
            engine,
            sim,
            HubSettings(port=0, outbound_context="members-out", **hub),
            ami={"action_timeout": 3.0, "ping_interval": ami_ping_s},
            # The resync told the tracker about the static queue members.
            ready=lambda h: h.tracker.agent(IFACE["1001"]) is not None,
            ready_within=resync_within,
        ) as rig,
    ):
        yield rig
