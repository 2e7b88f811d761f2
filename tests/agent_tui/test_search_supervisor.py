"""Member search -> profile -> click-to-dial, and the supervisor screens, against the real hub."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from textual.widgets import DataTable, Input, Static

from agent_tui.screens.campaigns import CampaignsScreen
from agent_tui.screens.home import HomeScreen
from agent_tui.screens.profile import ProfileScreen
from agent_tui.screens.search import SearchScreen
from agent_tui.screens.wrapup import WrapUpScreen
from crm_bridge.db import session_scope
from crm_bridge.models import CallAttempt, Campaign, Member
from tests.agent_tui.stack import IFACE, Stack, log_in, settle, type_text

pytestmark = pytest.mark.e2e


async def test_search_profile_click_to_dial(stack: Stack) -> None:
    app = stack.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, "1001")
        home = app.home
        assert isinstance(home, HomeScreen)
        assert not app.screen.check_action("wallboard", ())  # agents see no supervisor keys

        await pilot.press("s")
        await settle(pilot, lambda: isinstance(app.screen, SearchScreen))
        search = app.screen
        assert isinstance(search, SearchScreen)
        await type_text(pilot, "M000001")
        await pilot.press("enter")
        await settle(pilot, lambda: len(search.results) == 1, what="results")
        table = search.query_one("#results", DataTable)
        assert table.row_count == 1 and "李伟" in [str(c) for c in table.get_row_at(0)]
        assert search.results[0].phone_masked == "+86 138****8000"

        await pilot.press("enter")  # opens the profile
        await settle(pilot, lambda: isinstance(app.screen, ProfileScreen))
        profile_screen = app.screen
        assert isinstance(profile_screen, ProfileScreen)
        await settle(pilot, lambda: profile_screen.profile is not None, what="profile")
        assert profile_screen.profile is not None and profile_screen.profile.name == "李伟"
        assert profile_screen.profile.purchases  # history tab data

        await pilot.press("f7")  # click-to-dial: back on the home screen's call view
        await settle(pilot, lambda: app.screen is home and home.call_visible, what="dial view")
        call_id = home.call_id
        await stack.sim.agent_answer(IFACE["1001"])
        await settle(
            pilot,
            lambda: call_id in app.book.calls and app.book.calls[call_id].state == "up",
            within=15,
            what="outbound call up",
        )
        await pilot.press("f8")
        await settle(pilot, lambda: isinstance(app.screen, WrapUpScreen), what="wrap-up")
        await pilot.press("s")
        await settle(pilot, lambda: app.screen is home and not home.call_visible)
        await stack.hub.writer.flush()
    with session_scope(stack.engine) as s:
        attempt = s.scalars(select(CallAttempt)).one()
        assert attempt.direction.value == "outbound" and attempt.disposition == "satisfied"


async def test_supervisor_wallboard_campaigns_reassign_surveys(stack: Stack) -> None:
    app = stack.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await log_in(pilot, "9001")
        home = app.home
        assert isinstance(home, HomeScreen)
        assert home.check_action("wallboard", ())

        await pilot.press("w")
        await settle(pilot, lambda: app.wallboard is not None, what="wallboard push")
        assert app.wallboard is not None
        assert {a.code for a in app.wallboard.agents} >= {"1001", "1002", "9001"}
        table = app.screen.query_one("#agents-table", DataTable)
        await settle(pilot, lambda: table.row_count >= 3, what="agents rows")
        assert "Abandoned" in str(app.screen.query_one("#wb-figures", Static).render())
        await pilot.press("escape")

        await pilot.press("c")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "CampaignsScreen")
        assert isinstance(app.screen, CampaignsScreen)
        campaigns: CampaignsScreen = app.screen
        await pilot.press("n")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "CampaignDialog")
        await type_text(pilot, "Follow up week")
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.screen is campaigns and campaigns.campaigns, what="list")
        assert campaigns.campaigns[0].name == "Follow up week"
        assert campaigns.campaigns[0].status == "draft"
        await pilot.press("s")
        await settle(pilot, lambda: campaigns.campaigns[0].status == "running", what="started")
        await pilot.press("p")
        await settle(pilot, lambda: campaigns.campaigns[0].status == "paused", what="paused")
        await pilot.press("escape")

        # Agent 1002 leaves: every member of theirs goes to 1001, after a confirmation.
        await pilot.press("m")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "MaintainersScreen")
        screen = app.screen
        await settle(pilot, lambda: screen.query_one("#agents-table", DataTable).row_count >= 3)
        screen.query_one("#ra-from", Input).value = "1002"
        screen.query_one("#ra-to", Input).value = "1001"
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDialog")
        await pilot.press("y")
        status = screen.query_one("#ra-status", Static)
        await settle(pilot, lambda: "Moved 2 member(s)" in str(status.render()), what="moved")
        await pilot.press("escape")

        await pilot.press("v")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "SurveysScreen")
        chart = app.screen.query_one("#survey-chart", Static)
        await settle(pilot, lambda: "Loading" not in str(chart.render()), what="survey answer")

    with session_scope(stack.engine) as s:
        moved = s.scalars(
            select(Member.name).where(Member.maintaining_agent_id == stack.ids.agents["1001"])
        ).all()
        assert set(moved) == {"李伟", "Wang Fang", "Zhang San"}
        assert s.scalars(select(Campaign.status)).one().value == "paused"
