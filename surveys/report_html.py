"""The survey report as one self-contained HTML file: inline CSS and SVG, no scripts, no CDN."""

from __future__ import annotations

import datetime as dt

import jinja2
from markupsafe import Markup

from surveys.charts import bar_chart, line_chart
from surveys.report import SurveyReport, fmt, format_table
from surveys.scoring import GroupFigures

__all__ = ["render_html"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("surveys", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)

CSAT_COLOURS = {1: "#c0392b", 2: "#e67e22", 3: "#f1c40f", 4: "#7dbb42", 5: "#27ae60"}


def _nps_colour(score: int) -> str:
    return "#c0392b" if score <= 6 else ("#f1c40f" if score <= 8 else "#27ae60")


def week_axis(weekly: list[GroupFigures]) -> tuple[list[str], list[str], list[GroupFigures | None]]:
    """Every ISO week from the first to the last with data (a week without responses is a
    gap, not squeezed out): short labels ``W45``, the year as a sub-label, the figures."""
    by_key = {w.key: w for w in weekly if "-W" in w.key}
    if not by_key:
        return [], [], []
    monday = [dt.date.fromisocalendar(int(k[:4]), int(k[6:]), 1) for k in sorted(by_key)]
    labels, years, rows = [], [], []
    day = monday[0]
    while day <= monday[-1]:
        year, week, _ = day.isocalendar()
        labels.append(f"W{week:02d}")
        years.append(str(year))
        rows.append(by_key.get(f"{year}-W{week:02d}"))
        day += dt.timedelta(days=7)
    return labels, years, rows


def render_html(report: SurveyReport) -> str:
    weeks, years, rows = week_axis(report.weekly)
    charts = {
        "csat_trend": line_chart(
            "CSAT per week (% satisfied, 4–5)",
            weeks,
            [("CSAT % 4–5", "#2f7ed8", [w.csat_pct if w else None for w in rows])],
            lo=0,
            hi=100,
            ticks=[0, 25, 50, 75, 100],
            unit="%",
            sublabels=years,
        ),
        "nps_trend": line_chart(
            "NPS per week",
            weeks,
            [("NPS", "#8e44ad", [w.nps if w else None for w in rows])],
            lo=-100,
            hi=100,
            ticks=[-100, -50, 0, 50, 100],
            sublabels=years,
        ),
        "csat_hist": bar_chart(
            "CSAT score distribution",
            [(str(k), v, CSAT_COLOURS[k]) for k, v in report.csat_distribution.items()],
            x_title="score (1 = very dissatisfied, 5 = very satisfied)",
        ),
        "nps_hist": bar_chart(
            "NPS score distribution",
            [(str(k), v, _nps_colour(k)) for k, v in report.nps_distribution.items()],
            x_title="score (0–6 detractors, 7–8 passives, 9–10 promoters)",
        ),
    }
    t = report.total
    period = f"since {report.since.date().isoformat()}" + (
        f" until {report.until.date().isoformat()}" if report.until else ""
    )
    return _ENV.get_template("report.html.j2").render(
        report=report,
        period=period,
        generated=report.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        kpi={
            "csat_pct": fmt(t.csat_pct, suffix="%"),
            "csat_mean": fmt(t.csat_mean, 2),
            "nps": fmt(t.nps),
            "response_rate": fmt(t.response_rate, suffix="%"),
            "completion_rate": fmt(t.completion_rate, suffix="%"),
        },
        charts={k: Markup(v) for k, v in charts.items()},  # built from escaped parts
        table=format_table(report),
    )
