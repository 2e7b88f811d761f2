"""Unfinished calls: answered calls whose wrap-up time ran out before a disposition was saved.

An agent sees their own; a supervisor sees every agent's count (calls from an earlier
shift flagged) and the calls themselves, and may finish any of them. Enter opens the
wrap-up of the highlighted call (the hub accepts it from its answering agent or a
supervisor).

| key | action |
|---|---|
| Enter | wrap up the highlighted call |
| g | reload |
| Esc | back |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Static

from agent_tui.widgets.footer import FittingFooter
from agent_tui.widgets.member import Column, fill_table
from agent_tui.widgets.status import HubBanner, StateBar

if TYPE_CHECKING:
    from agent_tui.app import ConsoleApp

CALL_COLUMNS = (
    Column("Ended", ("ended_at",), "time"),
    Column("Agent", ("agent",)),
    Column("Member", ("member_name",)),
    Column("Dir", ("direction",)),
    Column("Shift", ("shift",)),
    Column("Call", ("call_id",)),
)
AGENT_COLUMNS = (
    Column("Agent", ("agent",)),
    Column("Name", ("name",)),
    Column("Unfinished", ("unfinished",), "int"),
    Column("Earlier shift", ("unfinished_stale",), "int"),
)


class UnfinishedScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Wrap up", priority=True),
        Binding("g", "reload", "Reload"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Mapping[str, Any]] = []

    @property
    def console(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    @property
    def supervisor(self) -> bool:
        session = self.console.session
        return session is not None and session.agent.is_supervisor

    def compose(self) -> ComposeResult:
        yield HubBanner()
        yield StateBar()
        yield Static(id="unf-title", classes="figures")
        if self.supervisor:
            yield DataTable(id="unf-agents", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="unf-calls", cursor_type="row", zebra_stripes=True)
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        self.action_reload()
        self.query_one("#unf-calls", DataTable).focus()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_reload(self) -> None:
        self._load()

    @work(exclusive=True, exit_on_error=False, group="unfinished")
    async def _load(self) -> None:
        agents: list[Mapping[str, Any]] | None = None
        if self.supervisor:
            listed = await self.console.call_hub("agents_list")
            if listed is not None:
                agents = [a for a in listed.get("agents") or () if isinstance(a, dict)]
        result = await self.console.call_hub("unfinished_calls")
        if result is not None:
            calls = [c for c in result.get("calls") or () if isinstance(c, dict)]
            self.show(calls, agents)

    def show(
        self, calls: Sequence[Mapping[str, Any]], agents: Sequence[Mapping[str, Any]] | None = None
    ) -> None:
        """Render the hub's ``unfinished_calls`` (and, for supervisors, ``agents_list``) rows."""
        self.calls = list(calls)
        stale = sum(1 for c in calls if c.get("stale"))
        title = f"Unfinished calls: {len(calls)}"
        if stale:
            title += f" · {stale} from an earlier shift (⚑)"
        if not calls:
            title += " — nothing left to wrap up."
        self.query_one("#unf-title", Static).update(title)
        rows = [{**c, "shift": "⚑ earlier" if c.get("stale") else "this"} for c in calls]
        tz = self.console.agent_tz
        fill_table(self.query_one("#unf-calls", DataTable), CALL_COLUMNS, rows, tz)
        if agents is not None and self.supervisor:
            agent_rows = [
                {**a, "name": a.get("name") or "", "unfinished": a.get("unfinished") or 0}
                for a in agents
            ]
            fill_table(self.query_one("#unf-agents", DataTable), AGENT_COLUMNS, agent_rows, tz)

    def action_open(self) -> None:
        from agent_tui.screens.wrapup import WrapUpScreen

        table = self.query_one("#unf-calls", DataTable)
        row = table.cursor_row
        if not (0 <= row < len(self.calls)):
            return
        call_id = str(self.calls[row].get("call_id") or "")
        if call_id:
            self.app.push_screen(WrapUpScreen(call_id))
