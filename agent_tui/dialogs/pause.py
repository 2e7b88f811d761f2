"""Pick a pause reason (the codes come from the login result). Digits 1-9 pick directly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, OptionList
from textual.widgets.option_list import Option


class PauseDialog(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__()
        self.reasons = tuple(reasons)
        for i, reason in enumerate(self.reasons[:9], start=1):
            self._bindings.bind(str(i), f"pick({i - 1})", reason, show=False)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Pause — why?", classes="dialog-title")
            yield OptionList(
                *(
                    Option(f"{i}  {reason}", id=reason)
                    for i, reason in enumerate(self.reasons, start=1)
                ),
                id="reasons",
            )
        yield Footer(compact=True)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_pick(self, index: int) -> None:
        if 0 <= index < len(self.reasons):
            self.dismiss(self.reasons[index])

    def action_cancel(self) -> None:
        self.dismiss(None)
