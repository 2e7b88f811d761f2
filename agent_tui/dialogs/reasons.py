"""Pick a reason from a short list (pause reasons, preview-skip reasons): digits 1-9 pick
directly, arrows + Enter or the mouse too, Escape cancels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from agent_tui.widgets.footer import FittingFooter

SKIP_REASONS: tuple[tuple[str, str], ...] = (
    ("later", "Not now: offer this member again later"),
    ("wrong-number", "Wrong number: never dial this number again"),
    ("do-not-call", "Do not call: put the member on the do-not-call list"),
    ("other", "Other: offer again later"),
)
"""The hub's ``preview_skip`` reasons (cti.hubproto.messages), as the agent reads them."""


class ReasonDialog(ModalScreen[str | None]):
    """Dismisses with the chosen reason's code, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, reasons: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.reasons = tuple(reasons)
        for i, (_code, label) in enumerate(self.reasons[:9], start=1):
            self._bindings.bind(str(i), f"pick({i - 1})", label, show=False)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield OptionList(
                *(
                    Option(f"{i}  {label}", id=code)
                    for i, (code, label) in enumerate(self.reasons, start=1)
                ),
                id="reasons",
            )
        yield FittingFooter(compact=True)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_pick(self, index: int) -> None:
        if 0 <= index < len(self.reasons):
            self.dismiss(self.reasons[index][0])

    def action_cancel(self) -> None:
        self.dismiss(None)
