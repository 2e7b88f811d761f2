"""The Twisted side of the console link: framing in, requests to the hub, bytes out.

Each connection gets a :class:`~cti.hub.sessions.Connection` and one asyncio worker
task that runs its requests in order (a console's "pause" then "unpause" must not be
reordered). A frame that is too long or not a JSON object is answered with
``bad_request`` (``"re": null``) and the connection stays open.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from twisted.internet import endpoints
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure

from cti.hubproto.framing import FrameError, LineFramer
from cti.hubproto.messages import ErrorCode

if TYPE_CHECKING:
    from cti.hub.server import HubServer
    from cti.hub.sessions import Connection

log = logging.getLogger(__name__)


class ConsoleProtocol(Protocol):
    def __init__(self, hub: HubServer) -> None:
        self.hub = hub
        self.framer = LineFramer(hub.settings.max_message_bytes)
        self.conn: Connection | None = None

    def connectionMade(self) -> None:
        transport: Any = self.transport
        peer = transport.getPeer()
        host = getattr(peer, "host", str(peer))
        self.conn = self.hub.connection_made(
            host, transport.write, transport.abortConnection, lambda: _queued(transport)
        )

    def dataReceived(self, data: bytes) -> None:
        conn = self.conn
        if conn is None:
            return
        for item in self.framer.feed(data):
            if isinstance(item, FrameError):
                conn.send(
                    {
                        "re": None,
                        "ok": False,
                        "error": {"code": ErrorCode.BAD_REQUEST.value, "message": item.reason},
                    }
                )
                continue
            self.hub.request_received(conn, item)

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self.conn is not None:
            self.hub.connection_lost(self.conn)
            self.conn = None


def _queued(transport: Any) -> int:
    """Bytes written to a Twisted transport and not yet sent (TCP; TLS wraps a TCP one)."""
    inner = getattr(transport, "transport", None)
    t = inner if inner is not None and hasattr(inner, "dataBuffer") else transport
    return len(getattr(t, "dataBuffer", b"")) + int(getattr(t, "_tempDataLen", 0))


class ConsoleFactory(Factory):
    def __init__(self, hub: HubServer) -> None:
        self.hub = hub

    def buildProtocol(self, addr: Any) -> ConsoleProtocol:
        return ConsoleProtocol(self.hub)


def _server_endpoint(reactor: Any, bind: str, port: int, cert: str, key: str) -> Any:
    if not cert:
        return endpoints.TCP4ServerEndpoint(reactor, port, interface=bind)
    try:
        from twisted.internet import ssl
    except ImportError as exc:  # pragma: no cover - pyOpenSSL missing
        raise RuntimeError("TLS for the hub needs pyOpenSSL installed") from exc
    with open(cert, encoding="ascii") as fc, open(key, encoding="ascii") as fk:
        pem = fc.read() + "\n" + fk.read()
    options = ssl.PrivateCertificate.loadPEM(pem).options()
    return endpoints.SSL4ServerEndpoint(reactor, port, options, interface=bind)


async def listen(hub: HubServer, reactor: Any) -> IListeningPort:
    s = hub.settings
    endpoint = _server_endpoint(reactor, s.bind, s.port, s.tls_cert, s.tls_key)
    d = endpoint.listen(ConsoleFactory(hub))
    port: IListeningPort = await d.asFuture(asyncio.get_running_loop())
    return port
