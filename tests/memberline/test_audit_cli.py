"""``memberline audit``: rows written by a real hub session, filters, JSON and table output."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from sqlalchemy import Engine

from crm_bridge.db import session_scope
from crm_bridge.models import AuditLog
from memberline.cli import main
from tests.cti.hub_support import Console, running_hub, seed


async def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = await asyncio.to_thread(main, argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.e2e
async def test_console_views_and_reveals_are_listed(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed(engine)
    liwei = ids.members["liwei"]
    async with running_hub(engine) as hub, Console(hub, "1001") as c:
        await c.request("member_profile", member_id=liwei)
        await c.request("member_reveal", member_id=liwei, field="phone", reason="caller asked")
    url = str(engine.url.render_as_string(hide_password=False))

    rc, out, _ = await _cli(["audit", "--db", url, "--actor", "1001", "--json"], capsys)
    assert rc == 0
    rows = json.loads(out)
    assert [(r["action"], r["actor"], r["member_no"]) for r in rows] == [
        ("member.reveal_phone", "agent:1001", "M000001"),
        ("profile.view", "agent:1001", "M000001"),
    ]
    assert rows[0]["details"] == {"reason": "caller asked"}

    rc, out, _ = await _cli(["audit", "--db", url, "--action", "member.reveal"], capsys)
    assert rc == 0
    assert "member.reveal_phone" in out and "profile.view" not in out
    assert "reason=caller asked" in out and "agent:1001" in out


def test_filters_limit_and_order(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    ids = seed(engine)
    t0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
    rows = [
        (0, "agent:1001", "profile.view", "liwei", {}),
        (1, "agent:1002", "profile.view", "other", {}),
        (2, "supervisor:9001", "member.reassign", "other", {"to": "1001"}),
        (3, "system", "campaign.start", None, {"campaign_id": 7}),
        (4, "agent:1001", "member.reveal_email", "liwei", {"reason": "r"}),
        (5, "agent:1001", "profile_view_like", "liwei", {}),
    ]
    with session_scope(engine) as s:
        for days, actor, action, key, details in rows:
            s.add(
                AuditLog(
                    at=t0 + dt.timedelta(days=days),
                    actor=actor,
                    action=action,
                    member_id=ids.members[key] if key else None,
                    details=details,
                )
            )
    url = engine.url.render_as_string(hide_password=False)

    def run(*extra: str) -> list[tuple[str, str]]:
        assert main(["audit", "--db", url, "--json", *extra]) == 0
        return [(r["actor"], r["action"]) for r in json.loads(capsys.readouterr().out)]

    assert len(run()) == 6
    assert run("--limit", "2") == [
        ("agent:1001", "profile_view_like"),
        ("agent:1001", "member.reveal_email"),
    ]
    assert run("--member", "M000004") == [
        ("supervisor:9001", "member.reassign"),
        ("agent:1002", "profile.view"),
    ]
    # "profile.view" is a prefix match, but "_" and "." are literal (profile_view_like is not one).
    assert run("--action", "profile.view") == [
        ("agent:1002", "profile.view"),
        ("agent:1001", "profile.view"),
    ]
    assert run("--actor", "9001") == [("supervisor:9001", "member.reassign")]
    assert run("--actor", "system") == [("system", "campaign.start")]
    assert run("--since", "2026-11-04") == [
        ("agent:1001", "profile_view_like"),
        ("agent:1001", "member.reveal_email"),
        ("system", "campaign.start"),
    ]
    assert run("--since", "2026-11-03T12:00:00+00:00", "--actor", "agent:1001") == [
        ("agent:1001", "profile_view_like"),
        ("agent:1001", "member.reveal_email"),
    ]
    assert run("--member", "M999999") == []
    assert main(["audit", "--db", url, "--member", "M999999"]) == 0
    assert "no audit rows match" in capsys.readouterr().out


def test_bad_arguments_and_unmigrated_database(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["audit", "--since", "yesterday"])
    assert "expected YYYY-MM-DD" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["audit", "--limit", "0"])
    assert "positive integer" in capsys.readouterr().err
    assert main(["audit", "--db", f"sqlite:///{tmp_path}/empty.db"]) == 2
    assert "memberline db upgrade" in capsys.readouterr().err
