"""Trace access for the FastAGI tests; the Asterisk-side replayer is :mod:`surveys.testing`."""

from __future__ import annotations

from surveys.testing import (
    DEAD,
    TRACE_HEADERS,
    AsteriskSide,
    Behaviour,
    Early,
    HangUp,
    Press,
    Silence,
    header_block,
    run_call,
)
from tests.fixtures import AMI_TRACES

TRACES = AMI_TRACES
"""The recorded FastAGI dialogs (``fastagi-survey*.raw``) among the repository's trace fixtures."""

__all__ = [
    "DEAD",
    "TRACES",
    "TRACE_HEADERS",
    "AsteriskSide",
    "Behaviour",
    "Early",
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
