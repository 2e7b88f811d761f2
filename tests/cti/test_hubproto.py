from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.hubproto import COMMANDS, FrameError, LineFramer, ProtocolError, encode, validate_args
from cti.hubproto.doc import render

ROOT = Path(__file__).resolve().parents[2]


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_framing_any_chunk_size_keeps_chinese_intact() -> None:
    msgs = [{"push": "screen_pop", "data": {"name": "李伟", "n": i}} for i in range(5)]
    stream = b"".join(encode(m) for m in msgs)
    for size in range(1, 40):
        framer = LineFramer()
        out = [m for c in chunks(stream, size) for m in framer.feed(c)]
        assert out == msgs


def test_oversized_frame_is_skipped_not_fatal() -> None:
    framer = LineFramer(max_bytes=100)
    big = encode({"x": "a" * 500})
    ok = encode({"y": 1})
    out = []
    for c in chunks(big + ok, 37):
        out.extend(framer.feed(c))
    assert isinstance(out[0], FrameError)
    assert out[-1] == {"y": 1}
    assert framer.buffered == 0


def test_garbage_lines_reported() -> None:
    out = LineFramer().feed(b"\xff\xfe\n[1,2]\nnot json\n" + encode({"ok": 1}))
    assert [type(m) for m in out] == [FrameError, FrameError, FrameError, dict]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.integers(1, 64))
def test_fuzz_framer_never_raises_and_stays_bounded(data: bytes, size: int) -> None:
    framer = LineFramer(max_bytes=256)
    for c in chunks(data, size):
        framer.feed(c)
        assert framer.buffered <= 256 + size


def test_validate_args() -> None:
    spec = COMMANDS["complaint_create"]
    ok = {"member_id": 1, "severity": "high", "category": "service", "description": "x"}
    assert validate_args(spec, ok) == ok
    for bad, needle in [
        ({**ok, "severity": "urgent"}, "severity"),
        ({**ok, "member_id": "1"}, "member_id"),
        ({**ok, "member_id": True}, "member_id"),
        ({k: v for k, v in ok.items() if k != "category"}, "category: required"),
        ({**ok, "extra": 1}, "unknown argument"),
        ({**ok, "description": "x" * 9000}, "longer than"),
    ]:
        with pytest.raises(ProtocolError, match=needle):
            validate_args(spec, bad)
    with pytest.raises(ProtocolError, match="offset"):
        validate_args(
            COMMANDS["callback_create"],
            {"member_id": 1, "due_at": "2026-01-01T10:00", "reason": "r"},
        )


def test_protocol_doc_is_in_sync() -> None:
    assert (ROOT / "docs" / "hub-protocol.md").read_text(encoding="utf-8") == render()


def test_encode_is_one_line() -> None:
    line = encode({"t": "a\nb"})
    assert line.count(b"\n") == 1 and json.loads(line) == {"t": "a\nb"}


def test_hostile_json_is_a_frame_error_not_an_exception() -> None:
    framer = LineFramer()
    out = framer.feed(b'{"id": ' + b"9" * 5000 + b"}\n" + b"[" * 5000 + b"\n" + encode({"ok": 1}))
    assert [type(m) for m in out] == [FrameError, FrameError, dict]
