"""The crm commands end to end through ``memberline.cli.main`` (real files, real database)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memberline.cli import main


def test_demo_data_bench_and_members_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "demo.db")
    assert main(["demo-data", "--members", "300", "--seed", "5", "--db", db]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["members"] == 300 and summary["agents"] == 21
    assert 0 < summary["peak_rss_mib"] < 1536
    assert main(["demo-data", "--members", "10", "--db", db]) == 1
    assert "already has 300 members" in capsys.readouterr().err

    assert main(["bench", "crm", "--db", db, "--samples", "60", "--survey-size", "20"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("members", "lookup_p50_ms", "lookup_p99_ms", "profile_p50_ms", "profile_p99_ms",
                "list_post_purchase_s", "list_dormant_s", "list_survey_s", "pop_p50_ms",
                "pop_p99_ms", "pop_statements_mean", "pop_encode_p99_ms"):  # fmt: skip
        assert isinstance(result[key], (int, float)), key
    # every member's number is found, none of the 20 % unknown numbers is
    assert result["members"] == 300 and result["lookup_known_hit_rate"] == 1.0
    assert result["lookup_unknown_found"] == 0 and 0.7 < result["lookup_hit_rate"] < 0.9
    assert result["pop_kinds"]["unknown"] > 0 and result["pop_kinds"]["member"] > 0
    # The bench's lists were rolled back: exporting shows no campaign side effects and
    # export -> import into a fresh database -> export is stable.
    out = tmp_path / "members.csv"
    assert main(["members", "export", "--db", db, "-o", str(out), "--bom"]) == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    fresh = str(tmp_path / "fresh.db")
    assert (
        main(["demo-data", "--members", "1", "--seed", "5", "--db", fresh]) == 0
    )  # agents for the codes
    capsys.readouterr()
    assert main(["members", "import", str(out), "--db", fresh]) == 0
    assert "0 rejected" in capsys.readouterr().out
    out2 = tmp_path / "again.csv"
    assert main(["members", "export", "--db", fresh, "-o", str(out2), "--bom"]) == 0
    assert out2.read_bytes() == out.read_bytes()


def test_members_import_reports_bad_rows_and_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "m.db")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "member_no,name,phones,tier\nM1,李伟,13800138000,Gold\nM2,王芳,12,Gold\nM3,张三,,Diamond\n"
    )
    assert main(["members", "import", str(bad), "--db", db]) == 1
    captured = capsys.readouterr()
    assert f"{bad}:line 3 (M2): bad phone: '12'" in captured.err
    assert f"{bad}:line 4 (M3): unknown tier: 'Diamond'" in captured.err
    assert "1 inserted, 0 updated, 2 rejected" in captured.out
    header = tmp_path / "header.csv"
    header.write_text("id,full_name\n1,x\n")
    assert main(["members", "import", str(header), "--db", db]) == 2
    assert "unknown column(s) id, full_name" in capsys.readouterr().err
    assert main(["members", "import", str(tmp_path / "missing.csv"), "--db", db]) == 2
