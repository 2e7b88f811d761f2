"""``memberline outbox list|show|retry`` against a real database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from crm_bridge.db import make_engine, session_scope
from crm_bridge.models import AuditLog, OutboxMessage, OutboxStatus
from dialer.fallback import Purpose, enqueue
from memberline.cli import main

from .conftest import add_member


def test_list_show_retry(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    mid = add_member(engine, name="李伟")
    with session_scope(engine) as s:
        enqueue(s, Purpose.EXHAUSTED, mid, ref="cli")
        sms = s.scalars(select(OutboxMessage).where(OutboxMessage.channel == "sms")).one()
        sms_id = sms.id
    with session_scope(engine) as s:
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == sms_id)
            .values(status=OutboxStatus.REVIEW, last_error="in doubt: needs review")
        )
    assert main(["outbox", "list", "--db", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert "review" in out and "in doubt: needs review" in out and "exhausted" in out
    assert main(["outbox", "list", "--db", sqlite_url, "--status", "review"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2  # header + one row
    assert main(["outbox", "show", str(sms_id), "--db", sqlite_url]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "review" and shown["idempotency_key"] == f"exhausted:cli:{mid}:sms"
    assert main(["outbox", "retry", str(sms_id), "--db", sqlite_url, "--actor", "ops1"]) == 0
    assert "queued again" in capsys.readouterr().out
    assert main(["outbox", "retry", str(sms_id), "--db", sqlite_url]) == 1  # pending now: refused
    assert "only failed or review" in capsys.readouterr().err
    assert main(["outbox", "show", "999999", "--db", sqlite_url]) == 1
    with session_scope(engine) as s:
        assert s.get(OutboxMessage, sms_id).status is OutboxStatus.PENDING  # type: ignore[union-attr]
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "outbox.retry")).one()
        assert entry.actor == "cli:ops1"
    engine.dispose()
