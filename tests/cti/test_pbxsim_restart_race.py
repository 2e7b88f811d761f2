"""The simulator's restart behaves as Asterisk 22.10.1 did in the 2026-12 traces.

``g-restart-early-login``: after ``core restart now`` the AMI port takes a login before
app_queue has loaded (QueueStatus -> ``Invalid/unknown command`` + RequestBadFormat,
CoreShowChannels works), FullyBooted comes later as a broadcast with ``Status`` first,
and every pause (with its reason) and every dynamic member is gone. ``i-queue-pause-reason``:
QueuePause with a Reason gives QueueMemberPause with ``PausedReason``; unpausing clears it.
The simulator's boot window is stretched (0.3 s / 0.5 s instead of ~30 / ~55 ms) so that a
20 ms reconnect loop lands in it every time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cti.pbxsim import PbxSimulator
from tests.cti.pbxsim_helpers import AmiClient, Msg, name_of, parse_messages
from tests.cti.test_pbxsim_traces import LAB

TRACES = Path(__file__).resolve().parents[1] / "fixtures" / "ami-traces"


def trace(name: str) -> list[Msg]:
    return parse_messages((TRACES / f"{name}.txt").read_bytes())


def keys(msg: Msg) -> list[str]:
    return [k for k, _ in msg]


async def _reconnect(port: int) -> AmiClient:
    """Like the recorder: connect every 20 ms until a banner arrives."""
    for _ in range(200):
        try:
            c = await AmiClient.connect(port)
        except (ConnectionError, OSError, TimeoutError):
            await asyncio.sleep(0.02)
            continue
        if c.banner:
            return c
        await c.close()
        await asyncio.sleep(0.02)
    raise AssertionError("the simulator never came back")


async def test_queue_pause_reason_matches_trace() -> None:
    sim = PbxSimulator(LAB, ami_users={"lab": "labsecret"}, auth_fail_delay=0.05)
    await sim.start("127.0.0.1", 0)
    c = await AmiClient.connect(sim.port)
    try:
        await c.login("lab", "labsecret")
        want = {name_of(m): m for m in trace("i-queue-pause-reason")}
        c.send(
            "QueueAdd",
            Queue="members",
            Interface="Local/1003@agents/n",
            MemberName="Agent 1003",
            StateInterface="Local/1003@agents/n",
        )
        added = await c.event("QueueMemberAdded")
        assert keys(added) == keys(want["QueueMemberAdded"])
        c.send(
            "QueuePause",
            Queue="members",
            Interface="Local/1003@agents/n",
            Paused="true",
            Reason="lunch",
        )
        paused = dict(await c.event("QueueMemberPause"))
        assert paused["Paused"] == "1" and paused["PausedReason"] == "lunch"
        c.send("QueuePause", Queue="members", Interface="Local/1003@agents/n", Paused="false")
        unpaused = dict(await c.event("QueueMemberPause"))
        assert unpaused["Paused"] == "0" and unpaused["PausedReason"] == ""
        assert unpaused["LastPause"] == paused["LastPause"]  # kept, as in the trace
    finally:
        await c.close()
        await sim.stop()


async def test_restart_early_login_race_and_members_reset() -> None:
    sim = PbxSimulator(
        LAB,
        ami_users={"lab": "labsecret"},
        auth_fail_delay=0.05,
        restart_ghost_accept=False,
        boot_queue_delay=0.3,
        boot_fully_delay=0.5,
    )
    await sim.start("127.0.0.1", 0)
    c1 = await AmiClient.connect(sim.port)
    try:
        await c1.login("lab", "labsecret")
        booted_at_login = await c1.event("FullyBooted")
        # a normal login's FullyBooted: Uptime, LastReload, Status
        assert keys(booted_at_login)[2:] == ["Uptime", "LastReload", "Status"]
        c1.send(
            "QueueAdd", Queue="members", Interface="Local/1003@agents/n", MemberName="Agent 1003"
        )
        await c1.event("QueueMemberAdded")
        c1.send("QueuePause", Interface="Local/1003@agents/n", Paused="true", Reason="lunch")
        await c1.event("QueueMemberPause", Interface="Local/1003@agents/n")
        c1.send("QueuePause", Interface="Local/1001@agents/n", Paused="true", Reason="break")
        await c1.event("QueueMemberPause", Interface="Local/1001@agents/n")
        restart = asyncio.ensure_future(sim.restart())
        await c1.event("Shutdown")
        try:
            while True:
                await c1.read_message(2)
        except EOFError:
            pass  # the old process closed the socket: reconnect from here, as the recorder did
    finally:
        await c1.close()
    c2 = await _reconnect(sim.port)
    try:
        ok = await c2.login("lab", "labsecret")
        assert dict(ok)["Message"] == "Authentication accepted"
        qs = c2.send("QueueStatus")
        cs = c2.send("CoreShowChannels")
        refused = dict(await c2.response(qs))
        assert refused["Response"] == "Error"
        assert refused["Message"] == (
            "Invalid/unknown command: QueueStatus. Use Action: ListCommands to show available commands."
        )
        bad = await c2.event("RequestBadFormat")
        assert dict(bad)["RequestType"] == "Action: QueueStatus"
        await c2.collect_list(cs, "CoreShowChannelsComplete")
        fully = await c2.event("FullyBooted")
        want = next(
            m for m in trace("g-restart-early-login-reconnect") if name_of(m) == "FullyBooted"
        )
        assert keys(fully) == keys(want)  # broadcast form: Status first
        # what this connection saw, in the trace's order (ignoring values)
        seen = [name_of(m) for m in c2.messages]
        theirs = [name_of(m) for m in trace("g-restart-early-login-reconnect")]
        assert seen == theirs[: len(seen)]
        qs2 = c2.send("QueueStatus")
        items = await c2.collect_list(qs2, "QueueStatusComplete")
        members = [
            dict(m) for m in items if name_of(m) == "QueueMember" and dict(m)["Queue"] == "members"
        ]
        assert {m["Location"] for m in members} == {"Local/1001@agents/n", "Local/1002@agents/n"}
        assert all(m["Paused"] == "0" and m["PausedReason"] == "" for m in members)
        await restart
    finally:
        await c2.close()
        await sim.stop()
