"""Redeem points by phone: pick from the catalogue, read the quote to the member, confirm.

Two hub calls: ``points_redeem`` without ``confirm`` (a quote: balance before and after)
and, after the agent confirms, with ``confirm=True`` (one ledger transaction). The
dialog returns the confirmed result so the profile shows the new balance at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from agent_tui.widgets.footer import FittingFooter

if TYPE_CHECKING:
    from agent_tui.app import ConsoleApp


class RedeemDialog(ModalScreen[dict[str, Any] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "Confirm"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, member_id: int, balance: int) -> None:
        super().__init__()
        self.member_id = member_id
        self.balance = balance
        self.items: dict[str, dict[str, Any]] = {}
        self.quote: dict[str, Any] | None = None
        self.quoted_item: str | None = None

    @property
    def console(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Redeem points — balance {self.balance:,}", classes="dialog-title")
            yield OptionList(id="catalogue")
            yield Static("Loading the catalogue…", id="quote")
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        self._load()

    @work(exclusive=True, exit_on_error=False, group="redeem")
    async def _load(self) -> None:
        result = await self.console.call_hub("points_catalogue")
        if result is None:
            self.query_one("#quote", Static).update("Catalogue unavailable.")
            return
        self.set_catalogue(result.get("items") or [])

    def set_catalogue(self, items: list[dict[str, Any]]) -> None:
        options = self.query_one("#catalogue", OptionList)
        options.clear_options()
        for item in items:
            code = str(item.get("code", ""))
            self.items[code] = item
            name = item.get("name_zh") or item.get("name") or code
            if item.get("name") and item.get("name_zh"):
                name = f"{item['name_zh']} / {item['name']}"
            cost = int(item.get("points_cost", 0))
            options.add_option(Option(f"{cost:>7,}  {name}", id=code, disabled=cost > self.balance))
        self.query_one("#quote", Static).update("Pick an item (Enter) for a quote.")
        enabled = [
            i for i in range(options.option_count) if not options.get_option_at_index(i).disabled
        ]
        if enabled:
            options.highlighted = enabled[0]
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self._quote(event.option.id)

    @work(exclusive=True, exit_on_error=False, group="redeem")
    async def _quote(self, code: str) -> None:
        self.quote = None
        result = await self.console.call_hub(
            "points_redeem", member_id=self.member_id, item_code=code, confirm=False
        )
        if result is None:
            return
        self.quote, self.quoted_item = result, code
        before, after = int(result.get("balance_before", 0)), int(result.get("balance_after", 0))
        self.query_one("#quote", Static).update(
            f"{code}: {int(result.get('cost', 0)):,} points. Balance {before:,} → {after:,}. "
            "Read this to the member, then press y to confirm."
        )
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "confirm":
            return True if self.quote is not None else None
        return True

    def action_confirm(self) -> None:
        if self.quote is not None and self.quoted_item is not None:
            self._confirm(self.quoted_item)

    @work(exclusive=True, exit_on_error=False, group="redeem")
    async def _confirm(self, code: str) -> None:
        result = await self.console.call_hub(
            "points_redeem", member_id=self.member_id, item_code=code, confirm=True
        )
        if result is not None and result.get("confirmed", True):
            self.dismiss(result)

    def action_cancel(self) -> None:
        self.dismiss(None)
