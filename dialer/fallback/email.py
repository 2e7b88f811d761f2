"""Email through aiosmtplib: STARTTLS / implicit TLS / plain, auth, timeouts, a small pool.

Messages are multipart/alternative (plain text + HTML) with ``List-Unsubscribe`` (a signed
HTTPS link and, when configured, a mailto) and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
(RFC 8058). The ``Message-ID`` is derived from the outbox idempotency key, so every attempt
of one row carries the same id (receivers dedupe on it; the local sink is asked for it in
recovery).

Classification: replies 4xx and connect failures are transient; 5xx are permanent (the
member's address flagged when the refusal is about the recipient); a timeout or disconnect
while the DATA payload is in flight is *ambiguous* (the server may have accepted it) and goes
through recovery instead of a blind retry. Partly refused recipient lists (an archive
``bcc`` besides the member) are inspected: the member's own refusal decides the outcome,
an archive refusal is logged.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import hashlib
import logging
import socket
from dataclasses import dataclass, field
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr

import aiosmtplib

from dialer.fallback.results import Outcome, SendResult
from dialer.fallback.templates import RenderedEmail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmailSettings:
    host: str = "127.0.0.1"
    port: int = 8025
    tls: str = "none"
    """none | starttls | implicit"""
    username: str = ""
    password: str = field(default="", repr=False)
    timeout_s: float = 10.0
    sender: str = "Memberline <care@memberline.example>"
    bcc: str | None = None
    """Optional archive copy (a second recipient: partial refusals are inspected)."""
    validate_certs: bool = True
    cert_bundle: str | None = None
    pool_size: int = 64
    """Idle connections kept open (set it to the worker's concurrency)."""
    local_hostname: str | None = None
    """EHLO name; default: this host's FQDN, looked up once."""
    unsubscribe_mailto: str | None = None


@functools.lru_cache(maxsize=64)
def parse_sender(sender: str) -> tuple[str, str, str]:
    """(display name, address, domain) of a configured sender, parsed once."""
    name, addr = parseaddr(sender)
    return name, addr, addr.rpartition("@")[2] or "memberline.local"


def message_id_for(key: str, domain: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<outbox.{digest}@{domain}>"


@dataclass(frozen=True)
class OutgoingEmail:
    """A ready-to-send RFC 5322 message (CRLF line ends)."""

    message_id: str
    to: str
    data: bytes


def _header(value: str) -> str:
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(linesep="\r\n")


def _b64_lines(text: str) -> str:
    raw = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return "\r\n".join(raw[i : i + 76] for i in range(0, len(raw), 76))


def build_message(
    settings: EmailSettings,
    to: str,
    rendered: RenderedEmail,
    *,
    key: str,
    unsubscribe_url: str,
    date: dt.datetime | None = None,
) -> OutgoingEmail:
    """Assemble multipart/alternative bytes directly (the ``email`` package's EmailMessage
    costs several milliseconds per message; this is pure string work)."""
    name, addr, domain = parse_sender(settings.sender)
    message_id = message_id_for(key, domain)
    boundary = "=_ml_" + hashlib.sha256(("b:" + key).encode()).hexdigest()[:24]
    unsub = f"<{unsubscribe_url}>"
    if settings.unsubscribe_mailto:
        unsub += f", <mailto:{settings.unsubscribe_mailto}>"
    headers = [
        f"From: {formataddr((name, addr), charset='utf-8')}",
        f"To: {to}",
        f"Subject: {_header(rendered.subject)}",
        f"Date: {format_datetime(date or dt.datetime.now(dt.UTC))}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        f"List-Unsubscribe: {unsub}",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        f"X-Memberline-Outbox: {key}",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    ]
    parts = []
    for subtype, body in (("plain", rendered.text), ("html", rendered.html)):
        parts.append(
            f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{_b64_lines(body)}\r\n"
        )
    text = "\r\n".join(headers) + "\r\n\r\n" + "".join(parts) + f"--{boundary}--\r\n"
    return OutgoingEmail(message_id=message_id, to=to, data=text.encode("ascii"))


def _reply_result(code: int, message: str, *, about_recipient: bool) -> SendResult:
    detail = f"smtp {code} {message}"
    if 400 <= code < 500:
        return SendResult(Outcome.TRANSIENT, code=f"smtp:{code}", detail=detail)
    return SendResult(
        Outcome.PERMANENT, code=f"smtp:{code}", detail=detail, flag_address=about_recipient
    )


class SmtpEmail:
    """A pool of SMTP connections; ``send`` never raises for delivery problems."""

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._ehlo_name = settings.local_hostname or socket.getfqdn()

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=s.timeout_s,
            local_hostname=self._ehlo_name,
            use_tls=s.tls == "implicit",
            start_tls=True if s.tls == "starttls" else False,
            username=s.username or None,
            password=s.password or None,
            validate_certs=s.validate_certs,
            cert_bundle=s.cert_bundle,
        )

    async def _acquire(self) -> tuple[aiosmtplib.SMTP, bool]:
        if self._idle:
            return self._idle.pop(), True
        client = self._client()
        await client.connect()
        return client, False

    def _release(self, client: aiosmtplib.SMTP) -> None:
        if client.is_connected and len(self._idle) < self.settings.pool_size:
            self._idle.append(client)
        else:
            client.close()

    async def send(self, msg: OutgoingEmail) -> SendResult:
        to = msg.to
        recipients = [to] + ([self.settings.bcc] if self.settings.bcc else [])
        sender = parse_sender(self.settings.sender)[1]
        try:
            client, reused = await self._acquire()
        except aiosmtplib.SMTPAuthenticationError as exc:
            log.error("SMTP authentication failed (%s): check smtp username/password", exc.code)
            return SendResult(
                Outcome.TRANSIENT, code=f"smtp:{exc.code}", detail="authentication failed"
            )
        except aiosmtplib.SMTPResponseException as exc:
            return _reply_result(exc.code, exc.message, about_recipient=False)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return SendResult(
                Outcome.TRANSIENT, code="connect", detail=f"{type(exc).__name__}: {exc}"
            )
        in_data = False
        try:
            try:
                await client.mail(sender)
            except aiosmtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                client.close()  # a pooled connection the server dropped: reconnect once
                client = self._client()
                await client.connect()
                await client.mail(sender)
            refused: dict[str, aiosmtplib.SMTPRecipientRefused] = {}
            for rcpt in recipients:
                try:
                    await client.rcpt(rcpt)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused[rcpt] = exc
            if to in refused:
                await client.rset()
                self._release(client)
                mine = refused[to]
                return _reply_result(mine.code, mine.message, about_recipient=True)
            for rcpt, other in refused.items():
                log.warning(
                    "archive recipient %s refused (%s %s); sending to the member only",
                    rcpt,
                    other.code,
                    other.message,
                )
            in_data = True
            response = await client.data(msg.data)
            in_data = False
        except aiosmtplib.SMTPResponseException as exc:
            try:
                await client.rset()
                self._release(client)
            except (aiosmtplib.SMTPException, OSError):
                client.close()
            return _reply_result(exc.code, exc.message, about_recipient=False)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            client.close()
            outcome = Outcome.AMBIGUOUS if in_data else Outcome.TRANSIENT
            return SendResult(outcome, code="io", detail=f"{type(exc).__name__}: {exc}")
        self._release(client)
        return SendResult(
            Outcome.SENT,
            provider_id=msg.message_id,
            detail=f"smtp {response.code} {response.message}",
        )

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await asyncio.wait_for(client.quit(), 2)
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
