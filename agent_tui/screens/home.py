"""Home: the state bar, pause/unpause, queue login/logout, the call view (the pop), and
the way to every other screen.

Bindings while no call is shown (supervisor ones for supervisors only); the call keys
are in :mod:`agent_tui.screens.call`:

| key | action |
|---|---|
| p / u | pause (reason picker) / unpause |
| l / o | join / leave the queue |
| s or / | member search |
| a | show the current call (or its wrap-up) |
| n | unfinished calls (wrap-ups whose time ran out; supervisors: every agent's) |
| m c w v r | maintainers, campaigns, wallboard, surveys, RFM segments (supervisors) |
| F7 / k | dial / skip the preview card (preview campaigns) |
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from agent_tui.model import Preview, Profile, ScreenPop
from agent_tui.screens.call import CallDesk
from agent_tui.widgets.footer import FittingFooter
from agent_tui.widgets.preview import PreviewCard
from agent_tui.widgets.status import HubBanner, StateBar

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

SUPERVISOR_ACTIONS = {"maintainers", "campaigns", "wallboard", "surveys", "rfm"}
HOME_ACTIONS = {
    "pause",
    "unpause",
    "queue_login",
    "queue_logout",
    "search",
    "current_call",
    "unfinished",
}


class HomeScreen(CallDesk):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "pause", "Pause"),
        Binding("u", "unpause", "Unpause"),
        Binding("l", "queue_login", "Queue in"),
        Binding("o", "queue_logout", "Queue out"),
        Binding("s,slash", "search", "Search"),
        Binding("a", "current_call", "Call"),
        Binding("n", "unfinished", "Unfinished"),
        Binding("m", "maintainers", "Maintainers"),
        Binding("c", "campaigns", "Campaigns"),
        Binding("w", "wallboard", "Wallboard"),
        Binding("v", "surveys", "Surveys"),
        Binding("r", "rfm", "RFM"),
        Binding("k", "preview_skip", "Skip preview"),
    ]

    def compose(self) -> ComposeResult:
        yield HubBanner()
        yield StateBar()
        yield PreviewCard(id="preview-card")
        yield Static(id="home-body")
        yield from self.compose_call()
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.watch(self.app, "agent_state", lambda _s: self._render_body())
        self.watch(self.app, "preview", lambda _p: self._render_preview())
        self._note = ""
        if self.console.status_note is not None:
            self._refresh_note()
            self.set_interval(3.0, self._refresh_note)
        self._render_body()
        self._load_unfinished()

    @work(exclusive=True, exit_on_error=False, group="unfinished")
    async def _load_unfinished(self) -> None:
        """The agent's unfinished wrap-ups left from before this console started."""
        session = self.console.session
        if session is None or self.console.offline:
            return
        result = await self.console.call_hub("unfinished_calls", agent=session.agent.code)
        if result is not None:
            ids = {str(c.get("call_id")) for c in result.get("calls") or () if isinstance(c, dict)}
            self.console.unfinished.update(ids)
            self._render_body()

    @work(exclusive=True, exit_on_error=False, group="note")
    async def _refresh_note(self) -> None:
        provider = self.console.status_note
        if provider is None:
            return
        try:
            self._note = await provider()
        except Exception:  # a note is decoration: never let it take the console down
            log.exception("status note failed")
            return
        self._render_body()

    def on_screen_resume(self) -> None:
        self._render_body()

    def call_visibility_changed(self, visible: bool) -> None:
        self.query_one("#home-body").display = not visible
        if not visible:
            self._render_body()
        self._render_preview()

    # -- preview cards ---------------------------------------------------------------
    @property
    def preview_shown(self) -> Preview | None:
        """The card, while no call view covers it."""
        return None if self.call_visible else self.console.preview

    def _render_preview(self) -> None:
        self.query_one(PreviewCard).show(self.preview_shown)
        self.refresh_bindings()

    def action_dial(self) -> None:
        card = self.preview_shown
        if card is None:
            super().action_dial()
            return
        self._preview_dial(card)

    @work(exclusive=True, exit_on_error=False, group="preview")
    async def _preview_dial(self, card: Preview) -> None:
        result = await self.console.call_hub("preview_dial", entry_id=card.entry_id)
        if result is None:
            return
        if self.console.preview is card:
            self.console.preview = None
        m = card.member
        self.notify(f"Dialling {m.name}…", timeout=3)
        profile = None
        found = await self.console.call_hub("member_profile", member_id=m.member_id)
        if found is not None and isinstance(found.get("profile"), dict):
            profile = Profile.parse(found["profile"])
        self.console.show_pop(
            ScreenPop(
                call_id=str(result.get("call_id", "")),
                queue="",
                caller_number=m.phone_masked,
                caller_name=m.name,
                kind="member" if profile is not None else "chooser",
                profile=profile,
                matches=() if profile is not None else (m,),
            )
        )

    def action_preview_skip(self) -> None:
        from agent_tui.dialogs.reasons import SKIP_REASONS, ReasonDialog

        card = self.preview_shown
        if card is None:
            return

        def chosen(reason: str | None) -> None:
            if reason and self.console.preview is card:
                self._preview_skip(card, reason)

        self.app.push_screen(ReasonDialog(f"Skip {card.member.name} — why?", SKIP_REASONS), chosen)

    @work(exclusive=True, exit_on_error=False, group="preview")
    async def _preview_skip(self, card: Preview, reason: str) -> None:
        result = await self.console.call_hub("preview_skip", entry_id=card.entry_id, reason=reason)
        if result is not None and self.console.preview is card:
            self.console.preview = None
            self.notify(f"Skipped {card.member.name} ({reason})", timeout=2)

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
        if self.console.unfinished:
            n = len(self.console.unfinished)
            text.append(f"Unfinished wrap-ups: {n} — press n to finish them\n")
        if getattr(self, "_note", ""):
            text.append(f"\n{self._note}\n", style="dim")
        self.query_one("#home-body", Static).update(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("dial", "preview_skip") and self.preview_shown is not None:
            return True
        if action == "preview_skip":
            return False
        if action in SUPERVISOR_ACTIONS or action in HOME_ACTIONS:
            if self.call_visible:
                return False  # during a call the footer shows the call keys
            if action in SUPERVISOR_ACTIONS:
                session = self.console.session
                return session is not None and session.agent.is_supervisor
            return True
        return super().check_action(action, parameters)

    # -- agent actions -------------------------------------------------------------
    def action_pause(self) -> None:
        from agent_tui.dialogs.reasons import ReasonDialog

        session = self.console.session
        reasons = session.pause_reasons if session is not None else ()

        def chosen(reason: str | None) -> None:
            if reason:
                self._send("pause", reason=reason)

        self.app.push_screen(ReasonDialog("Pause — why?", [(r, r) for r in reasons]), chosen)

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
        from agent_tui.screens.wrapup import WrapUpScreen

        book = self.console.book
        call = book.active_call()
        if call is not None and self.pop is not None and call.call_id == self.call_id:
            self.set_call_visible(True)
            return
        waiting = book.awaiting_wrapup()
        if waiting:
            self.app.push_screen(WrapUpScreen(waiting[0]))
            return
        pop = book.pops.get(call.call_id) if call is not None else None
        if pop is None:
            self.notify("No current call.", timeout=2)
            return
        self.load(pop)

    def action_unfinished(self) -> None:
        from agent_tui.screens.unfinished import UnfinishedScreen

        self.app.push_screen(UnfinishedScreen())

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

    def action_rfm(self) -> None:
        from agent_tui.screens.rfm import RfmScreen

        self.app.push_screen(RfmScreen())

    def action_surveys(self) -> None:
        from agent_tui.screens.surveys import SurveysScreen

        self.app.push_screen(SurveysScreen())
