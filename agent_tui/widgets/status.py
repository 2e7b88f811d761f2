"""The agent's state bar and the hub-connection banner (shown on every working screen)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.widget import Widget

from agent_tui.model import AgentState, format_duration

if TYPE_CHECKING:
    from agent_tui.app import ConsoleApp

STATE_LABELS = {
    "logged_out": "LOGGED OUT",
    "available": "AVAILABLE",
    "ringing": "RINGING",
    "on_call": "ON CALL",
    "wrap_up": "WRAP-UP",
    "paused": "PAUSED",
}


def state_line(state: AgentState | None, now_s: float | None) -> str:
    """``AVAILABLE 03:12 │ Calls 12 │ Talk 1:02:03`` (pure, for tests and the bar).

    The hub counts a call when it ends; during a call the bar counts it already and its
    talk time ticks, so the counters are live rather than a call behind."""
    if state is None:
        return "WAITING FOR HUB"
    label = STATE_LABELS.get(state.state, state.state.upper())
    if state.state == "paused" and state.reason:
        label += f" ({state.reason})"
    if state.next_pause and state.state in ("ringing", "on_call", "wrap_up"):
        label += f" → {state.next_pause}"  # the pause asked for, applied after the wrap-up
    in_state = (
        format_duration(now_s - state.since.timestamp())
        if state.since is not None and now_s is not None
        else "--:--"
    )
    calls, talk = state.calls_today, float(state.talk_s_today)
    if state.state == "on_call":
        calls += 1
        if state.since is not None and now_s is not None:
            talk += max(0.0, now_s - state.since.timestamp())
    return f"{label} {in_state} │ Calls {calls} │ Talk {format_duration(talk)}"


class StateBar(Widget):
    """One line: state, pause reason, time in state (ticking), calls and talk time today.

    The bar's CSS class follows the state (``-available``, ``-paused`` ...), so the
    theme colours it with theme variables.
    """

    DEFAULT_CSS = """
    StateBar { height: 1; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "agent_state", self._state_changed)
        self.set_interval(1.0, self.refresh)

    def _state_changed(self, state: AgentState | None) -> None:
        for name in STATE_LABELS:
            self.set_class(state is not None and state.state == name, f"-{name}")
        self.refresh()

    def render(self) -> Text:
        app = cast("ConsoleApp", self.app)
        state = app.agent_state
        line = state_line(state, app.clock().timestamp())
        who = ""
        if app.session is not None:
            who = f"{app.session.agent.name} {app.session.agent.code}"
        text = Text(" " + line, overflow="ellipsis", no_wrap=True)
        if who:
            pad = max(1, self.size.width - text.cell_len - len(who) - 2)
            text.append(" " * pad + who + " ")
        return text


class HubBanner(Widget):
    """A banner while the hub connection is down; hidden when connected."""

    DEFAULT_CSS = """
    HubBanner { height: 1; display: none; }
    HubBanner.-down { display: block; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "hub_status", self._status_changed)

    def _status_changed(self, status: str) -> None:
        app = cast("ConsoleApp", self.app)
        self.set_class(app.session is not None and status != "connected", "-down")
        self.refresh()

    def render(self) -> Text:
        status = cast("ConsoleApp", self.app).hub_status
        if status == "auth_failed":
            return Text(" Hub refused our login: log in again (ctrl+q to quit).")
        return Text(f" Hub lost ({status}): reconnecting by itself. Notes are kept.")
