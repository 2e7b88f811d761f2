"""AMI wire format as the simulator speaks it (pure: no I/O).

Asterisk 22 frames every message as ``Key: Value`` lines ending in CRLF and a
blank line. Header order matters to us (the simulator copies the real order),
so a message is an ordered tuple of pairs, not a dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

BANNER = b"Asterisk Call Manager/11.0.0\r\n"

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One AMI message (event, response or action) with its headers in wire order."""

    headers: Headers

    @property
    def name(self) -> str:
        """The Event name, or ``Response: X`` / ``Action: X`` for the other kinds."""
        for key, value in self.headers:
            if key == "Event":
                return value
        first_key, first_value = self.headers[0] if self.headers else ("", "")
        return f"{first_key}: {first_value}"

    @property
    def is_event(self) -> bool:
        return bool(self.headers) and self.headers[0][0] == "Event"

    def get(self, key: str, default: str | None = None) -> str | None:
        """First value of ``key`` (case-insensitive, as Asterisk matches action headers)."""
        low = key.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return default

    def get_all(self, key: str) -> list[str]:
        low = key.lower()
        return [v for k, v in self.headers if k.lower() == low]

    def keys(self) -> list[str]:
        return [k for k, _ in self.headers]

    def as_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in self.headers:
            out.setdefault(k, v)
        return out

    def encode(self) -> bytes:
        return encode(self.headers)


def encode(headers: Iterable[tuple[str, str]]) -> bytes:
    """Serialise headers as Asterisk does: ``Key: Value\\r\\n`` each, then ``\\r\\n``."""
    parts = [f"{k}: {v}\r\n" for k, v in headers]
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")


class ActionReader:
    """Incremental parser for actions a client sends (CRLF or bare LF, any chunking).

    Frames on bytes and decodes each complete message on its own, so a UTF-8
    character split across TCP reads survives. ``max_frame`` bounds memory: a
    client that never ends a message is cut off by the caller (see ``overflow``).
    """

    def __init__(self, max_frame: int = 1 << 20) -> None:
        self._buf = bytearray()
        self._max = max_frame
        self.overflow = False

    def feed(self, data: bytes) -> Iterator[AmiMessage]:
        self._buf += data
        while True:
            end, sep_len = _find_blank_line(self._buf)
            if end < 0:
                if len(self._buf) > self._max:
                    self.overflow = True
                    self._buf.clear()
                return
            raw = bytes(self._buf[:end])
            del self._buf[: end + sep_len]
            msg = parse_block(raw)
            if msg is not None:
                yield msg


def _find_blank_line(buf: bytearray) -> tuple[int, int]:
    """Index of the first message terminator and its length (-1 if none yet)."""
    best = -1
    best_len = 0
    for sep in (b"\r\n\r\n", b"\n\n", b"\r\n\n", b"\n\r\n"):
        i = buf.find(sep)
        if i >= 0 and (best < 0 or i < best):
            best, best_len = i, len(sep)
    return best, best_len


def parse_block(raw: bytes) -> AmiMessage | None:
    """Parse one message block; lines without a colon are ignored; empty -> None."""
    text = raw.decode("utf-8", errors="replace")
    headers: list[tuple[str, str]] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        headers.append((key.strip(), value[1:] if value.startswith(" ") else value))
    if not headers:
        return None
    return AmiMessage(tuple(headers))
