"""What every ``memberline bench`` shares: where the recorded traces are, and the load stamp.

The benchmarks run from a checkout (like the tests): the recorded Asterisk traces they
replay are the test fixtures in ``tests/fixtures/ami-traces/``, found relative to this file,
so nothing outside the repository is read.

Every benchmark's JSON carries :func:`load_stamp` taken at start and at end (the machine's
1/5/15-minute load averages) and its number of runs, so a figure taken on a busy machine is
visibly noisy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
TRACES = REPO_ROOT / "tests" / "fixtures" / "ami-traces"
"""The recorded Asterisk 22 traces (test fixtures; see their README)."""


def trace(name: str) -> Path:
    """A recorded trace by file name, with a clear error when run outside a checkout."""
    path = TRACES / name
    if not path.is_file():
        raise SystemExit(f"{path}: recorded trace missing (benchmarks run from a checkout)")
    return path


def load_avg() -> list[float]:
    """The machine's 1, 5 and 15-minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


class LoadStamp:
    """Load average at start (taken on creation) and at end (taken by :meth:`stamp`)."""

    def __init__(self) -> None:
        self.start = load_avg()

    def stamp(self, result: dict[str, Any], runs: int) -> dict[str, Any]:
        """Add ``load_avg_start``, ``load_avg_end``, ``cpu_count`` and ``runs`` to ``result``."""
        result["load_avg_start"] = self.start
        result["load_avg_end"] = load_avg()
        result["cpu_count"] = os.cpu_count()
        result["runs"] = runs
        return result


def emit(result: dict[str, Any], stamp: LoadStamp, runs: int, indent: int | None = None) -> None:
    """Print the benchmark's one JSON object, stamped with load averages and runs."""
    print(json.dumps(stamp.stamp(result, runs), indent=indent), flush=True)
