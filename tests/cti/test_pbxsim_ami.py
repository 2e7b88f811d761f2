"""AMI server behaviour of the simulator over real sockets (login, actions, restart)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import pytest

from cti.pbxsim import AgentSpec, Dist, PbxSimulator, QueueSpec, Scenario
from tests.cti.pbxsim_helpers import TRACES, AmiClient, Msg, name_of, trace_messages

SCALE = 0.01


def scenario(**kw: object) -> Scenario:
    base: dict[str, object] = {
        "time_scale": SCALE,
        "queues": (
            QueueSpec("members", exten="8000", members=("1001", "1002")),
            QueueSpec(
                "members-linear",
                exten="8001",
                strategy="linear",
                timeout=3,
                members=("1002", "1001"),
            ),
        ),
        "agents": (
            AgentSpec("1001", ring_time=Dist("fixed", 1.0), talk_time=Dist("fixed", 3.0)),
            AgentSpec("1002", answer_prob=0.0),
        ),
    }
    base.update(kw)
    return Scenario(**base)  # type: ignore[arg-type]


@pytest.fixture
async def sim() -> AsyncIterator[PbxSimulator]:
    s = PbxSimulator(
        scenario(), ami_users={"lab": "labsecret"}, auth_fail_delay=0.2, restart_gap=0.2
    )
    await s.start("127.0.0.1", 0)
    try:
        yield s
    finally:
        await s.stop()


@pytest.fixture
async def client(sim: PbxSimulator) -> AsyncIterator[AmiClient]:
    c = await AmiClient.connect(sim.port)
    await c.login("lab", "labsecret")
    try:
        yield c
    finally:
        await c.close()


def keys(m: Msg) -> list[str]:
    return [k for k, _ in m]


def trace_first(trace: str, pred_name: str) -> Msg:
    return next(m for m in trace_messages(trace) if name_of(m) == pred_name)


async def test_login_banner_and_boot_events(sim: PbxSimulator) -> None:
    c = await AmiClient.connect(sim.port)
    try:
        assert c.banner == b"Asterisk Call Manager/11.0.0\r\n"
        aid = c.send("Login", Username="lab", Secret="labsecret", Events="on")
        data = b""
        while data.count(b"\r\n\r\n") < 3:
            data += await asyncio.wait_for(c.reader.read(65536), 5)
        first = data.split(b"\r\n\r\n")[0]
        assert (
            first
            == f"Response: Success\r\nActionID: {aid}\r\nMessage: Authentication accepted".encode()
        )
        c.buf = data[len(first) + 4 :]
        booted = await c.read_message()
        assert booted == [
            ("Event", "FullyBooted"),
            ("Privilege", "system,all"),
            ("Uptime", booted[2][1]),
            ("LastReload", booted[3][1]),
            ("Status", "Fully Booted"),
        ]
        auth = await c.read_message()
        assert keys(auth) == keys(trace_first("a-inbound-queue-call", "SuccessfulAuth"))
        assert dict(auth)["AccountID"] == "lab"
    finally:
        await c.close()


async def test_events_off_login_gets_no_events(sim: PbxSimulator) -> None:
    c = await AmiClient.connect(sim.port)
    try:
        await c.login("lab", "labsecret", events="off")
        aid = c.send("Ping")
        assert name_of(await c.read_message()) == "Response: Success"
        assert dict(c.messages[-1])["ActionID"] == aid
        aid = c.send("UserEvent", UserEvent="Hello")
        await c.response(aid)
        with pytest.raises(TimeoutError):
            await c.read_message(0.2)
    finally:
        await c.close()


async def test_wrong_secret_like_asterisk(sim: PbxSimulator) -> None:
    """f-login-failure: Ping before login -> Permission denied (kept open); bad secret ->
    delay, Authentication failed, EOF. Unknown user looks the same."""
    want = (TRACES / "f-login-failure.txt").read_bytes()
    for user in ("lab", "nosuchuser"):
        c = await AmiClient.connect(sim.port)
        c.send("Ping", ActionID="f-login-failure-1")
        c.send(
            "Login", ActionID="f-login-failure-2", Username=user, Secret="wrongsecret", Events="on"
        )
        started = time.monotonic()
        data = c.banner
        while True:
            chunk = await asyncio.wait_for(c.reader.read(65536), 5)
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - started
        assert data == want
        assert 0.18 <= elapsed < 1.0
        await c.close()
    assert sim.stats.login_failures == 2


async def test_ping_and_unknown_action(client: AmiClient) -> None:
    aid = client.send("Ping")
    pong = await client.response(aid)
    assert keys(pong) == ["Response", "ActionID", "Ping", "Timestamp"]
    assert dict(pong)["Ping"] == "Pong"
    aid = client.send("NoSuchAction", ActionID="e-queue-actions-28")
    err = await client.response(aid)
    theirs = next(
        m
        for m in trace_messages("e-queue-actions")
        if dict(m).get("ActionID") == "e-queue-actions-28"
    )
    assert err == theirs


async def test_queue_actions_and_events(sim: PbxSimulator, client: AmiClient) -> None:
    trace = trace_messages("e-queue-actions")

    def resp(aid: str) -> Msg:
        return next(m for m in trace if m[0][0] == "Response" and dict(m).get("ActionID") == aid)

    aid = client.send(
        "QueuePause",
        ActionID="e-queue-actions-4",
        Queue="members",
        Interface="Local/1001@agents/n",
        Paused="true",
        Reason="Lunch break",
    )
    assert await client.response(aid) == resp(aid)
    pause = await client.event("QueueMemberPause")
    assert keys(pause) == keys(trace_first("e-queue-actions", "QueueMemberPause"))
    d = dict(pause)
    assert (d["Queue"], d["Paused"], d["PausedReason"], d["MemberName"]) == (
        "members",
        "1",
        "Lunch break",
        "Agent 1001",
    )

    aid = client.send(
        "QueueStatus", ActionID="e-queue-actions-5", Queue="members", Member="Local/1001@agents/n"
    )
    items = await client.collect_list(aid, "QueueStatusComplete")
    assert [name_of(m) for m in items] == [
        "Response: Success",
        "QueueParams",
        "QueueMember",
        "QueueStatusComplete",
    ]
    theirs = [m for m in trace if dict(m).get("ActionID") == aid]
    assert [keys(m) for m in items] == [keys(m) for m in theirs]
    member = dict(items[2])
    assert (member["Name"], member["Location"], member["Paused"], member["PausedReason"]) == (
        "Agent 1001",
        "Local/1001@agents/n",
        "1",
        "Lunch break",
    )

    aid = client.send(
        "QueuePause", ActionID="e-queue-actions-6", Interface="Local/1001@agents/n", Paused="false"
    )
    assert await client.response(aid) == resp(aid)
    unpaused = [dict(await client.event("QueueMemberPause")) for _ in range(2)]
    assert [u["Queue"] for u in unpaused] == ["members-linear", "members"]

    aid = client.send(
        "QueueAdd",
        ActionID="e-queue-actions-7",
        Queue="members",
        Interface="Local/1003@agents/n",
        MemberName="Agent 1003",
        Paused="false",
    )
    assert await client.response(aid) == resp(aid)
    added = await client.event("QueueMemberAdded")
    assert keys(added) == keys(trace_first("e-queue-actions", "QueueMemberAdded"))
    assert (dict(added)["Membership"], dict(added)["Status"]) == ("dynamic", "0")
    aid = client.send(
        "QueueAdd", ActionID="e-queue-actions-8", Queue="members", Interface="Local/1003@agents/n"
    )
    assert await client.response(aid) == resp(aid)

    aid = client.send("QueueSummary", ActionID="e-queue-actions-10")
    items = await client.collect_list(aid, "QueueSummaryComplete")
    assert [dict(m).get("Queue") for m in items[1:-1]] == ["members-linear", "members"]
    assert keys(items[1]) == keys(trace_first("e-queue-actions", "QueueSummary"))
    assert dict(items[-1])["ListItems"] == "2"
    assert dict(items[2])["LoggedIn"] == "3"

    aid = client.send(
        "QueueRemove",
        ActionID="e-queue-actions-12",
        Queue="members",
        Interface="Local/1003@agents/n",
    )
    assert await client.response(aid) == resp(aid)
    assert dict(await client.event("QueueMemberRemoved"))["Interface"] == "Local/1003@agents/n"
    aid = client.send(
        "QueueRemove",
        ActionID="e-queue-actions-13",
        Queue="members",
        Interface="Local/1003@agents/n",
    )
    assert await client.response(aid) == resp(aid)
    aid = client.send(
        "QueuePause",
        ActionID="e-queue-actions-14",
        Queue="members",
        Interface="Local/9999@agents/n",
        Paused="true",
    )
    assert await client.response(aid) == resp(aid)
    aid = client.send("QueueStatus", ActionID="e-queue-actions-15", Queue="nosuchqueue")
    items = await client.collect_list(aid, "QueueStatusComplete")
    assert items == [m for m in trace if dict(m).get("ActionID") == aid]


async def test_channels_status_and_hangup(sim: PbxSimulator, client: AmiClient) -> None:
    aid = client.send("CoreShowChannels", ActionID="e-queue-actions-16")
    items = await client.collect_list(aid, "CoreShowChannelsComplete")
    assert items == [m for m in trace_messages("e-queue-actions") if dict(m).get("ActionID") == aid]
    aid = client.send(
        "Originate",
        Channel="Local/hold@members-sim",
        Context="outbound",
        Exten="park",
        CallerID='"Outbound Campaign" <4000>',
        Variable="MEMBER_ID=44",
        Async="true",
    )
    await client.event("OriginateResponse", ActionID=aid)
    aid = client.send("CoreShowChannels", ActionID="e-queue-actions-17")
    items = await client.collect_list(aid, "CoreShowChannelsComplete")
    theirs = [m for m in trace_messages("e-queue-actions") if dict(m).get("ActionID") == aid]
    assert [keys(m) for m in items] == [keys(m) for m in theirs]
    one = dict(items[1])
    assert (one["Context"], one["Exten"], one["Application"]) == ("outbound", "park", "Wait")
    aid = client.send(
        "Status", ActionID="e-queue-actions-19", Channel=one["Channel"], Variables="MEMBER_ID"
    )
    items = await client.collect_list(aid, "StatusComplete")
    theirs = [m for m in trace_messages("e-queue-actions") if dict(m).get("ActionID") == aid]
    assert [keys(m) for m in items] == [keys(m) for m in theirs]
    assert dict(items[1])["Variable"] == "MEMBER_ID=44"
    aid = client.send("Getvar", Channel=one["Channel"], Variable="MEMBER_ID")
    assert dict(await client.response(aid))["Value"] == "44"
    aid = client.send("Status", Channel="Local/nonexistent-00000000;1")
    assert dict(await client.response(aid))["Message"] == "No such channel"
    aid = client.send("Hangup", Channel=one["Channel"], Cause="16")
    assert dict(await client.response(aid))["Message"] == "Channel Hungup"
    hang = dict(await client.event("Hangup", Channel=one["Channel"]))
    assert (hang["Cause"], hang["Cause-txt"]) == ("16", "Normal Clearing")
    assert await sim.wait_idle(2)
    aid = client.send("CoreShowChannels")
    assert (
        dict((await client.collect_list(aid, "CoreShowChannelsComplete"))[-1])["ListItems"] == "0"
    )


async def test_sync_originate(sim: PbxSimulator, client: AmiClient) -> None:
    aid = client.send(
        "Originate",
        Channel="Local/hold@members-sim",
        Context="outbound",
        Exten="park",
        Timeout="5000",
    )
    assert dict(await client.response(aid))["Message"] == "Originate successfully queued"
    aid = client.send(
        "Originate",
        Channel="Local/busy@members-sim",
        Context="outbound",
        Exten="park",
        Timeout="5000",
    )
    assert dict(await client.response(aid)) == {
        "Response": "Error",
        "ActionID": aid,
        "Message": "Originate failed",
    }
    assert not [m for m in client.messages if name_of(m) == "OriginateResponse"]


async def test_paused_member_not_rung_and_caller_waits(
    sim: PbxSimulator, client: AmiClient
) -> None:
    for q in ("members", "members-linear"):
        for iface in ("Local/1001@agents/n", "Local/1002@agents/n"):
            aid = client.send("QueuePause", Queue=q, Interface=iface, Paused="true", Reason="Break")
            await client.response(aid)
    handle = await sim.inbound_call("+8613800138000", "李伟", queue="members", patience=600)
    await client.event("QueueCallerJoin")
    await asyncio.sleep(0.3)  # 30 simulated seconds: nobody is rung
    assert not [m for m in client.messages if name_of(m) == "AgentCalled"]
    aid = client.send("QueueStatus", Queue="members")
    items = await client.collect_list(aid, "QueueStatusComplete")
    entry = dict(next(m for m in items if name_of(m) == "QueueEntry"))
    assert entry["CallerIDName"] == "李伟" and entry["Position"] == "1"
    aid = client.send(
        "QueuePause", Queue="members", Interface="Local/1001@agents/n", Paused="false"
    )
    await client.response(aid)
    called = dict(await client.event("AgentCalled"))
    assert called["Interface"] == "Local/1001@agents/n" and called["CallerIDName"] == "李伟"
    assert await asyncio.wait_for(handle.done, 5) == "agent"


async def test_manual_agent_and_caller_hangup(client: AmiClient) -> None:
    sc = scenario(
        agents=(
            AgentSpec("1001", auto_answer=False, auto_hangup=False),
            AgentSpec("1002", answer_prob=0.0),
        )
    )
    sim = PbxSimulator(sc)
    await sim.start()
    c = await AmiClient.connect(sim.port)
    try:
        await c.login()
        handle = await sim.inbound_call("+8613800138000", "Li Wei", queue="members", patience=600)
        await c.event("AgentCalled", Interface="Local/1001@agents/n")
        await asyncio.sleep(0.1)
        assert not [m for m in c.messages if name_of(m) == "AgentConnect"]
        assert await sim.agent_answer("Local/1001@agents/n")
        await c.event("AgentConnect")
        aid = c.send("Hangup", Channel=handle.caller_channel)
        await c.response(aid)
        done = dict(await c.event("AgentComplete"))
        assert done["Reason"] == "caller"
        assert await asyncio.wait_for(handle.done, 5) == "caller"
        assert await sim.wait_idle(2)
        assert not await sim.agent_answer("Local/1001@agents/n")
    finally:
        await c.close()
        await sim.stop()


async def test_restart_drops_clients_and_comes_back(sim: PbxSimulator, client: AmiClient) -> None:
    aid = client.send(
        "Originate",
        Channel="Local/hold@members-sim",
        Context="outbound",
        Exten="park",
        Async="true",
    )
    await client.event("OriginateResponse", ActionID=aid)
    restart = asyncio.ensure_future(sim.restart())
    shutdown = await client.event("Shutdown", wait=5)
    assert shutdown == [
        ("Event", "Shutdown"),
        ("Privilege", "system,all"),
        ("Shutdown", "Cleanly"),
        ("Restart", "True"),
    ]
    before = [name_of(m) for m in client.messages]
    ours = [n for n in before[before.index("OriginateResponse") + 1 :] if n != "Newstate"]
    trace = [name_of(m) for m in trace_messages("f-core-restart-with-call") if m[0][0] == "Event"]
    theirs = trace[trace.index("SoftHangupRequest") :]
    theirs = [n for n in theirs if n in set(ours)]
    assert ours[ours.index("SoftHangupRequest") :] == theirs
    with pytest.raises(EOFError):
        await client.read_message(2)
    # while restarting: refused, or accepted and reset without a banner
    failures = 0
    for _ in range(3):
        try:
            r, w = await asyncio.open_connection("127.0.0.1", sim.port)
            banner = await asyncio.wait_for(r.readline(), 1)
            w.close()
            if not banner:
                failures += 1
        except (ConnectionError, OSError):
            failures += 1
        await asyncio.sleep(0.02)
    assert failures >= 1
    await restart
    c2 = await AmiClient.connect(sim.port)
    try:
        await c2.login("lab", "labsecret")
        booted = dict(await c2.event("FullyBooted"))
        assert booted["Uptime"] == "0"
        aid = c2.send("CoreShowChannels")
        assert (
            dict((await c2.collect_list(aid, "CoreShowChannelsComplete"))[-1])["ListItems"] == "0"
        )
    finally:
        await c2.close()
    assert sim.stats.restarts == 1


async def test_originate_to_agent_then_member(sim: PbxSimulator, client: AmiClient) -> None:
    """Click-to-dial: ring the agent first, then Dial the member when the agent answers."""
    aid = client.send(
        "Originate",
        Channel="Local/1001@agents",
        Context="members-out",
        Exten="+8613800138000",
        CallerID='"Member" <+8613800138000>',
        Async="true",
        ChannelId="c2d-1",
    )
    resp = dict(await client.event("OriginateResponse", ActionID=aid))
    assert (resp["Reason"], resp["Uniqueid"]) == ("4", "c2d-1")
    begin = dict(await client.event("DialBegin", Channel=resp["Channel"]))
    assert begin["DialString"] == "Local/+8613800138000@members-out/n"
    assert begin["DestLinkedid"] == "c2d-1"
    assert await sim.wait_idle(5)
    ends = [dict(m) for m in client.messages if name_of(m) == "DialEnd"]
    while not any(e.get("Channel") == resp["Channel"] for e in ends):
        ends.append(dict(await client.event("DialEnd")))
    member_end = next(e for e in ends if e.get("Channel") == resp["Channel"])
    assert member_end["DialStatus"] in ("ANSWER", "NOANSWER", "BUSY", "CONGESTION")
    bridge = (
        dict(await client.event("BridgeDestroy")) if member_end["DialStatus"] == "ANSWER" else {}
    )
    assert bridge or member_end["DialStatus"] != "ANSWER"


async def test_agent_rejects_ringing_call_then_queue_retries() -> None:
    sc = scenario(
        queues=(QueueSpec("members", exten="8000", members=("1001",), retry=1),),
        agents=(AgentSpec("1001", auto_answer=False, auto_hangup=False),),
    )
    sim = PbxSimulator(sc)
    await sim.start()
    c = await AmiClient.connect(sim.port)
    try:
        await c.login()
        handle = await sim.inbound_call("+8613800138000", "Li Wei", patience=600)
        first = dict(await c.event("AgentCalled"))
        aid = c.send("Hangup", Channel=first["DestChannel"])
        await c.response(aid)
        rna = dict(await c.event("AgentRingNoAnswer"))
        assert rna["Interface"] == "Local/1001@agents/n"
        again = dict(await c.event("AgentCalled"))
        assert again["DestChannel"] != first["DestChannel"]
        aid = c.send("QueueStatus", Queue="members")
        items = await c.collect_list(aid, "QueueStatusComplete")
        entry = dict(next(m for m in items if name_of(m) == "QueueEntry"))
        assert entry["Channel"] == handle.queue_channel and int(entry["Wait"]) >= 1
        assert await sim.agent_answer("Local/1001@agents/n")
        await c.event("AgentConnect")
        assert await sim.agent_hangup("Local/1001@agents/n")
        assert dict(await c.event("AgentComplete"))["Reason"] == "agent"
        assert await asyncio.wait_for(handle.done, 5) == "agent"
    finally:
        await c.close()
        await sim.stop()


async def test_garbage_lf_and_split_utf8_input(sim: PbxSimulator, client: AmiClient) -> None:
    client.send_raw(b"\x00\xff\xfe not a header\r\n\r\n")
    client.send_raw(b"Action: Ping\nActionID: lf-only\n\n")
    assert dict(await client.response("lf-only"))["Ping"] == "Pong"
    data = "Action: UserEvent\r\nActionID: u8\r\nUserEvent: Hello\r\nName: 李伟\r\n\r\n".encode()
    cut = data.index("李".encode()) + 1  # in the middle of a UTF-8 character
    client.send_raw(data[:cut])
    await client.writer.drain()
    await asyncio.sleep(0.05)
    client.send_raw(data[cut:])
    await client.response("u8")
    event = dict(await client.event("UserEvent"))
    assert event["Name"] == "李伟" and event["ActionID"] == "u8"
    aid = client.send("Events", EventMask="off")
    assert dict(await client.response(aid))["Events"] == "Off"
    aid = client.send("Ping")
    await client.response(aid)
    aid = client.send("Events", EventMask="on")
    assert dict(await client.response(aid))["Events"] == "On"


async def test_oversized_frame_drops_only_that_client(sim: PbxSimulator, client: AmiClient) -> None:
    other = await AmiClient.connect(sim.port)
    try:
        other.send_raw(b"Action: Ping\r\nX: " + b"a" * (2 << 20))
        with pytest.raises((EOFError, ConnectionError)):
            while True:
                await other.read_message(5)
    finally:
        await other.close()
    aid = client.send("Ping")
    assert dict(await client.response(aid))["Ping"] == "Pong"


async def test_security_events_seen_by_an_observer(sim: PbxSimulator, client: AmiClient) -> None:
    """f-login-failure-observer: RequestNotAllowed, InvalidPassword, InvalidAccountID."""
    for user in ("lab", "nosuchuser"):
        bad = await AmiClient.connect(sim.port)
        bad.send("Ping")
        bad.send("Login", Username=user, Secret="wrong")
        with pytest.raises(EOFError):
            while True:
                await bad.read_message(3)
        await bad.close()
    theirs = {
        name_of(m): keys(m)
        for m in trace_messages("f-login-failure-observer")
        if m[0][0] == "Event"
    }
    for name in ("RequestNotAllowed", "InvalidPassword", "InvalidAccountID"):
        ours = await client.event(name)
        assert keys(ours) == theirs[name]
    aid = client.send("NoSuchAction")
    await client.response(aid)
    bad_format = await client.event("RequestBadFormat")
    assert keys(bad_format) == keys(trace_first("e-queue-actions", "RequestBadFormat"))
    assert dict(bad_format)["RequestType"] == "Action: NoSuchAction"


async def test_random_action_storm_keeps_the_server_sane(
    sim: PbxSimulator, client: AmiClient, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(11)
    chans = [
        "Local/hold@members-sim",
        "Local/busy@members-sim",
        "Local/+8613800138000@members-out/n",
        "PJSIP/1",
    ]
    actions = []
    for _ in range(120):
        kind = rng.choice(
            [
                "Originate",
                "Hangup",
                "Redirect",
                "QueuePause",
                "QueueAdd",
                "QueueRemove",
                "Status",
                "Bogus",
            ]
        )
        live = list(sim.state.channels)
        target = rng.choice(live) if live and rng.random() < 0.7 else "Local/none-00000000;1"
        if kind == "Originate":
            aid = client.send(
                kind,
                Channel=rng.choice(chans),
                Context=rng.choice(["outbound", "queues", "nowhere"]),
                Exten=rng.choice(["park", "members", "agent-queue", "x"]),
                Async=rng.choice(["true", "false"]),
                Timeout="3000",
            )
        elif kind in ("Hangup", "Status"):
            aid = client.send(kind, Channel=target)
        elif kind == "Redirect":
            aid = client.send(kind, Channel=target, Context="outbound", Exten="park", Priority="1")
        elif kind.startswith("Queue"):
            aid = client.send(
                kind,
                Queue=rng.choice(["members", "nope"]),
                Interface=rng.choice(["Local/1001@agents/n", "Local/7@agents/n"]),
                Paused=rng.choice(["true", "false"]),
            )
        else:
            aid = client.send(kind)
        actions.append(aid)
        if rng.random() < 0.3:
            await asyncio.sleep(0.005)
    for aid in actions:
        await client.response(aid, wait=10)
    assert await sim.wait_idle(10)
    aid = client.send("Ping")
    assert dict(await client.response(aid))["Ping"] == "Pong"
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert not sim.state.channels and not sim.state.busy
