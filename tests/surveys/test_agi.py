"""The survey over real FastAGI sockets, Asterisk's side replayed from the real traces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import Engine, func, select

from crm_bridge.db import session_scope
from crm_bridge.models import CallbackTask, Complaint, SurveyAnswer, SurveyResponse
from surveys.agi import SurveyAgiApplication, SurveyAgiRequest, SurveyAgiServer
from surveys.agi_wire import parse_headers
from surveys.store import SurveyRecorder
from tests.surveys.agi_client import (
    TRACE_HEADERS,
    TRACES,
    AsteriskSide,
    Early,
    HangUp,
    Press,
    Silence,
    header_block,
    run_call,
    trace_header_block,
)
from tests.surveys.conftest import Seed, sqlite_only

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture
async def agi(engine: Engine) -> AsyncIterator[SurveyAgiServer]:
    server = SurveyAgiServer(SurveyRecorder(engine), reply_timeout_s=5, header_timeout_s=2)
    await server.start("127.0.0.1", 0)
    yield server
    await server.close()


def _response(engine: Engine, key: str) -> tuple[SurveyResponse, dict[str, str]]:
    with session_scope(engine) as s:
        r = s.scalars(select(SurveyResponse).where(SurveyResponse.response_key == key)).one()
        answers = {
            row[0]: row[1]
            for row in s.execute(
                select(SurveyAnswer.question_id, SurveyAnswer.value).where(
                    SurveyAnswer.response_id == r.id
                )
            )
        }
        return r, answers


def _count(engine: Engine, model: type) -> int:
    with session_scope(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# -- the test helper is faithful to the traces -------------------------------------------


@pytest.mark.parametrize(
    ("trace", "behaviour"),
    [
        ("fastagi-survey", [Press("4")]),
        ("fastagi-survey-timeout", [Silence()]),
        ("fastagi-survey-hangup", [HangUp()]),
    ],
)
def test_asterisk_side_replays_the_trace_bytes(trace: str, behaviour: list) -> None:
    """Fed the commands the trace's server sent, the helper answers the trace's exact bytes."""
    side = AsteriskSide(variables={"MEMBER_ID": "42"}, behaviour=list(behaviour))
    commands = (TRACES / f"{trace}.to-asterisk.raw").read_bytes().decode().splitlines()
    got = trace_header_block(trace) + b"".join(side.reply(c) for c in commands)
    want = (TRACES / f"{trace}.from-asterisk.raw").read_bytes()
    if trace.endswith("hangup"):
        # panoramisk closed the socket before Asterisk's 511 for STREAM FILE (AGIExecEnd
        # ResultCode 511 in d-ivr-survey-fastagi-hangup.txt) reached the recording.
        assert got == want + b"511 Command Not Permitted on a dead channel or intercept routine\n"
    else:
        assert got == want


async def test_reader_survives_the_unprompted_hangup_line() -> None:
    """The hang-up trace's exact bytes through our request: every reply lines up with its
    command (panoramisk's send_command reads HANGUP as SET VARIABLE's reply and goes one late)."""
    raw = (TRACES / "fastagi-survey-hangup.from-asterisk.raw").read_bytes()
    head, body = raw[: raw.index(b"\n\n") + 2], raw[raw.index(b"\n\n") + 2 :]
    reader = asyncio.StreamReader()
    reader.feed_data(body)
    reader.feed_eof()

    class _Sink:
        def write(self, data: bytes) -> None:
            pass

        async def drain(self) -> None:
            pass

    app = SurveyAgiApplication()
    req = SurveyAgiRequest(app, parse_headers(head), reader, _Sink())  # type: ignore[arg-type]
    assert req.info.args == ("hangup",)
    assert await req.get_variable("MEMBER_ID") == "42"
    assert (await req.command("ANSWER")).result == "0"
    assert (await req.command('VERBOSE "survey started" 1')).result == "1"
    get_data = await req.command("GET DATA beep 3000 1")
    assert get_data.failed and not get_data.timed_out
    set_var = await req.command('SET VARIABLE SURVEY_SCORE ""')
    assert set_var.ok and set_var.result == "1"
    assert req.hung_up  # the HANGUP line was noted, not returned as a reply
    compat = await req.send_command('STREAM FILE auth-thankyou ""')
    assert compat["error"] == "AGIResultHangup"


async def test_timeout_marker_is_kept() -> None:
    raw = (TRACES / "fastagi-survey-timeout.from-asterisk.raw").read_bytes()
    head, body = raw[: raw.index(b"\n\n") + 2], raw[raw.index(b"\n\n") + 2 :]
    reader = asyncio.StreamReader()
    reader.feed_data(body)
    reader.feed_eof()

    class _Sink:
        def write(self, data: bytes) -> None:
            pass

        async def drain(self) -> None:
            pass

    req = SurveyAgiRequest(SurveyAgiApplication(), parse_headers(head), reader, _Sink())  # type: ignore[arg-type]
    for cmd in ("GET VARIABLE MEMBER_ID", "ANSWER", 'VERBOSE "x" 1'):
        await req.command(cmd)
    reply = await req.command("GET DATA beep 3000 1")
    assert reply.timed_out and reply.result == ""
    assert (await req.send_command("GET DATA beep 3000 1"))["result"] == ("1", "")
    end = await req.command('STREAM FILE auth-thankyou ""')
    assert end.extra == {"endpos": "7680"}


# -- survey dialogs over a real socket ---------------------------------------------------

INTRO = [
    "GET VARIABLE MEMBER_ID",
    "GET VARIABLE CAMPAIGN_ID",
    "GET VARIABLE AGENT_ID",
    "ANSWER",
]


async def test_complete_survey(agi: SurveyAgiServer, engine: Engine, seeded: Seed) -> None:
    side = AsteriskSide(
        variables={"MEMBER_ID": str(seeded.member_id), "CAMPAIGN_ID": str(seeded.campaign_id)},
        behaviour=[Press("4"), Press("9", timed_out=True), Press("2")],
    )
    commands = await run_call(
        agi.port,
        side,
        headers=header_block(script="survey?name=satisfaction", uniqueid="1795349518.40"),
    )
    r, answers = _response(engine, "1795349518.40")
    assert commands == [
        *INTRO,
        'SET VARIABLE CHANNEL(language) "zh_CN"',  # the member's locale
        f'SET VARIABLE SURVEY_RESPONSE_ID "{r.id}"',
        'STREAM FILE survey-satisfaction-intro "0123456789*#"',
        "GET DATA survey-satisfaction-csat 5000 1",
        "GET DATA survey-satisfaction-nps 5000 2",
        "GET DATA survey-satisfaction-callback 5000 1",
        'SET VARIABLE SURVEY_STATUS "complete"',
        'STREAM FILE survey-satisfaction-thanks ""',
    ]
    assert answers == {"q_csat": "4", "q_nps": "9", "q_callback": "2"}
    assert (r.status, r.csat, r.nps, r.callback_requested) == ("complete", 4, 9, False)
    assert (r.member_id, r.campaign_id, r.channel) == (seeded.member_id, seeded.campaign_id, "agi")
    assert r.completed_at is not None
    assert _count(engine, Complaint) == 0 and _count(engine, CallbackTask) == 0


async def test_hangup_mid_survey_keeps_answers_partial(
    agi: SurveyAgiServer, engine: Engine, seeded: Seed
) -> None:
    side = AsteriskSide(
        variables={"MEMBER_ID": str(seeded.member_id)}, behaviour=[Press("2"), HangUp()]
    )
    commands = await run_call(
        agi.port, side, headers=header_block(uniqueid="1795349531.44", args=("hangup",))
    )
    # After result=-1 the server asks CHANNEL STATUS (511: dead) and sends nothing more.
    assert commands[-3:] == [
        "GET DATA survey-satisfaction-csat 5000 1",
        "GET DATA survey-satisfaction-nps 5000 2",
        "CHANNEL STATUS",
    ]
    r, answers = _response(engine, "1795349531.44")
    assert answers == {"q_csat": "2"}
    assert (r.status, r.csat, r.nps, r.completed_at) == ("partial", 2, None, None)
    # CSAT 2 escalated the moment it was stored, before the hang-up.
    with session_scope(engine) as s:
        complaint = s.scalars(select(Complaint)).one()
        task = s.scalars(select(CallbackTask)).one()
        assert (complaint.source, complaint.source_ref) == ("survey", f"survey:{r.id}")
        assert complaint.owner_agent_id == seeded.agent_id
        assert (task.agent_id, task.complaint_id) == (seeded.agent_id, complaint.id)


async def test_a_key_pressed_during_the_intro_is_the_first_answer(
    agi: SurveyAgiServer, engine: Engine, seeded: Seed
) -> None:
    """Members who know the survey answer during the intro: the key stops the intro and is
    kept (one-digit question: it is the answer; two-digit: its first digit)."""
    side = AsteriskSide(
        variables={"MEMBER_ID": str(seeded.member_id)},
        behaviour=[Early("5"), Press("11"), Early("1"), Press("0"), Press("2")],
    )
    commands = await run_call(agi.port, side, headers=header_block(uniqueid="early.1"))
    asks = [c for c in commands if c.startswith(("GET DATA", "STREAM FILE"))]
    assert asks == [
        'STREAM FILE survey-satisfaction-intro "0123456789*#"',
        # csat answered by the 5 pressed during the intro: no GET DATA for it
        "GET DATA survey-satisfaction-nps 5000 2",
        'STREAM FILE survey-invalid "0123456789*#"',
        # "1" pressed during "invalid, try again": the first of NPS's two digits
        "GET DATA survey-satisfaction-nps 5000 1",
        "GET DATA survey-satisfaction-callback 5000 1",
        'STREAM FILE survey-satisfaction-thanks ""',
    ]
    r, answers = _response(engine, "early.1")
    assert answers == {"q_csat": "5", "q_nps": "10", "q_callback": "2"}
    assert (r.status, r.csat, r.nps) == ("complete", 5, 10)


@sqlite_only
async def test_invalid_input_reprompts(agi: SurveyAgiServer, engine: Engine, seeded: Seed) -> None:
    side = AsteriskSide(
        behaviour=[Press("7"), Press("*"), Press("5"), Press("11"), Press("10"), Press("1")]
    )
    commands = await run_call(
        agi.port,
        side,
        headers=header_block(
            script="survey",
            uniqueid="inv.1",
            args=(f"member={seeded.orphan_member_id}", "name=satisfaction"),
        ),
    )
    # member given as an argument: only campaign and agent are read from the channel
    assert commands[:3] == ["GET VARIABLE CAMPAIGN_ID", "GET VARIABLE AGENT_ID", "ANSWER"]
    assert 'SET VARIABLE CHANNEL(language) "en"' in commands
    asks = [c for c in commands if c.startswith(("GET DATA", "STREAM FILE"))]
    assert asks == [
        'STREAM FILE survey-satisfaction-intro "0123456789*#"',
        "GET DATA survey-satisfaction-csat 5000 1",
        'STREAM FILE survey-invalid "0123456789*#"',
        "GET DATA survey-satisfaction-csat 5000 1",
        'STREAM FILE survey-invalid "0123456789*#"',
        "GET DATA survey-satisfaction-csat 5000 1",
        "GET DATA survey-satisfaction-nps 5000 2",
        'STREAM FILE survey-invalid "0123456789*#"',
        "GET DATA survey-satisfaction-nps 5000 2",
        "GET DATA survey-satisfaction-callback 5000 1",
        'STREAM FILE survey-satisfaction-thanks ""',
    ]
    r, answers = _response(engine, "inv.1")
    assert answers == {"q_csat": "5", "q_nps": "10", "q_callback": "1"}
    assert (r.status, r.csat, r.nps, r.callback_requested) == ("complete", 5, 10, True)
    # callback only (good scores): an inquiry + a callback task for the campaign-less queue
    with session_scope(engine) as s:
        task = s.scalars(select(CallbackTask)).one()
        assert (task.agent_id, task.queue, task.complaint_id) == (None, "members", None)
    assert _count(engine, Complaint) == 0


@sqlite_only
async def test_timeouts_reprompt_then_end_partial(
    agi: SurveyAgiServer, engine: Engine, seeded: Seed
) -> None:
    side = AsteriskSide(variables={"MEMBER_ID": str(seeded.member_id)}, behaviour=[Silence()] * 3)
    commands = await run_call(agi.port, side, headers=header_block(uniqueid="to.1"))
    asks = [
        c for c in commands if c.startswith(("GET DATA", "STREAM FILE", "SET VARIABLE SURVEY_S"))
    ]
    assert asks == [
        'STREAM FILE survey-satisfaction-intro "0123456789*#"',
        "GET DATA survey-satisfaction-csat 5000 1",
        'STREAM FILE survey-no-input "0123456789*#"',
        "GET DATA survey-satisfaction-csat 5000 1",
        'STREAM FILE survey-no-input "0123456789*#"',
        "GET DATA survey-satisfaction-csat 5000 1",
        'SET VARIABLE SURVEY_STATUS "partial"',
        'STREAM FILE survey-satisfaction-thanks ""',
    ]
    r, answers = _response(engine, "to.1")
    assert (r.status, answers) == ("partial", {})


async def test_same_channel_twice_is_one_response(
    agi: SurveyAgiServer, engine: Engine, seeded: Seed
) -> None:
    for _ in range(2):
        side = AsteriskSide(
            variables={"MEMBER_ID": str(seeded.member_id)},
            behaviour=[Press("1"), Press("0"), Press("1")],
        )
        await run_call(agi.port, side, headers=header_block(uniqueid="dup.1"))
    assert _count(engine, SurveyResponse) == 1
    assert _count(engine, Complaint) == 1 and _count(engine, CallbackTask) == 1


@sqlite_only
async def test_garbage_and_early_eof_do_not_hang_the_server(
    agi: SurveyAgiServer, engine: Engine
) -> None:
    # EOF before the header block ends (panoramisk's own handler loops forever on this)
    reader, writer = await asyncio.open_connection("127.0.0.1", agi.port)
    writer.write(b"agi_network: yes\nagi_network_script: surv")
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    # an unknown route is closed at once
    side = AsteriskSide()
    assert await run_call(agi.port, side, headers=header_block(script="nosuch")) == []
    assert not agi.app or not agi.app.connections


def test_embedded_header_block_is_the_trace() -> None:
    assert TRACE_HEADERS == trace_header_block("fastagi-survey")
