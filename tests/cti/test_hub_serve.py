"""The production wiring (memberline.services.start_hub_services) against the PBX simulator."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.models import OutboxMessage
from cti.pbxsim import PbxSimulator
from memberline.config import AmiConfig, Config, DatabaseConfig, HubConfig, Secret
from memberline.services import hub_settings, start_hub_services
from tests.cti.hub_stack import AMI_SECRET, IFACE, scenario
from tests.cti.hub_support import LI_WEI, Console, seed

pytestmark = pytest.mark.e2e


async def test_start_hub_services_pops_and_confirms_redemptions(engine: Engine) -> None:
    ids = seed(engine)
    sim = PbxSimulator(scenario(), ami_users={"memberline": AMI_SECRET}, auth_fail_delay=0.05)
    await sim.start("127.0.0.1", 0)
    config = Config(
        database=DatabaseConfig(url=str(engine.url)),
        ami=AmiConfig(port=sim.port, secret=Secret(AMI_SECRET)),
        hub=HubConfig(port=0),
    )
    settings = dataclasses.replace(hub_settings(config), outbound_context="members-out")
    running = await start_hub_services(config, engine=engine, settings=settings)
    try:
        await running.ami_task
        assert running.ami.connected
        async with Console(running.hub, "1001") as c1:
            call = await sim.inbound_call(LI_WEI, "Li Wei", queue="members")
            pop = await c1.wait_for("screen_pop", lambda d: d["call_id"] == call.linkedid)
            assert pop["kind"] == "member"
            await sim.agent_answer(IFACE["1001"])
            done = await c1.request(
                "points_redeem", member_id=ids.members["liwei"], item_code="MUG", confirm=True
            )
            assert done["balance_after"] == 3800
        async with Console(running.hub, "9001") as sup:
            report = await sup.request("survey_summary", since="2020-01-01")
            assert report["rows"] == report["weekly"] and "total" in report
    finally:
        await running.stop()
        await sim.stop()
    with session_scope(engine) as s:
        rows = list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert [(r.purpose, r.channel.value, r.payload["item"]) for r in rows] == [
        ("points_redemption", "sms", "Mug"),
        ("points_redemption", "email", "Mug"),
    ]
