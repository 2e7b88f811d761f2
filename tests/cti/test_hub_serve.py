"""The production wiring (memberline.stack.start_hub) against the PBX simulator."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from crm_bridge.db import session_scope
from crm_bridge.models import OutboxMessage
from cti.hubproto.client import HubClient
from cti.pbxsim import PbxSimulator
from memberline.config import AmiConfig, Config, DatabaseConfig, HubConfig, Secret
from memberline.stack import hub_settings, start_hub
from tests.cti.hub_stack import AMI_SECRET, IFACE, scenario
from tests.cti.hub_support import LI_WEI, Console, seed

pytestmark = pytest.mark.e2e


async def test_start_hub_pops_and_confirms_redemptions(engine: Engine) -> None:
    ids = seed(engine)
    sim = PbxSimulator(scenario(), ami_users={"memberline": AMI_SECRET}, auth_fail_delay=0.05)
    await sim.start("127.0.0.1", 0)
    config = Config(
        database=DatabaseConfig(url=str(engine.url)),
        ami=AmiConfig(port=sim.port, secret=Secret(AMI_SECRET)),
        hub=HubConfig(port=0),
    )
    settings = dataclasses.replace(hub_settings(config), outbound_context="members-out")
    running = await start_hub(config, engine=engine, settings=settings)
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


async def test_memberline_serve_process_and_graceful_stop(sqlite_url: str, tmp_path: Path) -> None:
    """`memberline serve --config FILE` as a real process: logs in to the PBX, serves a
    console, never logs the AMI secret, stops cleanly on SIGTERM."""
    from crm_bridge.db import make_engine

    engine = make_engine(sqlite_url)
    seed(engine)
    engine.dispose()
    sim = PbxSimulator(scenario(), ami_users={"memberline": AMI_SECRET}, auth_fail_delay=0.05)
    await sim.start("127.0.0.1", 0)
    with socket.socket() as s:  # a free port for the hub
        s.bind(("127.0.0.1", 0))
        hub_port = s.getsockname()[1]
    conf = tmp_path / "memberline.toml"
    conf.write_text(
        f'[database]\nurl = "{sqlite_url}"\n[ami]\nport = {sim.port}\n[hub]\nport = {hub_port}\n'
        "[agi]\nport = 0\n[messaging]\nwebhook_port = 0\n",
        encoding="utf-8",
    )
    env = {**os.environ, "MEMBERLINE_AMI_SECRET": AMI_SECRET}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "memberline", "serve", "--config", str(conf), "--log-level", "DEBUG",
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        client = HubClient("127.0.0.1", hub_port, "1001", "s3cret-pw")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            try:
                await client.start()
                break
            except OSError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)
        logged_in = lambda: any(e.get("Event") == "SuccessfulAuth" for e in sim.events)  # noqa: E731
        await asyncio.wait_for(_until(logged_in), 10)
        call = await sim.inbound_call(LI_WEI, "Li Wei", queue="members")
        pops: list[dict[str, object]] = []
        client.on_push(lambda n, d: pops.append(d) if n == "screen_pop" else None)
        await asyncio.wait_for(_until(lambda: any(p["call_id"] == call.linkedid for p in pops)), 10)
        await client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        await sim.stop()
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    assert AMI_SECRET.encode() not in err


async def _until(pred: Callable[[], bool]) -> None:
    """Poll state owned by another process or library (nothing to await on here)."""
    while not pred():  # noqa: ASYNC110
        await asyncio.sleep(0.02)
