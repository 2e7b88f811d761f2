"""twisted.web resources: Twilio SMS webhooks and the email unsubscribe link.

Mount with :func:`mount_webhooks` on the one web site of the process::

    /twilio/sms/inbound   member replies (STOP / 退订 / START ...), TwiML answer
    /twilio/sms/status    delivery status callbacks (?o=<outbox id>), stored by a coalescing
                          writer: many callbacks per transaction, each answered 204 only
                          after its transaction committed (never acknowledged unstored)
    /unsubscribe          GET: confirmation page; POST: unsubscribe (RFC 8058 one-click too)

Twilio signatures are validated with ``twilio.request_validator.RequestValidator`` against
``public_url`` + the request's path and query exactly as received, and the POST body
parameters only (Twisted merges query arguments into ``request.args``; we parse the body
ourselves). A missing or forged signature answers 403 and is logged. Database work runs on a
thread via ``run_db``; the request is finished when it completes.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs, parse_qsl

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twisted.internet.defer import Deferred
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from crm_bridge.db import run_db
from crm_bridge.models import utcnow
from dialer.fallback.groupcommit import GroupCommitter
from dialer.fallback.keywords import Keyword, classify
from dialer.fallback.store import (
    SendRetryPolicy,
    StatusCallback,
    apply_status_callbacks,
    revoke_email_consent,
    set_sms_consent_for_phone,
)
from dialer.fallback.unsubscribe import verify_token

log = logging.getLogger(__name__)


@dataclass
class WebhookContext:
    engine: Engine
    auth_token: str = field(repr=False)
    public_url: str
    unsubscribe_secret: bytes = field(repr=False)
    retry: SendRetryPolicy = field(default_factory=SendRetryPolicy)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    """Every in-flight DB task (kept referenced until done)."""

    def __post_init__(self) -> None:
        self.status_writer: GroupCommitter[StatusCallback, str] = GroupCommitter(
            self.engine, self._apply_callbacks, name="sms-status-callbacks"
        )

    def _apply_callbacks(self, session: Session, items: Sequence[StatusCallback]) -> list[str]:
        return apply_status_callbacks(session, items, utcnow(), self.retry)

    async def close(self) -> None:
        """Store the status callbacks still queued (their requests are then answered)."""
        await self.status_writer.close()

    def url_of(self, request: Request) -> str:
        return self.public_url.rstrip("/") + request.uri.decode("utf-8", "replace")


def _body_params(request: Request) -> dict[str, str]:
    assert request.content is not None
    request.content.seek(0)
    raw = request.content.read().decode("utf-8", "replace")
    return dict(parse_qsl(raw, keep_blank_values=True))


def _finish(request: Request, code: int, body: bytes, ctype: bytes) -> None:
    if request.finished or getattr(request, "_disconnected", False):
        return
    request.setResponseCode(code)
    request.setHeader(b"content-type", ctype)
    request.write(body)
    request.finish()


def _run(
    ctx: WebhookContext,
    request: Request,
    coro: Coroutine[Any, Any, Any],
    done: Callable[[Any], tuple[int, bytes, bytes]],
) -> object:
    task = asyncio.ensure_future(coro)
    ctx.tasks.add(task)
    task.add_done_callback(ctx.tasks.discard)
    d: Deferred[Any] = Deferred.fromFuture(task)

    def ok(value: Any) -> None:
        _finish(request, *done(value))

    def err(failure: Any) -> None:
        log.error("webhook %s failed: %s", request.path, failure.getErrorMessage())
        _finish(request, 500, b"internal error\n", b"text/plain")

    d.addCallbacks(ok, err)
    return NOT_DONE_YET


class _Signed(Resource):
    isLeaf = True

    def __init__(self, ctx: WebhookContext) -> None:
        super().__init__()
        self.ctx = ctx

    def _verified(self, request: Request) -> dict[str, str] | None:
        params = _body_params(request)
        raw = request.getHeader(b"x-twilio-signature")
        signature = raw.decode("ascii", "replace") if raw else ""
        url = self.ctx.url_of(request)
        if not signature or not RequestValidator(self.ctx.auth_token).validate(
            url, params, signature
        ):
            log.warning(
                "rejected %s webhook from %s: %s Twilio signature",
                request.path.decode(),
                request.getClientAddress(),
                "missing" if not signature else "invalid",
            )
            return None
        return params

    def render_GET(self, request: Request) -> bytes:
        request.setResponseCode(405)
        return b"POST only\n"


class SmsInbound(_Signed):
    def render_POST(self, request: Request) -> object:
        params = self._verified(request)
        if params is None:
            request.setResponseCode(403)
            return b"forbidden\n"
        phone, body = params.get("From", ""), params.get("Body", "")
        kind = classify(body)
        twiml = str(MessagingResponse()).encode()
        if kind is Keyword.OTHER or not phone:
            request.setHeader(b"content-type", b"text/xml")
            return twiml
        consent = kind is Keyword.OPT_IN
        coro = run_db(
            self.ctx.engine,
            set_sms_consent_for_phone,
            phone,
            consent,
            actor="sms",
            reason=f"inbound SMS {body.strip()[:20]!r}",
        )

        def done(ids: list[int]) -> tuple[int, bytes, bytes]:
            log.info("inbound %s from a member phone: %d member(s) updated", kind.value, len(ids))
            return 200, twiml, b"text/xml"

        return _run(self.ctx, request, coro, done)


class SmsStatus(_Signed):
    def render_POST(self, request: Request) -> object:
        params = self._verified(request)
        if params is None:
            request.setResponseCode(403)
            return b"forbidden\n"
        query = parse_qs(request.uri.decode().partition("?")[2])
        oid = query.get("o", [""])[0]
        outbox_id = int(oid) if oid.isdigit() else None
        sid = params.get("MessageSid") or params.get("SmsSid") or ""
        status = params.get("MessageStatus") or params.get("SmsStatus") or ""
        callback = StatusCallback(outbox_id, sid, status, params.get("ErrorCode") or None)
        coro = self.ctx.status_writer.submit(callback)

        def done(outcome: str) -> tuple[int, bytes, bytes]:
            log.debug("status callback %s %s -> %s", sid, status, outcome)
            return 204, b"", b"text/plain"

        return _run(self.ctx, request, coro, done)


_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><p>{text}</p>{form}</body></html>"""


class Unsubscribe(Resource):
    isLeaf = True

    def __init__(self, ctx: WebhookContext) -> None:
        super().__init__()
        self.ctx = ctx

    def _member(self, request: Request) -> int | None:
        q = parse_qs(request.uri.decode().partition("?")[2])
        mid, token = q.get("m", [""])[0], q.get("t", [""])[0]
        if (
            not mid.isdigit()
            or not token
            or not verify_token(self.ctx.unsubscribe_secret, int(mid), token)
        ):
            log.warning(
                "rejected unsubscribe request with a bad token from %s", request.getClientAddress()
            )
            return None
        return int(mid)

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        if self._member(request) is None:
            request.setResponseCode(403)
            return _PAGE.format(
                title="Invalid link", text="退订链接无效 / This link is not valid.", form=""
            ).encode()
        action = html.escape(request.uri.decode(), quote=True)
        form = (
            f'<form method="post" action="{action}"><button type="submit">'
            "确认退订 / Unsubscribe</button></form>"
        )
        return _PAGE.format(
            title="Unsubscribe", text="退订会员邮件？/ Stop membership emails?", form=form
        ).encode()

    def render_POST(self, request: Request) -> object:
        member_id = self._member(request)
        if member_id is None:
            request.setResponseCode(403)
            return b"forbidden\n"
        one_click = _body_params(request).get("List-Unsubscribe") == "One-Click"
        coro = run_db(
            self.ctx.engine,
            revoke_email_consent,
            member_id,
            actor="email-link",
            reason="one-click unsubscribe" if one_click else "unsubscribe link",
        )

        def done(found: bool) -> tuple[int, bytes, bytes]:
            if not found:
                return 404, b"unknown member\n", b"text/plain"
            page = _PAGE.format(
                title="Unsubscribed", text="您已退订 / You are unsubscribed.", form=""
            )
            return 200, page.encode(), b"text/html; charset=utf-8"

        return _run(self.ctx, request, coro, done)


def _child(parent: Resource, name: bytes) -> Resource:
    existing = parent.getStaticEntity(name)
    if isinstance(existing, Resource):
        return existing
    child = Resource()
    parent.putChild(name, cast(IResource, child))
    return child


def mount_webhooks(root: Resource, ctx: WebhookContext) -> None:
    """Add /twilio/sms/{inbound,status} and /unsubscribe to ``root`` (keeps other children)."""
    sms = _child(_child(root, b"twilio"), b"sms")
    sms.putChild(b"inbound", cast(IResource, SmsInbound(ctx)))
    sms.putChild(b"status", cast(IResource, SmsStatus(ctx)))
    root.putChild(b"unsubscribe", cast(IResource, Unsubscribe(ctx)))
