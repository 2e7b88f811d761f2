"""Maintaining agents (supervisors): move members to another agent, one by one or in bulk
(e.g. every member of an agent who is leaving). Audited by the hub.

| key | action |
|---|---|
| f / t | use the highlighted agent as "from" / "to" |
| ctrl+s | reassign (after a confirmation) |
| g | reload the agents |
| Esc | back |
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static

from agent_tui.model import AgentState
from agent_tui.screens.supervisor import SupervisorScreen
from agent_tui.widgets.footer import FittingFooter
from agent_tui.widgets.member import Column, fill_table
from agent_tui.widgets.status import STATE_LABELS, HubBanner, StateBar

COLUMNS = (
    Column("Agent", ("agent",)),
    Column("Name", ("name",)),
    Column("State", ("state",)),
)


def parse_ids(text: str) -> list[int]:
    """``"12, 15 19"`` -> ``[12, 15, 19]``; ValueError on anything else."""
    parts = [p for p in text.replace(",", " ").split() if p]
    if not all(p.isdigit() for p in parts):
        raise ValueError("Member ids are whole numbers separated by commas or spaces.")
    return [int(p) for p in parts]


class MaintainersScreen(SupervisorScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "reassign", "Reassign"),
        Binding("f", "use_agent('from')", "From"),
        Binding("t", "use_agent('to')", "To"),
        Binding("g", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.agents: list[AgentState] = []

    def compose(self) -> ComposeResult:
        yield HubBanner()
        yield StateBar()
        yield Static(
            "Move members to another maintaining agent: give member ids, or a 'from' agent "
            "to move all of theirs.",
            classes="figures",
        )
        with Horizontal(classes="form-row"):
            yield Input(placeholder="Member ids (12, 15 …)", id="ra-ids")
            yield Input(placeholder="From agent (all members)", id="ra-from", max_length=32)
            yield Input(placeholder="To agent", id="ra-to", max_length=32)
        yield Static("", id="ra-status", classes="figures")
        yield DataTable(id="agents-table", cursor_type="row", zebra_stripes=True)
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(exclusive=True, exit_on_error=False, group="agents")
    async def _load(self) -> None:
        result = await self.console.call_hub("agents_list")
        if result is not None:
            self.show_agents(
                [AgentState.parse(a) for a in result.get("agents") or () if isinstance(a, dict)]
            )

    def show_agents(self, agents: list[AgentState]) -> None:
        self.agents = agents
        rows = [
            {"agent": a.code, "name": a.name, "state": STATE_LABELS.get(a.state, a.state)}
            for a in agents
        ]
        fill_table(self.query_one("#agents-table", DataTable), COLUMNS, rows, self.console.agent_tz)

    def action_use_agent(self, which: str) -> None:
        row = self.query_one("#agents-table", DataTable).cursor_row
        if 0 <= row < len(self.agents):
            self.query_one(f"#ra-{which}", Input).value = self.agents[row].code

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_reassign()

    def action_reassign(self) -> None:
        from agent_tui.dialogs.confirm import ConfirmDialog

        status = self.query_one("#ra-status", Static)
        to_agent = self.query_one("#ra-to", Input).value.strip()
        from_agent = self.query_one("#ra-from", Input).value.strip()
        try:
            ids = parse_ids(self.query_one("#ra-ids", Input).value)
        except ValueError as exc:
            status.update(str(exc))
            return
        if not to_agent or bool(ids) == bool(from_agent):
            status.update("Give the 'to' agent and either member ids or a 'from' agent.")
            return
        args: dict[str, Any] = {"to_agent": to_agent}
        if ids:
            args["member_ids"] = ids
            what = f"{len(ids)} member(s)"
        else:
            args["from_agent"] = from_agent
            what = f"every member of agent {from_agent}"

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._reassign(args)

        self.app.push_screen(
            ConfirmDialog("Reassign members", f"Move {what} to agent {to_agent}?"), confirmed
        )

    @work(exclusive=True, exit_on_error=False, group="reassign")
    async def _reassign(self, args: dict[str, Any]) -> None:
        result = await self.console.call_hub("reassign_members", **args)
        if result is not None:
            moved = int(result.get("moved", 0))
            complaints = int(result.get("complaints", 0))
            callbacks = int(result.get("callbacks", 0))
            self.query_one("#ra-status", Static).update(
                f"Moved {moved} member(s) to {args['to_agent']}, with {complaints} open "
                f"complaint(s) and {callbacks} callback(s)."
            )
            self.notify(f"Moved {moved} member(s)", timeout=3)
