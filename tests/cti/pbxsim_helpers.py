"""A raw asyncio AMI client and trace readers for the simulator tests.

Deliberately independent of ``cti.ami`` (written concurrently): the simulator
must be checked against the bytes, not against our own client.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from tests.fixtures import AMI_TRACES as TRACES

Msg = list[tuple[str, str]]


def parse_messages(data: bytes) -> list[Msg]:
    """Split a CRLF AMI byte stream into messages (the banner line is dropped)."""
    text = data.decode("utf-8")
    if text.startswith("Asterisk Call Manager/"):
        text = text.split("\r\n", 1)[1]
    out: list[Msg] = []
    for block in text.split("\r\n\r\n"):
        if not block.strip():
            continue
        pairs: Msg = []
        for line in block.split("\r\n"):
            key, _, value = line.partition(": ")
            if line.endswith(":") and not value:
                key = line[:-1]
            pairs.append((key, value))
        out.append(pairs)
    return out


def trace_messages(name: str) -> list[Msg]:
    return parse_messages((TRACES / f"{name}.txt").read_bytes())


def name_of(msg: Msg) -> str:
    return dict(msg).get("Event") or f"{msg[0][0]}: {msg[0][1]}"


class AmiClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = b""
        self.raw = b""
        self.banner = b""
        self.messages: list[Msg] = []
        self._n = 0

    @classmethod
    async def connect(cls, port: int) -> AmiClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        c = cls(reader, writer)
        c.banner = await asyncio.wait_for(reader.readline(), 5)
        return c

    def send(self, action: str, **headers: str) -> str:
        self._n += 1
        aid = headers.pop("ActionID", f"t-{self._n}")
        lines = [f"Action: {action}", f"ActionID: {aid}"]
        for k, v in headers.items():
            lines.append(f"{k}: {v}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return aid

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_message(self, wait: float = 5.0) -> Msg:
        while b"\r\n\r\n" not in self.buf:
            chunk = await asyncio.wait_for(self.reader.read(65536), wait)
            if not chunk:
                raise EOFError
            self.raw += chunk
            self.buf += chunk
        block, self.buf = self.buf.split(b"\r\n\r\n", 1)
        msg = parse_messages(block + b"\r\n\r\n")[0]
        self.messages.append(msg)
        return msg

    async def wait_for(self, pred: Callable[[Msg], bool], wait: float = 5.0) -> Msg:
        loop = asyncio.get_running_loop()
        end = loop.time() + wait
        while True:
            msg = await self.read_message(max(0.01, end - loop.time()))
            if pred(msg):
                return msg

    async def response(self, aid: str, wait: float = 5.0) -> Msg:
        return await self.wait_for(
            lambda m: m[0][0] == "Response" and dict(m).get("ActionID") == aid, wait
        )

    async def event(self, name: str, wait: float = 5.0, **match: str) -> Msg:
        def pred(m: Msg) -> bool:
            d = dict(m)
            return d.get("Event") == name and all(d.get(k) == v for k, v in match.items())

        return await self.wait_for(pred, wait)

    async def login(
        self, user: str = "memberline", secret: str = "secret", events: str = "on"
    ) -> Msg:
        aid = self.send("Login", Username=user, Secret=secret, Events=events)
        return await self.response(aid)

    async def collect_list(self, aid: str, complete: str, wait: float = 5.0) -> list[Msg]:
        items: list[Msg] = []
        while True:
            m = await self.wait_for(lambda m: dict(m).get("ActionID") == aid, wait)
            items.append(m)
            if dict(m).get("Event") == complete:
                return items

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def strip_ids(value: str) -> str:
    return re.sub(r"\d+", "N", value)
