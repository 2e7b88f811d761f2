"""``memberline health --hub HOST:PORT`` against the real hub (start_hub) and non-hubs."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from sqlalchemy import Engine

from cti.ami.framing import frame_all
from cti.pbxsim import PbxSimulator
from memberline.cli import main
from memberline.config import AmiConfig, Config, DatabaseConfig, HubConfig, Secret
from memberline.stack import start_hub
from tests.cti.hub_stack import AMI_SECRET, scenario
from tests.cti.hub_support import seed

pytestmark = pytest.mark.e2e

_CROSSED = (
    b"Event: QueueMemberAdded\r\nQueue: q9\r\nInterface: PJSIP/9001\r\nMemberName: Ann\r\n"
    b"Paused: 0\r\n\r\n"
    b"Event: QueueMemberRemoved\r\nQueue: q9\r\nInterface: PJSIP/9001\r\n\r\n"
    b"Event: Newchannel\r\nChannel: PJSIP/c-00000001\r\nUniqueid: 9.1\r\nLinkedid: 9.1\r\n"
    b"CallerIDNum: 555\r\nCallerIDName: X\r\n\r\n"
    b"Event: AgentCalled\r\nQueue: q9\r\nInterface: PJSIP/9001\r\nMemberName: Ann\r\n"
    b"Uniqueid: 9.1\r\nLinkedid: 9.1\r\nChannel: PJSIP/c-00000001\r\n"
    b"DestChannel: PJSIP/9001-00000002\r\nDestUniqueid: 9.2\r\n\r\n"
)


async def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = await asyncio.to_thread(main, argv)
    return rc, capsys.readouterr().out


async def test_health_of_a_running_hub_then_stopped(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(engine)
    sim = PbxSimulator(scenario(), ami_users={"memberline": AMI_SECRET}, auth_fail_delay=0.05)
    await sim.start("127.0.0.1", 0)
    config = Config(
        database=DatabaseConfig(url=engine.url.render_as_string(hide_password=False)),
        ami=AmiConfig(port=sim.port, secret=Secret(AMI_SECRET)),
        hub=HubConfig(port=0),
    )
    running = await start_hub(config, engine=engine)
    stopped = False
    try:
        port = running.hub.port
        rc, out = await _cli(["health", "--hub", f"127.0.0.1:{port}"], capsys)
        assert rc == 0, out
        assert out.startswith(f"ok  127.0.0.1:{port}  memberline-hub/")
        rc, out = await _cli(["health", "--hub", f"127.0.0.1:{port}", "--json"], capsys)
        data = json.loads(out)
        assert rc == 0 and data["ok"] is True and data["rtt_ms"] >= 0
        assert data["tracker_anomalies"] == {"count": 0, "recent": []}
        # An impossible agent transition reaching the hub's AMI subscriber (a removed
        # member rung by the queue) is logged once and shown by health.
        for msg in frame_all(_CROSSED, expect_banner=False):
            running.hub.on_ami_message(msg)
        rc, out = await _cli(["health", "--hub", f"127.0.0.1:{port}"], capsys)
        assert rc == 0, out
        assert "tracker: 1 impossible agent transition(s)" in out
        assert "logged_out -> ringing on AgentCalled" in out
        # The probe's connection is gone from the hub once it is done.
        await asyncio.sleep(0.2)
        assert len(running.hub.sessions) == 0
        await running.stop()
        stopped = True
        rc, out = await _cli(["health", "--hub", f"127.0.0.1:{port}"], capsys)
        assert rc == 1 and "connection refused" in out
    finally:
        if not stopped:
            await running.stop()
        await sim.stop()


async def test_health_of_things_that_are_not_a_hub(capsys: pytest.CaptureFixture[str]) -> None:
    async def ami_like(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        with contextlib.suppress(Exception):
            await reader.read()
        writer.close()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read()
        writer.close()

    s1 = await asyncio.start_server(ami_like, "127.0.0.1", 0)
    s2 = await asyncio.start_server(mute, "127.0.0.1", 0)
    try:
        p1 = s1.sockets[0].getsockname()[1]
        p2 = s2.sockets[0].getsockname()[1]
        rc, out = await _cli(["health", "--hub", f"127.0.0.1:{p1}"], capsys)
        assert rc == 1 and "not a memberline hub" in out
        rc, out = await _cli(["health", "--hub", f"127.0.0.1:{p2}", "--timeout", "0.3"], capsys)
        assert rc == 1 and "no answer within 0.3 s" in out
    finally:
        s1.close()
        s2.close()


def test_bad_address_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["health", "--hub", "localhost"])
    assert "expected HOST:PORT" in capsys.readouterr().err
