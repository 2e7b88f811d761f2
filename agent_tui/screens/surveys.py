"""Survey results (supervisors): CSAT and NPS by week, as bars and a trend sparkline.

| key | action |
|---|---|
| r | reload |
| Esc | back |
"""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Label, Sparkline, Static

from agent_tui.model import SurveyRow
from agent_tui.screens.supervisor import SupervisorScreen
from agent_tui.widgets.charts import survey_chart
from agent_tui.widgets.footer import FittingFooter
from agent_tui.widgets.status import HubBanner, StateBar


class SurveysScreen(SupervisorScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "reload", "Reload")]

    def compose(self) -> ComposeResult:
        yield HubBanner()
        yield StateBar()
        yield Static("Survey results — CSAT and NPS by week", classes="figures")
        with Horizontal(classes="spark-row"):
            yield Label("CSAT trend", classes="spark-label")
            yield Sparkline([], id="spark-csat")
        with Horizontal(classes="spark-row"):
            yield Label("NPS trend", classes="spark-label")
            yield Sparkline([], id="spark-nps")
        yield Static("Loading…", id="survey-chart")
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(exclusive=True, exit_on_error=False, group="surveys")
    async def _load(self) -> None:
        result = await self.console.call_hub("survey_summary")
        if result is None:
            self.query_one("#survey-chart", Static).update("Survey figures are not available.")
            return
        self.show_rows(
            [SurveyRow.parse(r) for r in result.get("rows") or () if isinstance(r, dict)]
        )

    def show_rows(self, rows: list[SurveyRow]) -> None:
        self.query_one("#spark-csat", Sparkline).data = [r.csat for r in rows if r.csat is not None]
        self.query_one("#spark-nps", Sparkline).data = [
            r.nps + 100 for r in rows if r.nps is not None
        ]
        chart = self.query_one("#survey-chart", Static)
        chart.update(survey_chart(rows) if rows else "No survey responses yet.")
