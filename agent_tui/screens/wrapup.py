"""Wrap-up after a call: disposition (one hotkey each, from the login result), notes,
an optional callback, and a timer showing how long wrap-up has taken. An answered win-back
call also ends with the reason the member stopped buying: when the hub answers
``reason_required`` the reasons are offered (digits pick), and the wrap-up is sent again.

| key | action |
|---|---|
| configured hotkeys | send that disposition |
| Enter | send the highlighted disposition |
| F4 | schedule a callback with the wrap-up |
| Tab | between the list and the notes |
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from agent_tui.model import format_duration
from agent_tui.widgets.footer import FittingFooter
from agent_tui.widgets.status import HubBanner, StateBar

if TYPE_CHECKING:
    from agent_tui.app import ConsoleApp


class WrapUpScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("f4", "callback", "Callback")]

    def __init__(self, call_id: str) -> None:
        super().__init__()
        self.call_id = call_id
        self.callback_at: dt.datetime | None = None
        self._started: dt.datetime | None = None
        self._sending = False
        self.reason: str | None = None
        session = self.console.session
        self.dispositions = session.dispositions if session is not None else ()
        self.reasons = session.winback_reasons if session is not None else ()
        for hotkey, code in self.dispositions:
            if hotkey:
                self._bindings.bind(hotkey, f"dispose({code!r})", code)

    @property
    def console(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def compose(self) -> ComposeResult:
        yield HubBanner()
        yield StateBar()
        yield Static(id="wrap-bar")
        with Horizontal(id="wrap-body"):
            with Vertical(id="wrap-left"):
                yield Label("Disposition")
                yield OptionList(
                    *(
                        Option(Text(f"{hotkey}  {code}"), id=code)
                        for hotkey, code in self.dispositions
                    ),
                    id="dispositions",
                )
            with Vertical(id="wrap-right"):
                yield Label("Notes")
                yield TextArea(
                    self.console.book.notes.get(self.call_id, ""),
                    id="wrap-notes",
                    soft_wrap=True,
                )
                yield Static(id="wrap-callback")
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        call = self.console.book.calls.get(self.call_id)
        ended = call.since if call is not None and call.state == "ended" else None
        self._started = ended or self.console.clock()
        self._tick()
        self._render_callback()
        self.set_interval(1.0, self._tick)
        self.query_one("#dispositions", OptionList).focus()

    def _member_label(self) -> str:
        pop = self.console.book.pops.get(self.call_id)
        if pop is None:
            return ""
        if pop.profile is not None:
            return f"{pop.profile.name} · No. {pop.profile.member_no}"
        return pop.caller_name or pop.caller_number

    def _tick(self) -> None:
        assert self._started is not None
        elapsed = self.console.clock().timestamp() - self._started.timestamp()
        text = Text(f" WRAP-UP {format_duration(elapsed)} ", style="bold reverse")
        text.append(f"  call {self.call_id}")
        label = self._member_label()
        if label:
            text.append(f" · {label}")
        self.query_one("#wrap-bar", Static).update(text)

    def _render_callback(self) -> None:
        widget = self.query_one("#wrap-callback", Static)
        if self.callback_at is None:
            text = "Callback: none (F4 to schedule)"
        else:
            from agent_tui.dialogs.callback import both_zones

            text = f"Callback: {both_zones(self.callback_at, self.console.agent_tz)}"
        if self.reason is not None:
            label = next((r.label for r in self.reasons if r.code == self.reason), self.reason)
            text += f"\nWin-back reason: {label}"
        widget.update(text)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.console.book.notes[self.call_id] = event.text_area.text

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.action_dispose(event.option.id)

    def action_callback(self) -> None:
        from agent_tui.dialogs.callback import CallbackDialog

        pop = self.console.book.pops.get(self.call_id)
        tz_name = pop.profile.timezone if pop is not None and pop.profile is not None else ""
        self.app.push_screen(
            CallbackDialog(
                self.console.member_tz(tz_name) if tz_name else self.console.agent_tz,
                self.console.agent_tz,
                self.console.clock(),
                ask_reason=False,
            ),
            self._callback_chosen,
        )

    def _callback_chosen(self, result: tuple[dt.datetime, str] | None) -> None:
        if result is not None:
            self.callback_at = result[0]
            self._render_callback()

    def action_dispose(self, code: str) -> None:
        if not self._sending:
            self._send(code)

    @work(exclusive=True, exit_on_error=False, group="wrapup")
    async def _send(self, code: str) -> None:
        from cti.hubproto import ErrorCode, ProtocolError

        self._sending = True
        try:
            notes = self.query_one("#wrap-notes", TextArea).text
            if self._needs_note() and not notes.strip():
                self._ask_note()
                return
            try:
                await self.console.request(
                    "wrapup",
                    call_id=self.call_id,
                    disposition=code,
                    notes=notes or None,
                    callback_at=self.callback_at.isoformat() if self.callback_at else None,
                    reason=self.reason,
                )
            except ProtocolError as exc:
                if exc.code is ErrorCode.REASON_REQUIRED and self.reason is None and self.reasons:
                    self._ask_reason(code)
                else:
                    self.console.notify(exc.message, title=exc.code.value, severity="error")
                return
            except (ConnectionError, TimeoutError):
                self.notify("The hub is not reachable; try again shortly.", severity="error")
                return
        finally:
            self._sending = False
        self.notify(f"Wrap-up sent: {code}", timeout=3)
        self.console.finish_call(self.call_id)

    def _needs_note(self) -> bool:
        return any(r.code == self.reason and r.needs_note for r in self.reasons)

    def _ask_note(self) -> None:
        self.notify("This reason needs a note: write it, then choose the disposition again.",
                    severity="warning")  # fmt: skip
        self.query_one("#wrap-notes", TextArea).focus()

    def _ask_reason(self, code: str) -> None:
        from agent_tui.dialogs.reasons import ReasonDialog

        def chosen(reason: str | None) -> None:
            if reason is None:
                return
            self.reason = reason
            self._render_callback()
            self.action_dispose(code)

        self.app.push_screen(
            ReasonDialog("Why did the member stop buying? · 为什么不再购买？",
                         [(r.code, r.label) for r in self.reasons]),
            chosen,
        )  # fmt: skip
