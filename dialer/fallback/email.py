"""Email through aiosmtplib: STARTTLS / implicit TLS / plain, auth, timeouts, a bounded pool of
reused connections.

Messages are multipart/alternative (plain text + HTML) with ``List-Unsubscribe`` (a signed
HTTPS link and, when configured, a mailto) and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
(RFC 8058), built with the standard library's ``EmailMessage`` (``policy.SMTP``, or
``policy.SMTPUTF8`` for a non-ASCII address; IDNA domains go out in ASCII form). The
``Message-ID`` is derived from the outbox idempotency key, so every attempt
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
import datetime as dt
import functools
import hashlib
import logging
import socket
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import aiosmtplib
from email_validator import EmailNotValidError, validate_email

from dialer.fallback.results import SendOutcome, SendResult
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
    connections: int = 16
    """SMTP connections open at once at most, each reused for message after message (a
    relay limits connections per client; 500 concurrent sends do not need 500 sessions,
    and opening them at once overflows the server's listen backlog). A send waits for a
    free connection."""
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
    """The envelope recipient: the address with its domain in IDNA (``xn--``) form when the
    local part is ASCII, else the UTF-8 address (then ``smtputf8`` is set)."""
    data: bytes
    smtputf8: bool = False
    """The address needs SMTPUTF8 (a non-ASCII local part): refused permanently by a server
    that does not offer it."""


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, with each header's class made once: the standard one
    builds a new class with ``type()`` for every header of every message (a tenth of the
    time to build an email)."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


_HEADERS = _HeaderClasses()
_ASCII = policy.SMTP.clone(max_line_length=998, header_factory=_HEADERS)
_UTF8 = policy.SMTPUTF8.clone(max_line_length=998, header_factory=_HEADERS)
"""Headers are not folded at 78 (RFC 5322 allows 998): a folded ``List-Unsubscribe`` URL
trips naive one-click parsers. Encoded words still keep non-ASCII out of ASCII headers."""


class BadAddress(ValueError):
    """The member's address cannot be used (a permanent failure of that row alone)."""


def envelope_address(to: str) -> tuple[str, bool]:
    """(address to use on the wire, needs SMTPUTF8) for a member's address, checked with
    ``email-validator`` (syntax only): an IDNA domain is sent in its ASCII form."""
    try:
        ok = validate_email(to, check_deliverability=False)
    except EmailNotValidError as exc:
        raise BadAddress(f"invalid email address {to!r}: {exc}") from None
    if ok.ascii_email:
        return ok.ascii_email, False
    return ok.normalized, True


def build_message(
    settings: EmailSettings,
    to: str,
    rendered: RenderedEmail,
    *,
    key: str,
    unsubscribe_url: str,
    date: dt.datetime | None = None,
) -> OutgoingEmail:
    """multipart/alternative (plain + HTML) built with :class:`email.message.EmailMessage`:
    ``policy.SMTP`` (CRLF, RFC 2047 encoded UTF-8 display names and subject), or
    ``policy.SMTPUTF8`` when the address itself is not ASCII. Deterministic for one key
    (Message-ID and MIME boundary derive from it): a retry sends the same bytes."""
    name, addr, domain = parse_sender(settings.sender)
    rcpt, utf8 = envelope_address(to)
    message_id = message_id_for(key, domain)
    unsub = f"<{unsubscribe_url}>"
    if settings.unsubscribe_mailto:
        unsub += f", <mailto:{settings.unsubscribe_mailto}>"
    msg = EmailMessage(policy=_UTF8 if utf8 else _ASCII)
    msg["From"] = Address(display_name=name, addr_spec=addr)
    msg["To"] = rcpt
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(date or dt.datetime.now(dt.UTC))
    msg["Message-ID"] = message_id
    msg["List-Unsubscribe"] = unsub
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["X-Memberline-Outbox"] = key
    msg.set_content(rendered.text, cte="base64")
    msg.add_alternative(rendered.html, subtype="html", cte="base64")
    msg.set_boundary("=_ml_" + hashlib.sha256(("b:" + key).encode()).hexdigest()[:24])
    return OutgoingEmail(message_id=message_id, to=rcpt, data=msg.as_bytes(), smtputf8=utf8)


def _reply_result(code: int, message: str, *, about_recipient: bool) -> SendResult:
    detail = f"smtp {code} {message}"
    if 400 <= code < 500:
        return SendResult(SendOutcome.TRANSIENT, code=f"smtp:{code}", detail=detail)
    return SendResult(
        SendOutcome.PERMANENT, code=f"smtp:{code}", detail=detail, flag_address=about_recipient
    )


class SmtpEmail:
    """A pool of SMTP connections; ``send`` never raises for delivery problems."""

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(max(1, settings.connections))
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
        if client.is_connected:
            self._idle.append(client)
        else:
            client.close()

    @staticmethod
    async def _offers_smtputf8(client: aiosmtplib.SMTP) -> bool:
        if not client.esmtp_extensions:
            await client.ehlo()
        return client.supports_extension("smtputf8")

    async def send(self, msg: OutgoingEmail) -> SendResult:
        async with self._slots:  # one of at most ``connections`` sessions, reused
            return await self._send(msg)

    async def _send(self, msg: OutgoingEmail) -> SendResult:
        to = msg.to
        recipients = [to] + ([self.settings.bcc] if self.settings.bcc else [])
        sender = parse_sender(self.settings.sender)[1]
        try:
            client, reused = await self._acquire()
        except aiosmtplib.SMTPAuthenticationError as exc:
            log.error("SMTP authentication failed (%s): check smtp username/password", exc.code)
            return SendResult(
                SendOutcome.TRANSIENT, code=f"smtp:{exc.code}", detail="authentication failed"
            )
        except aiosmtplib.SMTPResponseException as exc:
            return _reply_result(exc.code, exc.message, about_recipient=False)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return SendResult(
                SendOutcome.TRANSIENT, code="connect", detail=f"{type(exc).__name__}: {exc}"
            )
        in_data = False
        mail_options = ["SMTPUTF8"] if msg.smtputf8 else []
        encoding = "utf-8" if msg.smtputf8 else "ascii"
        try:
            try:
                if msg.smtputf8 and not await self._offers_smtputf8(client):
                    self._release(client)
                    return SendResult(
                        SendOutcome.PERMANENT,
                        code="smtputf8",
                        detail=f"the mail server does not offer SMTPUTF8, required for {to!r}",
                    )
                await client.mail(sender, options=mail_options)
            except aiosmtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                client.close()  # a pooled connection the server dropped: reconnect once
                client = self._client()
                await client.connect()
                if msg.smtputf8 and not await self._offers_smtputf8(client):
                    self._release(client)
                    return SendResult(
                        SendOutcome.PERMANENT,
                        code="smtputf8",
                        detail=f"the mail server does not offer SMTPUTF8, required for {to!r}",
                    )
                await client.mail(sender, options=mail_options)
            refused: dict[str, aiosmtplib.SMTPRecipientRefused] = {}
            for rcpt in recipients:
                try:
                    await client.rcpt(rcpt, encoding=encoding)
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
            outcome = SendOutcome.AMBIGUOUS if in_data else SendOutcome.TRANSIENT
            return SendResult(outcome, code="io", detail=f"{type(exc).__name__}: {exc}")
        self._release(client)
        return SendResult(
            SendOutcome.SENT,
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
