"""RFM for supervisors: the R x F grid, named segments, and movement since last month.

The scores are the quintiles of :func:`crm_bridge.segments.refresh_rfm` (``member_segments``;
5 = most recent / most frequent). The grid counts members and sums their spend (monetary,
over the RFM period) per (R, F) cell. Cells are grouped into six named segments:

=================  ==========  ==========
segment            R           F
=================  ==========  ==========
champions          4-5         4-5
loyal              3           3-5
potential          4-5         1-3
needs_attention    3           1-2
at_risk            1-2         3-5
hibernating        1-2         1-2
=================  ==========  ==========

Each month's scores are kept in ``rfm_snapshots`` (:func:`take_snapshot`, idempotent per
month) so the report shows how many members moved from one segment to another since the
previous month's snapshot. Everything is a GROUP BY or an INSERT ... SELECT.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, literal, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from crm_bridge.models import MemberSegment, RfmSnapshot

__all__ = [
    "SEGMENTS",
    "RfmReport",
    "refresh_daily",
    "rfm_report",
    "segment_of",
    "take_snapshot",
]

SEGMENTS: dict[str, tuple[tuple[int, int], tuple[int, int], str, str]] = {
    "champions": ((4, 5), (4, 5), "Champions", "重要价值"),
    "loyal": ((3, 3), (3, 5), "Loyal", "忠诚"),
    "potential": ((4, 5), (1, 3), "Potential", "潜力"),
    "needs_attention": ((3, 3), (1, 2), "Needs attention", "需关注"),
    "at_risk": ((1, 2), (3, 5), "At risk", "流失风险"),
    "hibernating": ((1, 2), (1, 2), "Hibernating", "沉睡"),
}
"""segment -> ((R lo, hi), (F lo, hi), English, Chinese)."""


def segment_of(r: int, f: int) -> str:
    """The named segment of an (R, F) cell (pure)."""
    for name, ((rlo, rhi), (flo, fhi), _en, _zh) in SEGMENTS.items():
        if rlo <= r <= rhi and flo <= f <= fhi:
            return name
    raise ValueError(f"no segment for R={r} F={f}")


def segment_expr(r: Any, f: Any) -> ColumnElement[str]:
    """:func:`segment_of` as a SQL CASE over score columns."""
    return case(
        *(
            (and_(r.between(rlo, rhi), f.between(flo, fhi)), literal(name))
            for name, ((rlo, rhi), (flo, fhi), _en, _zh) in SEGMENTS.items()
        ),
        else_=literal("hibernating"),
    )


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def previous_month(month: dt.date) -> dt.date:
    return (month - dt.timedelta(days=1)).replace(day=1)


def refresh_daily(session: Session, now: dt.datetime) -> int | None:
    """The daily RFM refresh inside ``serve``: recompute the scores unless they were computed
    since the local midnight of ``now`` (an aware datetime in the host's zone), then take this
    month's snapshot if it has none yet (the report's "movement since last month" reads the
    monthly snapshots). Returns the rows scored, or None when today's refresh was done
    already -- so it runs once a day however often it is called, across restarts."""
    from crm_bridge.segments import refresh_rfm

    if now.tzinfo is None:
        raise ValueError("refresh_daily needs an aware datetime")
    day_start = dt.datetime.combine(now.date(), dt.time(0), now.tzinfo)
    latest = session.scalar(select(func.max(MemberSegment.computed_at)))
    if latest is not None and latest >= day_start:
        return None
    scored = refresh_rfm(session, now.astimezone(dt.UTC))
    take_snapshot(session, now.date())
    return scored


def take_snapshot(session: Session, month: dt.date, *, replace: bool = False) -> int:
    """Copy the current ``member_segments`` scores as ``month``'s snapshot (one INSERT ...
    SELECT). Kept as it is when the month already has one, unless ``replace``. Returns the
    month's row count."""
    month = month_of(month)
    have = session.scalar(
        select(func.count()).select_from(RfmSnapshot).where(RfmSnapshot.month == month)
    )
    if have and not replace:
        return int(have)
    session.execute(delete(RfmSnapshot).where(RfmSnapshot.month == month))
    session.execute(
        insert(RfmSnapshot).from_select(
            ["month", "member_id", "r_score", "f_score", "monetary"],
            select(literal(month), MemberSegment.member_id, MemberSegment.r_score,
                   MemberSegment.f_score, MemberSegment.monetary),
        )
    )  # fmt: skip
    return int(
        session.scalar(
            select(func.count()).select_from(RfmSnapshot).where(RfmSnapshot.month == month)
        )
        or 0
    )


@dataclass
class Cell:
    r: int
    f: int
    members: int = 0
    spend: Decimal = Decimal(0)

    @property
    def segment(self) -> str:
        return segment_of(self.r, self.f)


@dataclass(frozen=True)
class RfmReport:
    computed_at: dt.datetime | None
    """When the scores were computed (``member_segments``); None: never."""
    month: dt.date
    previous: dt.date
    cells: dict[tuple[int, int], Cell]
    segments: dict[str, tuple[int, Decimal]]
    moves: dict[tuple[str, str], int] = field(default_factory=dict)
    """(last month's segment, this month's) -> members; ``new`` for members not in last
    month's snapshot. Empty when there is no previous snapshot."""
    has_previous: bool = False

    @property
    def members(self) -> int:
        return sum(c.members for c in self.cells.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "computed_at": self.computed_at.isoformat() if self.computed_at else None,
            "month": self.month.isoformat(),
            "previous": self.previous.isoformat(),
            "has_previous": self.has_previous,
            "cells": [
                {
                    "r": c.r,
                    "f": c.f,
                    "segment": c.segment,
                    "members": c.members,
                    "spend": str(c.spend),
                }
                for c in sorted(self.cells.values(), key=lambda c: (-c.r, -c.f))
            ],
            "segments": {
                k: {
                    "members": n,
                    "spend": str(s),
                    "label": SEGMENTS[k][2],
                    "label_zh": SEGMENTS[k][3],
                }
                for k, (n, s) in self.segments.items()
            },
            "moves": [
                {"from": a, "to": b, "members": n} for (a, b), n in sorted(self.moves.items())
            ],
        }


def rfm_report(session: Session, today: dt.date, *, snapshot: bool = True) -> RfmReport:
    """The grid from ``member_segments``; with ``snapshot`` this month's snapshot is taken
    first (when missing), then compared with the previous month's."""
    month = month_of(today)
    prev = previous_month(month)
    if snapshot:
        take_snapshot(session, month)
    cells = {(r, f): Cell(r, f) for r in range(1, 6) for f in range(1, 6)}
    ms = MemberSegment
    for r, f, n, spend in session.execute(
        select(
            ms.r_score, ms.f_score, func.count(), func.coalesce(func.sum(ms.monetary), 0)
        ).group_by(ms.r_score, ms.f_score)
    ):
        if (r, f) in cells:
            cells[(r, f)].members = int(n)
            cells[(r, f)].spend = Decimal(spend)
    segments = {k: (0, Decimal(0)) for k in SEGMENTS}
    for c in cells.values():
        n, s = segments[c.segment]
        segments[c.segment] = (n + c.members, s + c.spend)
    computed = session.scalar(select(func.max(ms.computed_at)))
    now_s, before = aliased(RfmSnapshot), aliased(RfmSnapshot)
    has_prev = bool(
        session.scalar(select(func.count()).select_from(before).where(before.month == prev))
    )
    moves: dict[tuple[str, str], int] = {}
    if has_prev:
        seg_now = segment_expr(now_s.r_score, now_s.f_score)
        seg_before = case((before.member_id.is_(None), literal("new")),
                          else_=segment_expr(before.r_score, before.f_score))  # fmt: skip
        rows = session.execute(
            select(seg_before, seg_now, func.count())
            .select_from(now_s)
            .outerjoin(before, and_(before.member_id == now_s.member_id, before.month == prev))
            .where(now_s.month == month)
            .group_by(seg_before, seg_now)
        )
        moves = {(str(a), str(b)): int(n) for a, b, n in rows}
    if isinstance(computed, str):  # pragma: no cover - SQLite aggregate without type
        computed = dt.datetime.fromisoformat(computed).replace(tzinfo=dt.UTC)
    return RfmReport(computed, month, prev, cells, segments, moves, has_prev)


def fmt_money(value: Decimal) -> str:
    return f"{value:,.0f}"


def grid_rows(report: RfmReport) -> list[list[str]]:
    """The grid as text rows: R 5..1 down, F 1..5 across, 'members / spend' per cell."""
    head = ["R \\ F", *(f"F{f}" for f in range(1, 6))]
    rows = [head]
    for r in range(5, 0, -1):
        rows.append([f"R{r}", *(f"{report.cells[(r, f)].members} / {fmt_money(report.cells[(r, f)].spend)}"
                                for f in range(1, 6))])  # fmt: skip
    return rows


def render_html(report: RfmReport) -> str:
    from crm_bridge.report_html import Page, Table, render_page
    from surveys.charts import bar_chart

    colours = {"champions": "#27ae60", "loyal": "#2f7ed8", "potential": "#16a085",
               "needs_attention": "#f1c40f", "at_risk": "#e67e22", "hibernating": "#c0392b"}  # fmt: skip
    seg_bars = [(SEGMENTS[k][2], n, colours[k]) for k, (n, _s) in report.segments.items()]
    grid = grid_rows(report)
    seg_table = Table(
        "Segments",
        ("Segment", "分群", "R", "F", "Members", "Spend"),
        [
            [
                SEGMENTS[k][2],
                SEGMENTS[k][3],
                f"{SEGMENTS[k][0][0]}-{SEGMENTS[k][0][1]}",
                f"{SEGMENTS[k][1][0]}-{SEGMENTS[k][1][1]}",
                str(n),
                fmt_money(s),
            ]
            for k, (n, s) in report.segments.items()
        ],
    )
    names = [*SEGMENTS, "new"]
    label = {k: SEGMENTS[k][2] for k in SEGMENTS} | {"new": "New (not scored last month)"}
    move_table = Table(
        f"Movement since {report.previous.isoformat()} (rows: last month, columns: now)",
        ("from \\ to", *(label[k] for k in SEGMENTS)),
        [
            [label[a], *(str(report.moves.get((a, b), 0)) for b in SEGMENTS)]
            for a in names
            if any(report.moves.get((a, b)) for b in SEGMENTS)
        ]
        or [["no snapshot of the previous month yet", *([""] * len(SEGMENTS))]],
    )
    computed = report.computed_at.strftime("%Y-%m-%d %H:%M UTC") if report.computed_at else "never"
    page = Page(
        title="RFM · 会员价值分群",
        subtitle=f"scores computed {computed} · month {report.month.isoformat()}",
        kpis=(
            (str(report.members), "Members scored"),
            (str(report.segments["champions"][0]), "Champions"),
            (str(report.segments["at_risk"][0]), "At risk"),
        ),
        charts=(bar_chart("Members per segment", seg_bars, x_title="segment"),),
        tables=(Table("R x F grid: members / spend", grid[0], grid[1:]), seg_table, move_table),
        notes="R and F are quintiles 1-5 among members who bought in the RFM period (5 = most"
        " recent / most frequent; members with no purchase score 1-1). Spend = their purchases"
        " in the period. Movement compares this month's snapshot with last month's.",
    )
    return render_page(page)
