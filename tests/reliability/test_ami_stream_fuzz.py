"""A long AMI stream as a state machine: real events, garbage, oversized frames, any chunking.

tests/cti/test_ami_framing.py fuzzes single inputs; this drives ONE framer through a
long sequence and checks after every step that it never holds more than
``max_frame + 3`` bytes and that every real event fed after a clean boundary comes
out intact and in order, whatever came before it.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from cti.ami.framing import Framer
from cti.ami.message import FrameError

pytestmark = pytest.mark.e2e

MAX_FRAME = 512
_EVENTS = [
    b"Event: Newchannel\r\nChannel: Local/8000@from-pstn-00000000;1\r\nUniqueid: 1.0\r\n\r\n",
    b"Event: AgentCalled\r\nQueue: members\r\nCallerIDName: \xe6\x9d\x8e\xe4\xbc\x9f\r\n\r\n",
    b"Response: Success\r\nActionID: x-1\r\nPing: Pong\r\n\r\n",
    b"Event: Hangup\r\nCause: 16\r\nCause-txt: Normal Clearing\r\n\r\n",
]


class AmiStream(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.errors: list[FrameError] = []
        self.framer = Framer(max_frame=MAX_FRAME, expect_banner=True, on_error=self.errors.append)
        self.expected: list[str] = []
        self.got: list[str] = []
        self.pending = b""
        self.framer_fed = 0
        self.first = True

    def _feed(self, data: bytes, cuts: list[int]) -> None:
        points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
        for a, b in itertools.pairwise(points):
            for msg in self.framer.feed(data[a:b]):
                self.got.append(f"{msg.kind}:{msg.name}")
            assert self.framer.buffered <= MAX_FRAME + 3

    @rule(data=st.data())
    def banner(self, data: st.DataObject) -> None:
        if not self.first:
            return
        self.first = False
        self._feed(b"Asterisk Call Manager/11.0.0\r\n", data.draw(st.lists(st.integers(0, 40))))
        self.expected.append("banner:11.0.0")

    @rule(idx=st.integers(0, len(_EVENTS) - 1), cuts=st.lists(st.integers(0, 200), max_size=6))
    def real_event(self, idx: int, cuts: list[int]) -> None:
        self.first = False
        ev = _EVENTS[idx]
        self._feed(ev, cuts)
        kind = "response" if ev.startswith(b"Response") else "event"
        name = ev.split(b"\r\n", 1)[0].split(b": ", 1)[1].decode()
        self.expected.append(f"{kind}:{name}")

    @rule(junk=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=6))
    def garbage_then_boundary(self, junk: bytes, cuts: list[int]) -> None:
        self.first = False
        # Garbage that cannot be mistaken for a message, ended by a clean boundary.
        junk = junk.replace(b"\n", b" ").replace(b"\r", b" ")
        self._feed(b"\x00" + junk + b"\r\n\r\n", cuts)

    @rule(
        size=st.integers(MAX_FRAME + 1, 4 * MAX_FRAME),
        cuts=st.lists(st.integers(0, 3000), max_size=8),
    )
    def oversized_frame(self, size: int, cuts: list[int]) -> None:
        self.first = False
        self._feed(b"Event: Huge\r\nData: " + b"y" * size + b"\r\n\r\n", cuts)

    @invariant()
    def events_intact_and_in_order(self) -> None:
        assert self.got == self.expected
        assert self.framer.buffered <= MAX_FRAME + 3


AmiStream.TestCase.settings = settings(
    max_examples=30, stateful_step_count=30, deadline=None, database=None
)
TestAmiStream = AmiStream.TestCase
