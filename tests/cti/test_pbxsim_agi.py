"""The simulator as FastAGI client: byte-exact against the fastagi-survey* traces."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from panoramisk.fast_agi import Application, Request

from cti.pbxsim import NumberOverride, PbxSimulator, Scenario
from tests.cti.pbxsim_helpers import TRACES, AmiClient, Msg, name_of, trace_messages

SCALE = 0.01
VOLATILE = re.compile(
    r"^(agi_request|agi_uniqueid|agi_threadid): .*$|(?<=@members-sim-)[0-9a-f]{8}(?=;1)", re.M
)


def normalise(data: bytes) -> str:
    return VOLATILE.sub(lambda m: m.group(1) or "X", data.decode())


@dataclass
class ReplayServer:
    """A FastAGI server that sends the trace's commands, one reply line each (as panoramisk)."""

    commands: list[bytes]
    received: bytearray = field(default_factory=bytearray)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while b"\n\n" not in self.received:
            chunk = await reader.read(4096)
            if not chunk:
                break
            self.received += chunk
        for cmd in self.commands:
            writer.write(cmd)
            line = await asyncio.wait_for(reader.readline(), 10)
            self.received += line
        writer.close()
        self.done.set()


@pytest.fixture
async def replay_sim() -> AsyncIterator[tuple[PbxSimulator, AmiClient, ReplayServer]]:
    replay = ReplayServer([])
    server = await asyncio.start_server(replay.handle, "127.0.0.1", 0)
    replay.server = server
    port = server.sockets[0].getsockname()[1]
    sim = PbxSimulator(
        Scenario(time_scale=SCALE),
        ami_users={"lab": "labsecret"},
        agi_host="127.0.0.1",
        agi_port=port,
    )
    await sim.start()
    client = await AmiClient.connect(sim.port)
    await client.login("lab", "labsecret")
    try:
        yield sim, client, replay
    finally:
        await client.close()
        await sim.stop()
        server.close()


def _originate(client: AmiClient, exten: str, case: str | None) -> str:
    headers = {
        "ActionID": "orig-42-survey",
        "Channel": f"Local/{exten}@members-sim",
        "Context": "survey",
        "Exten": "start" if case is None else "start-case",
        "Priority": "1",
        "Timeout": "30000",
        "CallerID": '"Survey" <4001>',
        "Variable": "MEMBER_ID=42" if case is None else f"MEMBER_ID=42,SURVEY_CASE={case}",
        "Async": "true",
    }
    return client.send("Originate", **headers)


@pytest.mark.parametrize(
    ("trace", "exten", "case"),
    [
        ("fastagi-survey", "survey-dtmf", None),
        ("fastagi-survey-timeout", "survey-silent", "timeout"),
        ("fastagi-survey-hangup", "survey-hangup", "hangup"),
    ],
)
async def test_fastagi_bytes_match_trace(
    replay_sim: tuple[PbxSimulator, AmiClient, ReplayServer],
    trace: str,
    exten: str,
    case: str | None,
) -> None:
    sim, client, replay = replay_sim
    sent = (TRACES / f"{trace}.to-asterisk.raw").read_bytes()
    replay.commands = [line + b"\n" for line in sent.split(b"\n") if line]
    want = (TRACES / f"{trace}.from-asterisk.raw").read_bytes()
    _originate(client, exten, case)
    await asyncio.wait_for(replay.done.wait(), 10)
    assert await sim.wait_idle(10)
    got = normalise(bytes(replay.received))
    expected = normalise(want)
    assert got.startswith(expected)
    # the trace's server closed before Asterisk's last reply (a 511) arrived
    assert got[len(expected) :] in (
        "",
        "511 Command Not Permitted on a dead channel or intercept routine\n",
    )
    assert sim.stats.agi_sessions == 1


def _ami_sequence(msgs: list[Msg]) -> list[str]:
    keep = {"AGIExecStart", "AGIExecEnd", "DTMFBegin", "DTMFEnd", "OriginateResponse"}
    return [name_of(m) for m in msgs if name_of(m) in keep]


@pytest.mark.parametrize(
    ("trace", "exten", "case"),
    [
        ("d-ivr-survey-fastagi", "survey-dtmf", None),
        ("d-ivr-survey-fastagi-hangup", "survey-hangup", "hangup"),
    ],
)
async def test_fastagi_ami_events_match_trace(
    replay_sim: tuple[PbxSimulator, AmiClient, ReplayServer],
    trace: str,
    exten: str,
    case: str | None,
) -> None:
    sim, client, replay = replay_sim
    name = "fastagi-survey" if case is None else f"fastagi-survey-{case}"
    sent = (TRACES / f"{name}.to-asterisk.raw").read_bytes()
    replay.commands = [line + b"\n" for line in sent.split(b"\n") if line]
    _originate(client, exten, case)
    await asyncio.wait_for(replay.done.wait(), 10)
    assert await sim.wait_idle(10)
    await asyncio.sleep(0.05)
    while True:
        try:
            await client.read_message(0.1)
        except TimeoutError:
            break
    theirs = trace_messages(trace)
    assert _ami_sequence(client.messages) == _ami_sequence(theirs)
    ours = {name_of(m): [k for k, _ in m] for m in client.messages}
    for m in theirs:
        if name_of(m) in ("AGIExecStart", "AGIExecEnd", "DTMFBegin", "DTMFEnd"):
            assert ours[name_of(m)] == [k for k, _ in m]
    ends = [dict(m) for m in client.messages if name_of(m) == "AGIExecEnd"]
    want = [dict(m) for m in theirs if name_of(m) == "AGIExecEnd"]
    assert [(e["Command"], e["ResultCode"], e["Result"]) for e in ends] == [
        (e["Command"], e["ResultCode"], e["Result"]) for e in want
    ]
    start = next(dict(m) for m in client.messages if name_of(m) == "AGIExecStart")
    assert (start["Context"], start["Exten"], start["Priority"]) == ("survey", start["Exten"], "2")


# ---------------------------------------------------------------- panoramisk app


@dataclass
class SurveyLog:
    headers: dict[str, str] = field(default_factory=dict)
    replies: list[str] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)


async def _survey_route(log: SurveyLog, request: Request) -> None:
    log.headers = dict(request.headers)
    try:
        for cmd in (
            "ANSWER",
            "GET DATA csat 3000 1",
            "GET DATA nps 3000 2",
            "GET DATA callback 3000 1",
            "GET DATA extra 3000 1",
        ):
            res = await request.send_command(cmd)
            # panoramisk's parse: result value, or its error name (it drops "(timeout)")
            log.replies.append(res["error"] if "error" in res else res["result"][0])
            if "error" in res:
                break
    finally:
        log.finished.set()


@pytest.mark.parametrize(
    ("script", "want"),
    [
        (("4", "10", "1"), ["0", "4", "10", "1"]),
        (("5", "timeout", "9"), ["0", "5", "", "9"]),
        (("2", "hangup"), ["0", "2", "AGIAppError"]),
    ],
)
async def test_survey_over_panoramisk_fastagi(script: tuple[str, ...], want: list[str]) -> None:
    log = SurveyLog()
    app = Application()

    async def route(request: Request) -> None:
        await _survey_route(log, request)

    app.add_route("survey?name=csat", route)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    number = "+8613800138000"
    scenario = Scenario(
        time_scale=SCALE, overrides={number: NumberOverride("answer", 1.0, 60.0, script)}
    )
    sim = PbxSimulator(scenario, agi_port=port)
    await sim.start()
    client = await AmiClient.connect(sim.port)
    try:
        await client.login()
        aid = client.send(
            "Originate",
            Channel=f"Local/{number}@members-out/n",
            Context="surveys",
            Exten="csat",
            CallerID='"Memberline" <4001>',
            Variable="MEMBER_ID=42,SURVEY_ARGS=campaign-7|42",
            Async="true",
            ChannelId="att-1",
        )
        resp = dict(await client.event("OriginateResponse", ActionID=aid))
        assert resp["Reason"] == "4" and resp["Uniqueid"] == "att-1"
        await asyncio.wait_for(log.finished.wait(), 10)
        assert await sim.wait_idle(10)
    finally:
        await client.close()
        await sim.stop()
        server.close()
    assert log.replies[: len(want)] == want
    if script[-1] != "hangup":
        # the script ran out on the 4th question: the member hangs up then
        assert log.replies[len(want) :] == ["AGIAppError"]
    else:
        assert log.replies == want
    h = log.headers
    assert h["agi_network_script"] == "survey?name=csat" and h["agi_uniqueid"] == "att-1"
    assert h["agi_arg_1"] == "campaign-7" and h["agi_arg_2"] == "42"
    assert h["agi_callerid"] == "4001" and h["agi_context"] == "surveys"
    assert h["agi_channel"].startswith(f"Local/{number}@members-out-")
