"""The survey CLI commands end to end (in-process ``memberline.cli.main``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_bridge.db import make_engine
from memberline.cli import main
from surveys.definitions import builtin_source
from tests.surveys.test_report import build


def test_validate_ok_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(builtin_source("satisfaction"), encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(
        builtin_source("satisfaction").replace('kind = "nps"', 'kind = "nps"\nscale = [1, 5]'),
        encoding="utf-8",
    )
    assert main(["surveys", "validate", str(good)]) == 0
    assert "OK - survey 'satisfaction'" in capsys.readouterr().out
    assert main(["surveys", "validate", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.toml: invalid survey definition" in err
    assert "question 'q_nps': scale [1, 5] does not match kind 'nps' (must be [0, 10])" in err


def test_publish_and_list(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "s.toml"
    src.write_text(builtin_source("satisfaction"), encoding="utf-8")
    assert main(["surveys", "publish", str(src), "--db", sqlite_url]) == 0
    assert main(["surveys", "publish", str(src), "--db", sqlite_url]) == 0
    src.write_text(builtin_source("satisfaction").replace("Goodbye.", "Bye now."), encoding="utf-8")
    assert main(["surveys", "publish", str(src), "--db", sqlite_url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in out] == [
        "survey 'satisfaction' is version 1",
        "survey 'satisfaction' is version 1",
        "survey 'satisfaction' is version 2",
    ]
    assert main(["surveys", "list", "--db", sqlite_url]) == 0
    listing = capsys.readouterr().out
    assert "built-in: satisfaction" in listing and "stored: satisfaction v2" in listing


def test_report_surveys_table_and_html(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build(make_engine(sqlite_url))
    html = tmp_path / "r.html"
    rc = main(
        [
            "report",
            "surveys",
            "--since",
            "2026-11-01",
            "--by",
            "week",
            "--html",
            str(html),
            "--db",
            sqlite_url,
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "2026-W45" in out and "2026-W46" in out and "16.7" in out
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert main(["report", "surveys", "--since", "2026-11-01", "--json", "--db", sqlite_url]) == 0
    assert '"nps": 16.666666666666668' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["report", "surveys", "--since", "yesterday"])
