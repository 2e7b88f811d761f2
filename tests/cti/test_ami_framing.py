"""Framing on real Asterisk bytes at every chunk size, odd input, and fuzzing."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.ami.framing import Framer, frame_all
from cti.ami.message import _HEADER_RE, AmiMessage, FrameError, header_dict
from tests.fixtures import AMI_TRACES as TRACES

TRACE_FILES = sorted(
    p
    for p in TRACES.glob("*.txt")
    if not p.name.endswith((".sent.txt", ".timeline.txt", ".result.txt", ".notes.txt"))
    and p.name != "event-fields.txt"
    and not p.name.startswith(("fastagi", "sequences"))
)


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def feed_chunked(data: bytes, size: int, **kw: object) -> list[AmiMessage]:
    fr = Framer(**kw)  # type: ignore[arg-type]
    out: list[AmiMessage] = []
    for c in chunks(data, size):
        out.extend(fr.feed(c))
    return out


def reference(data: bytes) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """An independent, obviously-correct parse of a CRLF trace."""
    banner, _, rest = data.partition(b"\r\n")
    assert banner.startswith(b"Asterisk Call Manager/")
    out: list[tuple[str, str, tuple[tuple[str, str], ...]]] = [
        ("banner", banner.decode()[len("Asterisk Call Manager/") :], ())
    ]
    for frame in rest.split(b"\r\n\r\n")[:-1]:
        lines = frame.decode("utf-8").split("\r\n")
        headers = tuple(
            tuple(line.split(": ", 1)) if ": " in line else (line[:-1], "") for line in lines
        )
        kind, name = headers[0]
        out.append(("event" if kind == "Event" else "response", name, headers))  # type: ignore[arg-type]
    return out


def as_tuples(msgs: list[AmiMessage]) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    return [(m.kind, m.name, m.headers) for m in msgs]


def test_trace_files_found() -> None:
    names = {p.name for p in TRACE_FILES}
    assert "a-inbound-queue-call.txt" in names and "rate-200.txt" in names
    assert len(TRACE_FILES) >= 20


@pytest.mark.parametrize("path", TRACE_FILES, ids=lambda p: p.stem)
def test_whole_trace_matches_reference(path: Path) -> None:
    data = path.read_bytes()
    assert as_tuples(frame_all(data)) == reference(data)


def test_every_chunk_size_1_to_300_on_inbound_call() -> None:
    data = (TRACES / "a-inbound-queue-call.txt").read_bytes()
    expected = as_tuples(frame_all(data))
    assert len(expected) > 100
    for size in range(1, 301):
        assert as_tuples(feed_chunked(data, size)) == expected, size


@pytest.mark.parametrize("path", TRACE_FILES, ids=lambda p: p.stem)
def test_chunk_sizes_on_every_trace(path: Path) -> None:
    data = path.read_bytes()
    expected = reference(data)
    sizes = (
        [3, 7, 100, 4096, 65536] if path.name == "rate-200.txt" else [1, 2, 5, 13, 64, 1000, 4096]
    )
    for size in sizes:
        assert as_tuples(feed_chunked(data, size)) == expected, size


def test_rate_200_event_count() -> None:
    msgs = frame_all((TRACES / "rate-200.txt").read_bytes())
    events = [m for m in msgs if m.kind == "event"]
    # 5,200 call events plus FullyBooted and SuccessfulAuth x2 (listener + sender logins)
    assert len(events) == 5203
    assert sum(1 for m in events if m.name == "OriginateResponse") == 200


def test_chinese_caller_name_split_inside_a_character() -> None:
    raw = (
        (TRACES / "a-inbound-queue-call.txt")
        .read_bytes()
        .replace(b"CallerIDName: Li Wei", "CallerIDName: 李伟".encode())
    )
    pos = raw.index("李".encode())
    for cut in (pos + 1, pos + 2, pos + 4):
        fr = Framer()
        msgs = fr.feed(raw[:cut]) + fr.feed(raw[cut:])
        joins = [m for m in msgs if m.name == "QueueCallerJoin"]
        assert joins[0].get("CallerIDName") == "李伟"
    # one byte at a time too
    names = {m.get("CallerIDName") for m in feed_chunked(raw, 1) if m.name == "AgentCalled"}
    assert names == {"李伟"}


def test_bare_lf_and_mixed_line_ends() -> None:
    crlf = b"Event: Newchannel\r\nChannel: A\r\nUniqueid: 1.1\r\n\r\n"
    lf = b"Event: Hangup\nChannel: B\nCause: 16\n\n"
    mixed = b"Event: Hold\r\nChannel: C\r\n\nResponse: Success\r\nActionID: x\n\r\n"
    data = crlf + lf + mixed
    for size in range(1, len(data) + 1):
        msgs = feed_chunked(data, size, expect_banner=False)
        assert [(m.kind, m.name) for m in msgs] == [
            ("event", "Newchannel"),
            ("event", "Hangup"),
            ("event", "Hold"),
            ("response", "Success"),
        ], size
        assert msgs[1].get("cause") == "16"
        assert msgs[2].get("Channel") == "C"
        assert msgs[3].action_id == "x"


def test_banner_then_login_reply_in_one_read_or_split() -> None:
    data = b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nMessage: Authentication accepted\r\n\r\n"
    for size in range(1, len(data) + 1):
        msgs = feed_chunked(data, size)
        assert [(m.kind, m.name) for m in msgs] == [("banner", "11.0.0"), ("response", "Success")]


def test_missing_header_is_none_and_empty_value_is_empty() -> None:
    (msg,) = frame_all(b"Event: X\r\nAccountCode: \r\nA: b: c\r\n\r\n", expect_banner=False)
    assert msg.get("AccountCode") == ""
    assert msg.get("accountcode") == ""
    assert msg.get("Nope") is None
    assert msg.get("A") == "b: c"
    assert "AccountCode" in msg and "Nope" not in msg


def test_duplicate_headers_are_kept() -> None:
    data = (
        b"Event: Status\r\nChannel: X\r\nVariable: MEMBER_ID=42\r\nVariable: CASE=busy\r\n"
        b"ChanVariable: A=1\r\n\r\n"
    )
    (msg,) = frame_all(data, expect_banner=False)
    assert msg.get_all("variable") == ["MEMBER_ID=42", "CASE=busy"]
    assert msg.get("Variable") == "MEMBER_ID=42"
    assert msg.variables() == {"MEMBER_ID": "42", "CASE": "busy", "A": "1"}


def test_one_megabyte_frame_passes() -> None:
    body = b"Output: " + b"x" * (1024 * 1024) + b"\r\n"
    data = b"Response: Success\r\nActionID: big\r\n" + body + b"\r\nEvent: Ping\r\n\r\n"
    for size in (1500, 65536, len(data)):
        msgs = feed_chunked(data, size, expect_banner=False)
        assert [m.name for m in msgs] == ["Success", "Ping"]
        assert len(msgs[0].get("Output") or "") == 1024 * 1024


def test_oversized_frame_is_discarded_and_reported() -> None:
    errors: list[FrameError] = []
    huge = b"Event: Huge\r\nData: " + b"y" * 5000 + b"\r\n\r\n"
    data = b"Event: A\r\n\r\n" + huge + b"Event: B\r\n\r\n"
    for size in (1, 7, 512, len(data)):
        errors.clear()
        fr = Framer(max_frame=1024, expect_banner=False, on_error=errors.append)
        names = []
        for c in chunks(data, size):
            names += [m.name for m in fr.feed(c)]
            assert fr.buffered <= 1024 + 3
        assert names == ["A", "B"], size
        assert [e.kind for e in errors] == ["overflow"]
        assert fr.stats.overflows == 1


def test_binary_garbage_is_skipped_and_reported() -> None:
    errors: list[FrameError] = []
    fr = Framer(expect_banner=False, on_error=errors.append)
    msgs = fr.feed(b"\x00\xff\xfe garbage\r\n\r\nEvent: Ok\r\nX: \xff\xfe\r\n\r\n")
    assert [m.name for m in msgs] == ["Ok"]
    assert msgs[0].get("X") == "\ufffd\ufffd"
    assert [e.kind for e in errors] == ["malformed"]


def test_event_header_not_first_and_lowercase() -> None:
    msgs = frame_all(
        b"Privilege: call,all\r\nEvent: Odd\r\n\r\nevent: lower\r\n\r\n", expect_banner=False
    )
    assert [(m.kind, m.name) for m in msgs] == [("event", "Odd"), ("event", "lower")]


def test_legacy_command_follows_output_kept_whole() -> None:
    data = (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: c1\r\n"
        b"line one\n\nline three: x\n--END COMMAND--\r\n\r\nEvent: After\r\n\r\n"
    )
    for size in (1, 5, len(data)):
        msgs = feed_chunked(data, size, expect_banner=False)
        assert [(m.kind, m.name) for m in msgs] == [("response", "Follows"), ("event", "After")]
        assert "line one" in msgs[0].text and "--END COMMAND--" in msgs[0].text
        assert msgs[0].action_id == "c1"


def test_message_is_immutable_and_compares_by_value() -> None:
    a = AmiMessage.build("event", "Hold", {"Channel": "X"})
    b = frame_all(b"Event: Hold\r\nChannel: X\r\n\r\n", expect_banner=False)[0]
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.name = "Other"  # type: ignore[misc,unused-ignore]


# --- fuzzing ----------------------------------------------------------------------------

_SAMPLE = (TRACES / "a-inbound-queue-call.txt").read_bytes()[:6000]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=20))
def test_fuzz_any_bytes_any_chunking(data: bytes, cuts: list[int]) -> None:
    fr = Framer(max_frame=512)
    points = sorted({c for c in cuts if c <= len(data)} | {0, len(data)})
    for a, b in itertools.pairwise(points):
        for m in fr.feed(data[a:b]):
            assert m.kind in ("event", "response", "banner")
            m.headers  # noqa: B018 - parsing must not raise
        assert fr.buffered <= 512 + 3


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, len(_SAMPLE)), max_size=40), junk=st.binary(max_size=40))
def test_fuzz_chunking_of_real_bytes_is_invisible(cuts: list[int], junk: bytes) -> None:
    junk = re.sub(rb"[\r\n]", b"", junk)
    data = _SAMPLE + junk + b"\r\n\r\n" + b"Event: Tail\r\n\r\n"
    expected = [(m.kind, m.name, m.headers) for m in frame_all(data)]
    fr = Framer()
    got: list[AmiMessage] = []
    points = sorted(set(cuts) | {0, len(data)})
    for a, b in itertools.pairwise(points):
        got += fr.feed(data[a:b])
    assert [(m.kind, m.name, m.headers) for m in got] == expected
    assert got[-1].name == "Tail"


_HEADER_TEXT = st.text(alphabet=st.sampled_from("ab:: \t\r\n\r\n李"), max_size=60)


@settings(max_examples=500, deadline=None)
@given(text=_HEADER_TEXT)
def test_fast_header_parse_is_the_regex_parse(text: str) -> None:
    """``header_dict`` (split at ": " by C code, checked) answers exactly what the header
    regex does, on any text: colons in keys or values, tabs, missing spaces, bare CR/LF."""
    expected = dict(reversed(_HEADER_RE.findall(text)))
    assert header_dict(text) == expected
    lines = text.split("\r\n")
    if text.count("\r") == text.count("\n") == len(lines) - 1:  # what crlf=True promises
        assert header_dict(text, crlf=True) == expected


def test_fast_header_parse_on_every_trace_message() -> None:
    for path in TRACE_FILES:
        for msg in frame_all(path.read_bytes(), chunk_size=4096):
            assert msg.get("Event") == dict(msg.headers[::-1]).get("Event"), path.name
            assert header_dict(msg.text) == dict(reversed(msg.headers)), path.name


def test_garbage_and_command_output_in_one_read_are_each_handled_once() -> None:
    """A chunk of CRLF frames holding the start of command output is framed by the
    generic path; the garbage frame before it is reported once, not twice."""
    errors: list[FrameError] = []
    data = (
        b"Event: A\r\n\r\n\x00garbage\r\n\r\n"
        b"Response: Follows\r\nActionID: c\r\nline\r\n\r\nmore\r\n--END COMMAND--\r\n\r\n"
        b"Event: B\r\n\r\n"
    )
    for size in (len(data), 40, 1):
        errors.clear()
        msgs = feed_chunked(data, size, expect_banner=False, on_error=errors.append)
        assert [m.name for m in msgs] == ["A", "Follows", "B"], size
        assert [e.kind for e in errors] == ["malformed"], size
