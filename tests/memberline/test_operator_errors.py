"""Operator errors end in one line and exit code 2, never a traceback or half-done work.

Through the real entry points: ``memberline.cli.main`` in-process for most commands, and the
installed ``memberline`` console script in a subprocess where the whole process matters
(the default database in the working directory, ``serve`` and its ports).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_bridge import migrate
from crm_bridge.db import make_engine, session_scope
from crm_bridge.models import AuditLog, CallListEntry, Campaign
from memberline.cli import main

MEMBERLINE = str(Path(sys.executable).with_name("memberline"))

DB_COMMANDS = [
    ["campaign", "list"],
    ["campaign", "status", "1"],
    ["campaign", "start", "1"],
    ["campaign", "create", "x", "--kind", "survey"],
    ["audit"],
    ["outbox", "list"],
    ["outbox", "show", "1"],
    ["outbox", "retry", "1"],
    ["report", "surveys", "--since", "2026-01-01"],
    ["report", "winback"],
    ["report", "completeness"],
    ["report", "rfm"],
    ["greetings", "run"],
    ["surveys", "list"],
    ["members", "export"],
    ["db", "current"],
    ["db", "check"],
]


def _run(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMBERLINE_")}
    return subprocess.run(
        [MEMBERLINE, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert "Traceback" not in err
    return lines[0]


def test_campaign_list_without_db_in_a_fresh_directory(tmp_path: Path) -> None:
    """The reported case: no --db, default sqlite:///memberline.db in the working directory."""
    out = _run("campaign", "list", cwd=tmp_path)
    assert out.returncode == 2
    line = _one_line(out.stderr)
    assert line.startswith("memberline: no database at ") and "memberline db upgrade" in line
    assert list(tmp_path.iterdir()) == [], "no empty memberline.db left behind"


@pytest.mark.parametrize("argv", DB_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_missing_database_is_one_line_and_creates_nothing(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.db"
    assert main([*argv, "--db", str(missing)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"no database at {missing}" in line and "memberline db upgrade" in line
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv", [a for a in DB_COMMANDS if a[0] != "db"], ids=lambda a: " ".join(a[:2])
)
def test_unmigrated_database_says_db_upgrade(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    assert main([*argv, "--db", str(empty)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "not migrated" in line and "memberline db upgrade" in line
    with sqlite3.connect(empty) as conn:  # not a single table created
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_database_behind_the_code_names_both_revisions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0001")
    assert main(["campaign", "list", "--db", url]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "at revision 0001, this code expects" in line and "memberline db upgrade" in line
    # db current reads any revision; db check says it is behind, in one line.
    assert main(["db", "current", "--db", url]) == 0
    capsys.readouterr()
    assert main(["db", "check", "--db", url]) == 2
    assert "memberline db upgrade" in _one_line(capsys.readouterr().err)


def _campaign_rows(url: str) -> tuple[int, int, int]:
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            return (
                s.scalar(select(func.count()).select_from(Campaign)) or 0,
                s.scalar(select(func.count()).select_from(CallListEntry)) or 0,
                s.scalar(select(func.count()).select_from(AuditLog)) or 0,
            )
    finally:
        engine.dispose()


BAD_CREATES = [
    (["--settings", "{not json"], "--settings is not valid JSON"),
    (["--settings", "[1, 2]"], "--settings must be a JSON object"),
    (["--abandon-cap", "7"], "abandon cap must be a fraction in (0, 0.05]"),
    (["--abandon-cap", "-0.01"], "abandon cap must be a fraction in (0, 0.05]"),
    (["--abandon-cap", "0"], "abandon cap must be a fraction in (0, 0.05]"),
    (["--abandon-cap", "0.06"], "abandon cap must be a fraction in (0, 0.05]"),
    (["--settings", '{"abandon_cap": 0.5}'], "abandon cap must be a fraction in (0, 0.05]"),
    (["--queue", "nosuchqueue"], "no queue 'nosuchqueue' (known: members)"),
    (["--settings", '{"queue": "sales"}'], "no queue 'sales'"),
    (["--survey", "nosuchsurvey"], "no survey named 'nosuchsurvey'"),
    (["--settings", '{"days_ago": -3}'], "settings.days_ago must be >= 0, got -3"),
    (["--settings", '{"days_ago": "7"}'], "settings.days_ago must be a whole number"),
    (["--settings", '{"size": 5}'], "unknown setting(s) size for post_purchase"),
]


@pytest.mark.parametrize("extra, message", BAD_CREATES, ids=[m for _, m in BAD_CREATES])
def test_campaign_create_refuses_bad_values_before_writing(
    extra: list[str], message: str, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _campaign_rows(sqlite_url)
    argv = ["campaign", "create", "follow-up", "--kind", "post_purchase", *extra]
    assert main([*argv, "--db", sqlite_url]) == 2
    line = _one_line(capsys.readouterr().err)
    assert message in line, line
    assert _campaign_rows(sqlite_url) == before


@pytest.mark.parametrize("name", ["", "   "])
def test_campaign_create_refuses_an_empty_name(
    name: str, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["campaign", "create", name, "--kind", "survey", "--db", sqlite_url]) == 2
    assert "name must not be empty" in _one_line(capsys.readouterr().err)
    assert _campaign_rows(sqlite_url) == (0, 0, 0)


def test_campaign_create_accepts_the_limits(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The edges of the rules are allowed: a cap of exactly 0.05, days_ago 0, a built-in
    survey, the configured queue."""
    db = ["--db", sqlite_url]
    assert (
        main(["campaign", "create", "a", "--kind", "post_purchase", "--abandon-cap", "0.05", *db])
        == 0
    )
    assert (
        main(
            [
                "campaign",
                "create",
                "b",
                "--kind",
                "post_purchase",
                "--settings",
                '{"days_ago": 0}',
                *db,
            ]
        )
        == 0
    )
    assert main(
        ["campaign", "create", "c", "--kind", "survey", "--mode", "ivr", "--survey",
         "satisfaction", "--queue", "members", *db]
    ) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["campaign", "list", "--json", *db]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["abandon_cap"]) for r in rows] == [("a", 0.05), ("b", 0.03), ("c", 0.03)]
    # Unknown campaign ids are bad values too (2); a state conflict is 1.
    assert main(["campaign", "start", "99", *db]) == 2
    assert "no campaign 99" in _one_line(capsys.readouterr().err)
    assert main(["campaign", "resume", "1", *db]) == 1
    assert "cannot resume a draft campaign" in _one_line(capsys.readouterr().err)


def _config(tmp_path: Path, db: Path, hub_port: int) -> Path:
    cfg = tmp_path / "memberline.toml"
    cfg.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n\n[hub]\nport = {hub_port}\n\n'
        "[agi]\nport = 0\n\n[messaging]\nwebhook_port = 0\n",
        encoding="utf-8",
    )
    return cfg


def test_serve_on_a_fresh_database_and_on_a_busy_port(tmp_path: Path) -> None:
    db = tmp_path / "ml.db"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        cfg = _config(tmp_path, db, port)
        out = _run("serve", "--config", str(cfg), cwd=tmp_path)
        assert out.returncode == 2
        assert "memberline db upgrade" in _one_line(out.stderr)
        assert not db.exists()
        migrate.upgrade(f"sqlite:///{db}")
        out = _run("serve", "--config", str(cfg), cwd=tmp_path)
        assert out.returncode == 2
        line = _one_line(out.stderr)
        assert f"cannot listen on 127.0.0.1:{port}: address already in use" in line
        assert "(set hub.port)" in line


def test_postgresql_database_missing_or_unmigrated(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL: a database that does not exist and one not migrated, one line each; the
    password never shows."""
    from sqlalchemy.engine import make_url

    from crm_bridge.db import normalise_url

    missing = make_url(normalise_url(pg_url)).set(database="memberline_no_such_db", password="pw")
    assert main(["campaign", "list", "--db", missing.render_as_string(hide_password=False)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "cannot open the database" in line and "memberline_no_such_db" in line
    assert ":pw@" not in line
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_version")
    engine.dispose()
    assert main(["campaign", "list", "--db", pg_url]) == 2
    assert "not migrated" in _one_line(capsys.readouterr().err)


def test_outbox_worker_webhooks_on_a_busy_port(tmp_path: Path) -> None:
    db = tmp_path / "ml.db"
    migrate.upgrade(f"sqlite:///{db}")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        cfg = tmp_path / "memberline.toml"
        cfg.write_text(
            f'[database]\nurl = "sqlite:///{db}"\n\n[messaging]\nwebhook_port = {port}\n',
            encoding="utf-8",
        )
        out = _run("outbox", "work", "--serve-webhooks", "--config", str(cfg), cwd=tmp_path)
    assert out.returncode == 2
    line = _one_line(out.stderr)
    assert f"127.0.0.1:{port}: address already in use" in line
    assert "(set messaging.webhook_port)" in line
