"""The simulator as a FastAGI *client* (what Asterisk's ``AGI(agi://...)`` does).

Byte format from ``fastagi-survey*.from-asterisk.raw``: ``agi_*: value`` lines
(LF), a blank line, then one reply line per command. Replies as Asterisk 22
sends them: ``GET DATA`` -> ``200 result=4`` / ``200 result= (timeout)`` /
``200 result=-1`` followed by an unprompted ``HANGUP`` line when the member
hung up; afterwards commands that need a live channel get ``511 Command Not
Permitted on a dead channel or intercept routine``.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cti.pbxsim import ami_events as ev
from cti.pbxsim.ami_events import Channel
from cti.pbxsim.call_actors import CallActor, Signal, _cdr

if TYPE_CHECKING:
    from cti.pbxsim.originate import Callee
    from cti.pbxsim.sim import PbxSimulator

log = logging.getLogger(__name__)

DEAD = (511, "Command Not Permitted on a dead channel or intercept routine")
DEAD_OK = {"GET VARIABLE", "SET VARIABLE", "VERBOSE", "NOOP", "GET FULL VARIABLE", "HANGUP"}
PROMPT_SECONDS = 0.96
PROMPT_ENDPOS = 7680
MAX_COMMANDS = 10_000
READ_TIMEOUT = 300.0


@dataclass
class AgiResult:
    callee_gone: bool
    redirect: Signal | None = None


def agi_environment(sim: PbxSimulator, chan: Channel, url: str, args: tuple[str, ...]) -> bytes:
    parts = urlsplit(url)
    script = parts.path.lstrip("/")
    if parts.query:
        script += "?" + parts.query
    lines = [
        ("agi_network", "yes"),
        ("agi_network_script", script),
        ("agi_request", url),
        ("agi_channel", chan.name),
        ("agi_language", chan.language),
        ("agi_type", "Local"),
        ("agi_uniqueid", chan.uniqueid),
        ("agi_version", "22.10.1"),
        ("agi_callerid", chan.cid_num),
        ("agi_calleridname", chan.cid_name),
        ("agi_callingpres", "0"),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", "unknown"),
        ("agi_rdnis", "unknown"),
        ("agi_context", chan.context),
        ("agi_extension", chan.exten),
        ("agi_priority", str(chan.priority)),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", chan.accountcode),
        ("agi_threadid", str(139781385807552 + sim.rng.randrange(1 << 20) * 4096)),
    ]
    lines += [(f"agi_arg_{i}", a) for i, a in enumerate(args, start=1)]
    return ("".join(f"{k}: {v}\n" for k, v in lines) + "\n").encode("utf-8")


class _Member:
    """Picks the member's answer to each question (script first, else probabilities)."""

    def __init__(self, sim: PbxSimulator, callee: Callee) -> None:
        self.sim = sim
        self.script = list(callee.survey) if callee.survey is not None else None

    def early(self, escape: str, prompt: str = "") -> bool:
        """The next script token is ``early:<key>`` (or ``early:<key>@<prompt>``: during that
        prompt only) and the prompt lets that key stop it."""
        if not self.script or not self.script[0].startswith("early:"):
            return False
        key, _, where = self.script[0].removeprefix("early:").partition("@")
        return len(key) == 1 and key in escape and (not where or where == prompt)

    def take_early(self) -> str:
        assert self.script is not None
        return self.script.pop(0).removeprefix("early:")[:1]

    def answer(self, maxdigits: int) -> str:
        if self.script is not None:
            return self.script.pop(0) if self.script else "hangup"
        spec = self.sim.scenario.survey
        rng = self.sim.rng
        r = rng.random()
        if r < spec.p_hangup:
            return "hangup"
        if r < spec.p_hangup + spec.p_silence:
            return "timeout"
        if r < spec.p_hangup + spec.p_silence + spec.p_invalid:
            return rng.choice(spec.invalid_keys)
        if maxdigits >= 2:
            return rng.choice(spec.nps_digits)
        return rng.choice(spec.digits)


class _AgiRun:
    def __init__(
        self,
        actor: CallActor,
        chan: Channel,
        peer: Channel,
        callee: Callee,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.actor = actor
        self.sim = actor.sim
        self.chan = chan
        self.peer = peer
        self.member = _Member(actor.sim, callee)
        self.writer = writer
        self.dead = False
        self.redirect: Signal | None = None

    def send(self, line: str) -> None:
        self.writer.write((line + "\n").encode("utf-8"))

    def member_hangs_up(self) -> None:
        """d-ivr-survey-fastagi-hangup order: the ;2 goes first, ;1 stays in AGI."""
        if self.dead:
            return
        sim, chan, peer = self.sim, self.chan, self.peer
        sim.emit(ev.hangup_request(peer, 16, soft=True))
        sim.emit(ev.hangup_request(chan, 16))
        sim.emit(ev.hangup(peer, 16))
        peer.hungup = True
        _cdr(sim, peer)
        self.dead = True

    async def pause(self, seconds: float) -> bool:
        """Let simulated time pass; False if the call was hung up / redirected meanwhile."""
        tag = f"agi:{id(self)}:{self.sim.rng.random()}"
        self.actor.timer(seconds, tag)
        while True:
            sig = await self.actor.next()
            if sig.kind == "timer" and sig.tag == tag:
                return True
            if sig.kind == "timer" and sig.tag == "callee_end":
                self.member_hangs_up()
                return False
            if sig.kind == "hangup" and sig.channel in (self.chan.name, self.peer.name):
                self.member_hangs_up()
                return False
            if sig.kind == "redirect" and sig.channel == self.chan.name:
                self.redirect = sig
                return False

    def drain(self) -> None:
        """Handle signals that arrived while we were blocked on the socket."""
        while not self.actor.inbox.empty():
            sig = self.actor.inbox.get_nowait()
            if sig.kind == "timer" and sig.tag == "callee_end":
                self.member_hangs_up()
            elif sig.kind == "hangup" and sig.channel in (self.chan.name, self.peer.name):
                self.member_hangs_up()
            elif sig.kind == "redirect" and sig.channel == self.chan.name:
                self.redirect = sig

    async def dtmf(self, digits: str) -> None:
        for d in digits:
            self.sim.emit(ev.dtmf(self.chan, d, end=False))
            await self.sim.sleep(0.1)
            self.sim.emit(ev.dtmf(self.chan, d, end=True))

    async def execute(self, line: str) -> tuple[int, str]:
        """Run one AGI command; writes the reply line(s); returns (code, AMI Result)."""
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        upper = [w.upper() for w in words]
        cmd2 = " ".join(upper[:2])
        cmd3 = " ".join(upper[:3])
        cmd1 = upper[0] if upper else ""
        known = (
            cmd1 in ("ANSWER", "VERBOSE", "HANGUP", "NOOP", "EXEC")
            or cmd2
            in (
                "GET DATA",
                "STREAM FILE",
                "GET VARIABLE",
                "SET VARIABLE",
                "GET FULL VARIABLE",
                "SAY DIGITS",
                "SAY NUMBER",
                "SAY ALPHA",
                "CHANNEL STATUS",
                "GET OPTION",
            )
            or cmd3 == "WAIT FOR DIGIT"
        )
        if not known:
            self.send("510 Invalid or unknown command")
            return 510, "Invalid or unknown command"
        name = cmd3 if cmd3 == "WAIT FOR DIGIT" else (cmd2 if cmd2 in _TWO_WORD else cmd1)
        if self.dead and name not in DEAD_OK:
            self.send(f"{DEAD[0]} {DEAD[1]}")
            return DEAD
        if name == "GET VARIABLE":
            var = words[2] if len(words) > 2 else ""
            value = _channel_function(var, self.chan)
            if value is None:
                value = self.chan.variables.get(var)
            self.send("200 result=0" if value is None else f"200 result=1 ({value})")
        elif name == "GET FULL VARIABLE":
            value = _expand(words[3] if len(words) > 3 else "", self.chan)
            self.send(f"200 result=1 ({value})")
        elif name == "SET VARIABLE":
            if len(words) > 3:
                self.chan.variables[words[2]] = words[3]
                if words[2] == "CHANNEL(language)":
                    self.chan.language = words[3]
            self.send("200 result=1")
        elif name == "ANSWER":
            self.send("200 result=0")
        elif name in ("VERBOSE",):
            self.send("200 result=1")
        elif name == "NOOP":
            self.send("200 result=0")
        elif name == "EXEC":
            self.send("200 result=0")
        elif name == "CHANNEL STATUS":
            self.send("200 result=6")
        elif name == "HANGUP":
            self.send("200 result=1")
            if not self.dead:
                self.member_hangs_up()
        elif name == "GET DATA":
            await self._get_data(words)
        elif name == "WAIT FOR DIGIT":
            await self._wait_for_digit(words)
        elif name == "STREAM FILE" and self.member.early(
            words[3] if len(words) > 3 else "", words[2] if len(words) > 2 else ""
        ):
            # the member presses a key during an interruptible prompt: it stops there
            key = self.member.take_early()
            if not await self.pause(PROMPT_SECONDS / 3):
                if self.redirect is None:
                    self.send("200 result=-1")
                    self.send("HANGUP")
                return 200, "Success"
            await self.dtmf(key)
            self.send(f"200 result={ord(key)} endpos={PROMPT_ENDPOS // 3}")
        else:  # STREAM FILE, SAY *, GET OPTION: play, not interrupted
            if not await self.pause(PROMPT_SECONDS):
                if self.redirect is None:
                    self.send("200 result=-1")
                    self.send("HANGUP")
                return 200, "Success"
            self.send(f"200 result=0 endpos={PROMPT_ENDPOS}")
        return 200, "Success"

    async def _get_data(self, words: list[str]) -> None:
        timeout_ms = _int(words, 3, 5000) or 5000
        maxdigits = _int(words, 4, 1024) or 1024
        answer = self.member.answer(maxdigits)
        response = self.sim.scenario.survey.response_time.sample(self.sim.rng)
        if answer == "hangup":
            await self.pause(min(response, timeout_ms / 1000))
            self.member_hangs_up()
            self.send("200 result=-1")
            self.send("HANGUP")
            return
        if answer == "timeout" or response > timeout_ms / 1000:
            if await self.pause(timeout_ms / 1000 + 0.2):
                self.send("200 result= (timeout)")
            else:
                self._interrupted()
            return
        if not await self.pause(response):
            self._interrupted()
            return
        digits = answer[:maxdigits]
        pressed = digits + ("#" if len(digits) < maxdigits else "")
        await self.dtmf(pressed)
        self.drain()
        if self.dead:
            self._interrupted()
            return
        self.send(f"200 result={digits}")

    async def _wait_for_digit(self, words: list[str]) -> None:
        timeout_ms = _int(words, 3, -1)
        answer = self.member.answer(1)
        response = self.sim.scenario.survey.response_time.sample(self.sim.rng)
        limit = timeout_ms / 1000 if timeout_ms >= 0 else 3600.0
        if answer == "hangup":
            await self.pause(min(response, limit))
            self.member_hangs_up()
            self.send("200 result=-1")
            self.send("HANGUP")
            return
        if answer == "timeout" or response > limit:
            if await self.pause(limit):
                self.send("200 result=0")
            else:
                self._interrupted()
            return
        if not await self.pause(response):
            self._interrupted()
            return
        await self.dtmf(answer[0])
        self.send(f"200 result={ord(answer[0])}")

    def _interrupted(self) -> None:
        if self.redirect is None:
            self.send("200 result=-1")
            self.send("HANGUP")


_TWO_WORD = {
    "GET DATA",
    "STREAM FILE",
    "GET VARIABLE",
    "SET VARIABLE",
    "SAY DIGITS",
    "SAY NUMBER",
    "SAY ALPHA",
    "CHANNEL STATUS",
    "GET OPTION",
}


def _int(words: list[str], i: int, default: int) -> int:
    try:
        return int(words[i])
    except (IndexError, ValueError):
        return default


def _channel_function(var: str, chan: Channel) -> str | None:
    """``CHANNEL(linkedid|uniqueid|language|name)`` as Asterisk's GET VARIABLE evaluates it."""
    if not (var.startswith("CHANNEL(") and var.endswith(")")):
        return None
    field = var[len("CHANNEL(") : -1].lower()
    return {
        "linkedid": chan.linkedid,
        "uniqueid": chan.uniqueid,
        "language": chan.language,
        "name": chan.name,
    }.get(field)


def _expand(expr: str, chan: Channel) -> str:
    if expr.startswith("${") and expr.endswith("}"):
        return chan.variables.get(expr[2:-1], "")
    return expr


async def run_agi(
    actor: CallActor,
    chan: Channel,
    peer: Channel,
    url: str,
    args: tuple[str, ...],
    callee: Callee,
) -> AgiResult:
    """Connect to the FastAGI server in ``url`` and answer its commands like Asterisk."""
    sim = actor.sim
    parts = urlsplit(url)
    host = parts.hostname or sim.agi_host
    port = parts.port or 4573
    sim.stats.agi_sessions += 1
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), timeout=sim.real(5) + 1
        )
    except (OSError, TimeoutError):
        log.warning("FastAGI server %s:%s unreachable", host, port)
        chan.variables["AGISTATUS"] = "FAILURE"
        return AgiResult(callee_gone=False)
    run = _AgiRun(actor, chan, peer, callee, writer)
    try:
        writer.write(agi_environment(sim, chan, url, args))
        for _ in range(MAX_COMMANDS):
            try:
                raw = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
            except TimeoutError:
                break
            if not raw:
                break
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            run.drain()
            sim.stats.agi_commands += 1
            command_id = sim.rng.randrange(1, 2**31)
            sim.emit(ev.agi_exec(chan, command_id, line, None))
            result = await run.execute(line)
            sim.emit(ev.agi_exec(chan, command_id, line, result))
            if run.redirect is not None:
                break
        chan.variables["AGISTATUS"] = "SUCCESS" if not run.dead else "HANGUP"
    except (ConnectionError, OSError):
        chan.variables["AGISTATUS"] = "HANGUP" if run.dead else "SUCCESS"
    finally:
        writer.close()
    return AgiResult(callee_gone=run.dead, redirect=run.redirect)
