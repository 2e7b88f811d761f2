"""The pop's "missing" hint and F10: the agent fills in the member's city during the call,
over the real hub; the hint updates and the change is audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from agent_tui.dialogs.forms import FillDialog
from agent_tui.screens.profile import ProfileScreen
from agent_tui.screens.search import SearchScreen
from crm_bridge.db import session_scope
from crm_bridge.models import AuditLog, Member
from tests.agent_tui.stack import Stack, log_in, settle, type_text

pytestmark = pytest.mark.e2e


async def test_f10_fills_in_a_missing_city(stack: Stack) -> None:
    app = stack.app()
    async with app.run_test(size=(100, 30)) as pilot:
        await log_in(pilot, "1001")
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(app.screen, SearchScreen))
        search = app.screen
        assert isinstance(search, SearchScreen)
        await type_text(pilot, "M000001")
        await pilot.press("enter")
        await settle(pilot, lambda: len(search.results) == 1, what="results")
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ProfileScreen))
        screen = app.screen
        assert isinstance(screen, ProfileScreen)
        prof: ProfileScreen = screen
        await settle(pilot, lambda: screen.profile is not None, what="profile")
        assert screen.profile is not None and "city" in screen.profile.fillable
        assert any("F10" in a for a in screen.profile.next_best_actions)  # the hint, in Chinese
        await pilot.press("f10")
        await settle(pilot, lambda: isinstance(app.screen, FillDialog), what="dialog")
        dialog = app.screen
        assert isinstance(dialog, FillDialog)
        dialog.query_one("#fill-field").value = "city"  # type: ignore[attr-defined]
        await type_text(pilot, "苏州")
        await pilot.press("enter")
        await settle(
            pilot,
            lambda: (
                app.screen is prof
                and prof.profile is not None
                and "city" not in prof.profile.fillable
            ),
            what="saved",
        )
    with session_scope(stack.engine) as s:
        liwei = s.scalars(select(Member).where(Member.member_no == "M000001")).one()
        assert liwei.city == "苏州"
        actions = s.scalars(
            select(AuditLog.details).where(AuditLog.action == "member.update")
        ).all()
        assert actions == [{"field": "city", "source": "call"}]
