"""What every supervisor screen shares: banner, state bar, Esc back, hub access."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.binding import Binding, BindingType
from textual.screen import Screen

if TYPE_CHECKING:
    from agent_tui.app import ConsoleApp


class SupervisorScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]

    @property
    def console(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def action_back(self) -> None:
        self.app.pop_screen()
