"""The Asterisk path: a FastAGI server that runs a survey on a channel.

Dialplan (extensions.conf) an operator adds; MEMBER_ID / CAMPAIGN_ID / AGENT_ID are channel
variables (the dialer sets them with Originate's ``Variable:``, the hub with ``Setvar`` before
a post-call Redirect)::

    [survey]
    exten => start,1,NoOp(Survey for member ${MEMBER_ID})
     same => n,AGI(agi://127.0.0.1:4573/survey?name=satisfaction)
     same => n,Hangup()

``name``, ``member``, ``campaign``, ``agent`` and ``lang`` may also be given in the query
string or as ``key=value`` AGI arguments (``AGI(agi://host/survey,name=satisfaction,member=42)``);
what is not given is read with ``GET VARIABLE MEMBER_ID`` / ``CAMPAIGN_ID`` / ``AGENT_ID``.
The channel's ``agi_uniqueid`` is the response's idempotency key. Prompts are played from
``sounds/<lang>/<audio>`` after ``SET VARIABLE CHANNEL(language) <lang>`` (zh_CN, zh_TW, en:
the layout ``memberline surveys prompts`` writes). After the survey the channel variables
``SURVEY_STATUS`` (complete | partial) and ``SURVEY_RESPONSE_ID`` are set.

Our own FastAGI server, not panoramisk's (``docs/ami.md`` says why, part by part): the
header block is read with a size and time limit (panoramisk's handler spins forever on an
early EOF), routes match the script path without its query string and must be async, the
socket is closed after every dialog, and replies are read by :class:`SurveyAgiRequest`,
which skips the unprompted ``HANGUP`` line instead of taking it as the next reply and keeps
the ``(timeout)`` marker. panoramisk's ``send_command`` result shape is kept for the routes
(:meth:`SurveyAgiRequest.send_command`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from surveys.agi_wire import AgiReply, AgiRequestInfo, parse_headers, parse_reply
from surveys.definitions import Prompt, Question
from surveys.engine import Ask, Digits, Finish, NoInput, Notice, advance, begin
from surveys.store import CallContext, OpenResponse, SurveyRecorder, UnknownSurvey

log = logging.getLogger(__name__)

__all__ = ["ChannelHungUp", "SurveyAgiApplication", "SurveyAgiRequest", "SurveyAgiServer"]

ESCAPE_DIGITS = "0123456789*#"
"""Keys that stop an interruptible prompt (STREAM FILE's escape digits)."""

ASTERISK_LANGUAGES = {"zh-CN": "zh_CN", "zh-TW": "zh_TW", "en": "en"}
"""Survey locale -> Asterisk channel language (= the sounds/<lang>/ directory)."""


def asterisk_language(locale: str) -> str:
    return ASTERISK_LANGUAGES.get(locale, locale.replace("-", "_"))


class ChannelHungUp(Exception):
    """The channel hung up (HANGUP line, 511 on a dead channel, or the socket closed)."""


class SurveyAgiRequest:
    """One FastAGI dialog: its request headers, and replies read correctly after a hang-up."""

    def __init__(
        self,
        app: SurveyAgiApplication,
        info: AgiRequestInfo,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        encoding: str = "utf-8",
        reply_timeout_s: float = 120.0,
    ) -> None:
        self.app = app
        self.headers = info.headers
        self.reader = reader
        self.writer = writer
        self.encoding = encoding
        self.info = info
        self.reply_timeout_s = reply_timeout_s
        self.hung_up = False

    async def _line(self) -> str:
        try:
            raw = await asyncio.wait_for(self.reader.readline(), self.reply_timeout_s)
        except TimeoutError:
            self.hung_up = True
            raise ChannelHungUp(f"no reply within {self.reply_timeout_s} s") from None
        if not raw.endswith(b"\n"):
            self.hung_up = True
            raise ChannelHungUp("connection closed")
        return raw.decode(self.encoding, errors="replace").rstrip("\r\n")

    async def command(self, command: str) -> AgiReply:
        """Send one command and return its reply; raise :class:`ChannelHungUp` when the
        channel is gone (an unprompted ``HANGUP`` line is noted and skipped)."""
        if self.hung_up:
            raise ChannelHungUp(f"not sending {command!r}: channel hung up")
        log.debug("AGI >> %s", command)
        self.writer.write(command.encode(self.encoding) + b"\n")
        try:
            await self.writer.drain()
        except ConnectionError as exc:
            self.hung_up = True
            raise ChannelHungUp(str(exc)) from None
        while True:
            line = await self._line()
            log.debug("AGI << %s", line)
            if line == "HANGUP":
                self.hung_up = True  # pushed by Asterisk; the reply to our command follows
                continue
            try:
                reply = parse_reply(line)
            except ValueError:
                log.warning("AGI: ignoring unexpected line %r", line)
                continue
            if reply.code == 100:
                continue
            if reply.continued:
                while not (await self._line()).startswith(f"{reply.code} "):
                    pass
            if reply.dead_channel:
                self.hung_up = True
                raise ChannelHungUp(reply.line)
            return reply

    async def send_command(self, command: str) -> dict[str, Any]:
        """panoramisk-compatible: the parsed reply as a dict (with ``timeout`` kept)."""
        try:
            reply = await self.command(command)
        except ChannelHungUp as exc:
            return {"error": "AGIResultHangup", "msg": str(exc)}
        out: dict[str, Any] = {
            "status_code": reply.code,
            "result": (reply.result or "", reply.data or ""),
            "msg": "",
        }
        if reply.timed_out:
            out["timeout"] = True
        if reply.failed:
            return {"error": "AGIAppError", "msg": "Error executing application, or hangup"}
        if reply.code == 510:
            out["error"] = "AGIInvalidCommand"
        elif reply.code == 520:
            out["error"] = "AGIUsageError"
        return out

    async def get_variable(self, name: str) -> str | None:
        reply = await self.command(f"GET VARIABLE {name}")
        return reply.data if reply.ok and reply.result == "1" else None

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f'SET VARIABLE {name} "{_quote(value)}"')

    async def alive_after_failure(self) -> bool:
        """After ``result=-1``: hang-up or a failure (e.g. a missing sound file)?
        ``CHANNEL STATUS`` answers 511 (and a HANGUP line comes first) on a dead channel."""
        try:
            await self.command("CHANNEL STATUS")
        except ChannelHungUp:
            return False
        return True


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


Route = Callable[[SurveyAgiRequest], Awaitable[None]]


class SurveyAgiApplication:
    """The FastAGI routes and the connection handler (``asyncio.start_server(app.handler, ...)``):
    a bounded, EOF-safe header read, one task per connection kept until it ends."""

    def __init__(
        self,
        *,
        header_timeout_s: float = 10.0,
        reply_timeout_s: float = 120.0,
        encoding: str = "utf-8",
    ) -> None:
        self.default_encoding = encoding
        self.header_timeout_s = header_timeout_s
        self.reply_timeout_s = reply_timeout_s
        self.connections: set[asyncio.Task[Any]] = set()
        self._route: dict[str, Route] = {}

    def add_route(self, path: str, endpoint: Route) -> None:
        """Serve ``agi://host/<path>`` (any query string) with ``endpoint``, an async function."""
        if not asyncio.iscoroutinefunction(endpoint):
            raise TypeError("FastAGI routes must be async functions")
        self._route[path] = endpoint

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        peer = writer.get_extra_info("peername")
        try:
            try:
                block = await asyncio.wait_for(reader.readuntil(b"\n\n"), self.header_timeout_s)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
                log.warning("FastAGI %s: no complete request header (%s)", peer, type(exc).__name__)
                return
            info = parse_headers(block, self.default_encoding)
            route = self._route.get(info.path)
            if route is None:
                log.error(
                    "FastAGI %s: no route for %r", peer, info.headers.get("agi_network_script")
                )
                return
            log.info(
                "FastAGI %s: %s for channel %s", peer, info.path, info.headers.get("agi_channel")
            )
            request = SurveyAgiRequest(
                self,
                info,
                reader,
                writer,
                encoding=self.default_encoding,
                reply_timeout_s=self.reply_timeout_s,
            )
            try:
                await route(request)
            except asyncio.CancelledError:
                # close() cancels live dialogs; answers so far are stored and the response
                # stays partial. Returning (not re-raising) keeps asyncio's stream callback quiet.
                log.info("FastAGI %s: dialog cancelled at shutdown", info.uniqueid)
                return
            except ChannelHungUp as exc:
                log.info("FastAGI %s: channel hung up (%s)", info.uniqueid, exc)
            except Exception:
                log.exception("FastAGI route %r failed", info.path)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if task is not None:
                self.connections.discard(task)


def _int_or_none(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        return int(value.strip())
    except ValueError:
        log.warning("FastAGI: ignoring non-numeric id %r", value)
        return None


class SurveyAgiServer:
    """The survey FastAGI service: ``agi://host:port/survey?name=<survey>``.

    ::

        server = SurveyAgiServer(SurveyRecorder(engine))
        await server.start("127.0.0.1", 4573)   # port 0 in tests; server.port is the real one
        ...
        await server.close()
    """

    ROUTE = "survey"

    def __init__(
        self,
        recorder: SurveyRecorder,
        *,
        default_survey: str = "satisfaction",
        reply_timeout_s: float = 120.0,
        header_timeout_s: float = 10.0,
    ) -> None:
        self.recorder = recorder
        self.default_survey = default_survey
        self._reply_timeout_s = reply_timeout_s
        self._header_timeout_s = header_timeout_s
        self.app: SurveyAgiApplication | None = None
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str = "127.0.0.1", port: int = 4573) -> None:
        self.app = SurveyAgiApplication(
            header_timeout_s=self._header_timeout_s, reply_timeout_s=self._reply_timeout_s
        )
        self.app.add_route(self.ROUTE, self.run_survey)
        self._server = await asyncio.start_server(self.app.handler, host, port)
        log.info("survey FastAGI listening on %s:%s", host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self.app is not None:
            for task in list(self.app.connections):
                task.cancel()
            await asyncio.gather(*self.app.connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _context(self, req: SurveyAgiRequest) -> tuple[str, CallContext]:
        params = req.info.params()
        for pos in req.info.args:
            if "=" not in pos:
                log.debug("FastAGI: ignoring positional argument %r", pos)
        ids: dict[str, int | None] = {}
        for key, var in (
            ("member", "MEMBER_ID"),
            ("campaign", "CAMPAIGN_ID"),
            ("agent", "AGENT_ID"),
        ):
            raw = params.get(key)
            if raw is None:
                raw = await req.get_variable(var)
            ids[key] = _int_or_none(raw)
        uniqueid = req.info.uniqueid
        ctx = CallContext(
            response_key=uniqueid,
            channel="agi",
            member_id=ids["member"],
            campaign_id=ids["campaign"],
            agent_id=ids["agent"],
            locale=params.get("lang") or req.info.headers.get("agi_language"),
            channel_uniqueid=uniqueid,
        )
        return params.get("name") or self.default_survey, ctx

    async def run_survey(self, req: SurveyAgiRequest) -> None:
        """The ``survey`` route: one survey on one channel."""
        name, ctx = await self._context(req)
        if not ctx.response_key:
            log.error("FastAGI survey request without agi_uniqueid; refusing")
            return
        try:
            opened = await self.recorder.open(name, ctx)
        except UnknownSurvey as exc:
            log.error("FastAGI survey on %s: %s", ctx.response_key, exc)
            await req.command(f'VERBOSE "{_quote(str(exc))}" 1')
            return
        if opened.status == "complete":
            log.info("survey response %s already complete; not asking again", opened.response_id)
            await req.set_variable("SURVEY_STATUS", "complete")
            return
        completed = False
        try:
            completed = await self._dialog(req, opened)
        finally:
            # On hang-up too: every answer given so far is already stored, and the response
            # stays "partial" (its initial status); only a completed survey is marked.
            log.info(
                "survey response %s on %s: %s",
                opened.response_id,
                ctx.response_key,
                "complete" if completed else "partial",
            )

    async def _play(
        self, req: SurveyAgiRequest, prompt: Prompt, *, interruptible: bool = False
    ) -> str:
        """Play a prompt. ``interruptible``: a key pressed meanwhile stops it and is returned
        (members who know the survey answer during the intro; the key is their answer's
        first digit, never lost)."""
        escape = ESCAPE_DIGITS if interruptible else ""
        reply = await req.command(f'STREAM FILE {prompt.audio} "{escape}"')
        if reply.failed and not await req.alive_after_failure():
            raise ChannelHungUp("hung up during a prompt")
        if reply.failed:
            log.error("could not play %s (missing sound file?)", prompt.audio)
            return ""
        result = reply.result or ""
        code = int(result) if reply.ok and result.isdigit() else 0
        return chr(code) if code > 0 and chr(code) in ESCAPE_DIGITS else ""

    async def _ask(self, req: SurveyAgiRequest, q: Question, early: str) -> AgiReply | str:
        """The answer to ``q``: its digits, or the failed reply. ``early``: a key already
        pressed during the prompt before (its first digit)."""
        if early and early not in "*#" and q.max_digits <= 1:
            return early
        rest = max(1, q.max_digits - len(early))
        reply = await req.command(f"GET DATA {q.prompt.audio} {int(q.timeout_s * 1000)} {rest}")
        if reply.failed:
            return reply
        if early in ("", "*", "#"):
            return reply.result or ""
        return early + (reply.result or "")

    async def _dialog(self, req: SurveyAgiRequest, opened: OpenResponse) -> bool:
        survey = opened.survey
        await req.command("ANSWER")
        await req.set_variable("CHANNEL(language)", asterisk_language(opened.locale))
        await req.set_variable("SURVEY_RESPONSE_ID", str(opened.response_id))
        early = ""
        if survey.intro is not None:
            early = await self._play(req, survey.intro, interruptible=True)
        step = begin(survey)
        while isinstance(step.action, Ask):
            ask = step.action
            if ask.notice is Notice.INVALID:
                early = await self._play(req, survey.invalid, interruptible=True)
            elif ask.notice is Notice.NO_INPUT:
                early = await self._play(req, survey.no_input, interruptible=True)
            q = ask.question
            got = await self._ask(req, q, early)
            early = ""
            if isinstance(got, AgiReply):
                if not await req.alive_after_failure():
                    raise ChannelHungUp(f"hung up at question {q.id}")
                log.error(
                    "GET DATA %s failed on a live channel (missing sound file?)", q.prompt.audio
                )
                return False
            digits = got
            event = Digits(digits) if digits else NoInput()
            step = advance(survey, step.state, event)
            if step.answer is not None:
                await self.recorder.answer(
                    opened.response_id, step.answer.question, step.answer.value
                )
        assert isinstance(step.action, Finish)
        completed = step.action.completed
        if completed:
            await self.recorder.finish(opened.response_id, completed=True)
        await req.set_variable("SURVEY_STATUS", "complete" if completed else "partial")
        await self._play(req, survey.closing)
        return completed
