"""Agent id + password; errors from the hub (bad credentials, rate limit) shown in place."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Static

from agent_tui.widgets.footer import FittingFooter

if TYPE_CHECKING:
    from agent_tui.app import ConsoleApp


class LoginScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "submit", "Log in", show=True)]

    def __init__(self, agent: str = "", password: str | None = None) -> None:
        super().__init__()
        self._agent = agent
        self._password = password

    def compose(self) -> ComposeResult:
        app = cast("ConsoleApp", self.app)
        with Vertical(id="login-box"):
            yield Static("Memberline agent console", id="login-title")
            yield Label(f"Hub {app.host}:{app.port}", id="login-hub")
            yield Input(self._agent, placeholder="Agent id", id="agent", max_length=32)
            yield Input(
                self._password or "",
                placeholder="Password",
                password=True,
                id="password",
                max_length=256,
            )
            yield Button("Log in", id="login-button", variant="primary")
            yield Static("", id="login-error")
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        if self._agent:
            self.query_one("#password", Input).focus()
        else:
            self.query_one("#agent", Input).focus()
        if self._agent and self._password:
            self.action_submit()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "agent":
            self.query_one("#password", Input).focus()
        else:
            self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        agent = self.query_one("#agent", Input).value.strip()
        password = self.query_one("#password", Input).value
        if not agent or not password:
            self.show_error("Enter your agent id and password.")
            return
        status = self.query_one("#login-error", Static)
        status.remove_class("-error")
        status.update("Logging in…")
        cast("ConsoleApp", self.app).login(agent, password)

    def show_error(self, text: str) -> None:
        error = self.query_one("#login-error", Static)
        error.update(text)
        error.add_class("-error")
        password = self.query_one("#password", Input)
        password.value = ""
        password.focus()
