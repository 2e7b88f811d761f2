"""Test helpers for code that talks to the survey FastAGI server: Asterisk's side of the
dialog, replayed as real Asterisk 22.10 writes it (public, like ``structlog.testing``; used by
the tests and ``memberline bench surveys``).

Built from the recorded ``fastagi-survey*.from-asterisk.raw`` (in
``tests/fixtures/ami-traces``): the ``agi_*`` header block (verbatim, with the route, uniqueid and
arguments substituted), then exactly one reply line per command, LF-terminated. A member
hanging up during ``GET DATA`` gives ``200 result=-1`` followed at once by an unprompted
``HANGUP`` line; after that, channel commands get ``511 Command Not Permitted on a dead
channel or intercept routine`` (the trace's AGIExecEnd ResultCode 511) while GET/SET VARIABLE
and VERBOSE still answer ``200``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

__all__ = [
    "DEAD",
    "TRACE_HEADERS",
    "AsteriskSide",
    "Behaviour",
    "Early",
    "HangUp",
    "Press",
    "Silence",
    "header_block",
    "run_call",
]

TRACE_HEADERS = (
    b"agi_network: yes\nagi_network_script: survey\nagi_request: agi://127.0.0.1:4573/survey\n"
    b"agi_channel: Local/survey-dtmf@members-sim-00000014;1\nagi_language: en\nagi_type: Local\n"
    b"agi_uniqueid: 1795349518.40\nagi_version: 22.10.1\nagi_callerid: 4001\n"
    b"agi_calleridname: Survey\nagi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\n"
    b"agi_callingtns: 0\nagi_dnid: unknown\nagi_rdnis: unknown\nagi_context: survey\n"
    b"agi_extension: start\nagi_priority: 2\nagi_enhanced: 0.0\nagi_accountcode: \n"
    b"agi_threadid: 139781385807552\n\n"
)
"""The header block of ``fastagi-survey.from-asterisk.raw``, byte for byte."""

DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"
_DEAD_OK = ("GET VARIABLE", "SET VARIABLE", "VERBOSE", "GET FULL VARIABLE")


@dataclass(frozen=True)
class Press:
    """The member types ``digits``; ``timed_out``: then waits (fewer keys than max)."""

    digits: str
    timed_out: bool = False


@dataclass(frozen=True)
class Silence:
    """The member types nothing until GET DATA's timeout."""


@dataclass(frozen=True)
class HangUp:
    """The member hangs up while the prompt plays."""


@dataclass(frozen=True)
class Early:
    """The member presses ``key`` during the next prompt played with that escape digit
    (``STREAM FILE <file> "<escape digits>"`` answers ``result=<ASCII code>``)."""

    key: str


Behaviour = Press | Silence | HangUp | Early


def header_block(
    *,
    script: str = "survey",
    uniqueid: str = "1795349518.40",
    args: tuple[str, ...] = (),
    language: str = "en",
    template: bytes | None = None,
) -> bytes:
    """The trace's header block with the request script, uniqueid and arguments replaced."""
    lines = (template or TRACE_HEADERS).decode().split("\n")[:-2]
    out = []
    for line in lines:
        key = line.split(":", 1)[0]
        if key.startswith("agi_arg_"):
            continue
        if key == "agi_network_script":
            line = f"agi_network_script: {script}"
        elif key == "agi_request":
            line = f"agi_request: agi://127.0.0.1:4573/{script}"
        elif key == "agi_uniqueid":
            line = f"agi_uniqueid: {uniqueid}"
        elif key == "agi_language":
            line = f"agi_language: {language}"
        out.append(line)
    out += [f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)]
    return ("\n".join(out) + "\n\n").encode()


@dataclass
class AsteriskSide:
    """Pure: command line in, reply bytes out, as Asterisk answers them."""

    variables: dict[str, str] = field(default_factory=dict)
    behaviour: list[Behaviour] = field(default_factory=list)
    dead: bool = False
    commands: list[str] = field(default_factory=list)

    def reply(self, command: str) -> bytes:
        self.commands.append(command)
        verb = command.upper()
        if self.dead and not verb.startswith(_DEAD_OK):
            return DEAD
        if verb.startswith("GET VARIABLE"):
            name = command.split(" ", 2)[2]
            if name in self.variables:
                return f"200 result=1 ({self.variables[name]})\n".encode()
            return b"200 result=0\n"
        if verb.startswith("SET VARIABLE"):
            name, _, value = command.split(" ", 2)[2].partition(" ")
            self.variables[name] = value.strip('"')
            return b"200 result=1\n"
        if verb == "ANSWER":
            return b"200 result=0\n"
        if verb.startswith("VERBOSE"):
            return b"200 result=1\n"
        if verb == "CHANNEL STATUS":
            return b"200 result=6\n"
        if verb.startswith("STREAM FILE"):
            escape = command.rsplit(" ", 1)[-1].strip('"')
            nxt = self.behaviour[0] if self.behaviour else None
            if isinstance(nxt, Early) and nxt.key in escape:
                self.behaviour.pop(0)
                return f"200 result={ord(nxt.key)} endpos=2560\n".encode()
            return b"200 result=0 endpos=7680\n"
        if verb.startswith("GET DATA"):
            what = self.behaviour.pop(0) if self.behaviour else Silence()
            if isinstance(what, HangUp):
                self.dead = True
                return b"200 result=-1\nHANGUP\n"
            if isinstance(what, Silence):
                return b"200 result= (timeout)\n"
            if isinstance(what, Early):
                what = Press(what.key)
            suffix = " (timeout)" if what.timed_out else ""
            return f"200 result={what.digits}{suffix}\n".encode()
        return b"510 Invalid or unknown command\n"


async def run_call(
    port: int,
    side: AsteriskSide,
    *,
    headers: bytes,
    max_commands: int = 100,
    split_writes: bool = True,
) -> list[str]:
    """Connect to the FastAGI server as Asterisk, answer until it closes; return its commands.

    ``split_writes`` sends the HANGUP line in a separate write, as a later TCP segment.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(headers)
        await writer.drain()
        for _ in range(max_commands):
            line = await asyncio.wait_for(reader.readline(), 10)
            if not line:
                break
            reply = side.reply(line.decode().rstrip("\n"))
            if split_writes and reply.endswith(b"HANGUP\n"):
                writer.write(reply[: -len(b"HANGUP\n")])
                await writer.drain()
                await asyncio.sleep(0.01)
                writer.write(b"HANGUP\n")
            else:
                writer.write(reply)
            await writer.drain()
        else:
            raise AssertionError(f"server sent more than {max_commands} commands")
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass
    return side.commands
