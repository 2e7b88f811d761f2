"""Newline-delimited JSON framing (pure, no I/O).

Each message is one UTF-8 JSON object followed by ``\\n``. JSON escapes newlines
inside strings, so a raw ``\\n`` byte always ends a frame. A frame longer than
``max_bytes`` is discarded up to its terminating newline and reported as a
:class:`FrameError`; the connection (and the frames after it) survive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FrameError:
    """A frame that could not be used; the stream goes on after it."""

    reason: str


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


class LineFramer:
    """Feed bytes, get decoded JSON objects (or FrameErrors) in order."""

    def __init__(self, max_bytes: int = 1_048_576) -> None:
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._discarding = False

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[dict[str, Any] | FrameError]:
        out: list[dict[str, Any] | FrameError] = []
        self._buf += data
        start = 0
        buf = self._buf
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = bytes(buf[start:nl])
            start = nl + 1
            if self._discarding:
                self._discarding = False
                continue
            if len(line) > self.max_bytes:
                out.append(FrameError(f"frame of {len(line)} bytes exceeds {self.max_bytes}"))
                continue
            if not line.strip():
                continue
            out.append(self._decode(line))
        del buf[:start]
        if len(buf) > self.max_bytes:
            # Too long and still no newline: drop it now, skip the rest of it when it ends.
            out.append(FrameError(f"frame exceeds {self.max_bytes} bytes"))
            buf.clear()
            self._discarding = True
        return out

    @staticmethod
    def _decode(line: bytes) -> dict[str, Any] | FrameError:
        try:
            obj = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            return FrameError("frame is not UTF-8")
        except json.JSONDecodeError as exc:
            return FrameError(f"frame is not JSON: {exc.msg}")
        except (ValueError, RecursionError):
            # e.g. an integer of thousands of digits, or thousands of nested brackets
            return FrameError("frame is not acceptable JSON (too deep or too large a number)")
        if not isinstance(obj, dict):
            return FrameError("frame is not a JSON object")
        return obj
