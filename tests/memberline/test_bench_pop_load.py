"""``memberline bench pop --load`` end to end on a small database (no speed asserted)."""

from __future__ import annotations

from pathlib import Path

from memberline.testing import demo_database, run_bench


def test_pop_under_load_times_every_rung_console(tmp_path: Path) -> None:
    db = demo_database(tmp_path / "demo.db", members=400, seed=3)
    args = (
        f"pop --load --db {db} --seconds 4 --warmup-s 1 --consoles 8 --agents 5 "
        "--ring 3 --events-per-s 200 --calls-per-s 4"
    )
    r = run_bench(args, timeout=300)
    assert r["mode"] == "load" and r["consoles"] == 8 and r["queue_agents"] == 5
    # every rung agent's console got its pop: 3 per call, none missing
    assert r["pops"] >= 3 * 4 and r["pops_missing"] == 0
    assert r["pop_p50_ms"] > 0 and r["pop_p99_ms"] >= r["pop_p50_ms"]
    assert set(r["by_caller"]) <= {"member", "multi", "unknown"} and "member" in r["by_caller"]
    assert r["runs"] == 1 and len(r["load_avg_end"]) == 3
