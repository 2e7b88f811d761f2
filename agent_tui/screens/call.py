"""The screen pop, as the call half of the home screen.

A pop must be on screen within 50 ms. Switching Textual screens re-applies CSS to
every widget of the screen shown, which alone costs more than that, so the pop is not
a screen of its own: the home screen holds a call view, built once at login, and a pop
only fills it in and makes it visible (``display``, not a CSS class: no restyle).

Besides the member keys (see :mod:`agent_tui.screens.member`):

| key | action |
|---|---|
| F8 | hang up |
| F6 | blind transfer |
| F9 | wrap-up (after the call ended) |
| Esc / a | hide / show the call view (the call goes on) |
| ctrl+n / ctrl+p | next / previous history tab |
| ctrl+o | back to the notes |

F6 and F7 are priority keys: the notes box would otherwise take them (TextArea binds both).

The notes are mirrored into the app's :class:`~agent_tui.callbook.CallBook` as they are
typed, so a hub reconnect (which re-sends the pop) keeps them.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Label, Static, TextArea

from agent_tui import heap
from agent_tui.model import CallState, MemberSummary, Profile, ScreenPop, format_duration
from agent_tui.screens.member import MemberScreen
from agent_tui.widgets.member import HistoryTabs

CALL_ACTIONS = frozenset({"hangup", "transfer", "wrapup", "hide_call"})
VIEW_ACTIONS = frozenset({"history_next", "history_prev", "focus_notes"})
"""Keys of the call view itself: only while it is shown."""


class CallDesk(MemberScreen, inherit_bindings=False):
    """A screen with a call view: load a pop into it, follow the call, act on it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f8", "hangup", "Hang up"),
        Binding("f9", "wrapup", "Wrap-up"),
        Binding("f6", "transfer", "Transfer", priority=True),
        Binding("f3", "complaint", "Complaint"),
        Binding("f2", "inquiry", "Inquiry"),
        Binding("f4", "callback", "Callback"),
        Binding("f5", "redeem", "Redeem"),
        Binding("f7", "dial", "Dial", priority=True),
        Binding("ctrl+n", "history_next", "Tabs"),
        Binding("ctrl+p", "history_prev", "Prev tab", show=False),
        Binding("ctrl+o", "focus_notes", "Notes", show=False),
        Binding("f10", "fill", "Fill in", show=False),
        Binding("escape", "hide_call", "Hide call"),
    ]

    class PopShown(Message):
        """A pop's first frame is on screen (``painted_at``, perf_counter); its history
        table follows in the next frame (``history_at``)."""

        def __init__(self, call_id: str, painted_at: float, history_at: float) -> None:
            super().__init__()
            self.call_id = call_id
            self.painted_at = painted_at
            self.history_at = history_at

    def __init__(self) -> None:
        super().__init__(None)
        self.pop: ScreenPop | None = None
        self.call_id = ""
        self._asked = False

    def compose_call(self) -> ComposeResult:
        with Vertical(id="call-view"):
            yield Static(id="call-bar")
            yield from self.compose_member()
            with Horizontal(id="call-body"):
                yield self.history()
                with Vertical(id="notes-box"):
                    yield Label("Notes")
                    yield TextArea("", id="notes", soft_wrap=True, show_line_numbers=False)

    def on_mount(self) -> None:
        # Hidden by the theme (#call-view { display: none }) until the first pop.
        self.set_interval(1.0, self._render_call)

    @property
    def call_visible(self) -> bool:
        return bool(self.query_one("#call-view").display)

    def set_call_visible(self, visible: bool) -> None:
        self.query_one("#call-view").display = visible
        self.call_visibility_changed(visible)
        # The footer is rebuilt after the pop has been painted, not before.
        self.call_after_refresh(self.refresh_bindings)

    def call_visibility_changed(self, visible: bool) -> None:
        """Hook for the home screen (its idle panel)."""

    # -- pops ------------------------------------------------------------------------------
    def load(self, pop: ScreenPop) -> None:
        """Show a new call: its caller, member and notes."""
        self.pop = pop
        self.call_id = pop.call_id
        self.profile = pop.profile
        self._asked = False
        # Header, next best action, call bar and notes go out in the first frame; the
        # history table (the costliest part to draw) is emptied now and filled right after.
        self.set_profile(pop.profile, defer_history=True)
        self.query_one("#notes", TextArea).text = self.console.book.notes.get(self.call_id, "")
        self._render_call()
        if not self.call_visible:
            self.set_call_visible(True)
        self.call_after_refresh(self._after_first_frame, pop)

    def _after_first_frame(self, pop: ScreenPop) -> None:
        painted_at = time.perf_counter()
        if pop is not self.pop:
            return
        history = self.query_one(HistoryTabs)
        history.fill_visible()
        self.call_after_refresh(self._pop_complete, pop, painted_at)
        if pop.profile is None:
            self._ask_member()

    def _pop_complete(self, pop: ScreenPop, painted_at: float) -> None:
        self.post_message(self.PopShown(pop.call_id, painted_at, time.perf_counter()))
        heap.collect_if_due()  # the pop is on screen: the quiet moment for a full collection

    def update_pop(self, pop: ScreenPop) -> None:
        """The hub re-sent the pop (e.g. after a reconnect): refresh, keep the notes."""
        self.pop = pop
        if pop.profile is not None:
            self.set_profile(pop.profile)
        self._render_call()

    def call_changed(self, call: CallState) -> None:
        self._render_call()
        self.refresh_bindings()

    def caller_label(self) -> str:
        if self.pop is None:
            return ""
        return " ".join(p for p in (self.pop.caller_name, self.pop.caller_number) if p)

    def _render_call(self) -> None:
        if self.pop is None:
            return
        call = self.console.book.calls.get(self.call_id)
        state = call.state if call is not None else "ringing"
        text = Text(f" {state.upper()} ", style="bold reverse")
        if call is not None and call.since is not None:
            elapsed = self.console.clock().timestamp() - call.since.timestamp()
            text.append(f" {format_duration(elapsed)}")
        origin = f"queue {self.pop.queue}" if self.pop.queue else "outbound"
        text.append(f"  {origin} · caller {self.caller_label() or '—'} · call {self.call_id}")
        if self.pop.your_member:
            text.append("  ★ your member · 您的会员", style="bold green")
        if self.pop.ivr:
            text.append(f"\n {self.pop.ivr}", style="italic")
        self.query_one("#call-bar", Static).update(text)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id == "notes" and self.call_id:
            self.console.book.notes[self.call_id] = event.text_area.text

    def clear_call(self) -> None:
        """The call was wrapped up: empty the view."""
        self.pop, self.call_id, self.profile = None, "", None
        self.query_one("#notes", TextArea).text = ""
        self.set_call_visible(False)

    # -- chooser / quick-create ------------------------------------------------------------
    def _ask_member(self) -> None:
        if self._asked or self.pop is None or self.app.screen is not self:
            return
        self._asked = True
        if self.pop.kind == "chooser" and self.pop.matches:
            from agent_tui.dialogs.chooser import ChooserDialog

            self.app.push_screen(ChooserDialog(self.pop.matches), self._chosen)
        else:
            from agent_tui.dialogs.forms import QuickCreateDialog

            self.app.push_screen(QuickCreateDialog(self.pop.caller_name), self._created)

    def _chosen(self, member: MemberSummary | None) -> None:
        if member is not None:
            self._open_member(member.member_id)

    def _created(self, form: dict[str, str] | None) -> None:
        if form is not None:
            self._create_member(form)

    @work(exclusive=True, exit_on_error=False, group="call-member")
    async def _create_member(self, form: dict[str, str]) -> None:
        result = await self.console.call_hub("member_create", **form)
        if result is not None:
            self.notify(f"Member {result.get('member_no', '')} created", timeout=3)
            self._open_member(int(result.get("member_id", 0)))

    @work(exclusive=True, exit_on_error=False, group="call-profile")
    async def _open_member(self, member_id: int) -> None:
        call_id = self.call_id
        result = await self.console.call_hub("member_profile", member_id=member_id)
        if result is not None and isinstance(result.get("profile"), dict):
            profile = Profile.parse(result["profile"])
            self.console.book.members[call_id] = profile.member_id
            pop = self.console.book.pops.get(call_id)
            if pop is not None:
                self.console.book.pops[call_id] = replace(pop, profile=profile)
            if call_id == self.call_id:
                self.set_profile(profile)

    # -- call actions --------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in CALL_ACTIONS or action in self.MEMBER_ACTIONS:
            if self.pop is None or not self.call_visible:
                return False
            call = self.console.book.calls.get(self.call_id)
            ended = call is not None and call.state == "ended"
            if action in ("transfer", "hangup"):
                return None if ended else True
            if action == "wrapup":
                return True if ended else None
        if action in VIEW_ACTIONS:
            return True if self.pop is not None and self.call_visible else False
        return super().check_action(action, parameters)

    def action_hide_call(self) -> None:
        self.set_call_visible(False)

    def action_focus_notes(self) -> None:
        self.query_one("#notes", TextArea).focus()

    def profile_reloaded(self, profile: Profile) -> None:
        """Keep the call's pop in step with the reloaded member (a reconnect re-shows it)."""
        call_id = self.call_id
        pop = self.console.book.pops.get(call_id)
        if pop is not None:
            self.console.book.pops[call_id] = replace(pop, profile=profile)
        if self.pop is not None and self.pop.profile is not None:
            self.pop = replace(self.pop, profile=profile)
        self.set_profile(profile)

    def action_hangup(self) -> None:
        self._call_cmd("hangup")

    def action_transfer(self) -> None:
        from agent_tui.dialogs.forms import TransferDialog

        def chosen(form: dict[str, str] | None) -> None:
            if form:
                self._call_cmd("transfer", target=form["target"])

        self.app.push_screen(TransferDialog(), chosen)

    @work(exclusive=True, exit_on_error=False, group="call-cmd")
    async def _call_cmd(self, cmd: str, **args: str) -> None:
        if await self.console.call_hub(cmd, call_id=self.call_id, **args) is not None:
            self.notify(f"{cmd}: sent", timeout=2)

    def action_wrapup(self) -> None:
        from agent_tui.screens.wrapup import WrapUpScreen

        self.app.push_screen(WrapUpScreen(self.call_id))
