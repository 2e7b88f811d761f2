"""Several members share the caller's number: pick the one on the phone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from agent_tui.model import MemberSummary
from agent_tui.widgets.footer import FittingFooter
from agent_tui.widgets.member import Column, fill_table

COLUMNS = (
    Column("Member no.", ("member_no",)),
    Column("Name", ("name",)),
    Column("Tier", ("tier",)),
    Column("Phone", ("phone_masked",)),
)


class ChooserDialog(ModalScreen[MemberSummary | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "None of these")]

    def __init__(self, matches: Sequence[MemberSummary]) -> None:
        super().__init__()
        self.matches = tuple(matches)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(
                f"{len(self.matches)} members match this number — who is calling?",
                classes="dialog-title",
            )
            yield DataTable(id="matches", cursor_type="row")
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        import datetime as dt

        rows = [
            {
                "member_no": m.member_no,
                "name": m.name,
                "tier": m.tier,
                "phone_masked": m.phone_masked,
            }
            for m in self.matches
        ]
        table = self.query_one("#matches", DataTable)
        fill_table(table, COLUMNS, rows, dt.UTC)
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        row = event.cursor_row
        if 0 <= row < len(self.matches):
            self.dismiss(self.matches[row])

    def action_cancel(self) -> None:
        self.dismiss(None)
