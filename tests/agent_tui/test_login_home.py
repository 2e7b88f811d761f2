"""Login, the state bar, pause with a reason, queue login/logout — against the real hub."""

from __future__ import annotations

import gc

import pytest
from textual.widgets import Static

from agent_tui.screens.home import HomeScreen
from agent_tui.screens.login import LoginScreen
from agent_tui.widgets.status import HubBanner, StateBar
from tests.agent_tui.stack import Stack, log_in, settle

pytestmark = pytest.mark.e2e


def _text(widget: object) -> str:
    from rich.text import Text

    assert isinstance(widget, StateBar | HubBanner | Static)
    rendered = widget.render()
    return rendered.plain if isinstance(rendered, Text) else str(rendered)


async def test_bad_password_then_login(stack: Stack) -> None:
    app = stack.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, LoginScreen))
        await pilot.click("#agent")
        await pilot.press(*"1001", "enter", *"wrongpw", "enter")
        error = app.screen.query_one("#login-error", Static)
        await settle(pilot, lambda: "Wrong agent id" in str(error.render()), what="error")
        assert error.has_class("-error")
        assert isinstance(app.screen, LoginScreen) and app.client is None
        await log_in(pilot, "1001")
        assert app.session is not None and app.session.agent.name == "王芳"
        assert "lunch" in app.session.pause_reasons
        assert ("s", "satisfied") in app.session.dispositions
        bar = app.screen.query_one(StateBar)
        assert "王芳 1001" in _text(bar)
        await settle(pilot, lambda: gc.get_freeze_count() > 0, what="heap settled")
    # The GC policy (agent_tui.heap) is the app's own: undone when it closes.
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold()[2] < 1000


async def test_rate_limited_login_is_explained(stack: Stack) -> None:
    from cti.hub.ratelimit import FailureLimiter

    stack.hub.limiter = FailureLimiter(1, 60.0)
    app = stack.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, LoginScreen))
        error = app.screen.query_one("#login-error", Static)
        for _ in range(2):
            await pilot.click("#agent")
            app.screen.query_one("#agent").value = ""  # type: ignore[attr-defined]
            await pilot.press(*"1001", "enter", *"nopenope", "enter")
            await pilot.pause(0.3)
        await settle(pilot, lambda: "Too many attempts" in str(error.render()), what="limit")


async def test_pause_reason_unpause_and_queue(stack: Stack) -> None:
    app = stack.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, "1001")
        assert isinstance(app.screen, HomeScreen)
        await settle(pilot, lambda: app.agent_state and app.agent_state.state == "available")
        bar = app.screen.query_one(StateBar)
        assert _text(bar).startswith(" AVAILABLE")

        await pilot.press("p")  # reason picker from the login result
        await settle(pilot, lambda: app.screen.__class__.__name__ == "ReasonDialog")
        await pilot.press("2")  # lunch
        await settle(pilot, lambda: app.agent_state and app.agent_state.state == "paused")
        assert app.agent_state is not None and app.agent_state.reason == "lunch"
        await pilot.pause(0.05)
        assert "PAUSED (lunch)" in _text(bar) and bar.has_class("-paused")
        member = stack.sim.state.queues["members"].members[0]  # the PBX saw it
        assert member.paused and member.paused_reason == "lunch"

        await pilot.press("u")
        await settle(pilot, lambda: app.agent_state and app.agent_state.state == "available")
        assert bar.has_class("-available")

        await pilot.press("o")  # leave the queue
        await settle(pilot, lambda: app.agent_state and "members" not in app.agent_state.queues)
        await pilot.press("l")  # and join again
        await settle(pilot, lambda: app.agent_state and "members" in app.agent_state.queues)
