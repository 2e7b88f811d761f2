"""``memberline bench console`` end to end: real hub, real console, varied callers (no speed
asserted)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_console_paints_every_kind_of_pop_from_a_real_hub() -> None:
    args = "bench console --pops 6 --warmup 1 --members 300 --size 80x24"
    out = subprocess.run(
        [sys.executable, "-m", "memberline", *args.split()],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    r = json.loads(out.stdout)
    assert r["caller_kinds"] == sorted(
        ["chooser", "cjk_name", "latin_name", "long_history", "no_history", "unknown"]
    )
    (size,) = r["sizes"]
    assert size["size"] == "80x24" and size["pops"] == 6
    # six pops, one of each kind in turn, each measured to its history table's frame
    assert len(size["whole_by_caller"]) == 6
    assert 0 < size["painted_p50_ms"] <= size["whole_p50_ms"]
    assert r["runs"] == 1 and len(r["load_avg_start"]) == 3
