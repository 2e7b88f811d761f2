"""A real SMTP server on loopback (aiosmtpd, in the running event loop) that stores mail.

Faults per recipient: ``rcpt_faults[addr]`` / ``data_faults[addr]`` is a reply such as
``"450 4.2.1 mailbox busy"`` or ``"550 5.1.1 no such user"``, or a list of replies consumed
one per attempt; the special reply ``"disconnect"`` drops the connection at that step.
``transient_rate`` answers that fraction of DATA commands with ``451`` at random.
Optional AUTH (``username``/``password``; plain-text auth allowed on loopback).
"""

from __future__ import annotations

import asyncio
import random
import re
import ssl
import threading
import weakref
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

_PLAIN_ANGLE_ADDR = re.compile(r"<([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+)>")


class _SinkSMTP(SMTP):
    """aiosmtpd's protocol with a fast path for plain ``<local@domain>`` addresses.

    aiosmtpd parses every MAIL/RCPT address with the ``email`` header parser (and defines a
    class per call): most of the sink's CPU in the bench. Anything that is not a plain
    angle address still goes through the full parser.
    """

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        m = _PLAIN_ANGLE_ADDR.match(arg)
        if m is None:
            return super()._getaddr(arg)
        addr = m.group(1)
        if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return addr, arg[m.end() :].lstrip()


@dataclass(frozen=True)
class StoredMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message_id: str
    data: bytes

    def parsed(self) -> EmailMessage:
        msg = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class SmtpSink:
    username: str = ""
    password: str = ""
    transient_rate: float = 0.0
    seed: int | None = None
    rcpt_faults: dict[str, str | list[str]] = field(default_factory=dict)
    data_faults: dict[str, str | list[str]] = field(default_factory=dict)
    mails: list[StoredMail] = field(default_factory=list)
    port: int = 0
    tls_context: ssl.SSLContext | None = None
    """Server-side TLS: offered with STARTTLS, or from the first byte with ``implicit_tls``."""
    implicit_tls: bool = False
    smtputf8: bool = True
    """Offer SMTPUTF8 in EHLO (a server without it must refuse non-ASCII addresses)."""

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: asyncio.base_events.Server | None = None
        self.injected = 0
        self._protocols: weakref.WeakSet[SMTP] = weakref.WeakSet()

    async def start(self, port: int = 0) -> SmtpSink:
        loop = asyncio.get_running_loop()
        kwargs: dict[str, Any] = {
            "hostname": "sink.local",
            "enable_SMTPUTF8": self.smtputf8,
            "auth_require_tls": False,
            "timeout": 30,
        }
        if self.username:
            kwargs.update(auth_required=True, authenticator=self._authenticate)
        if self.tls_context is not None and not self.implicit_tls:
            kwargs.update(tls_context=self.tls_context, require_starttls=True)

        def factory() -> SMTP:
            proto = _SinkSMTP(self, **{**kwargs, "enable_SMTPUTF8": self.smtputf8})
            self._protocols.add(proto)
            return proto

        self._server = await loop.create_server(
            factory, "127.0.0.1", port, ssl=self.tls_context if self.implicit_tls else None
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for proto in list(self._protocols):
                if proto.transport is not None:
                    proto.transport.close()
            self._protocols.clear()
            await self._server.wait_closed()

    def has(self, message_id: str) -> bool:
        return message_id in self._ids

    def count(self, message_id: str) -> int:
        return self._ids.get(message_id, 0)

    @property
    def message_ids(self) -> dict[str, int]:
        return dict(self._ids)

    # -- aiosmtpd hooks
    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=ok)

    @staticmethod
    def _take(table: dict[str, str | list[str]], addr: str) -> str | None:
        fault = table.get(addr)
        if isinstance(fault, list):
            return fault.pop(0) if fault else None
        return fault

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        fault = self._take(self.rcpt_faults, address)
        if fault == "disconnect":
            assert server.transport is not None
            server.transport.close()
            return "421 4.4.2 closing"
        if fault:
            return fault
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for addr in envelope.rcpt_tos:
            fault = self._take(self.data_faults, addr)
            if fault == "disconnect":
                assert server.transport is not None
                server.transport.close()
                return "421 4.4.2 closing"
            if fault:
                return fault
        if self.transient_rate and self._rng.random() < self.transient_rate:
            self.injected += 1
            return "451 4.3.0 try again later (injected)"
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode()
        mid = ""
        for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                mid = line.split(b":", 1)[1].strip().decode(errors="replace")
                break
        with self._lock:
            self.mails.append(
                StoredMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), mid, data)
            )
            self._ids[mid] = self._ids.get(mid, 0) + 1
        return "250 2.0.0 stored"
