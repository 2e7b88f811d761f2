"""AmiClient against a small real AMI server on loopback that replays trace bytes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from cti.ami.client import AmiClient, encode_action
from cti.ami.errors import AmiActionError, AmiAuthError, AmiNotConnected, AmiTimeout
from cti.ami.message import RESYNC_START, AmiMessage
from tests.fixtures import AMI_TRACES as TRACES

SECRET = "s3cr3t-Do-Not-Log"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def frame(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class FakeAmi:
    """Speaks enough AMI: banner, Login, Ping, CoreShowChannels, QueueStatus, Originate, Slow."""

    def __init__(self) -> None:
        self.logins = 0
        self.login_times: list[float] = []
        self.connections = 0
        self.answer_ping = True
        self.send_banner = True
        self.after_login = b""
        self.refuse_queue_status = 0
        """QueueStatus answered "Invalid/unknown command" this many times (app_queue loading)."""
        self.early_login = False
        """No FullyBooted at login: it is broadcast once QueueStatus works (an early login)."""
        self.queue_status_calls = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> FakeAmi:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        if not self.send_banner:
            writer.close()
            return
        writer.write(BANNER)
        buf = b""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                *frames, buf = (buf + data).split(b"\r\n\r\n")
                for f in frames:
                    pairs = [tuple(line.split(": ", 1)) for line in f.decode().split("\r\n")]
                    await self.answer(AmiMessage.build("response", "action", pairs), writer)  # type: ignore[arg-type]
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    async def answer(self, act: AmiMessage, w: asyncio.StreamWriter) -> None:
        aid = act.get("ActionID") or ""
        name = act.get("Action") or ""
        if name == "Login":
            self.logins += 1
            self.login_times.append(asyncio.get_running_loop().time())
            if act.get("Secret") != SECRET:
                w.write(
                    frame("Response: Error", f"ActionID: {aid}", "Message: Authentication failed")
                )
                await w.drain()
                w.close()
                return
            w.write(
                frame("Response: Success", f"ActionID: {aid}", "Message: Authentication accepted")
            )
            if not self.early_login:
                w.write(
                    frame("Event: FullyBooted", "Privilege: system,all", "Status: Fully Booted")
                )
            w.write(self.after_login)
        elif name == "Ping":
            if self.answer_ping:
                w.write(
                    frame("Response: Success", f"ActionID: {aid}", "Ping: Pong", "Timestamp: 1.0")
                )
        elif name == "CoreShowChannels":
            w.write(
                frame(
                    "Response: Success",
                    f"ActionID: {aid}",
                    "EventList: start",
                    "Message: Channels will follow",
                )
            )
            w.write(
                frame(
                    "Event: CoreShowChannel",
                    f"ActionID: {aid}",
                    "Channel: PJSIP/a-1",
                    "Uniqueid: 9.1",
                    "Linkedid: 9.1",
                )
            )
            w.write(
                frame(
                    "Event: CoreShowChannelsComplete",
                    f"ActionID: {aid}",
                    "EventList: Complete",
                    "ListItems: 1",
                )
            )
        elif name == "QueueStatus" and self.refuse_queue_status > 0:
            self.queue_status_calls += 1
            self.refuse_queue_status -= 1
            w.write(
                frame(
                    "Response: Error",
                    f"ActionID: {aid}",
                    "Message: Invalid/unknown command: QueueStatus. Use Action: ListCommands to "
                    "show available commands.",
                )
            )
            w.write(frame("Event: RequestBadFormat", "Privilege: security,all"))
            if self.refuse_queue_status == 0 and self.early_login:
                w.write(
                    frame(
                        "Event: FullyBooted",
                        "Privilege: system,all",
                        "Status: Fully Booted",
                        "Uptime: 0",
                        "LastReload: 0",
                    )
                )
        elif name == "QueueStatus":
            self.queue_status_calls += 1
            w.write(
                frame(
                    "Response: Success",
                    f"ActionID: {aid}",
                    "EventList: start",
                    "Message: Queue status will follow",
                )
            )
            w.write(frame("Event: QueueParams", "Queue: q1", f"ActionID: {aid}"))
            w.write(
                frame(
                    "Event: QueueMember",
                    "Queue: q1",
                    "Name: Ann",
                    "Location: PJSIP/ann",
                    "Paused: 0",
                    f"ActionID: {aid}",
                )
            )
            w.write(
                frame(
                    "Event: QueueStatusComplete",
                    f"ActionID: {aid}",
                    "EventList: Complete",
                    "ListItems: 2",
                )
            )
        elif name == "Originate":
            w.write(
                frame(
                    "Response: Success",
                    f"ActionID: {aid}",
                    "Message: Originate successfully queued",
                )
            )
            await w.drain()
            await asyncio.sleep(0.05)
            w.write(
                frame(
                    "Event: OriginateResponse",
                    "Privilege: call,all",
                    f"ActionID: {aid}",
                    "Response: Success",
                    "Channel: Local/x@y-00000001;1",
                    "Reason: 4",
                    "Uniqueid: 5.1",
                )
            )
        elif name == "Bad":
            w.write(
                frame(
                    "Response: Error", f"ActionID: {aid}", "Message: Invalid/unknown command: Bad."
                )
            )
        elif name == "Drop":
            w.close()
            return
        elif name == "Replay":
            w.write((TRACES / "a-inbound-queue-call.txt").read_bytes().split(b"\r\n\r\n", 3)[3])
            w.write(b"\x00\xff garbage frame\r\n\r\n")
            w.write(frame("Response: Success", f"ActionID: {aid}"))
        # "Slow": never answered
        await w.drain()


@pytest_asyncio.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    async with FakeAmi() as server:
        yield server


def make_client(server: FakeAmi, secret: str = SECRET, **kw: object) -> AmiClient:
    opts: dict[str, object] = dict(
        action_timeout=1.0,
        ping_interval=5.0,
        ping_timeout=1.0,
        reconnect_initial=0.05,
        reconnect_max=0.4,
    )
    opts.update(kw)
    return AmiClient("127.0.0.1", server.port, "lab", secret, **opts)  # type: ignore[arg-type]


async def wait_for(cond: Callable[[], bool], timeout: float = 3.0) -> None:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.01)


async def test_queue_status_refused_while_booting_is_retried_not_dropped(ami: FakeAmi) -> None:
    """g-restart-early-login: the login is accepted before app_queue loads; QueueStatus is
    "Invalid/unknown command" (3 times here) and FullyBooted comes later. The resync retries
    with back-off, is not dropped by the 2 s gap, and ends with MemberlineResyncDone."""
    from cti.ami.message import RESYNC_DONE

    ami.early_login = True
    ami.refuse_queue_status = 3
    seen: list[AmiMessage] = []
    c = make_client(ami, boot_wait=0.05)
    c.subscribe(seen.append)
    await c.start()
    try:
        await wait_for(lambda: any(m.name == RESYNC_DONE for m in seen))
        names = [m.name for m in seen]
        assert ami.queue_status_calls == 4 and c.resyncs == 1
        done = names.index(RESYNC_DONE)
        assert names.index("QueueMember") < done
        assert names.count("RequestBadFormat") == 3
    finally:
        await c.close()


def test_encode_action_puts_action_first_and_repeats_lists() -> None:
    data = encode_action({"ActionID": "1", "Variable": ["A=1", "B=2"], "Action": "Originate"})
    assert data == b"Action: Originate\r\nActionID: 1\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n"
    with pytest.raises(ValueError):
        encode_action({"Action": "Ping", "X": "a\r\nAction: Logoff"})


async def test_login_resync_and_event_list(ami: FakeAmi) -> None:
    seen: list[AmiMessage] = []
    states: list[str] = []
    c = make_client(ami)
    c.subscribe(seen.append)
    c.on_state(states.append)
    await c.start()
    try:
        assert c.connected and states == ["connecting", "connected"]
        await wait_for(lambda: any(m.name == "QueueStatusComplete" for m in seen))
        names = [m.name for m in seen]
        assert (
            names.index(RESYNC_START) < names.index("CoreShowChannel") < names.index("QueueMember")
        )
        assert names.count(RESYNC_START) == 1  # FullyBooted right after login does not resync twice
        msgs = await c.send_action({"Action": "QueueStatus"})
        assert [m.name for m in msgs] == [
            "Success",
            "QueueParams",
            "QueueMember",
            "QueueStatusComplete",
        ]
        assert msgs[2].get("Location") == "PJSIP/ann"
        with pytest.raises(AmiActionError):
            await c.send_action({"Action": "Bad"})
        assert c.connected
    finally:
        await c.close()


async def test_originate_async_response_goes_to_subscribers(ami: FakeAmi) -> None:
    seen: list[AmiMessage] = []
    c = make_client(ami)
    c.subscribe(seen.append)
    await c.start()
    try:
        msgs = await c.send_action({"Action": "Originate", "Async": "true", "ActionID": "orig-1"})
        assert [m.name for m in msgs] == ["Success"]
        await wait_for(lambda: any(m.name == "OriginateResponse" for m in seen))
        (resp,) = [m for m in seen if m.name == "OriginateResponse"]
        assert resp.action_id == "orig-1" and resp.get("Reason") == "4"
    finally:
        await c.close()


async def test_handler_exception_and_garbage_do_not_drop(ami: FakeAmi) -> None:
    good: list[str] = []

    def bad(msg: AmiMessage) -> None:
        raise RuntimeError("handler bug")

    c = make_client(ami)
    c.subscribe(bad)
    c.subscribe(lambda m: good.append(m.name))
    await c.start()
    try:
        await c.send_action({"Action": "Replay"})
        assert good.count("Hangup") == 6 and "AgentConnect" in good
        assert c.connected and ami.connections == 1
    finally:
        await c.close()


async def test_action_timeout_and_in_flight_fails_fast_on_disconnect(ami: FakeAmi) -> None:
    c = make_client(ami)
    await c.start()
    try:
        with pytest.raises(AmiTimeout):
            await c.send_action({"Action": "Slow"}, timeout=0.2)
        assert c.connected
        slow = asyncio.ensure_future(c.send_action({"Action": "Slow"}, timeout=5.0))
        await asyncio.sleep(0.05)
        t0 = asyncio.get_running_loop().time()
        with pytest.raises(AmiNotConnected):
            await asyncio.gather(c.send_action({"Action": "Drop"}), slow)
        assert asyncio.get_running_loop().time() - t0 < 1.0
        with pytest.raises(AmiNotConnected):
            await slow
        await wait_for(lambda: c.connected)  # and it reconnects
        assert ami.connections == 2
    finally:
        await c.close()


async def test_dead_peer_detected_and_reconnected(ami: FakeAmi) -> None:
    states: list[str] = []
    c = make_client(ami, ping_interval=0.1, ping_timeout=0.2)
    c.on_state(states.append)
    await c.start()
    try:
        ami.answer_ping = False
        await wait_for(lambda: ami.connections >= 2 and c.connected)
        assert states[:4] == ["connecting", "connected", "disconnected", "connecting"]
        ami.answer_ping = True
    finally:
        await c.close()


async def test_login_failure_fail_fast_and_backoff(
    ami: FakeAmi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c = make_client(ami, secret="wrong-" + SECRET)
    with pytest.raises(AmiAuthError):
        await c.start(fail_fast=True)
    assert c.state in ("auth_failed", "connecting")
    await wait_for(lambda: ami.logins >= 5, timeout=5.0)
    await c.close()
    # no hammering: each attempt waits at least the (growing, capped) back-off
    gaps = [b - a for a, b in zip(ami.login_times, ami.login_times[1:], strict=False)]
    for gap, delay in zip(gaps, c.backoffs, strict=False):
        assert gap >= delay * 0.95
    assert c.backoffs[0] == pytest.approx(0.1, rel=0.21)  # 0.05 * 2 with +-20 % jitter
    assert max(c.backoffs) <= 0.4
    # then a good login: the secret appears in no log record
    good = make_client(ami)
    await good.start()
    await good.close()
    assert "Authentication failed" in caplog.text or "refused" in caplog.text
    assert SECRET not in caplog.text
    for rec in caplog.records:
        assert SECRET not in rec.getMessage()


async def test_backoff_is_exponential_capped_with_jitter(ami: FakeAmi) -> None:
    delays: list[float] = []

    async def fake_sleep(d: float) -> None:
        delays.append(d)
        await asyncio.sleep(0)

    ami.send_banner = False  # accepted then closed without a banner: a failed attempt
    c = make_client(
        ami, sleep=fake_sleep, rng=lambda: 0.5, reconnect_initial=0.5, reconnect_max=4.0
    )
    task = asyncio.ensure_future(c.start())
    await wait_for(lambda: len(delays) >= 6)
    await c.close()
    with pytest.raises(AmiNotConnected):
        await task
    assert delays[:6] == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


async def test_not_connected_before_start(ami: FakeAmi) -> None:
    c = make_client(ami)
    with pytest.raises(AmiNotConnected):
        await c.send_action({"Action": "Ping"})
