"""The screen pop: who is calling, their file, notes, and the call controls.

Besides the member keys (see :mod:`agent_tui.screens.member`):

| key | action |
|---|---|
| F6 | blind transfer |
| F8 | hang up |
| F9 | wrap-up (after the call ended) |

The notes are mirrored into the app's :class:`~agent_tui.calls.CallBook` as they are
typed, so a hub reconnect (which re-sends the pop) or a rebuilt screen keeps them.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Label, Static, TextArea

from agent_tui.model import CallState, MemberSummary, Profile, ScreenPop, format_duration
from agent_tui.screens.member import MemberScreen


class CallScreen(MemberScreen, inherit_bindings=False):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f8", "hangup", "Hang up"),
        Binding("f6", "transfer", "Transfer"),
        Binding("f9", "wrapup", "Wrap-up"),
        *MemberScreen.BINDINGS,
    ]

    def __init__(self, pop: ScreenPop) -> None:
        super().__init__(pop.profile)
        self.pop = pop
        self.call_id = pop.call_id
        self._asked = False

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield Static(id="call-bar")
        yield from self.compose_member()
        with Horizontal(id="call-body"):
            yield self.history()
            with Vertical(id="notes-box"):
                yield Label("Notes")
                yield TextArea(
                    self.console.book.notes.get(self.call_id, ""),
                    id="notes",
                    soft_wrap=True,
                    show_line_numbers=False,
                )
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.set_profile(self.profile)
        self._render_call()
        self.set_interval(1.0, self._render_call)
        if self.profile is None:
            self.call_after_refresh(self._ask_member)

    def caller_label(self) -> str:
        return " ".join(p for p in (self.pop.caller_name, self.pop.caller_number) if p)

    # -- pushes ----------------------------------------------------------------------
    def update_pop(self, pop: ScreenPop) -> None:
        """The hub re-sent the pop (e.g. after a reconnect): refresh, keep the notes."""
        self.pop = pop
        if pop.profile is not None:
            self.profile = pop.profile
        if self.is_mounted:
            self.set_profile(self.profile)
            self._render_call()

    def call_changed(self, call: CallState) -> None:
        if not self.is_mounted:
            return  # on_mount renders from the call book
        self._render_call()
        self.refresh_bindings()

    def _render_call(self) -> None:
        call = self.console.book.calls.get(self.call_id)
        state = call.state if call is not None else "ringing"
        text = Text(f" {state.upper()} ", style="bold reverse")
        if call is not None and call.since is not None:
            text.append(
                f" {format_duration(self.console.clock().timestamp() - call.since.timestamp())}"
            )
        origin = f"queue {self.pop.queue}" if self.pop.queue else "outbound"
        text.append(f"  {origin} · caller {self.caller_label() or '—'} · call {self.call_id}")
        self.query_one("#call-bar", Static).update(text)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id == "notes":
            self.console.book.notes[self.call_id] = event.text_area.text

    # -- chooser / quick-create ----------------------------------------------------------
    def _ask_member(self) -> None:
        if self._asked:
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
        result = await self.console.call_hub("member_profile", member_id=member_id)
        if result is not None and isinstance(result.get("profile"), dict):
            profile = Profile.parse(result["profile"])
            self.console.book.members[self.call_id] = profile.member_id
            self.set_profile(profile)

    # -- call actions ----------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        call = self.console.book.calls.get(self.call_id)
        ended = call is not None and call.state == "ended"
        if action in ("transfer", "hangup"):
            return None if ended else True
        if action == "wrapup":
            return True if ended else None
        return super().check_action(action, parameters)

    def action_back(self) -> None:
        # The call goes on: the home screen's "a" key brings this screen back.
        self.app.pop_screen()

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

        self.app.switch_screen(WrapUpScreen(self.call_id))
