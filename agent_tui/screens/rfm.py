"""RFM for supervisors: the R x F grid (members / spend per cell), the six named segments and
how many members moved between them since last month; a campaign for a chosen segment.

| key | action |
|---|---|
| 1-6 / arrows + Enter | choose a segment and build a preview campaign for it (asks the name) |
| r | reload |
| Esc | back |
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

from rich.table import Table
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from agent_tui.dialogs.forms import FormDialog
from agent_tui.screens.supervisor import SupervisorScreen
from agent_tui.widgets.status import HubBanner, StateBar

SEGMENT_ORDER = ("champions", "loyal", "potential", "needs_attention", "at_risk", "hibernating")


def grid_table(data: Mapping[str, Any]) -> Table:
    """The hub's ``rfm`` result as a Rich table: R5 at the top, F1..F5 across (pure)."""
    cells = {
        (int(c["r"]), int(c["f"])): c for c in data.get("cells") or () if isinstance(c, Mapping)
    }
    table = Table(title="R x F: members / spend", expand=False)
    table.add_column("R \\ F")
    for f in range(1, 6):
        table.add_column(f"F{f}", justify="right")
    for r in range(5, 0, -1):
        row = []
        for f in range(1, 6):
            c = cells.get((r, f), {})
            row.append(f"{int(c.get('members', 0)):,}\n{float(c.get('spend', 0)):,.0f}")
        table.add_row(f"R{r}", *row)
    return table


def segment_label(name: str, info: Mapping[str, Any], moves: list[Mapping[str, Any]]) -> str:
    came = sum(int(m["members"]) for m in moves if m.get("to") == name and m.get("from") != name)
    left = sum(int(m["members"]) for m in moves if m.get("from") == name and m.get("to") != name)
    move = f"  +{came} / -{left} since last month" if moves else ""
    return (f"{info.get('label', name)} · {info.get('label_zh', '')}: "
            f"{int(info.get('members', 0)):,} members, spend {float(info.get('spend', 0)):,.0f}{move}")  # fmt: skip


class SegmentCampaignDialog(FormDialog):
    """The name of the campaign for a segment (preview mode, the maintaining agents first)."""

    def __init__(self, segment: str, label: str) -> None:
        super().__init__()
        self.segment = segment
        self.TITLE_TEXT = f"Preview campaign for {label}"

    def fields(self) -> ComposeResult:
        from textual.widgets import Input

        today = dt.date.today().isoformat()
        yield Input(f"rfm-{self.segment}-{today}", placeholder="Campaign name", id="seg-name",
                    max_length=200)  # fmt: skip

    def values(self) -> dict[str, str] | str:
        name = self._text("#seg-name")
        return {"name": name} if name else "Give the campaign a name."


class RfmScreen(SupervisorScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "reload", "Reload")]

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, Any] = {}
        for i, name in enumerate(SEGMENT_ORDER, start=1):
            self._bindings.bind(str(i), f"choose({name!r})", name, show=False)

    def compose(self) -> ComposeResult:
        yield HubBanner()
        yield StateBar()
        yield Static("Loading…", id="rfm-grid")
        yield OptionList(id="rfm-segments")
        yield Static("", id="rfm-note")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(exclusive=True, exit_on_error=False, group="rfm")
    async def _load(self) -> None:
        result = await self.console.call_hub("rfm_grid")
        if result is None or not isinstance(result.get("rfm"), dict):
            self.query_one("#rfm-grid", Static).update("RFM figures are not available.")
            return
        self.show(result["rfm"])

    def show(self, data: dict[str, Any]) -> None:
        self.data = data
        self.query_one("#rfm-grid", Static).update(grid_table(data))
        segments = data.get("segments") or {}
        moves = [m for m in data.get("moves") or () if isinstance(m, Mapping)]
        options = self.query_one("#rfm-segments", OptionList)
        options.clear_options()
        for i, name in enumerate(SEGMENT_ORDER, start=1):
            info = segments.get(name, {})
            options.add_option(Option(f"{i}  {segment_label(name, info, moves)}", id=name))
        computed = data.get("computed_at") or "never"
        self.query_one("#rfm-note", Static).update(
            f"Scores computed {computed[:16]}; 1-6 or Enter builds a preview campaign for a segment."
        )
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.action_choose(event.option.id)

    def action_choose(self, segment: str) -> None:
        info = (self.data.get("segments") or {}).get(segment, {})
        label = f"{info.get('label', segment)} ({int(info.get('members', 0)):,} members)"
        self.app.push_screen(
            SegmentCampaignDialog(segment, label), lambda r: self._create(segment, r)
        )

    def _create(self, segment: str, form: dict[str, str] | None) -> None:
        if form:
            self._build(segment, form["name"])

    @work(exclusive=True, exit_on_error=False, group="rfm-create")
    async def _build(self, segment: str, name: str) -> None:
        result = await self.console.call_hub(
            "campaign_create", name=name, kind="custom", settings={"segment": segment}
        )
        if result is not None:
            self.notify(
                f"Campaign {result.get('campaign_id')} '{name}': {result.get('entries', 0)} members"
                " (draft; start it from the campaigns screen)",
                timeout=6,
            )
