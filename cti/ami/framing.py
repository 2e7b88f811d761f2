"""Pure byte framing for the Asterisk Manager Interface.

:class:`Framer` takes TCP chunks of any size and returns complete
:class:`~cti.ami.message.AmiMessage` objects. It frames on *bytes* (a message
ends with an empty line: ``\\r\\n\\r\\n``, or a bare ``\\n\\n`` / ``\\n\\r\\n``) and
decodes each complete message as UTF-8 with ``errors="replace"``, so a multi-byte
character split across two reads arrives intact (panoramisk decodes each chunk on
its own and drops it).

Also handled:

* the banner line ``Asterisk Call Manager/x.y.z\\r\\n`` (one line, no empty line
  after it) becomes a ``banner`` message whose name is the version;
* a frame longer than ``max_frame`` bytes (default 4 MiB) is discarded up to the
  next delimiter and reported through ``on_error`` as a :class:`FrameError`; the
  buffer never holds more than ``max_frame`` bytes plus 3;
* a frame without an ``Event:``/``Response:`` header (binary garbage, stray text)
  is reported as ``malformed`` and skipped;
* legacy ``Response: Follows`` command output (``--END COMMAND--`` terminated,
  may contain blank lines) is kept in one message, the raw output lines as the
  headers' text.

No I/O, no logging: errors go to the optional ``on_error`` callback and the
counters in :attr:`Framer.stats`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from cti.ami.message import AmiMessage, FrameError, framed

DEFAULT_MAX_FRAME = 4 * 1024 * 1024

_CRLF2 = b"\r\n\r\n"
_BANNER = b"Asterisk Call Manager/"
_BOUNDARY_RE = re.compile(rb"\n\r?\n")
_END_COMMAND = b"--END COMMAND--"
_FOLLOWS = b"Response: Follows"
_END_COMMAND_TEXT = _END_COMMAND.decode()
_FOLLOWS_TEXT = _FOLLOWS.decode()


@dataclass(slots=True)
class FramerStats:
    """Counters since the framer was created."""

    bytes: int = 0
    messages: int = 0
    overflows: int = 0
    malformed: int = 0


def _preview(raw: bytes) -> str:
    return repr(raw[:60])[2:-1][:80]


def _find_boundary(buf: bytearray, start: int) -> int:
    """Index just past the first empty line at or after ``start``, or -1."""
    a = buf.find(b"\n\n", start)
    b = buf.find(b"\n\r\n", start)
    if a < 0 and b < 0:
        return -1
    if b < 0 or (0 <= a < b):
        return a + 2
    return b + 3


class Framer:
    """Incremental AMI framer: ``feed(bytes) -> list[AmiMessage]``."""

    __slots__ = (
        "_buf",
        "_discarding",
        "_expect_banner",
        "_follows",
        "max_frame",
        "on_error",
        "stats",
    )

    def __init__(
        self,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        expect_banner: bool = True,
        on_error: Callable[[FrameError], None] | None = None,
    ) -> None:
        if max_frame < 64:
            raise ValueError("max_frame must be at least 64 bytes")
        self.max_frame = max_frame
        self.on_error = on_error
        self.stats = FramerStats()
        self._buf = bytearray()
        self._expect_banner = expect_banner
        self._discarding = False
        self._follows: bytes | None = None

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the end of a frame."""
        return len(self._buf) + (len(self._follows) if self._follows else 0)

    def reset(self) -> None:
        """Forget any partial frame and expect a banner again (new connection)."""
        self._buf = bytearray()
        self._expect_banner = True
        self._discarding = False
        self._follows = None

    # -- errors ---------------------------------------------------------------------------
    def _error(self, kind: str, size: int, raw: bytes) -> None:
        if kind == "overflow":
            self.stats.overflows += 1
            err = FrameError("overflow", size, _preview(raw))
        else:
            self.stats.malformed += 1
            err = FrameError("malformed", size, _preview(raw))
        if self.on_error is not None:
            self.on_error(err)

    # -- feeding --------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[AmiMessage]:
        """Add a chunk; return every message it completes (possibly none)."""
        if not data:
            return []
        self.stats.bytes += len(data)
        buf = self._buf
        out: list[AmiMessage] = []
        if buf or self._discarding or self._expect_banner:
            start = max(0, len(buf) - 2)
            buf += data
            if self._expect_banner:
                if not self._take_banner(out):
                    return out
                start = 0
            if self._discarding:
                end = _find_boundary(buf, start)
                if end < 0:
                    del buf[: max(0, len(buf) - 2)]
                    return out
                del buf[:end]
                self._discarding = False
                start = 0
            if not buf:
                return out
            if _find_boundary(buf, start) < 0:
                self._check_overflow()
                return out
            data = bytes(buf)
            buf.clear()
        self._split(data, out)
        return out

    def _take_banner(self, out: list[AmiMessage]) -> bool:
        """Consume the banner line if the buffer starts with one; False = need more bytes."""
        buf = self._buf
        n = min(len(buf), len(_BANNER))
        if buf[:n] != _BANNER[:n]:
            self._expect_banner = False  # no banner: plain framing from here
            return True
        nl = buf.find(b"\n")
        if nl < 0:
            if len(buf) > 256:  # not a banner after all
                self._expect_banner = False
                return True
            return False
        line = bytes(buf[:nl]).rstrip(b"\r")
        del buf[: nl + 1]
        self._expect_banner = False
        version = line[len(_BANNER) :].decode("utf-8", "replace").strip()
        out.append(AmiMessage("banner", version, line.decode("utf-8", "replace")))
        self.stats.messages += 1
        return True

    def _check_overflow(self) -> None:
        buf = self._buf
        if len(buf) > self.max_frame:
            self._error("overflow", len(buf), bytes(buf[:60]))
            del buf[: len(buf) - 2]  # keep a possible partial delimiter
            self._discarding = True

    def _split(self, data: bytes, out: list[AmiMessage]) -> None:
        cut = data.rfind(_CRLF2)
        if (
            cut >= 0
            and self._follows is None
            and len(data) <= self.max_frame
            # every CR and LF is in a CRLF pair (then CRLF CRLF is the only delimiter):
            # #CR + #LF == 2 * #CRLF; one C pass each, no per-line Python work
            and len(data) - len(data.translate(None, b"\r\n")) == 2 * data.count(b"\r\n")
            # Fast path (what Asterisk sends): decode every complete frame at once (a
            # delimiter is ASCII, so this equals decoding frame by frame), split the text,
            # make the messages; they know their lines need no CR/LF check when parsed.
            and self._split_text(data[:cut].decode("utf-8", "replace"), out)
        ):
            rest = data[cut + 4 :]
        else:
            rest = self._split_generic(data, out)
        if rest:
            if rest.startswith(b"\r\n") or rest.startswith(b"\n"):
                rest = rest.lstrip(b"\r\n")
            self._buf += rest
            self._check_overflow()

    def _split_text(self, text: str, out: list[AmiMessage]) -> bool:
        """Messages of CRLF-only text; False (nothing added) if it holds the start of
        command output (``Response: Follows`` may contain blank lines: framed apart)."""
        make = framed
        append = out.append
        before = len(out)
        malformed: list[str] = []  # reported once the chunk is known to be framed here
        for piece in text.split("\r\n\r\n"):
            if piece[:7] == "Event: ":
                nl = piece.find("\r")
                name = piece[7:nl] if nl >= 0 else piece[7:]
                append(make("event", name.strip(), piece, True))
                continue
            stripped = piece.lstrip("\r\n")  # leading blank lines (a stray CRLF)
            if not stripped:
                continue
            if stripped.startswith(_FOLLOWS_TEXT) and _END_COMMAND_TEXT not in stripped:
                del out[before:]
                return False
            msg = self._classify(stripped, malformed)
            if msg is not None:
                append(msg)
        for bad in malformed:
            raw = bad.encode("utf-8")  # the size reported is that of the decoded text
            self._error("malformed", len(raw), raw)
        self.stats.messages += len(out) - before
        return True

    def _split_generic(self, data: bytes, out: list[AmiMessage]) -> bytes:
        """Any delimiters, command output, oversized frames; returns the unfinished rest."""
        pieces = _BOUNDARY_RE.split(data)
        rest = pieces.pop()
        if len(data) > self.max_frame:
            big = [p for p in pieces if len(p) > self.max_frame]
            if big:
                for p in big:
                    self._error("overflow", len(p), p)
                pieces = [p for p in pieces if len(p) <= self.max_frame]
        append = out.append
        decode = bytes.decode
        make = framed
        before = len(out)
        for piece in pieces:
            if self._follows is not None:
                self._follows += b"\n\n" + piece
                if _END_COMMAND in piece:
                    piece, self._follows = self._follows, None
                else:
                    if len(self._follows) > self.max_frame:
                        self._error("overflow", len(self._follows), self._follows)
                        self._follows = None
                    continue
            if piece[:7] == b"Event: ":
                text = decode(piece, "utf-8", "replace")
                nl = text.find("\r")
                if nl < 0:
                    nl = text.find("\n")
                name = text[7:nl] if nl >= 0 else text[7:]
                append(make("event", name.strip(), text))
                continue
            msg = self._slow_message(piece)
            if msg is not None:
                append(msg)
        self.stats.messages += len(out) - before
        return rest

    def _slow_message(self, piece: bytes) -> AmiMessage | None:
        """Responses, leading blank lines, odd spellings, garbage (from bytes)."""
        stripped = piece.lstrip(b"\r\n")
        if not stripped:
            return None
        if stripped.startswith(_FOLLOWS) and _END_COMMAND not in stripped:
            self._follows = stripped
            return None
        return self._classify(stripped.decode("utf-8", "replace"))

    def _classify(self, text: str, malformed: list[str] | None = None) -> AmiMessage | None:
        """A frame that does not start with ``Event: ``: a response, an event whose
        ``Event`` header is not first, or not AMI at all (reported, or added to
        ``malformed`` for the caller to report, and skipped)."""
        first, _, _ = text.partition("\n")
        key, sep, value = first.rstrip("\r").partition(":")
        kl = key.strip().lower()
        if sep and kl == "event":
            return framed("event", value.strip(), text)
        if sep and kl == "response":
            return framed("response", value.strip(), text)
        # the Event/Response header may not come first (rare, but allowed by the protocol)
        msg = AmiMessage("event", "", text)
        ev = msg.get("Event")
        if ev is not None:
            return framed("event", ev.strip(), text)
        resp = msg.get("Response")
        if resp is not None:
            return framed("response", resp.strip(), text)
        if malformed is not None:
            malformed.append(text)
            return None
        raw = text.encode("utf-8")  # the size reported is that of the decoded text
        self._error("malformed", len(raw), raw)
        return None


def frame_all(data: bytes, chunk_size: int | None = None, **kwargs: object) -> list[AmiMessage]:
    """Frame a whole byte string (optionally fed in chunks); handy for tests and tools."""
    fr = Framer(**kwargs)  # type: ignore[arg-type]
    if chunk_size is None:
        return fr.feed(data)
    out: list[AmiMessage] = []
    for i in range(0, len(data), chunk_size):
        out.extend(fr.feed(data[i : i + chunk_size]))
    return out
