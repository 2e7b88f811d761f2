"""Member search by phone number, name or member number; Enter opens the profile.

| key | action |
|---|---|
| Enter (in the box) | search |
| Enter / click (in the table) | open the profile |
| F7 | click-to-dial the highlighted member |
| ctrl+f | back to the search box |
| Esc | back |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from agent_tui.model import MemberSummary
from agent_tui.widgets.footer import FittingFooter
from agent_tui.widgets.member import Column, fill_table
from agent_tui.widgets.status import HubBanner, StateBar

if TYPE_CHECKING:
    from agent_tui.app import ConsoleApp

RESULT_COLUMNS = (
    Column("Member no.", ("member_no",)),
    Column("Name", ("name",)),
    Column("Tier", ("tier",)),
    Column("Phone", ("phone_masked",)),
    Column("Points", ("points",), "int"),
    Column("Maintainer", ("maintaining_agent",)),
)


class SearchScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f7", "dial", "Dial"),
        Binding("ctrl+f", "focus_search", "Search box"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.results: tuple[MemberSummary, ...] = ()

    @property
    def console(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def compose(self) -> ComposeResult:
        yield HubBanner()
        yield StateBar()
        yield Input(placeholder="Phone, name or member number — Enter to search", id="query")
        yield Static("", id="search-status")
        yield DataTable(id="results", cursor_type="row", zebra_stripes=True)
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        self.show_results(())
        self.query_one("#query", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        query = event.value.strip()
        if query:
            self.query_one("#search-status", Static).update(f"Searching for {query}…")
            self._search(query)

    @work(exclusive=True, exit_on_error=False, group="search")
    async def _search(self, query: str) -> None:
        result = await self.console.call_hub("member_search", query=query, limit=50)
        if result is None:
            self.query_one("#search-status", Static).update("Search failed.")
            return
        members = tuple(
            MemberSummary.parse(m) for m in result.get("members") or () if isinstance(m, dict)
        )
        hidden = result.get("hidden")
        self.show_results(members, query, hidden if isinstance(hidden, int) else 0)

    def show_results(
        self, members: tuple[MemberSummary, ...], query: str = "", hidden: int = 0
    ) -> None:
        """The hub lists only members this agent may open; ``hidden`` more matched but are
        maintained by other agents (a supervisor can reassign them)."""
        self.results = members
        table = self.query_one("#results", DataTable)
        rows = [
            {
                "member_no": m.member_no,
                "name": m.name,
                "tier": m.tier,
                "phone_masked": m.phone_masked,
                "points": m.points,
                "maintaining_agent": m.maintaining_agent,
            }
            for m in members
        ]
        fill_table(table, RESULT_COLUMNS, rows, self.console.agent_tz)
        status = self.query_one("#search-status", Static)
        if query:
            n = len(members)
            more = f" ({hidden} more maintained by other agents)" if hidden else ""
            status.update(
                f"{n} member{'s' if n != 1 else ''} for “{query}”{more} — Enter opens, F7 dials"
            )
            if members:
                table.focus()
        else:
            status.update("")

    def _selected(self) -> MemberSummary | None:
        table = self.query_one("#results", DataTable)
        row = table.cursor_row
        if 0 <= row < len(self.results):
            return self.results[row]
        return None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        member = self._selected()
        if member is not None:
            from agent_tui.screens.profile import ProfileScreen

            self.app.push_screen(ProfileScreen(member.member_id))

    def action_dial(self) -> None:
        member = self._selected()
        if member is not None:
            self._dial(member)

    @work(exclusive=True, exit_on_error=False, group="dial")
    async def _dial(self, member: MemberSummary) -> None:
        result = await self.console.call_hub("dial", member_id=member.member_id)
        if result is None:
            return
        self.notify(f"Dialling {member.name}…", timeout=3)
        profile = await self.console.call_hub("member_profile", member_id=member.member_id)
        from agent_tui.model import Profile, ScreenPop

        parsed = (
            Profile.parse(profile["profile"])
            if profile is not None and isinstance(profile.get("profile"), dict)
            else None
        )
        self.console.show_pop(
            ScreenPop(
                call_id=str(result.get("call_id", "")),
                queue="",
                caller_number=member.phone_masked,
                caller_name=member.name,
                kind="member" if parsed else "unknown",
                profile=parsed,
                matches=(),
            )
        )

    def action_focus_search(self) -> None:
        self.query_one("#query", Input).focus()

    def action_back(self) -> None:
        self.app.pop_screen()
