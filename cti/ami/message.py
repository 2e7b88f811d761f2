"""Typed, immutable AMI messages as they leave the framer.

An :class:`AmiMessage` is built from the decoded text of one complete AMI frame.
Only the kind and the name (``Event: X`` / ``Response: Y`` on the first line) are
extracted eagerly; the header list is parsed on first access, so events the
consumer ignores (VarSet, Newexten, DeviceStateChange, Cdr... about half of a
queue call's traffic) cost almost nothing.

``get(key)`` is case-insensitive and answers ``None`` for a missing header, never
``''`` (an empty header value *is* ``''``). Duplicate keys (several ``Variable:``
or ``ChanVariable`` lines, Command ``Output:`` lines) are all kept: see
:meth:`AmiMessage.get_all` and :attr:`AmiMessage.headers`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

MessageKind = Literal["event", "response", "banner"]
"""``event`` (``Event:`` frames), ``response`` (``Response:`` frames), ``banner``
(the ``Asterisk Call Manager/x.y.z`` greeting; ``name`` is the version)."""

Header = tuple[str, str]

_HEADER_RE = re.compile(r"^([^:\r\n]+):[ \t]?([^\r\n]*)", re.MULTILINE)
"""The header grammar: ``Key:`` then at most one space or tab, then the value to the end of
the line; a line without a colon (or with an empty key) is not a header."""


def header_dict(text: str, crlf: bool = False) -> dict[str, str]:
    """Every header of a frame's text, the first value of a repeated key winning.

    Exactly ``dict(reversed(_HEADER_RE.findall(text)))``, at about half its cost on what
    Asterisk sends (``Key: value`` lines ended by CRLF): the lines are split and each is
    split at its first ``": "`` by C code (``dict(map(str.split, ...))``), then checked:
    any other shape (a line with no ``": "``, which ``dict`` refuses; a colon inside a
    key; a bare CR or LF inside a line) goes through the regex. ``crlf=True`` says the
    caller already knows the text holds no bare CR or LF (the framer checks a whole
    chunk at once).
    """
    lines = text.split("\r\n")
    if crlf or (text.count("\n") == len(lines) - 1 and text.count("\r") == len(lines) - 1):
        try:
            d = dict(map(_split, reversed(lines), _SEP, _ONCE))
        except ValueError:  # a line without ": "
            pass
        else:
            if ":" not in "".join(d):  # every line's first colon began its ": "
                d.pop("", None)  # ": value" has no key for the regex either
                return d
    return dict(reversed(_HEADER_RE.findall(text)))


_split = str.split
_SEP = itertools.repeat(": ")
_ONCE = itertools.repeat(1)

#: Name of the synthetic event :class:`cti.ami.client.AmiClient` delivers to
#: subscribers right before it sends the resync actions (CoreShowChannels,
#: QueueStatus); the tracker uses it to mark what a resync must confirm.
RESYNC_START = "MemberlineResyncStart"
#: Synthetic event delivered once every resync action has been answered in full
#: (after a QueueStatus refused during the boot was retried): the PBX's channels
#: and queue members are now known, so the hub can re-apply its agents' state.
RESYNC_DONE = "MemberlineResyncDone"


class AmiMessage:
    """One AMI event, response or the banner. Immutable; compare by value."""

    __slots__ = ("_by_key", "_by_lower", "_headers", "kind", "name", "text")

    kind: MessageKind
    name: str
    text: str
    _by_key: dict[str, str] | bool
    """The headers, first value of each key, once parsed; before that, whether the text is
    known to hold no bare CR or LF (see :func:`header_dict`)."""
    _headers: tuple[Header, ...]  # unset until asked for (see ``headers``)
    _by_lower: dict[str, str]  # unset until a lookup needs it

    def __init__(
        self,
        kind: MessageKind,
        name: str,
        text: str = "",
        headers: tuple[Header, ...] | None = None,
    ) -> None:
        _set_kind(self, kind)
        _set_name(self, name)
        _set_text(self, text)
        if headers is not None:
            _set_headers(self, headers)
            _set_by_key(self, dict(reversed(headers)))  # first occurrence wins
        else:
            _set_by_key(self, False)

    @classmethod
    def build(
        cls, kind: MessageKind, name: str, headers: dict[str, str] | list[Header]
    ) -> AmiMessage:
        """Make a message from headers (tests, synthetic events); the first header is added."""
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
        first = ("Event", name) if kind == "event" else ("Response", name)
        if kind != "banner" and (not pairs or pairs[0][0].lower() != first[0].lower()):
            pairs.insert(0, first)
        return cls(kind, name, "", tuple(pairs))

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("AmiMessage is immutable")

    @property
    def headers(self) -> tuple[Header, ...]:
        """Every ``(key, value)`` line in wire order, duplicates included."""
        h: tuple[Header, ...] | None = getattr(self, "_headers", None)
        if h is None:
            h = tuple(_HEADER_RE.findall(self.text))
            _set_headers(self, h)
        return h

    def get(self, key: str, default: str | None = None) -> str | None:
        """First value of ``key`` (case-insensitive), or ``default`` when absent."""
        d = self._by_key
        if d.__class__ is not dict:
            d = header_dict(self.text, d)  # type: ignore[arg-type]
            _set_by_key(self, d)
        v = d.get(key)
        if v is not None:
            return v
        low: dict[str, str] | None = getattr(self, "_by_lower", None)
        if low is None:
            low = {k.lower(): v for k, v in reversed(self.headers)}
            _set_by_lower(self, low)
        return low.get(key.lower(), default)

    def get_all(self, key: str) -> list[str]:
        """Every value of ``key`` (case-insensitive), in wire order."""
        k = key.lower()
        return [v for hk, v in self.headers if hk.lower() == k]

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    @property
    def is_event(self) -> bool:
        return self.kind == "event"

    def variables(self) -> dict[str, str]:
        """``Variable`` / ``ChanVariable`` lines (``NAME=value``) as a dict."""
        out: dict[str, str] = {}
        for k, v in self.headers:
            if k.lower() in ("variable", "chanvariable"):
                name, _, value = v.partition("=")
                out[name] = value
        return out

    def _key(self) -> tuple[str, str, tuple[Header, ...]]:
        return (self.kind, self.name, self.headers)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AmiMessage):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"AmiMessage({self.kind!r}, {self.name!r}, {len(self.headers)} headers)"


_new = object.__new__
_Setter = Callable[[AmiMessage, Any], None]
_SLOTS = AmiMessage.__dict__
# The slots' own setters: AmiMessage refuses ``setattr``, and these are faster than
# ``object.__setattr__`` (a message is made for every frame, tens of thousands a second).
_set_kind: _Setter = _SLOTS["kind"].__set__
_set_name: _Setter = _SLOTS["name"].__set__
_set_text: _Setter = _SLOTS["text"].__set__
_set_headers: _Setter = _SLOTS["_headers"].__set__
_set_by_key: _Setter = _SLOTS["_by_key"].__set__
_set_by_lower: _Setter = _SLOTS["_by_lower"].__set__


def framed(kind: MessageKind, name: str, text: str, crlf: bool = False) -> AmiMessage:
    """The message the framer makes for one frame's text (once per frame: ``__init__``
    without its call overhead). ``crlf``: the text is known to hold no bare CR or LF."""
    msg: AmiMessage = _new(AmiMessage)
    _set_kind(msg, kind)
    _set_name(msg, name)
    _set_text(msg, text)
    _set_by_key(msg, crlf)
    return msg


FrameErrorKind = Literal["overflow", "malformed"]


@dataclass(frozen=True, slots=True)
class FrameError:
    """A frame the framer skipped: too long (``overflow``) or not AMI (``malformed``)."""

    kind: FrameErrorKind
    size: int
    preview: str
    """The first bytes of the frame (escaped, at most 80 characters) for the log."""
