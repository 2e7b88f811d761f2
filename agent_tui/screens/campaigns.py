"""Campaigns (supervisors): list with progress and outcomes; create from a list builder;
start / pause / resume / stop.

| key | action |
|---|---|
| n | new campaign (list builder) |
| s p r x | start, pause, resume, stop the highlighted campaign |
| g | reload |
| Esc | back |
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from agent_tui.model import Campaign
from agent_tui.screens.supervisor import SupervisorScreen
from agent_tui.widgets.charts import progress_text
from agent_tui.widgets.footer import FittingFooter
from agent_tui.widgets.member import Column, fill_table
from agent_tui.widgets.status import HubBanner, StateBar

COLUMNS = (
    Column("Id", ("id",)),
    Column("Name", ("name",)),
    Column("List", ("kind",)),
    Column("Mode", ("mode",)),
    Column("Status", ("status",)),
    Column("Progress", ("progress",)),
    Column("Entries", ("total",), "int"),
    Column("Outcomes", ("outcomes",)),
)


def outcomes_text(outcomes: dict[str, int] | Any) -> str:
    return " · ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "—"


class CampaignsScreen(SupervisorScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "New"),
        Binding("s", "control('start')", "Start"),
        Binding("p", "control('pause')", "Pause"),
        Binding("r", "control('resume')", "Resume"),
        Binding("x", "control('stop')", "Stop"),
        Binding("g", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.campaigns: list[Campaign] = []

    def compose(self) -> ComposeResult:
        yield HubBanner()
        yield StateBar()
        yield Static("Campaigns", id="campaigns-status", classes="figures")
        yield DataTable(id="campaigns-table", cursor_type="row", zebra_stripes=True)
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        self.show_campaigns([])
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(exclusive=True, exit_on_error=False, group="campaigns")
    async def _load(self) -> None:
        result = await self.console.call_hub("campaigns_list")
        if result is not None:
            self.show_campaigns(
                [Campaign.parse(c) for c in result.get("campaigns") or () if isinstance(c, dict)]
            )

    def show_campaigns(self, campaigns: list[Campaign]) -> None:
        self.campaigns = campaigns
        rows = [
            {
                "id": str(c.campaign_id),
                "name": c.name,
                "kind": c.kind,
                "mode": c.mode,
                "status": c.status,
                "progress": progress_text(c.progress),
                "total": c.total,
                "outcomes": outcomes_text(c.outcomes),
            }
            for c in campaigns
        ]
        table = self.query_one("#campaigns-table", DataTable)
        cursor = table.cursor_row
        fill_table(table, COLUMNS, rows, self.console.agent_tz, max_width=48)
        if rows:
            table.move_cursor(row=min(max(cursor, 0), len(rows) - 1))
        self.query_one("#campaigns-status", Static).update(
            f"{len(campaigns)} campaign(s) — n new · s start · p pause · r resume · x stop"
        )

    def _selected(self) -> Campaign | None:
        row = self.query_one("#campaigns-table", DataTable).cursor_row
        return self.campaigns[row] if 0 <= row < len(self.campaigns) else None

    def action_control(self, action: str) -> None:
        campaign = self._selected()
        if campaign is not None:
            self._control(campaign, action)

    @work(exclusive=True, exit_on_error=False, group="campaign-control")
    async def _control(self, campaign: Campaign, action: str) -> None:
        result = await self.console.call_hub(
            "campaign_control", campaign_id=campaign.campaign_id, action=action
        )
        if result is not None:
            self.notify(f"{campaign.name}: {result.get('status', action)}", timeout=3)
            self._load()

    def action_new(self) -> None:
        from agent_tui.dialogs.campaign import CampaignDialog

        def created(form: dict[str, Any] | None) -> None:
            if form:
                self._create(form)

        self.app.push_screen(CampaignDialog(), created)

    @work(exclusive=True, exit_on_error=False, group="campaign-create")
    async def _create(self, form: dict[str, Any]) -> None:
        result = await self.console.call_hub("campaign_create", **form)
        if result is not None:
            self.notify(
                f"Campaign {result.get('campaign_id')} created with {result.get('entries', 0)} entries",
                timeout=4,
            )
            self._load()
