"""`memberline demo --headless` as a real process: every piece up on loopback, counts from rows
and sockets, and no secret in any log line (DEBUG level, so everything is logged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from memberline.demo_run import AMI_SECRET

pytestmark = pytest.mark.e2e


def test_headless_demo_runs_end_to_end_and_logs_no_secret(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "memberline", "demo", "--headless", "--seconds", "25", "--members", "600",
         "--speed", "6", "--demo-db", str(tmp_path / "demo.db"), "--log-level", "DEBUG",
         "--hub-port", "0"],
        capture_output=True, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, err[-3000:]
    summary = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    # Every figure comes from rows written and frames that crossed real sockets.
    assert summary["pops_delivered"] > 0
    assert summary["calls_placed"] > 0 and summary["calls_answered"] > 0
    assert summary["pbx"]["calls_originated"] == summary["calls_placed"]
    assert summary["survey_responses"], summary
    assert summary["sms_sent"] == summary["sms_received_by_sink"]
    assert summary["emails_sent"] == summary["emails_received_by_sink"]
    assert summary["dispositions_stored"] > 0
    # The new fields: the port the hub used, what the rules held back (per rule), the time-zone
    # mix chosen for this hour, and no unfinished wrap-up left by the simulated agents.
    assert summary["hub_port"] > 0
    assert set(summary["held_back"]) == {"calls", "messages"}
    assert all(n > 0 for part in summary["held_back"].values() for n in part.values())
    assert summary["time_zones"]["members_open_share"] >= 0.45  # any hour: see test_demo_regions
    wrap_lines = [line for line in err.splitlines() if "wrap" in line.lower()]
    assert summary["unfinished_wrapups"] == {"total": 0, "by_agent": {}}, (
        summary,
        wrap_lines[-30:],
    )
    # A newcomer sees the hotline (self-service FastAGI) and the maintainer-first lookup that
    # every inbound queue call runs (route-inbound: maintainer / busy / logged_out / none);
    # the static agents leave the queues at the end without "could not leave maintainers".
    assert summary["hotline_calls"] >= 1, summary
    assert sum(summary["inbound_routes"].values()) >= 1, summary
    assert "could not leave" not in err
    # Secrets: the AMI secret, the SMS provider token and the SMTP/console passwords never appear.
    for secret in (AMI_SECRET, "sink-token"):
        assert secret not in err, f"secret {secret!r} leaked into the logs"
    assert "DEBUG" in err  # the scan did look at a full debug log
