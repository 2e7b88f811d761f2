"""Member-care reports as self-contained HTML (inline CSS and SVG, no scripts, no CDN).

One template for every care report (win-back, completeness, RFM): a title, KPI tiles,
SVG charts (:mod:`surveys.charts`, built from escaped parts) and plain tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import jinja2
from markupsafe import Markup

__all__ = ["Page", "Table", "render_page"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("crm_bridge", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class Table:
    caption: str
    head: Sequence[str]
    rows: Sequence[Sequence[str]]
    total: Sequence[str] | None = None


@dataclass(frozen=True)
class Page:
    title: str
    subtitle: str
    kpis: Sequence[tuple[str, str]] = ()
    """(value, label) tiles."""
    charts: Sequence[str] = ()
    """SVG strings from :mod:`surveys.charts` (trusted: built from escaped parts)."""
    tables: Sequence[Table] = ()
    notes: str = ""
    lang: str = "en"
    extra: dict[str, str] = field(default_factory=dict)


def render_page(page: Page) -> str:
    return _ENV.get_template("care_report.html.j2").render(
        page=page, charts=[Markup(c) for c in page.charts]
    )
