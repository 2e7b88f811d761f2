"""Home: the state bar, pause/unpause, queue login/logout, and the way to every other screen.

Bindings (supervisor ones are shown to supervisors only):

| key | action |
|---|---|
| p / u | pause (reason picker) / unpause |
| l / o | join / leave the queue |
| s | member search |
| a | back to the current call |
| m c w v | maintainers, campaigns, wallboard, surveys (supervisors) |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static

from agent_tui.widgets.status import HubBanner, StateBar

if TYPE_CHECKING:
    from agent_tui.app import ConsoleApp

SUPERVISOR_ACTIONS = {"maintainers", "campaigns", "wallboard", "surveys"}


class HomeScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "pause", "Pause"),
        Binding("u", "unpause", "Unpause"),
        Binding("l", "queue_login", "Queue in"),
        Binding("o", "queue_logout", "Queue out"),
        Binding("s,slash", "search", "Search"),
        Binding("a", "current_call", "Call"),
        Binding("m", "maintainers", "Maintainers"),
        Binding("c", "campaigns", "Campaigns"),
        Binding("w", "wallboard", "Wallboard"),
        Binding("v", "surveys", "Surveys"),
    ]

    @property
    def console(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def compose(self) -> ComposeResult:
        yield HubBanner()
        yield StateBar()
        yield Static(id="home-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.watch(self.app, "agent_state", lambda _s: self._render_body())
        self._render_body()

    def on_screen_resume(self) -> None:
        self._render_body()

    def _render_body(self) -> None:
        session = self.console.session
        text = Text()
        if session is not None:
            a = session.agent
            text.append(f"{a.name}", style="bold")
            text.append(f"  agent {a.code} · extension {a.extension} · {a.role}\n\n")
        state = self.console.agent_state
        if state is not None and state.queues:
            text.append(f"Queues: {', '.join(state.queues)}\n")
        call = self.console.book.active_call()
        if call is not None:
            text.append(f"Current call: {call.call_id} ({call.state}) — press a to open it\n")
        else:
            text.append("No call. Calls pop up here by themselves.\n")
        waiting = self.console.book.awaiting_wrapup()
        if waiting:
            text.append(f"Waiting for wrap-up: {', '.join(waiting)}\n")
        self.query_one("#home-body", Static).update(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in SUPERVISOR_ACTIONS:
            session = self.console.session
            return session is not None and session.agent.is_supervisor
        return True

    # -- agent actions -------------------------------------------------------------
    def action_pause(self) -> None:
        from agent_tui.dialogs.pause import PauseDialog

        session = self.console.session
        reasons = session.pause_reasons if session is not None else ()

        def chosen(reason: str | None) -> None:
            if reason:
                self._send("pause", reason=reason)

        self.app.push_screen(PauseDialog(reasons), chosen)

    def action_unpause(self) -> None:
        self._send("unpause")

    def action_queue_login(self) -> None:
        self._send("queue_login")

    def action_queue_logout(self) -> None:
        self._send("queue_logout")

    @work(exclusive=True, exit_on_error=False, group="home")
    async def _send(self, cmd: str, **args: str) -> None:
        if await self.console.call_hub(cmd, **args) is not None:
            self.notify(f"{cmd.replace('_', ' ')}: done", timeout=2)

    def action_search(self) -> None:
        from agent_tui.screens.search import SearchScreen

        self.app.push_screen(SearchScreen())

    def action_current_call(self) -> None:
        from agent_tui.screens.call import CallScreen
        from agent_tui.screens.wrapup import WrapUpScreen

        book = self.console.book
        waiting = book.awaiting_wrapup()
        if waiting:
            self.app.push_screen(WrapUpScreen(waiting[0]))
            return
        call = book.active_call()
        pop = book.pops.get(call.call_id) if call is not None else None
        if pop is None and book.pops:
            pop = list(book.pops.values())[-1]
        if pop is None:
            self.notify("No current call.", timeout=2)
            return
        self.app.push_screen(CallScreen(pop))

    # -- supervisor ----------------------------------------------------------------
    def action_maintainers(self) -> None:
        from agent_tui.screens.maintainers import MaintainersScreen

        self.app.push_screen(MaintainersScreen())

    def action_campaigns(self) -> None:
        from agent_tui.screens.campaigns import CampaignsScreen

        self.app.push_screen(CampaignsScreen())

    def action_wallboard(self) -> None:
        from agent_tui.screens.wallboard import WallboardScreen

        self.app.push_screen(WallboardScreen())

    def action_surveys(self) -> None:
        from agent_tui.screens.surveys import SurveysScreen

        self.app.push_screen(SurveysScreen())
