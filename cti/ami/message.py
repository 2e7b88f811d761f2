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

import re
from dataclasses import dataclass
from typing import Literal

MessageKind = Literal["event", "response", "banner"]
"""``event`` (``Event:`` frames), ``response`` (``Response:`` frames), ``banner``
(the ``Asterisk Call Manager/x.y.z`` greeting; ``name`` is the version)."""

Header = tuple[str, str]

_HEADER_RE = re.compile(r"^([^:\r\n]+):[ \t]?([^\r\n]*)", re.MULTILINE)

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
    _headers: tuple[Header, ...] | None
    _by_key: dict[str, str] | None
    _by_lower: dict[str, str] | None

    def __init__(
        self,
        kind: MessageKind,
        name: str,
        text: str = "",
        headers: tuple[Header, ...] | None = None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "kind", kind)
        set_(self, "name", name)
        set_(self, "text", text)
        set_(self, "_headers", headers)
        set_(self, "_by_key", None)
        set_(self, "_by_lower", None)

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
        h = self._headers
        if h is None:
            h = tuple(_HEADER_RE.findall(self.text))
            object.__setattr__(self, "_headers", h)
        return h

    def get(self, key: str, default: str | None = None) -> str | None:
        """First value of ``key`` (case-insensitive), or ``default`` when absent."""
        d = self._by_key
        if d is None:
            # first occurrence wins: build from the reversed list
            d = dict(reversed(self.headers))
            object.__setattr__(self, "_by_key", d)
        v = d.get(key)
        if v is not None:
            return v
        low = self._by_lower
        if low is None:
            low = {k.lower(): v for k, v in reversed(self.headers)}
            object.__setattr__(self, "_by_lower", low)
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


FrameErrorKind = Literal["overflow", "malformed"]


@dataclass(frozen=True, slots=True)
class FrameError:
    """A frame the framer skipped: too long (``overflow``) or not AMI (``malformed``)."""

    kind: FrameErrorKind
    size: int
    preview: str
    """The first bytes of the frame (escaped, at most 80 characters) for the log."""
