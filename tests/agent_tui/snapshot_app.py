"""The snapshot app factory: the real console, offline, fed recorded pushes and results.

Times are frozen (``recorded.fixed_clock``), the agent's zone is fixed, and nothing
talks to a hub, so every run renders the same screen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from textual.pilot import Pilot

from agent_tui.app import ConsoleApp
from tests.agent_tui import recorded as R

AGENT_TZ = ZoneInfo("Asia/Shanghai")


def offline_app(clock: Callable[[], dt.datetime] = R.fixed_clock) -> ConsoleApp:
    return ConsoleApp(clock=clock, agent_tz=AGENT_TZ, offline=True)


async def _session(pilot: Pilot[Any], login: dict[str, Any]) -> ConsoleApp:
    app = pilot.app
    assert isinstance(app, ConsoleApp)
    app.start_session(login)
    app.hub_status = "connected"
    await pilot.pause()
    return app


async def pop_screen(pilot: Pilot[Any]) -> None:
    app = await _session(pilot, R.LOGIN_AGENT)
    app.handle_push("agent_state", {**R.AGENT_AVAILABLE, "state": "on_call", "since": R.at(65)})
    app.handle_push("screen_pop", R.POP_MEMBER)
    app.handle_push("call_state", R.CALL_UP)
    await pilot.pause()


async def wrapup_screen(pilot: Pilot[Any]) -> None:
    await pop_screen(pilot)
    app = pilot.app
    assert isinstance(app, ConsoleApp)
    app.book.notes[str(R.CALL_UP["call_id"])] = "会员询问冬季外套预售；已说明积分抵扣规则。"
    app.handle_push(
        "agent_state",
        {**R.AGENT_AVAILABLE, "state": "wrap_up", "since": R.at(23), "next_pause": "break"},
    )
    app.handle_push("call_state", {**R.CALL_ENDED, "wrapup_due": True, "agent": "1001"})
    await pilot.pause()


async def search_screen(pilot: Pilot[Any]) -> None:
    from agent_tui.model import MemberSummary
    from agent_tui.screens.search import SearchScreen

    app = await _session(pilot, R.LOGIN_AGENT)
    app.handle_push("agent_state", R.AGENT_AVAILABLE)
    screen = SearchScreen()
    await app.push_screen(screen)
    await pilot.pause()
    screen.query_one("#query").value = "李"  # type: ignore[attr-defined]
    screen.show_results(tuple(MemberSummary.parse(m) for m in R.SEARCH_RESULTS), "李", hidden=2)
    await pilot.pause()


async def wallboard_screen(pilot: Pilot[Any]) -> None:
    from agent_tui.screens.wallboard import WallboardScreen

    app = await _session(pilot, R.LOGIN_SUPERVISOR)
    app.handle_push("agent_state", R.AGENT_AVAILABLE)
    await app.push_screen(WallboardScreen())
    app.handle_push("wallboard", R.WALLBOARD)
    await pilot.pause()


async def unfinished_screen(pilot: Pilot[Any]) -> None:
    from agent_tui.screens.unfinished import UnfinishedScreen

    app = await _session(pilot, R.LOGIN_AGENT)
    app.handle_push("agent_state", R.AGENT_AVAILABLE)
    screen = UnfinishedScreen()
    await app.push_screen(screen)
    await pilot.pause()
    screen.show(R.UNFINISHED_CALLS)
    await pilot.pause()


async def supervisor_unfinished_screen(pilot: Pilot[Any]) -> None:
    from agent_tui.screens.unfinished import UnfinishedScreen

    app = await _session(pilot, R.LOGIN_SUPERVISOR)
    app.handle_push("agent_state", R.AGENT_AVAILABLE)
    screen = UnfinishedScreen()
    await app.push_screen(screen)
    await pilot.pause()
    other = {
        **R.UNFINISHED_CALLS[1],
        "call_id": "1700000042.877",
        "agent": "1003",
        "member_name": "Zhang San",
        "direction": "inbound",
        "ended_at": R.at(640),
    }
    screen.show([*R.UNFINISHED_CALLS, other], R.AGENTS_UNFINISHED)
    await pilot.pause()


async def pop_history_screen(pilot: Pilot[Any]) -> None:
    """The pop with its history reached by keyboard: ctrl+n twice = the Complaints tab."""
    await pop_screen(pilot)
    await pilot.press("ctrl+n", "ctrl+n")
    await pilot.pause()


async def keys_screen(pilot: Pilot[Any]) -> None:
    """F1 on the pop: every key of the call view, including those the footer left out."""
    await pop_screen(pilot)
    await pilot.press("f1")
    await pilot.pause()


async def home_screen(pilot: Pilot[Any]) -> None:
    """The idle home screen of an agent in the demo: the note line says the hub port and
    what the rules held back."""
    app = await _session(pilot, R.LOGIN_AGENT)
    app.handle_push("agent_state", R.AGENT_AVAILABLE)
    home = app.home
    assert home is not None
    home._note = (
        "Demo hub 127.0.0.1:7070 · Held back by the rules: 12 call(s): outside the member's "
        "local calling window; 19 message(s): sms: quiet hours"
    )
    home._render_body()
    await pilot.pause()


SCREENS: dict[str, Callable[[Pilot[Any]], Awaitable[None]]] = {
    "pop_history": pop_history_screen,
    "keys": keys_screen,
    "home": home_screen,
    "pop": pop_screen,
    "wrapup": wrapup_screen,
    "search": search_screen,
    "wallboard": wallboard_screen,
    "unfinished": unfinished_screen,
    "supervisor_unfinished": supervisor_unfinished_screen,
}
