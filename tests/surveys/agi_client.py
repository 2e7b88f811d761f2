"""The Asterisk side of a FastAGI dialog, replayed as real Asterisk 22 writes it.

Built from ``traces/fastagi-survey*.from-asterisk.raw`` (copies of ``shared/ami-traces``): the ``agi_*`` header
block (taken verbatim from the trace, with the route, uniqueid and arguments substituted),
then exactly one reply line per command, LF-terminated. A member hanging up during
``GET DATA`` gives ``200 result=-1`` followed at once by an unprompted ``HANGUP`` line; after
that, channel commands get ``511 Command Not Permitted on a dead channel or intercept
routine`` (the trace's AGIExecEnd ResultCode 511) while GET/SET VARIABLE and VERBOSE still
answer ``200``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

TRACES = Path(__file__).resolve().parent / "traces"
"""Byte-exact copies of the shared FastAGI traces, so a clean clone has them."""

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


Behaviour = Press | Silence | HangUp


def trace_header_block(name: str = "fastagi-survey") -> bytes:
    raw = (TRACES / f"{name}.from-asterisk.raw").read_bytes()
    return raw[: raw.index(b"\n\n") + 2]


def header_block(
    *,
    script: str = "survey",
    uniqueid: str = "1795349518.40",
    args: tuple[str, ...] = (),
    language: str = "en",
    trace: str = "fastagi-survey",
) -> bytes:
    """The trace's header block with the request script, uniqueid and arguments replaced."""
    lines = trace_header_block(trace).decode().split("\n")[:-2]
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
            return b"200 result=0 endpos=7680\n"
        if verb.startswith("GET DATA"):
            what = self.behaviour.pop(0) if self.behaviour else Silence()
            if isinstance(what, HangUp):
                self.dead = True
                return b"200 result=-1\nHANGUP\n"
            if isinstance(what, Silence):
                return b"200 result= (timeout)\n"
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
