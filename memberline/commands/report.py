"""Supervisor reports.

- ``memberline report surveys --since DATE --by campaign|agent|week [--html FILE]``
- ``memberline report winback [--since DATE] [--by store|maintainer|tier|reason] [--html FILE]``
- ``memberline report completeness [--by store|maintainer|all] [--html FILE]``
- ``memberline report rfm [--refresh] [--html FILE]`` (takes this month's snapshot)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from memberline.cli import add_command
from memberline.config import Config


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}") from None


def _surveys(args: argparse.Namespace, cfg: Config) -> int:
    from rich.console import Console
    from rich.table import Table

    from crm_bridge.db import session_scope
    from memberline.dbopen import open_database
    from surveys.report import format_table, survey_report
    from surveys.report_html import render_html

    engine = open_database(cfg.database.url)
    try:
        with session_scope(engine) as s:
            report = survey_report(s, args.since, args.by, args.until)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        rows = format_table(report)
        table = Table(
            title=f"Surveys since {args.since}" + (f" until {args.until}" if args.until else "")
        )
        for i, head in enumerate(rows[0]):
            table.add_column(head, justify="left" if i == 0 else "right")
        for row in rows[1:-1]:
            table.add_row(*row)
        table.add_row(*rows[-1], style="bold")
        console = Console()
        if not console.is_terminal:  # piped or captured: don't squeeze the table to 80 columns
            console = Console(width=160)
        console.print(table)
    if args.html:
        Path(args.html).write_text(render_html(report), encoding="utf-8")
        print(f"HTML report written to {args.html}")
    return 0


def _print_rows(title: str, rows: list[list[str]], *, total: bool = True) -> None:
    """A table: header row, body rows, and (``total``) a bold last row."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, head in enumerate(rows[0]):
        table.add_column(head, justify="left" if i == 0 else "right")
    for row in rows[1:-1] if total else rows[1:]:
        table.add_row(*row)
    if total:
        table.add_row(*rows[-1], style="bold")
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(table)


def _winback(args: argparse.Namespace, cfg: Config) -> int:
    from crm_bridge import winback
    from crm_bridge.db import session_scope
    from memberline.dbopen import open_database

    since = args.since or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=180))
    engine = open_database(cfg.database.url)
    try:
        with session_scope(engine) as s:
            report = winback.winback_report(s, since, args.by, reasons=cfg.care.winback_reasons)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_rows(f"Win-back contacts since {since}", winback.format_table(report))
    if args.html:
        Path(args.html).write_text(winback.render_html(report), encoding="utf-8")
        print(f"HTML report written to {args.html}")
    return 0


def _completeness(args: argparse.Namespace, cfg: Config) -> int:
    from crm_bridge import completeness
    from crm_bridge.db import session_scope
    from memberline.dbopen import open_database

    engine = open_database(cfg.database.url)
    try:
        with session_scope(engine) as s:
            report = completeness.completeness_report(s, args.by)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_rows("Member data completeness", completeness.format_table(report))
    if args.html:
        Path(args.html).write_text(completeness.render_html(report), encoding="utf-8")
        print(f"HTML report written to {args.html}")
    return 0


def _rfm(args: argparse.Namespace, cfg: Config) -> int:
    from crm_bridge import rfm
    from crm_bridge.db import session_scope
    from crm_bridge.segments import refresh_rfm
    from memberline.dbopen import open_database

    now = dt.datetime.now(dt.UTC)
    engine = open_database(cfg.database.url)
    try:
        with session_scope(engine) as s:
            if args.refresh:
                refresh_rfm(s, now)
                rfm.take_snapshot(s, now.date(), replace=True)
            report = rfm.rfm_report(s, now.date())
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        rows = rfm.grid_rows(report)
        when = report.computed_at or "never"
        _print_rows(f"RFM grid (members / spend), scores of {when}", rows, total=False)
        for name, (n, spend) in report.segments.items():
            en, zh = rfm.SEGMENTS[name][2], rfm.SEGMENTS[name][3]
            print(f"  {en} · {zh}: {n} members, spend {rfm.fmt_money(spend)}")
        if not report.has_previous:
            print(f"  (no snapshot of {report.previous.isoformat()} yet: movement from next month)")
    if args.html:
        Path(args.html).write_text(rfm.render_html(report), encoding="utf-8")
        print(f"HTML report written to {args.html}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "report", None, "supervisor reports")
    rsub = parser.add_subparsers(dest="report_command", metavar="REPORT")
    rsub.required = True
    p = add_command(rsub, "surveys", _surveys, "CSAT, NPS, response and completion rates")
    p.add_argument("--since", type=_date, required=True, metavar="DATE", help="YYYY-MM-DD (UTC)")
    p.add_argument("--until", type=_date, default=None, metavar="DATE", help="exclusive end date")
    p.add_argument("--by", choices=["campaign", "agent", "week"], default="campaign")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    w = add_command(rsub, "winback", _winback, "win-back reasons, reach and win-back rates")
    w.add_argument(
        "--since", type=_date, metavar="DATE", help="YYYY-MM-DD (UTC; default 180 days ago)"
    )
    w.add_argument("--by", choices=["store", "maintainer", "tier", "reason"], default="reason")
    w.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    w.add_argument("--json", action="store_true", help="print the figures as JSON")
    c = add_command(
        rsub, "completeness", _completeness, "member data completeness per store or maintainer"
    )
    c.add_argument("--by", choices=["store", "maintainer", "all"], default="maintainer")
    c.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    c.add_argument("--json", action="store_true", help="print the figures as JSON")
    r = add_command(rsub, "rfm", _rfm, "the R x F grid, segments and movement since last month")
    r.add_argument("--refresh", action="store_true", help="recompute the RFM scores first")
    r.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    r.add_argument("--json", action="store_true", help="print the figures as JSON")
