"""Schedule a callback: date and time typed in the member's time zone, shown in both zones.

The result is an aware datetime in the member's zone (``zoneinfo``); callers send it as
ISO 8601 with its offset. A wall-clock time that does not exist (the DST gap) or is
in the past is refused with a message.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from agent_tui.widgets.footer import FittingFooter


def zone_name(tz: dt.tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz)


def parse_local(date_s: str, time_s: str, tz: dt.tzinfo) -> dt.datetime:
    """``2026-11-24`` + ``10:30`` in ``tz`` as an aware datetime; ValueError when impossible."""
    try:
        naive = dt.datetime.combine(
            dt.date.fromisoformat(date_s.strip()), dt.time.fromisoformat(time_s.strip())
        )
    except ValueError:
        raise ValueError("Use YYYY-MM-DD and HH:MM.") from None
    when = naive.replace(tzinfo=tz)
    round_trip = when.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None)
    if round_trip != naive:
        raise ValueError(
            f"{naive:%Y-%m-%d %H:%M} does not exist in {zone_name(tz)} (clock change)."
        )
    return when


def both_zones(when: dt.datetime, agent_tz: dt.tzinfo) -> str:
    """``2026-11-24 10:30 CST (Asia/Shanghai) = 2026-11-24 02:30 UTC (you)``."""
    assert when.tzinfo is not None
    member = f"{when:%Y-%m-%d %H:%M} {when.tzname()} ({zone_name(when.tzinfo)})"
    mine = when.astimezone(agent_tz)
    return f"{member} = {mine:%Y-%m-%d %H:%M} {mine.tzname()} (you)"


class CallbackDialog(ModalScreen[tuple[dt.datetime, str] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "Schedule"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(
        self,
        member_tz: dt.tzinfo,
        agent_tz: dt.tzinfo,
        now: dt.datetime,
        *,
        ask_reason: bool = True,
    ) -> None:
        super().__init__()
        self.member_tz, self.agent_tz, self.now = member_tz, agent_tz, now
        self.ask_reason = ask_reason

    def compose(self) -> ComposeResult:
        tomorrow = (self.now.astimezone(self.member_tz) + dt.timedelta(days=1)).date()
        with Vertical(classes="dialog"):
            yield Label(
                f"Callback — member's time ({zone_name(self.member_tz)})", classes="dialog-title"
            )
            with Horizontal(classes="row"):
                yield Input(tomorrow.isoformat(), placeholder="YYYY-MM-DD", id="cb-date")
                yield Input("10:00", placeholder="HH:MM", id="cb-time")
            if self.ask_reason:
                yield Input(placeholder="Reason", id="cb-reason", max_length=200)
            yield Static("", id="cb-preview")
            yield Button("Schedule (ctrl+s)", variant="primary", id="cb-save")
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        self._preview()

    def _parse(self) -> dt.datetime:
        when = parse_local(
            self.query_one("#cb-date", Input).value,
            self.query_one("#cb-time", Input).value,
            self.member_tz,
        )
        if when <= self.now:
            raise ValueError("That time has already passed.")
        return when

    def _preview(self) -> None:
        preview = self.query_one("#cb-preview", Static)
        try:
            preview.update(both_zones(self._parse(), self.agent_tz))
            preview.remove_class("-error")
        except ValueError as exc:
            preview.update(str(exc))
            preview.add_class("-error")

    def on_input_changed(self, event: Input.Changed) -> None:
        self._preview()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        try:
            when = self._parse()
        except ValueError:
            self._preview()
            return
        reason = ""
        if self.ask_reason:
            reason = self.query_one("#cb-reason", Input).value.strip() or "callback"
        self.dismiss((when, reason))

    def action_cancel(self) -> None:
        self.dismiss(None)
