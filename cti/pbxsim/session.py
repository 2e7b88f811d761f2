"""One AMI client connection to the simulator: banner, login, action loop."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from cti.pbxsim import ami_events as ev
from cti.pbxsim.wire import BANNER, ActionReader, AmiMessage, encode

if TYPE_CHECKING:
    from cti.pbxsim.sim import PbxSimulator

log = logging.getLogger(__name__)

Pairs = list[tuple[str, str]]

QUEUE_MODULE_ACTIONS = frozenset(
    ("queueadd", "queueremove", "queuepause", "queuepenalty", "queuestatus", "queuesummary")
)
"""Actions registered by app_queue: ``Invalid/unknown command`` until it has loaded after
a restart (g-restart-early-login), while core actions (Login, CoreShowChannels) work."""

MAX_OUTBUF = 32 << 20
"""A client that does not read 32 MB of events is dropped (Asterisk's writetimeout)."""


def response(action: AmiMessage, status: str, *rest: tuple[str, str]) -> Pairs:
    """``Response: X`` then ``ActionID`` (if the action had one) then the rest."""
    pairs: Pairs = [("Response", status)]
    aid = action.get("ActionID")
    if aid is not None:
        pairs.append(("ActionID", aid))
    pairs.extend(rest)
    return pairs


class AmiSession:
    _next_id = 0x7F2170001000

    def __init__(
        self, sim: PbxSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.sim = sim
        self.reader = reader
        self.writer = writer
        self.user: str | None = None
        self.events_on = False
        self.closed = False
        AmiSession._next_id += 0x10
        self.session_id = hex(AmiSession._next_id)
        self.login_at = 0.0

    @property
    def authenticated(self) -> bool:
        return self.user is not None

    def send(self, pairs: Pairs) -> None:
        self.send_bytes(encode(pairs))

    def send_bytes(self, data: bytes) -> None:
        if self.closed:
            return
        transport = self.writer.transport
        if transport.is_closing():
            self.closed = True
            return
        if transport.get_write_buffer_size() > MAX_OUTBUF:
            log.warning("AMI client too slow, dropping it")
            self.close()
            return
        self.writer.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()

    def abort(self) -> None:
        self.closed = True
        self.writer.transport.abort()

    async def run(self) -> None:
        parser = ActionReader()
        try:
            self.writer.write(BANNER)
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                for action in parser.feed(data):
                    await self.handle(action)
                    if self.closed:
                        break
                if parser.overflow:
                    log.warning("AMI client sent an oversized frame; closing")
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.close()
            self.sim._conns.discard(self)

    async def handle(self, action: AmiMessage) -> None:
        name = (action.get("Action") or "").strip()
        key = name.lower()
        if key == "login":
            await self._login(action)
            return
        if key == "logoff":
            self.send(response(action, "Goodbye", ("Message", "Thanks for all the fish.")))
            self.close()
            return
        if not self.authenticated:
            self.send(response(action, "Error", ("Message", "Permission denied")))
            self._security("RequestNotAllowed", "", f"Action: {name}")
            return
        if not name:
            self.send(response(action, "Error", ("Message", "Missing action in request")))
            return
        handler = self.sim.actions.get(key)
        if not self.sim.queue_loaded and key in QUEUE_MODULE_ACTIONS:
            handler = None  # app_queue not loaded yet (early login during a restart)
        if handler is None:
            self.send(
                response(
                    action,
                    "Error",
                    (
                        "Message",
                        f"Invalid/unknown command: {name}. "
                        "Use Action: ListCommands to show available commands.",
                    ),
                )
            )
            self._security("RequestBadFormat", self.user or "", f"Action: {name}")
            return
        try:
            await handler(self, action)
        except Exception:  # a bug in one action must not kill the connection
            log.exception("simulator action %s failed", name)
            self.send(response(action, "Error", ("Message", "Internal simulator error")))

    def _security(self, name: str, account: str, request: str) -> None:
        """Security-class events as in f-login-failure-observer / e-queue-actions."""
        sock = self.writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        peer = self.writer.get_extra_info("peername") or ("127.0.0.1", 0)
        session_tv = ev.event_tv(self.login_at) if self.login_at else "1970-01-01T00:00:00.000+0000"
        head: Pairs = [
            ("Event", name),
            ("Privilege", "security,all"),
            ("EventTV", ev.event_tv(self.sim.now())),
            ("Severity", "Error"),
            ("Service", "AMI"),
            ("EventVersion", "2" if name == "InvalidPassword" else "1"),
        ]
        addr: Pairs = [
            ("SessionID", self.session_id),
            ("LocalAddress", f"IPV4/TCP/{sock[0]}/{sock[1]}"),
            ("RemoteAddress", f"IPV4/TCP/{peer[0]}/{peer[1]}"),
        ]
        if name == "RequestBadFormat":
            pairs = (
                head
                + addr
                + [("RequestType", request), ("SessionTV", session_tv), ("AccountID", account)]
            )
        elif name == "RequestNotAllowed":
            pairs = [
                *head,
                ("AccountID", account),
                *addr,
                ("RequestType", request),
                ("SessionTV", session_tv),
            ]
        else:
            pairs = [*head, ("AccountID", account), *addr, ("SessionTV", session_tv)]
        self.sim.emit(pairs)

    async def _login(self, action: AmiMessage) -> None:
        user = action.get("Username") or ""
        secret = action.get("Secret") or ""
        expected = self.sim.ami_users.get(user)
        if expected is None or expected != secret:
            self.sim.stats.login_failures += 1
            self._security("InvalidAccountID" if expected is None else "InvalidPassword", user, "")
            await asyncio.sleep(self.sim.auth_fail_delay)
            self.send(response(action, "Error", ("Message", "Authentication failed")))
            self.close()
            return
        self.user = user
        self.login_at = self.sim.now()
        events = (action.get("Events") or "on").strip().lower()
        self.events_on = events not in ("off", "no", "false", "0")
        self.send(response(action, "Success", ("Message", "Authentication accepted")))
        if self.events_on:
            uptime = int(self.sim.uptime())
            if self.sim.booted:  # else FullyBooted comes later, broadcast (early login)
                self.send(ev.fully_booted(uptime, uptime))
            sock = self.writer.get_extra_info("sockname") or ("127.0.0.1", 0)
            peer = self.writer.get_extra_info("peername") or ("127.0.0.1", 0)
            pairs = ev.successful_auth(
                self.sim.now(), user, self.session_id, (sock[0], sock[1]), (peer[0], peer[1])
            )
            self.sim.record(pairs)
            self.send(pairs)
