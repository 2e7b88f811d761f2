"""The Twilio path: the same surveys as TwiML (Say + Gather) over twisted.web.

Mount :class:`SurveyVoiceResource` on the webhook site (``mount_survey_voice`` does it at
``/twilio/voice/survey``) and point a Twilio number's or an outbound call's voice URL at::

    {public_url}/twilio/voice/survey/<survey>?member=42&campaign=7&agent=3&lang=en

Every request's ``X-Twilio-Signature`` is checked with
:class:`twilio.request_validator.RequestValidator` against the public URL rebuilt exactly as
Twilio called it (``public_url`` + the raw request path and query) and the form body's
parameters; a forged or missing signature gets 403 and a log line. The call's ``CallSid`` is
the response's idempotency key. The engine state (question, attempt) travels in the Gather
``action`` URL Twilio calls back (``…/<survey>/answer?q=q_csat&a=1&lang=en``); that URL is
covered by the signature, so it cannot be forged either. No keys before the timeout: Twilio
skips the Gather and follows the ``<Redirect>`` to the same URL without ``Digits``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.twiml.voice_response import VoiceResponse
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from surveys.agi import asterisk_language
from surveys.definitions import Prompt
from surveys.engine import Ask, Digits, Finish, NoInput, Notice, State, Step, advance, begin
from surveys.store import CallContext, OpenResponse, SurveyRecorder, UnknownSurvey

log = logging.getLogger(__name__)

__all__ = ["TWILIO_LANGUAGES", "SurveyVoiceResource", "mount_survey_voice"]

TWILIO_LANGUAGES = {"zh-CN": "cmn-CN", "zh-TW": "cmn-TW", "en": "en-US"}
"""Survey locale -> Twilio ``<Say language>``."""

MOUNT_PATH = (b"twilio", b"voice", b"survey")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


class _HttpError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class SurveyVoiceResource(Resource):
    """``…/<survey>`` starts a survey call; ``…/<survey>/answer`` takes each key press."""

    isLeaf = True

    def __init__(
        self,
        recorder: SurveyRecorder,
        *,
        auth_token: str,
        public_url: str,
        audio_base_url: str | None = None,
    ) -> None:
        super().__init__()
        if not auth_token:
            raise ValueError("a Twilio auth token is needed to validate webhook signatures")
        self.recorder = recorder
        self._validator = RequestValidator(auth_token)
        self.public_url = public_url.rstrip("/")
        self.audio_base_url = audio_base_url.rstrip("/") if audio_base_url else None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- HTTP plumbing ------------------------------------------------------------------

    def render_GET(self, request: Request) -> bytes | int:
        return self._render(request, {})

    def render_POST(self, request: Request) -> bytes | int:
        body: dict[str, str] = {}
        ctype = (request.getHeader("content-type") or "").split(";")[0].strip().lower()
        if request.content is not None and ctype in ("", "application/x-www-form-urlencoded"):
            request.content.seek(0)
            raw = request.content.read().decode("utf-8", errors="replace")
            body = dict(parse_qsl(raw, keep_blank_values=True))
        return self._render(request, body)

    def called_url(self, request: Request) -> str:
        """The URL Twilio requested: our public base + the raw path and query."""
        return self.public_url + request.uri.decode("utf-8", errors="replace")

    def _render(self, request: Request, body: dict[str, str]) -> bytes | int:
        url = self.called_url(request)
        signature = request.getHeader("x-twilio-signature")
        algorithm = get_signature_algorithm(
            request.getHeader("x-twilio-webhooks-signature-settings") or ""
        )
        if not signature or not self._validator.validate(url, body, signature, algorithm):
            peer = request.getClientAddress()
            log.warning(
                "Twilio voice webhook %s from %s: %s signature, refused (403)",
                request.path.decode(errors="replace"),
                getattr(peer, "host", peer),
                "invalid" if signature else "missing",
            )
            request.setResponseCode(403)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"forbidden: bad or missing X-Twilio-Signature\n"
        query = {
            k.decode(errors="replace"): v[-1].decode(errors="replace")
            for k, v in (request.args or {}).items()
            if k.decode(errors="replace") not in body
        }
        self._spawn(
            self._respond(request, [p.decode() for p in (request.postpath or [])], query, body)
        )
        return NOT_DONE_YET

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _respond(
        self, request: Request, path: list[str], query: dict[str, str], body: dict[str, str]
    ) -> None:
        finished = request.notifyFinish()
        gone: list[bool] = []
        finished.addErrback(lambda _f: gone.append(True))
        try:
            twiml = await self._handle(request, path, query, body)
            code, payload, ctype = 200, twiml.encode("utf-8"), b"application/xml; charset=utf-8"
        except _HttpError as exc:
            code, payload, ctype = exc.code, f"{exc}\n".encode(), b"text/plain; charset=utf-8"
        except Exception:
            log.exception("Twilio voice webhook failed")
            code, payload, ctype = 500, b"internal error\n", b"text/plain; charset=utf-8"
        if gone:
            return
        request.setResponseCode(code)
        request.setHeader(b"content-type", ctype)
        request.write(payload)
        request.finish()

    async def close(self) -> None:
        """Wait for requests in flight (for an orderly shutdown)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- the survey -------------------------------------------------------------------

    def _base(self, request: Request) -> str:
        return self.public_url + "/" + "/".join(quote(p.decode()) for p in (request.prepath or []))

    async def _handle(
        self, request: Request, path: list[str], query: dict[str, str], body: dict[str, str]
    ) -> str:
        if not path or not path[0] or len(path) > 2 or (len(path) == 2 and path[1] != "answer"):
            raise _HttpError(404, "expected <survey> or <survey>/answer")
        name = path[0]
        call_sid = body.get("CallSid") or query.get("CallSid")
        if not call_sid:
            raise _HttpError(400, "no CallSid")
        ctx = CallContext(
            response_key=call_sid,
            channel="twilio",
            member_id=_int(query.get("member")),
            campaign_id=_int(query.get("campaign")),
            agent_id=_int(query.get("agent")),
            locale=query.get("lang"),
        )
        try:
            opened = await self.recorder.open(name, ctx)
        except UnknownSurvey as exc:
            raise _HttpError(404, str(exc)) from None
        action_base = f"{self._base(request)}/{quote(name)}/answer"
        if len(path) == 1:
            if opened.status == "complete":
                return self._finish_twiml(opened, completed=True)
            return self._twiml(opened, begin(opened.survey), action_base, intro=True)
        qid = query.get("q", "")
        attempt = _int(query.get("a")) or 1
        try:
            opened.survey.question(qid)
        except KeyError:
            raise _HttpError(400, f"unknown question {qid!r}") from None
        state = State(qid, attempt)
        digits = body.get("Digits", "")
        step = advance(opened.survey, state, Digits(digits) if digits else NoInput())
        if step.answer is not None:
            await self.recorder.answer(opened.response_id, step.answer.question, step.answer.value)
        if isinstance(step.action, Finish):
            await self.recorder.finish(opened.response_id, completed=step.action.completed)
        return self._twiml(opened, step, action_base)

    def _say(self, target: Any, opened: OpenResponse, prompt: Prompt) -> None:
        if self.audio_base_url:
            lang = asterisk_language(opened.locale)
            target.play(f"{self.audio_base_url}/{lang}/{prompt.audio}.wav")
        else:
            target.say(
                prompt.text_for(opened.locale),
                language=TWILIO_LANGUAGES.get(opened.locale, opened.locale),
            )

    def _finish_twiml(self, opened: OpenResponse, *, completed: bool) -> str:
        vr = VoiceResponse()
        self._say(vr, opened, opened.survey.closing)
        vr.hangup()
        return str(vr)

    def _twiml(
        self, opened: OpenResponse, step: Step, action_base: str, *, intro: bool = False
    ) -> str:
        if isinstance(step.action, Finish):
            return self._finish_twiml(opened, completed=step.action.completed)
        ask: Ask = step.action
        survey = opened.survey
        vr = VoiceResponse()
        if intro and survey.intro is not None:
            self._say(vr, opened, survey.intro)
        if ask.notice is Notice.INVALID:
            self._say(vr, opened, survey.invalid)
        elif ask.notice is Notice.NO_INPUT:
            self._say(vr, opened, survey.no_input)
        q = ask.question
        action = action_base + "?" + urlencode({"q": q.id, "a": ask.attempt, "lang": opened.locale})
        gather = vr.gather(
            input="dtmf",
            num_digits=q.max_digits,
            finish_on_key="#",
            action=action,
            method="POST",
            timeout=max(1, round(q.timeout_s)),
        )
        self._say(gather, opened, q.prompt)
        vr.redirect(action, method="POST")
        return str(vr)


def mount_survey_voice(root: Resource, resource: SurveyVoiceResource) -> None:
    """Put ``resource`` at ``/twilio/voice/survey`` under ``root``, creating (or reusing)
    the intermediate ``/twilio`` and ``/twilio/voice`` resources another webhook may share."""
    node = root
    for segment in MOUNT_PATH[:-1]:
        child = node.children.get(segment)
        if child is None:
            child = Resource()
            node.putChild(segment, child)  # type: ignore[arg-type]
        node = child
    node.putChild(MOUNT_PATH[-1], resource)  # type: ignore[arg-type]
