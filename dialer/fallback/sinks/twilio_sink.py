"""An HTTP server that speaks the Twilio Messages REST shape (``/2010-04-01``), on loopback.

- ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form, HTTP basic auth) -> 201 JSON;
  errors as Twilio error JSON ``{code, message, more_info, status}``.
- ``GET  .../Messages.json`` with ``To``, ``From``, ``DateSent``, ``DateSent>``,
  ``DateSent<``, ``PageSize``, ``Page`` -> a Twilio page (``messages``, ``next_page_uri``...).
- ``GET  .../Messages/{sid}.json`` -> one message.
- Statuses advance over time as at Twilio: ``queued`` at creation, ``sending`` after
  ``step_s``, ``sent`` after ``2*step_s`` (``date_sent`` is empty until then, so a
  ``DateSent`` filter cannot see a message still queued or sending), then ``delivered`` or
  ``undelivered`` (+ ``ErrorCode``) after ``3*step_s``. Status callbacks POST ``sent`` and
  the final status at those moments to the message's ``StatusCallback``, signed with
  ``X-Twilio-Signature`` exactly as Twilio does (``RequestValidator``).
- ``list_lag_s``: a new message appears in list results only that long after its creation
  (Twilio's list is eventually consistent; a fetch by sid sees it at once).
- ``drop_after_accept``: that fraction of accepted creates (or the next N given by
  ``drop_next``) store the message, then close the connection without answering: the
  client cannot know whether the message exists.
- ``send_inbound`` posts a member's reply (STOP, 退订...) to an inbound webhook, signed.
- ``GET /_sink/mail?message_id=`` answers for an attached :class:`SmtpSink` (the worker's
  mail probe in recovery).

Faults: ``faults[to]`` is a code (every request) or a list of codes (consumed one per
request): ``21211``/``21614``/``21610`` (HTTP 400), ``429``, ``500`` at send time;
``30003``/``30005``/``30006`` are accepted, then reported undelivered in the callback.
``transient_rate`` fails that fraction of requests with 429 or 500 at random.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import random
import re
import uuid
from dataclasses import dataclass, field
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

if TYPE_CHECKING:
    from dialer.fallback.sinks.smtp_sink import SmtpSink

log = logging.getLogger(__name__)

API = "/2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_SEND_ERRORS = {
    "21211": (400, "The 'To' number {to} is not a valid phone number."),
    "21614": (400, "'To' number {to} is not a valid mobile number"),
    "21610": (400, "Attempt to send to unsubscribed recipient"),
    "429": (429, "Too Many Requests"),
    "500": (500, "Internal Server Error"),
}
_CALLBACK_ERRORS = {"30003", "30005", "30006"}


@dataclass
class SinkMessage:
    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    created: dt.datetime
    status: str = "queued"
    error_code: str | None = None
    sent_at: dt.datetime | None = None
    born: float = 0.0
    """Loop time at creation (list lag and status progression)."""
    final: tuple[str, str | None] = ("delivered", None)

    def resource(self) -> dict[str, Any]:
        date = format_datetime(self.created, usegmt=True)
        sent = format_datetime(self.sent_at, usegmt=True) if self.sent_at else None
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "to": self.to,
            "from": self.from_,
            "body": self.body,
            "status": self.status,
            "direction": "outbound-api",
            "num_segments": "1",
            "num_media": "0",
            "date_created": date,
            "date_updated": date,
            "date_sent": sent,
            "error_code": int(self.error_code) if self.error_code else None,
            "error_message": None,
            "price": None,
            "price_unit": "USD",
            "messaging_service_sid": None,
            "uri": f"{API}/Accounts/{self.account_sid}/Messages/{self.sid}.json",
            "subresource_uris": {},
        }


def _twilio_error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message,
            "status": status,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
        },
        status=status,
    )


@dataclass
class TwilioSink:
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "sink-token"
    callbacks: bool = True
    callback_delay_s: float = 0.05
    """``step_s``'s old name: kept as the default step."""
    step_s: float | None = None
    """Time between queued -> sending -> sent -> final; default ``callback_delay_s``."""
    list_lag_s: float = 0.0
    drop_after_accept: float = 0.0
    drop_next: int = 0
    transient_rate: float = 0.0
    faults: dict[str, str | list[str]] = field(default_factory=dict)
    mail: SmtpSink | None = None
    seed: int | None = None
    messages: list[SinkMessage] = field(default_factory=list)
    callback_results: list[tuple[str, int]] = field(default_factory=list)
    """(status, HTTP status our webhook answered) per callback sent."""
    port: int = 0

    def __post_init__(self) -> None:
        self._by_sid: dict[str, SinkMessage] = {}
        self._rng = random.Random(self.seed)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests = 0
        self.injected = 0
        self.dropped = 0
        """Creates accepted (message stored) whose connection was then dropped."""
        self.listed = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> TwilioSink:
        app = web.Application()
        acct = API + "/Accounts/{sid}"
        app.router.add_post(acct + "/Messages.json", self._create)
        app.router.add_get(acct + "/Messages.json", self._list)
        app.router.add_get(acct + "/Messages/{msid}.json", self._fetch)
        app.router.add_get("/_sink/mail", self._mail_probe)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32))
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def pending_callbacks(self) -> int:
        """Messages whose statuses (and their callbacks) are still to come."""
        return len(self._tasks)

    async def wait_callbacks(self, within_s: float = 5.0) -> None:
        """Wait until every scheduled status callback has been delivered (tests)."""
        async with asyncio.timeout(within_s):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- helpers
    def _auth_ok(self, request: web.Request, sid: str) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.account_sid == sid and pw == self.auth_token

    def _fault_for(self, to: str) -> str | None:
        fault = self.faults.get(to)
        if isinstance(fault, list):
            return fault.pop(0) if fault else None
        if fault is not None:
            return fault
        if self.transient_rate and self._rng.random() < self.transient_rate:
            self.injected += 1
            return self._rng.choice(["429", "500"])
        return None

    def by_callback_id(self) -> dict[str, list[SinkMessage]]:
        """Messages grouped by the ``o`` (outbox id) query of their StatusCallback."""
        out: dict[str, list[SinkMessage]] = {}
        for m in self.messages:
            oid = re.search(r"[?&]o=(\d+)", m.status_callback or "")
            out.setdefault(oid.group(1) if oid else "", []).append(m)
        return out

    # -- handlers
    async def _create(self, request: web.Request) -> web.Response:
        self.requests += 1
        sid = request.match_info["sid"]
        if not self._auth_ok(request, sid):
            return _twilio_error(401, 20003, "Authenticate")
        form = await request.post()
        to, from_, body = (
            str(form.get("To", "")),
            str(form.get("From", "")),
            str(form.get("Body", "")),
        )
        if not to:
            return _twilio_error(400, 21604, "A 'To' phone number is required.")
        if not body:
            return _twilio_error(400, 21602, "Message body is required.")
        fault = self._fault_for(to)
        if fault is None and not E164.match(to):
            fault = "21211"
        if fault in _SEND_ERRORS:
            status, text = _SEND_ERRORS[fault]
            code = {"429": 20429, "500": 20500}.get(fault, int(fault))
            return _twilio_error(status, code, text.format(to=to))
        callback = form.get("StatusCallback")
        msg = SinkMessage(
            sid="SM" + uuid.uuid4().hex,
            account_sid=sid,
            to=to,
            from_=from_,
            body=body,
            status_callback=str(callback) if callback else None,
            created=dt.datetime.now(dt.UTC).replace(microsecond=0),
        )
        self.messages.append(msg)
        self._by_sid[msg.sid] = msg
        final_error = fault if fault in _CALLBACK_ERRORS else None
        msg.final = ("undelivered", final_error) if final_error else ("delivered", None)
        msg.born = asyncio.get_running_loop().time()
        task = asyncio.create_task(self._advance(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if self.drop_next > 0 or (
            self.drop_after_accept and self._rng.random() < self.drop_after_accept
        ):
            self.drop_next = max(0, self.drop_next - 1)
            self.dropped += 1
            if request.transport is not None:
                request.transport.abort()  # stored, never answered
            return web.Response(status=201)  # written to a closed transport: never seen
        return web.json_response(msg.resource(), status=201)

    async def _list(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        if not self._auth_ok(request, sid):
            return _twilio_error(401, 20003, "Authenticate")
        q = request.query
        self.listed += 1
        visible_before = asyncio.get_running_loop().time() - self.list_lag_s
        msgs = [m for m in self.messages if m.account_sid == sid and m.born <= visible_before]
        if "To" in q:
            msgs = [m for m in msgs if m.to == q["To"]]
        if "From" in q:
            msgs = [m for m in msgs if m.from_ == q["From"]]
        for key, op in (("DateSent>", "ge"), ("DateSent<", "le"), ("DateSent", "eq")):
            if key in q:
                # Filters on DateSent: a message not yet sent has none and never matches.
                bound = _parse_date(q[key])
                if op == "ge":
                    msgs = [m for m in msgs if m.sent_at and m.sent_at >= bound]
                elif op == "le":
                    msgs = [m for m in msgs if m.sent_at and m.sent_at <= bound]
                else:
                    msgs = [m for m in msgs if m.sent_at and m.sent_at.date() == bound.date()]
        msgs.sort(key=lambda m: m.created, reverse=True)
        size = max(1, min(1000, int(q.get("PageSize", "50"))))
        page = int(q.get("Page", "0"))
        chunk = msgs[page * size : (page + 1) * size]
        base = f"{API}/Accounts/{sid}/Messages.json"
        params = {k: v for k, v in q.items() if k not in ("Page", "PageToken")}

        def uri(p: int) -> str:
            return f"{base}?{urlencode({**params, 'PageSize': size, 'Page': p})}"

        return web.json_response(
            {
                "messages": [m.resource() for m in chunk],
                "page": page,
                "page_size": size,
                "start": page * size,
                "end": page * size + max(0, len(chunk) - 1),
                "uri": uri(page),
                "first_page_uri": uri(0),
                "next_page_uri": uri(page + 1) if (page + 1) * size < len(msgs) else None,
                "previous_page_uri": uri(page - 1) if page > 0 else None,
            }
        )

    async def _fetch(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        if not self._auth_ok(request, sid):
            return _twilio_error(401, 20003, "Authenticate")
        msg = self._by_sid.get(request.match_info["msid"])
        if msg is None or msg.account_sid != sid:
            return _twilio_error(404, 20404, "The requested resource was not found")
        return web.json_response(msg.resource())

    async def _mail_probe(self, request: web.Request) -> web.Response:
        if self.mail is None:
            return web.json_response({"received": None})
        return web.json_response({"received": self.mail.has(request.query.get("message_id", ""))})

    # -- outgoing webhooks
    def signed_headers(self, url: str, params: dict[str, str]) -> dict[str, str]:
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        return {"X-Twilio-Signature": signature}

    async def _post(self, url: str, params: dict[str, str]) -> int:
        assert self._session is not None
        async with self._session.post(
            url, data=params, headers=self.signed_headers(url, params)
        ) as r:
            await r.read()
            return r.status

    @property
    def _step(self) -> float:
        return self.callback_delay_s if self.step_s is None else self.step_s

    async def _advance(self, msg: SinkMessage) -> None:
        """queued -> sending -> sent -> delivered/undelivered, one step apart; callbacks for
        ``sent`` and the final status (as Twilio sends them for an SMS without a service)."""
        steps: list[tuple[str, str | None]] = [("sending", None), ("sent", None), msg.final]
        for status, code in steps:
            await asyncio.sleep(self._step)
            msg.status, msg.error_code = status, code
            if status == "sent":
                msg.sent_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
            if status == "sending" or not (self.callbacks and msg.status_callback):
                continue
            await self._callback(msg, status, code)

    async def _callback(self, msg: SinkMessage, status: str, code: str | None) -> None:
        assert msg.status_callback is not None
        params = {
            "MessageSid": msg.sid,
            "SmsSid": msg.sid,
            "AccountSid": msg.account_sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": msg.to,
            "From": msg.from_,
            "ApiVersion": "2010-04-01",
        }
        if code:
            params["ErrorCode"] = code
        for attempt in range(3):
            try:
                answered = await self._post(msg.status_callback, params)
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.1 * (attempt + 1))
                continue
            self.callback_results.append((status, answered))
            break

    async def send_inbound(
        self, url: str, from_: str, to: str, body: str, *, signature: str | None = "valid"
    ) -> int:
        """Deliver a member's SMS to our inbound webhook as Twilio would; returns HTTP status."""
        params = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": self.account_sid,
            "From": from_,
            "To": to,
            "Body": body,
            "NumMedia": "0",
        }
        assert self._session is not None
        headers = self.signed_headers(url, params)
        if signature is None:
            headers = {}
        elif signature != "valid":
            headers = {"X-Twilio-Signature": signature}
        async with self._session.post(url, data=params, headers=headers) as r:
            await r.read()
            return r.status


def _parse_date(value: str) -> dt.datetime:
    with contextlib.suppress(ValueError):
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    with contextlib.suppress(ValueError):
        return dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    return parsedate_to_datetime(value).astimezone(dt.UTC)
