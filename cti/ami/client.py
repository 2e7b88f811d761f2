"""The hardened AMI connection: our own asyncio protocol, not panoramisk's.

Each part panoramisk 1.4 offers is replaced here, for the defect named in ``docs/ami.md``:
our :class:`~cti.ami.framing.Framer` instead of its per-chunk decoding, our ActionID ->
future table instead of its response table, our reconnect loop (banner check, back-off,
FullyBooted wait, resync) instead of ``Manager.connect``, a Ping that is checked.

Roles (as in Twisted's AMP): framing (``Framer``), request/response correlation
(``_Pending`` table keyed by ActionID), routing (subscribers get every event).

Public API::

    client = AmiClient(host, port, username, secret, *, action_timeout=5.0,
                       ping_interval=10.0, ping_timeout=5.0, reconnect_initial=0.5,
                       reconnect_max=60.0, name="ami")
    client.subscribe(callback)   # callback(msg: AmiMessage), every event; exceptions logged
    client.on_state(callback)    # 'connecting' | 'connected' | 'disconnected' | 'auth_failed'
    await client.start(fail_fast=False)
    msgs = await client.send_action({"Action": "QueuePause", ...}, timeout=None)
    await client.close()
    client.connected

Behaviour worth knowing (differences from the brief are marked DIFF):

* ``start()`` returns after the first successful login; with ``fail_fast=True``
  it raises :class:`AmiAuthError` (or the connect error) after the first failed
  attempt. Either way the client keeps (re)connecting in the background until
  ``close()``.
* Subscribers are plain callables (not coroutines) run synchronously in the
  loop; an exception is logged and never drops the connection.
* Every event goes to subscribers, *including* the list items of EventList
  actions (they are also returned by ``send_action``) and the OriginateResponse
  of an ``Async: true`` Originate, whose ``send_action`` returns right after
  the ``Response``.
* ``send_action`` returns ``[response]`` or, for EventList actions
  (``EventList: start`` / "will follow"), ``[response, item..., complete]``.
  ``Response: Error`` raises :class:`AmiActionError`; a missing answer raises
  :class:`AmiTimeout`; no connection raises :class:`AmiNotConnected` at once, a
  connection lost meanwhile its subclass :class:`AmiConnectionLost` (the action may
  have run). Nothing is re-sent after a reconnect.
* After each login the client waits for ``FullyBooted`` (at most ``boot_wait``
  seconds: an Asterisk still booting accepts the login before app_queue is
  loaded and sends FullyBooted later, as a broadcast), then resyncs: before the
  resync actions (``CoreShowChannels``, ``QueueStatus``) subscribers receive the
  synthetic event ``MemberlineResyncStart`` (:data:`cti.ami.message.RESYNC_START`);
  the tracker uses it to drop what the resync does not confirm. A resync action
  answered ``Invalid/unknown command`` (its module is not loaded yet) is retried
  with back-off (50 ms doubling to 1 s, for ``resync_retry_s`` at most), never
  dropped; once all are answered subscribers receive ``MemberlineResyncDone``
  (:data:`cti.ami.message.RESYNC_DONE`). A later ``FullyBooted`` on the same
  session resyncs again unless a resync ran in the last 2 s and succeeded.
* Back-off: after any failed attempt (refused, no banner, auth failure, dropped
  connection) the next attempt waits ``min(reconnect_max, reconnect_initial *
  2**n) * jitter`` with jitter in [0.8, 1.2]; ``n`` resets after a login that
  stayed up. DIFF: ``sleep`` and ``rng`` constructor keywords are there for tests.
* Dead peer: a Ping every ``ping_interval`` s; no answer within ``ping_timeout``
  aborts the connection (then reconnect).
* The secret is sent only in the Login action and never formatted into a log
  record or an exception.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from cti.ami.errors import (
    AmiActionError,
    AmiAuthError,
    AmiConnectionLost,
    AmiError,
    AmiNoBanner,
    AmiNotConnected,
    AmiTimeout,
)
from cti.ami.framing import DEFAULT_MAX_FRAME, Framer
from cti.ami.message import RESYNC_DONE, RESYNC_START, AmiMessage, FrameError

log = logging.getLogger(__name__)

ActionValue = str | Sequence[str]
Subscriber = Callable[[AmiMessage], None]
StateCallback = Callable[[str], None]

RESYNC_ACTIONS: tuple[dict[str, str], ...] = (
    {"Action": "CoreShowChannels"},
    {"Action": "QueueStatus"},
)


def _module_missing(message: str) -> bool:
    """``Invalid/unknown command: QueueStatus...``: Asterisk accepted the login before the
    module that owns the action was loaded (g-restart-early-login trace)."""
    return message.lower().startswith("invalid/unknown command")


def encode_action(action: Mapping[str, ActionValue]) -> bytes:
    """Wire bytes of an action (``Action`` first, list values as repeated lines)."""
    lines: list[str] = []
    items = sorted(action.items(), key=lambda kv: kv[0].lower() != "action")
    for key, value in items:
        values = [value] if isinstance(value, str) else list(value)
        for v in values:
            v = str(v)
            if "\r" in v or "\n" in v or "\r" in key or "\n" in key:
                raise ValueError(f"line break in AMI header {key!r}")
            lines.append(f"{key}: {v}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("utf-8")


class _Pending:
    __slots__ = ("future", "listing", "messages", "name")

    def __init__(self, name: str, future: asyncio.Future[list[AmiMessage]]) -> None:
        self.name = name
        self.future = future
        self.listing = False
        self.messages: list[AmiMessage] = []


class _Protocol(asyncio.Protocol):
    """The socket's protocol: bytes to the framer, messages to the client's router."""

    def __init__(self, client: AmiClient, framer: Framer) -> None:
        self.client = client
        self.framer = framer
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except Exception:  # a framer bug must not kill the connection
            log.exception("%s: framer failed; buffer reset", self.client.name)
            self.framer.reset()
            return
        for msg in messages:
            self.client._on_message(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._on_connection_lost(self, exc)


class AmiClient:
    """A reconnecting, logged-in AMI connection. See the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        action_timeout: float = 5.0,
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
        reconnect_initial: float = 0.5,
        reconnect_max: float = 60.0,
        name: str = "ami",
        banner_timeout: float = 5.0,
        max_frame: int = DEFAULT_MAX_FRAME,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        boot_wait: float = 2.0,
        resync_retry_s: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.__secret = secret
        self.action_timeout = action_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.name = name
        self.banner_timeout = banner_timeout
        self.max_frame = max_frame
        self._sleep = sleep
        self._rng = rng
        self._subscribers: list[Subscriber] = []
        self._state_callbacks: list[StateCallback] = []
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._protocol: _Protocol | None = None
        self._logged_in = False
        self._closing = False
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._first_login: asyncio.Future[None] | None = None
        self._fail_fast = False
        self._banner: asyncio.Future[str] | None = None
        self._lost: asyncio.Future[None] | None = None
        self._last_resync = float("-inf")
        self.boot_wait = boot_wait
        """Seconds to wait after a login for ``FullyBooted`` before resyncing anyway."""
        self.resync_retry_s = resync_retry_s
        """How long a resync action refused as unknown (module still loading) is retried."""
        self._booted: asyncio.Future[None] | None = None
        self._resync_task: asyncio.Task[Any] | None = None
        self._resync_ok = False
        self.resyncs = 0
        """Resyncs completed (every action answered), for tests and metrics."""
        self.state = "disconnected"
        self.attempts = 0
        """Connection attempts made so far (for tests and metrics)."""
        self.backoffs: list[float] = []
        """The last few back-off delays used (at most 20)."""

    def __repr__(self) -> str:  # never show the secret
        return f"AmiClient({self.name!r}, {self.host}:{self.port}, user={self.username!r})"

    # ---------------------------------------------------------------- public API
    def subscribe(self, callback: Subscriber) -> None:
        self._subscribers.append(callback)

    def on_state(self, callback: StateCallback) -> None:
        self._state_callbacks.append(callback)

    @property
    def connected(self) -> bool:
        return self._logged_in and self._protocol is not None

    async def start(self, fail_fast: bool = False) -> None:
        """Connect and log in; return after the first successful login."""
        if self._runner is not None:
            raise RuntimeError("already started")
        loop = asyncio.get_running_loop()
        self._fail_fast = fail_fast
        self._first_login = loop.create_future()
        self._runner = loop.create_task(self._run(), name=f"{self.name}-connection")
        await asyncio.shield(self._first_login)

    async def close(self) -> None:
        self._closing = True
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        if self._runner is not None:
            self._runner.cancel()
            try:
                await self._runner
            except (asyncio.CancelledError, Exception):
                pass
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_pending(AmiConnectionLost("client closed"))
        if self._first_login is not None and not self._first_login.done():
            self._first_login.set_exception(AmiNotConnected("client closed"))
            self._first_login.exception()  # retrieved: start() may be gone

    async def send_action(
        self,
        action: Mapping[str, ActionValue],
        timeout: float | None = None,  # noqa: ASYNC109 (public API)
    ) -> list[AmiMessage]:
        """Send an action and wait for its complete answer (see module docstring)."""
        if not self.connected:
            raise AmiNotConnected(f"{self.name}: not connected")
        return await self._send(action, timeout)

    # ---------------------------------------------------------------- internals
    async def _send(
        self, action: Mapping[str, ActionValue], wait: float | None
    ) -> list[AmiMessage]:
        proto = self._protocol
        if proto is None or proto.transport is None or proto.transport.is_closing():
            raise AmiNotConnected(f"{self.name}: not connected")
        act = dict(action)
        name = str(act.get("Action", ""))
        action_id = str(act.get("ActionID") or f"{self.name}-{next(self._ids)}")
        act["ActionID"] = action_id
        if action_id in self._pending:
            raise ValueError(f"ActionID {action_id!r} already in flight")
        data = encode_action(act)
        fut: asyncio.Future[list[AmiMessage]] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(name, fut)
        log.debug("%s: -> %s (ActionID %s)", self.name, name, action_id)
        proto.transport.write(data)
        try:
            return await asyncio.wait_for(fut, wait if wait is not None else self.action_timeout)
        except TimeoutError:
            raise AmiTimeout(f"{self.name}: no answer to {name} (ActionID {action_id})") from None
        finally:
            self._pending.pop(action_id, None)

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        for cb in list(self._state_callbacks):
            try:
                cb(state)
            except Exception:
                log.exception("%s: state callback failed", self.name)

    def _dispatch(self, msg: AmiMessage) -> None:
        for cb in list(self._subscribers):
            try:
                cb(msg)
            except Exception:
                log.exception("%s: subscriber failed on %s event", self.name, msg.name)

    def _on_frame_error(self, err: FrameError) -> None:
        log.warning(
            "%s: skipped %s AMI frame (%d bytes): %s", self.name, err.kind, err.size, err.preview
        )

    def _on_message(self, msg: AmiMessage) -> None:
        try:
            self._route(msg)
        except Exception:
            log.exception("%s: failed to handle %s %s", self.name, msg.kind, msg.name)

    def _route(self, msg: AmiMessage) -> None:
        if msg.kind == "banner":
            if self._banner is not None and not self._banner.done():
                self._banner.set_result(msg.name)
            return
        pending = self._pending.get(msg.action_id or "") if self._pending else None
        if msg.kind == "response":
            if pending is None:
                log.debug("%s: unexpected response (ActionID %s)", self.name, msg.action_id)
                return
            if pending.future.done():
                return
            if msg.name == "Error":
                pending.future.set_exception(AmiActionError(msg))
                return
            pending.messages.append(msg)
            listing = (msg.get("EventList") or "").lower() == "start" or "will follow" in (
                msg.get("Message") or ""
            ).lower()
            if listing:
                pending.listing = True
            else:
                pending.future.set_result(pending.messages)
            return
        # events
        if pending is not None and pending.listing and not pending.future.done():
            pending.messages.append(msg)
            if (msg.get("EventList") or "").lower() == "complete":
                pending.future.set_result(pending.messages)
        if msg.name == "FullyBooted":
            if self._booted is not None and not self._booted.done():
                self._booted.set_result(None)  # the post-login resync starts now
            elif self._logged_in:
                self._schedule_resync(min_gap=2.0)
        self._dispatch(msg)

    def _on_connection_lost(self, proto: _Protocol, exc: Exception | None) -> None:
        if proto is not self._protocol:
            return
        self._protocol = None
        self._logged_in = False
        self._fail_pending(AmiConnectionLost(f"{self.name}: connection lost"))
        if self._banner is not None and not self._banner.done():
            self._banner.set_exception(
                AmiNoBanner(f"{self.name}: connection closed before the banner")
            )
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    def _fail_pending(self, exc: AmiError) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(exc)

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{self.name}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _schedule_resync(self, min_gap: float) -> None:
        loop = asyncio.get_running_loop()
        if self._resync_task is not None and not self._resync_task.done():
            return  # the one running retries until it gets its answers
        if self._resync_ok and loop.time() - self._last_resync < min_gap:
            return
        self._last_resync = loop.time()
        self._resync_task = self._spawn(self._resync(), "resync")

    async def _boot_then_resync(self, booted: asyncio.Future[None]) -> None:
        """After a login: wait for FullyBooted (bounded), then resync."""
        try:
            await asyncio.wait_for(asyncio.shield(booted), self.boot_wait)
        except TimeoutError:
            log.info("%s: no FullyBooted within %.1fs; resyncing anyway", self.name, self.boot_wait)
        self._last_resync = asyncio.get_running_loop().time()
        self._resync_task = asyncio.current_task()
        await self._resync()

    async def _resync(self) -> None:
        self._resync_ok = False
        self._dispatch(AmiMessage.build("event", RESYNC_START, {}))
        loop = asyncio.get_running_loop()
        for action in RESYNC_ACTIONS:
            deadline = loop.time() + self.resync_retry_s
            delay = 0.05
            while True:
                try:
                    await self._send(action, None)
                    break
                except AmiActionError as e:
                    message = e.response.get("Message") or ""
                    if not _module_missing(message) or loop.time() + delay > deadline:
                        log.warning("%s: resync %s failed: %s", self.name, action["Action"], e)
                        return
                    log.info(
                        "%s: %s not available yet (PBX still booting); retrying in %.2fs",
                        self.name,
                        action["Action"],
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(1.0, delay * 2)
                except AmiError as e:
                    log.warning("%s: resync %s failed: %s", self.name, action["Action"], e)
                    return
        self._resync_ok = True
        self.resyncs += 1
        self._dispatch(AmiMessage.build("event", RESYNC_DONE, {}))

    async def _ping_loop(self, proto: _Protocol) -> None:
        while proto is self._protocol:
            await self._sleep(self.ping_interval)
            if proto is not self._protocol:
                return
            try:
                await self._send({"Action": "Ping"}, self.ping_timeout)
            except AmiTimeout:
                log.warning(
                    "%s: no answer to Ping within %.1fs: peer dead, reconnecting",
                    self.name,
                    self.ping_timeout,
                )
                if proto.transport is not None:
                    proto.transport.abort()
                return
            except AmiError:
                return

    def _backoff(self, failures: int) -> float:
        base = min(self.reconnect_max, self.reconnect_initial * (2 ** min(failures, 30)))
        delay = min(self.reconnect_max, base * (0.8 + 0.4 * self._rng()))
        self.backoffs = [*self.backoffs[-19:], delay]
        return delay

    async def _run(self) -> None:
        failures = 0
        while not self._closing:
            self._set_state("connecting")
            self.attempts += 1
            logged_in = False
            try:
                logged_in = await self._session()
            except AmiAuthError as e:
                log.error("%s: %s", self.name, e)
                self._set_state("auth_failed")
                self._first_failure(e)
            except (OSError, AmiError, TimeoutError) as e:
                log.warning(
                    "%s: connection to %s:%s failed: %r", self.name, self.host, self.port, e
                )
                self._first_failure(e)
            finally:
                self._teardown()
                if self.state != "auth_failed":
                    self._set_state("disconnected")
            if self._closing:
                return
            failures = 0 if logged_in else failures + 1
            delay = self._backoff(failures)
            log.info("%s: reconnecting in %.2fs", self.name, delay)
            await self._sleep(delay)

    def _first_failure(self, exc: BaseException) -> None:
        if self._fail_fast and self._first_login is not None and not self._first_login.done():
            self._first_login.set_exception(exc)

    def _teardown(self) -> None:
        proto, self._protocol = self._protocol, None
        self._logged_in = False
        if proto is not None and proto.transport is not None:
            proto.transport.abort()
        self._fail_pending(AmiConnectionLost(f"{self.name}: connection lost"))
        for task in list(self._tasks):
            task.cancel()

    async def _session(self) -> bool:
        """One connection: banner, login, resync, then wait for it to end. True if logged in."""
        loop = asyncio.get_running_loop()
        self._banner = loop.create_future()
        self._lost = loop.create_future()
        booted: asyncio.Future[None] = loop.create_future()
        self._booted = booted  # before the Login: FullyBooted may follow its reply at once
        framer = Framer(max_frame=self.max_frame, on_error=self._on_frame_error)
        _, proto = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(self, framer), self.host, self.port),
            self.banner_timeout,
        )
        self._protocol = proto
        try:
            version = await asyncio.wait_for(asyncio.shield(self._banner), self.banner_timeout)
        except TimeoutError:
            raise AmiNoBanner(f"{self.name}: no banner within {self.banner_timeout}s") from None
        log.info("%s: connected to %s:%s (AMI %s)", self.name, self.host, self.port, version)
        try:
            await self._send(
                {
                    "Action": "Login",
                    "Username": self.username,
                    "Secret": self.__secret,
                    "Events": "on",
                },
                self.action_timeout,
            )
        except AmiActionError as e:
            raise AmiAuthError(
                f"login as {self.username!r} on {self.host}:{self.port} refused: {e.response.get('Message')}"
            ) from None
        self._logged_in = True
        log.info("%s: logged in as %r", self.name, self.username)
        self._set_state("connected")
        if self._first_login is not None and not self._first_login.done():
            self._first_login.set_result(None)
        self._last_resync = float("-inf")
        self._resync_ok = False
        self._resync_task = self._spawn(self._boot_then_resync(booted), "resync")
        self._spawn(self._ping_loop(proto), "ping")
        await asyncio.shield(self._lost)
        log.warning("%s: connection to %s:%s lost", self.name, self.host, self.port)
        return True
