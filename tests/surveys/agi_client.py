"""Trace access for the FastAGI tests; the Asterisk-side replayer is :mod:`surveys.testing`."""

from __future__ import annotations

from pathlib import Path

from surveys.testing import (
    DEAD,
    TRACE_HEADERS,
    AsteriskSide,
    Behaviour,
    HangUp,
    Press,
    Silence,
    header_block,
    run_call,
)

TRACES = Path(__file__).resolve().parent / "traces"
"""Byte-exact copies of the shared FastAGI traces (shared/ami-traces), so a clean clone has them."""

__all__ = [
    "DEAD",
    "TRACES",
    "TRACE_HEADERS",
    "AsteriskSide",
    "Behaviour",
    "HangUp",
    "Press",
    "Silence",
    "header_block",
    "run_call",
    "trace_header_block",
]


def trace_header_block(name: str = "fastagi-survey") -> bytes:
    raw = (TRACES / f"{name}.from-asterisk.raw").read_bytes()
    return raw[: raw.index(b"\n\n") + 2]
