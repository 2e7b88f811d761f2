"""The survey report: one data structure for the CLI table, the HTML file and the console.

``survey_report(session, since, by)`` returns a :class:`SurveyReport`; ``.to_dict()`` is
plain JSON-able data (what the hub serves to the supervisor screen);
:func:`surveys.report_html.render_html` turns it into a self-contained HTML page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from surveys.scoring import By, GroupFigures, group_figures, score_distribution

__all__ = ["SurveyReport", "format_table", "survey_figures", "survey_report"]


@dataclass(frozen=True)
class SurveyReport:
    since: dt.datetime
    until: dt.datetime | None
    by: By
    groups: list[GroupFigures]
    total: GroupFigures
    weekly: list[GroupFigures]
    """The trend: the same figures per ISO week, whatever ``by`` is."""
    csat_distribution: dict[int, int]
    nps_distribution: dict[int, int]
    generated_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "by": self.by.value,
            "generated_at": self.generated_at.isoformat(),
            "groups": [g.to_dict() for g in self.groups],
            "total": self.total.to_dict(),
            "weekly": [g.to_dict() for g in self.weekly],
            "csat_distribution": {str(k): v for k, v in self.csat_distribution.items()},
            "nps_distribution": {str(k): v for k, v in self.nps_distribution.items()},
        }


def _as_datetime(value: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def survey_report(
    session: Session,
    since: dt.date | dt.datetime,
    by: By | str = By.CAMPAIGN,
    until: dt.date | dt.datetime | None = None,
    *,
    now: dt.datetime | None = None,
) -> SurveyReport:
    """Figures for surveys started from ``since`` (a date = its 00:00 UTC) until ``until``."""
    by = By(by)
    start = _as_datetime(since)
    end = _as_datetime(until) if until is not None else None
    total = group_figures(session, start, By.ALL, end)
    empty = GroupFigures("all", "all", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    return SurveyReport(
        since=start,
        until=end,
        by=by,
        groups=group_figures(session, start, by, end),
        total=total[0] if total else empty,
        weekly=group_figures(session, start, By.WEEK, end),
        csat_distribution=score_distribution(session, "csat", start, end),
        nps_distribution=score_distribution(session, "nps", start, end),
        generated_at=now or dt.datetime.now(dt.UTC),
    )


def survey_figures(
    session: Session, since: dt.date | dt.datetime, by: By | str = By.CAMPAIGN
) -> dict[str, Any]:
    """The report as plain data, for the console's supervisor screen (via the hub)."""
    return survey_report(session, since, by).to_dict()


def fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


COLUMNS = (
    "Invited",
    "Started",
    "Answered",
    "Complete",
    "Resp. rate",
    "Compl. rate",
    "CSAT n",
    "CSAT 4-5",
    "CSAT mean",
    "NPS n",
    "NPS",
)


def row_cells(g: GroupFigures) -> list[str]:
    return [
        str(g.invitations),
        str(g.started),
        str(g.responded),
        str(g.completed),
        fmt(g.response_rate, suffix="%"),
        fmt(g.completion_rate, suffix="%"),
        str(g.csat_answers),
        fmt(g.csat_pct, suffix="%"),
        fmt(g.csat_mean, 2),
        str(g.nps_answers),
        fmt(g.nps, 1),
    ]


def format_table(report: SurveyReport) -> list[list[str]]:
    """Header row + one row per group + a total row (strings, for any table printer)."""
    head = [report.by.value.capitalize(), *COLUMNS]
    rows = [[g.label, *row_cells(g)] for g in report.groups]
    return [head, *rows, ["Total", *row_cells(report.total)]]
