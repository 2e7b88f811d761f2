"""Live wallboard (supervisors): every agent with state and time in state; calls waiting,
ringing and talking; rolling abandonment rate against the cap; contact rate; utilisation;
sparklines of the last hour. Fed by ``wallboard`` pushes (1 s) after ``wallboard_subscribe``.

| key | action |
|---|---|
| r | subscribe again (after a hub restart) |
| Esc | back |
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Label, Sparkline, Static

from agent_tui.model import Wallboard, format_duration, format_pct
from agent_tui.screens.supervisor import SupervisorScreen
from agent_tui.widgets.footer import FittingFooter
from agent_tui.widgets.member import Column, fill_table
from agent_tui.widgets.status import STATE_LABELS, HubBanner, StateBar

SPARKS = (
    ("waiting", "Waiting"),
    ("talking", "Talking"),
    ("abandon_rate", "Abandon rate"),
    ("utilization", "Utilisation"),
)

AGENT_COLUMNS = (
    Column("Agent", ("agent",)),
    Column("Name", ("name",)),
    Column("State", ("state",)),
    Column("In state", ("in_state",)),
    Column("Calls", ("calls",), "int"),
    Column("Talk", ("talk",)),
)


def figures_text(wb: Wallboard) -> Text:
    """The headline figures; the abandon rate turns to an error colour over the cap."""
    text = Text()
    text.append(f"Waiting {wb.waiting}  Ringing {wb.ringing}  Talking {wb.talking}\n", style="bold")
    over = (
        wb.abandon_rate is not None
        and wb.abandon_cap is not None
        and wb.abandon_rate > wb.abandon_cap
    )
    text.append("Abandoned ")
    text.append(format_pct(wb.abandon_rate), style="bold reverse" if over else "bold")
    text.append(f" (cap {format_pct(wb.abandon_cap)})")
    text.append(f"  Contact {format_pct(wb.contact_rate)}")
    text.append(f"  Utilisation {format_pct(wb.utilization)}")
    if wb.outbox_review:
        text.append("\n")
        text.append(
            f"Outbox: {wb.outbox_review} message(s) may have been sent and need review "
            "(memberline outbox list --review)",
            style="bold reverse",
        )
    return text


class WallboardScreen(SupervisorScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "subscribe", "Resubscribe")]

    def compose(self) -> ComposeResult:
        yield HubBanner()
        yield StateBar()
        yield Static(id="wb-figures", classes="figures")
        for key, label in SPARKS:
            with Horizontal(classes="spark-row"):
                yield Label(label, classes="spark-label")
                yield Sparkline([], id=f"spark-{key}")
        yield DataTable(id="agents-table", cursor_type="row", zebra_stripes=True)
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        self.watch(self.app, "wallboard", self._show)
        self.set_interval(1.0, lambda: self._show(self.console.wallboard))
        self.action_subscribe()

    def action_subscribe(self) -> None:
        self._subscribe()

    @work(exclusive=True, exit_on_error=False, group="wallboard")
    async def _subscribe(self) -> None:
        await self.console.call_hub("wallboard_subscribe")

    def _show(self, wb: Wallboard | None) -> None:
        figures = self.query_one("#wb-figures", Static)
        if wb is None:
            figures.update("Waiting for the first wallboard update…")
            return
        figures.update(figures_text(wb))
        for key, _label in SPARKS:
            self.query_one(f"#spark-{key}", Sparkline).data = list(wb.history.get(key, ()))
        now = self.console.clock().timestamp()
        rows = [
            {
                "agent": a.code,
                "name": a.name,
                "state": STATE_LABELS.get(a.state, a.state)
                + (f" ({a.reason})" if a.reason else ""),
                "in_state": format_duration(now - a.since.timestamp()) if a.since else "—",
                "calls": a.calls_today,
                "talk": format_duration(a.talk_s_today),
            }
            for a in wb.agents
        ]
        table = self.query_one("#agents-table", DataTable)
        cursor = table.cursor_row
        fill_table(table, AGENT_COLUMNS, rows, self.console.agent_tz)
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
