"""``memberline audit``: read the audit log (profile views, reveals, changes, campaign actions).

    memberline audit --member M000042 --since 2026-11-01
    memberline audit --actor 1001 --action member.reveal --json
    memberline audit --limit 20

Newest first. ``--actor`` takes a full actor (``agent:1001``, ``supervisor:9001``,
``system``, ``cli``) or a bare agent code (matches ``agent:CODE`` and
``supervisor:CODE``). ``--action`` matches the action or any action starting with it
(``member.reveal`` matches ``member.reveal_phone`` and ``member.reveal_email``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from memberline.cli import add_command
from memberline.config import Config

if TYPE_CHECKING:  # imported where used: building the CLI parser must stay cheap
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class AuditFilter:
    member_no: str | None = None
    actor: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    limit: int = 100


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: str
    actor: str
    action: str
    member_no: str | None
    details: dict[str, Any]


def _since(value: str) -> dt.datetime:
    """YYYY-MM-DD (midnight UTC) or an ISO 8601 date-time (naive = UTC)."""
    try:
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected YYYY-MM-DD or an ISO date-time, got {value!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


def query_audit(session: Session, f: AuditFilter) -> list[AuditRow]:
    from sqlalchemy import or_, select

    from crm_bridge.models import AuditLog, Member

    stmt = (
        select(AuditLog, Member.member_no)
        .outerjoin(Member, Member.id == AuditLog.member_id)
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        .limit(f.limit)
    )
    if f.member_no is not None:
        stmt = stmt.where(Member.member_no == f.member_no)
    if f.actor is not None:
        if ":" in f.actor or f.actor in ("system", "cli"):
            stmt = stmt.where(AuditLog.actor == f.actor)
        else:
            stmt = stmt.where(
                AuditLog.actor.in_([f"agent:{f.actor}", f"supervisor:{f.actor}", f.actor])
            )
    if f.action is not None:
        escaped = f.action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(
            or_(AuditLog.action == f.action, AuditLog.action.like(escaped + "%", escape="\\"))
        )
    if f.since is not None:
        stmt = stmt.where(AuditLog.at >= f.since)
    return [
        AuditRow(
            id=row.id,
            at=row.at.astimezone(dt.UTC).isoformat(timespec="seconds"),
            actor=row.actor,
            action=row.action,
            member_no=member_no,
            details=dict(row.details or {}),
        )
        for row, member_no in session.execute(stmt)
    ]


def load_audit(engine: Engine, f: AuditFilter) -> list[AuditRow]:
    from crm_bridge.db import session_scope

    with session_scope(engine) as s:
        return query_audit(s, f)


def _details(d: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}"
        for k, v in d.items()
    )


def print_table(rows: list[AuditRow]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Audit log ({len(rows)} row{'s' if len(rows) != 1 else ''}, newest first)")
    for head in ("at (UTC)", "actor", "action", "member", "details"):
        table.add_column(head, overflow="fold")
    for r in rows:
        table.add_row(r.at, r.actor, r.action, r.member_no or "-", _details(r.details))
    console = Console()
    if not console.is_terminal:  # piped or captured: don't squeeze the table to 80 columns
        console = Console(width=200)
    console.print(table)


def handler(args: argparse.Namespace, config: Config) -> int:
    from memberline.dbopen import open_database

    f = AuditFilter(
        member_no=args.member, actor=args.actor, action=args.action, since=args.since,
        limit=args.limit,
    )  # fmt: skip
    engine = open_database(config.database.url)
    try:
        rows = load_audit(engine, f)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([asdict(r) for r in rows], ensure_ascii=False))
    elif not rows:
        print("no audit rows match")
    else:
        print_table(rows)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "audit",
        handler,
        "list audit log rows (profile views, reveals, changes, campaign actions)",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    p.add_argument("--member", metavar="MEMBER_NO", help="only rows about this member number")
    p.add_argument("--actor", metavar="ACTOR", help="agent code or actor (agent:1001, system)")
    p.add_argument("--action", metavar="ACTION", help="action or action prefix (profile.view)")
    p.add_argument("--since", type=_since, metavar="DATE", help="YYYY-MM-DD or ISO date-time")
    p.add_argument(
        "--limit", type=_positive, default=100, metavar="N", help="at most N rows (default 100)"
    )
    p.add_argument("--json", action="store_true", help="print the rows as a JSON array")
