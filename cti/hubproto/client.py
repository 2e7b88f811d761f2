"""An asyncio client for the hub: what the console, tests and simulated agents use.

    client = HubClient("127.0.0.1", 7070, agent="1001", password="demo")
    client.on_push(lambda name, data: ...)     # screen_pop, call_state, agent_state, ...
    client.on_status(lambda status: ...)       # "connecting" | "connected" | "disconnected" | "auth_failed"
    await client.start()                       # connect + hello + login; raises ProtocolError on bad credentials
    result = await client.request("pause", reason="lunch")
    await client.close()

After ``start`` the client keeps the session alive: when the hub goes away it reconnects
with capped exponential back-off (plus jitter) and logs in again; the hub then pushes the
current state. Requests made while disconnected fail at once with ``ConnectionError``
(the caller decides whether to retry; the console keeps its unsent notes).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import ssl as ssl_mod
from collections.abc import Callable
from typing import Any

from cti.hubproto.framing import FrameError, LineFramer, encode
from cti.hubproto.messages import MAX_MESSAGE_BYTES, PROTOCOL_VERSION, ErrorCode, ProtocolError

log = logging.getLogger(__name__)

PushCallback = Callable[[str, dict[str, Any]], None]
StatusCallback = Callable[[str], None]


class HubClient:
    def __init__(
        self,
        host: str,
        port: int,
        agent: str,
        password: str,
        *,
        ssl: ssl_mod.SSLContext | None = None,
        client_name: str = "memberline-console/0.1",
        request_timeout: float = 10.0,
        reconnect_initial: float = 0.2,
        reconnect_max: float = 10.0,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.host, self.port = host, port
        self.agent = agent
        self._password = password
        self._ssl = ssl
        self.client_name = client_name
        self.request_timeout = request_timeout
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.max_message_bytes = max_message_bytes
        self.session: dict[str, Any] = {}
        """The login result: agent (code, name, role, extension), pause_reasons, dispositions."""
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._push_cbs: list[PushCallback] = []
        self._status_cbs: list[StatusCallback] = []
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False
        self._connected = asyncio.Event()
        self.status = "disconnected"

    # -- callbacks -------------------------------------------------------------
    def on_push(self, cb: PushCallback) -> None:
        self._push_cbs.append(cb)

    def on_status(self, cb: StatusCallback) -> None:
        self._status_cbs.append(cb)

    def _set_status(self, status: str) -> None:
        self.status = status
        for cb in list(self._status_cbs):
            try:
                cb(status)
            except Exception:
                log.exception("status callback failed")

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> dict[str, Any]:
        """Connect and log in once (errors raise), then keep the session alive in the background."""
        await self._connect_and_login()
        self._supervisor = asyncio.create_task(self._keep_alive(), name=f"hub-client-{self.agent}")
        return self.session

    async def close(self) -> None:
        self._closed = True
        tasks = [t for t in (self._supervisor, self._reader_task) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self._drop_connection()
        self._set_status("disconnected")

    async def wait_connected(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def _connect_and_login(self) -> None:
        self._set_status("connecting")
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self._ssl)
        self._writer = writer
        self._reader_task = asyncio.create_task(
            self._read_loop(reader), name=f"hub-reader-{self.agent}"
        )
        try:
            await self._raw_request(
                "hello", {"protocol": PROTOCOL_VERSION, "client": self.client_name}
            )
            self.session = await self._raw_request(
                "login", {"agent": self.agent, "password": self._password}
            )
        except ProtocolError as exc:
            await self._drop_connection()
            if exc.code in (ErrorCode.BAD_CREDENTIALS, ErrorCode.RATE_LIMITED):
                self._set_status("auth_failed")
            raise
        except BaseException:
            await self._drop_connection()
            raise
        self._connected.set()
        self._set_status("connected")

    async def _keep_alive(self) -> None:
        delay = self.reconnect_initial
        while not self._closed:
            assert self._reader_task is not None
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(self._reader_task)
            if self._closed:
                return
            self._connected.clear()
            self._set_status("disconnected")
            while not self._closed:
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                try:
                    await self._connect_and_login()
                    delay = self.reconnect_initial
                    break
                except ProtocolError as exc:
                    if exc.code is ErrorCode.BAD_CREDENTIALS:
                        log.error("hub refused our credentials on reconnect; giving up")
                        return
                    delay = min(delay * 2, self.reconnect_max)
                except (TimeoutError, OSError, ConnectionError):
                    delay = min(delay * 2, self.reconnect_max)

    async def _drop_connection(self) -> None:
        self._connected.clear()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("connection to hub lost"))
        self._pending.clear()

    # -- I/O ---------------------------------------------------------------------
    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        framer = LineFramer(self.max_message_bytes)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for msg in framer.feed(data):
                    if isinstance(msg, FrameError):
                        log.warning("bad frame from hub: %s", msg.reason)
                        continue
                    self._dispatch(msg)
        finally:
            self._connected.clear()
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection to hub lost"))
            self._pending.clear()

    def _dispatch(self, msg: dict[str, Any]) -> None:
        if "push" in msg:
            name, data = str(msg["push"]), msg.get("data") or {}
            for cb in list(self._push_cbs):
                try:
                    cb(name, data)
                except Exception:
                    log.exception("push callback failed for %s", name)
            return
        re_id = msg.get("re")
        fut = self._pending.pop(re_id, None) if isinstance(re_id, int) else None
        if fut is None or fut.done():
            return
        if msg.get("ok"):
            fut.set_result(msg.get("result") or {})
        else:
            err = msg.get("error") or {}
            try:
                code = ErrorCode(str(err.get("code")))
            except ValueError:
                code = ErrorCode.INTERNAL
            fut.set_exception(ProtocolError(code, str(err.get("message", ""))))

    async def _raw_request(self, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        writer = self._writer
        if writer is None:
            raise ConnectionError("not connected to the hub")
        req_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        writer.write(encode({"id": req_id, "cmd": cmd, "args": args}))
        try:
            return await asyncio.wait_for(fut, self.request_timeout)
        finally:
            self._pending.pop(req_id, None)

    async def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send a command and wait for its result; raises ProtocolError or ConnectionError."""
        if not self._connected.is_set():
            raise ConnectionError("not connected to the hub")
        return await self._raw_request(cmd, {k: v for k, v in args.items() if v is not None})
