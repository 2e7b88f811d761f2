"""``memberline bench soak`` end to end with a campaign and outbox traffic (no speed asserted)."""

from __future__ import annotations

from pathlib import Path

from memberline.testing import demo_database, run_bench


def test_soak_runs_with_a_campaign_dialling_and_the_outbox_sending(tmp_path: Path) -> None:
    db = demo_database(tmp_path / "demo.db", members=600, seed=4)
    args = (
        f"soak --db {db} --minutes 0.3 --consoles 6 --events-per-s 100 --sample-s 6 "
        "--calls-per-s 2 --outbox-per-s 10"
    )
    r = run_bench(args, timeout=600)
    assert r["db"]["copied"] and r["consoles"] == 6
    assert r["pops_delivered"] > 0
    # the campaign was built and started in the hub's database; the outbox worker of the
    # hub's process delivered queued messages to the sinks
    assert r["campaign"]["entries"] > 0 and r["campaign"]["originates"] >= 0
    assert r["outbox_enqueued"] > 0 and r["outbox_delivered_to_sinks"] > 0
    assert r["runs"] == 1 and len(r["load_avg_end"]) == 3
