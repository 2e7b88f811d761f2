"""``memberline bench ami``: its stream is real, varied and well formed; it runs end to end.

No speed is asserted (speed targets live in the benchmark's own JSON, never in tests).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

from cti.ami.framing import frame_all
from memberline.benches.ami import SCENARIOS, build_stream


def test_stream_is_every_scenario_with_fresh_ids_and_all_agents() -> None:
    data, rounds = build_stream(3000, agents=50)
    assert rounds >= 2
    msgs = frame_all(data)
    assert msgs[0].kind == "banner" and sum(m.kind == "banner" for m in msgs) == 1
    names = Counter(m.name for m in msgs if m.kind == "event")
    # inbound queue calls (ringall), originates, FastAGI, queue member actions
    for needed in ("QueueCallerJoin", "AgentCalled", "AgentConnect", "OriginateResponse",
                   "AGIExecStart", "QueueMemberAdded", "QueueMemberPause"):  # fmt: skip
        assert names[needed] >= rounds, needed
    # each round's calls get their own Uniqueids: no call id repeats across rounds
    first = {m.get("Linkedid") for m in frame_all(build_stream(1, agents=50)[0])}
    uniq_per_round = len(first - {None})
    assert len({m.get("Linkedid") for m in msgs} - {None}) == uniq_per_round * rounds
    # the traces' three agents rotate over the consoles' agents
    agents = set(re.findall(rb"Local/(\d+)@agents", data))
    assert len(agents) == min(50, 3 * rounds)
    assert len(SCENARIOS) >= 20


def test_bench_ami_runs_and_reports_every_stage() -> None:
    args = "bench ami --events 1500 --repeat 1 --members 100 --consoles 10 --memory-passes 2"
    out = subprocess.run(
        [sys.executable, "-m", "memberline", *args.split()],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(out.stdout)
    for key in ("parse_ours_events_per_s", "parse_panoramisk_events_per_s", "framer_events_per_s",
                "routing_events_per_s", "tracker_events_per_s", "whole_events_per_s"):  # fmt: skip
        assert result[key] > 0, key
    assert result["parse_ratio"] > 0 and result["ingest_ratio"] > 0
    assert set(result["targets"]) == {"parse_ratio_ge_2", "ingest_ratio_ge_1"}
    # the whole path reached the consoles: pops and call states were queued to several
    assert result["whole_pops_pushed"] > 0
    assert result["whole_consoles_with_frames"] >= 3
    assert result["whole_rows_written"] > 0
    assert result["runs"] == 1 and len(result["load_avg_start"]) == 3
