"""A keyboard-only agent at 80x24 (over SSH, no mouse), against the real hub and PBX simulator:
every history tab and its list by key, F1 lists every key, the lists refresh after the
agent's own complaint and redemption, search lists only members the agent may open, and
the Calls / Talk counters are live during a call."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import pytest
from sqlalchemy import select
from textual.widgets import DataTable, Static, TabbedContent, TextArea

from agent_tui.model import AgentState, Profile
from agent_tui.screens.home import HomeScreen
from agent_tui.screens.profile import ProfileScreen
from agent_tui.screens.search import SearchScreen
from agent_tui.widgets.footer import FittingFooter, KeysScreen
from agent_tui.widgets.member import TABS, NextBestAction
from agent_tui.widgets.status import state_line
from crm_bridge.db import session_scope
from crm_bridge.models import Complaint
from cti.screenpop import crm
from cti.screenpop.mask import mask_tree
from tests.agent_tui.stack import IFACE, LI_WEI, Stack, log_in, settle, type_text

pytestmark = pytest.mark.e2e


async def _open_profile(pilot: Any, app: Any, query: str) -> ProfileScreen:
    await pilot.press("s")
    await settle(pilot, lambda: isinstance(app.screen, SearchScreen))
    search = app.screen
    await type_text(pilot, query)
    await pilot.press("enter")
    await settle(pilot, lambda: len(search.results) == 1, what="results")
    await pilot.press("enter")
    await settle(pilot, lambda: isinstance(app.screen, ProfileScreen))
    screen = app.screen
    assert isinstance(screen, ProfileScreen)
    await settle(pilot, lambda: screen.profile is not None, what="profile")
    return screen


def _is_screen(app: Any, name: str) -> bool:
    return bool(app.screen.__class__.__name__ == name)


def _is_active(tabbed: TabbedContent, pane: str) -> bool:
    return tabbed.active == pane


def _footer_fits(screen: Any, width: int) -> str:
    footer = screen.query_one(FittingFooter)
    keys = [f"{k.key_display} {k.description}" for k in footer.children]
    line = " ".join(keys)
    assert len(line) <= width, line
    return line


async def test_history_tabs_complaint_and_redemption_by_keyboard(stack: Stack) -> None:
    app = stack.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, "1001")
        screen = await _open_profile(pilot, app, "M000001")
        tabbed = screen.query_one(TabbedContent)
        # ctrl+n walks every history tab, and the tab's list takes the focus (arrows scroll).
        keys = list(TABS)
        assert tabbed.active == "tab-purchases"
        for key in [*keys[1:], keys[0]]:
            await pilot.press("ctrl+n")
            await settle(pilot, functools.partial(_is_active, tabbed, f"tab-{key}"), what=key)
            assert app.focused is screen.query_one(f"#table-{key}", DataTable)
        await pilot.press("ctrl+p")
        await settle(pilot, lambda: tabbed.active == f"tab-{keys[-1]}", what="back one")
        ledger = screen.query_one("#table-ledger", DataTable)
        assert ledger.row_count == len(screen.profile.ledger)  # type: ignore[union-attr]
        # The footer fits 80 columns and leads to F1, which lists every key of the screen.
        line = _footer_fits(screen, 80)
        assert line.startswith("f2 Inquiry f3 Complaint")
        await pilot.press("f1")
        await settle(pilot, lambda: isinstance(app.screen, KeysScreen), what="keys")
        listed = str(app.screen.query_one("#keys-list", Static).render())
        for key in ("f3", "f5", "f7", "^n", "^p", "esc"):
            assert key in listed
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)

        # F3 with the keyboard only; the Complaints tab shows the new complaint at once.
        complaints = screen.query_one("#table-complaints", DataTable)
        before = len(screen.profile.complaints)  # type: ignore[union-attr]
        await pilot.press("f3")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "ComplaintDialog")
        await pilot.press("tab")  # severity (medium) -> category
        await type_text(pilot, "service")
        await pilot.press("tab")  # -> description
        await type_text(pilot, "waited too long")
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.screen is screen, what="complaint saved")
        await settle(
            pilot,
            lambda: len(screen.profile.complaints) == before + 1,  # type: ignore[union-attr]
            what="profile reloaded",
        )
        for _ in range(3):  # ledger -> purchases -> inquiries -> complaints
            await pilot.press("ctrl+n")
        await settle(pilot, lambda: tabbed.active == "tab-complaints", what="complaints tab")
        assert complaints.row_count == before + 1
        assert "waited too long" in " ".join(str(c) for c in complaints.get_row_at(0))

        # F5 redemption: the next best action is the hub's for the new balance.
        await pilot.press("f5")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "RedeemDialog")
        quote = app.screen.query_one("#quote", Static)
        await settle(pilot, lambda: "Pick an item" in str(quote.render()), what="catalogue")
        await pilot.press("enter")
        await settle(pilot, lambda: "→" in str(quote.render()), what="quote")
        await pilot.press("y")
        await settle(pilot, lambda: app.screen is screen, what="redeemed")
        member_id = stack.ids.members["liwei"]
        with session_scope(stack.engine) as s:
            raw = crm.profile(s, member_id)
        assert raw is not None
        fresh = Profile.parse(mask_tree(raw))  # what the hub sends now, for the new balance
        await settle(
            pilot,
            lambda: (
                screen.profile is not None
                and screen.profile.next_best_actions == fresh.next_best_actions
                and screen.profile.ledger == fresh.ledger
            ),  # the hub's rows, not a local guess
            what="next best action reloaded",
        )
        nba = str(screen.query_one(NextBestAction).render())
        assert all(a in nba for a in fresh.next_best_actions)

    with session_scope(stack.engine) as s:
        assert [c.description for c in s.scalars(select(Complaint))] == ["waited too long"]


async def test_search_lists_only_members_the_agent_may_open(stack: Stack) -> None:
    app = stack.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, "1001")
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(app.screen, SearchScreen))
        search = app.screen
        assert isinstance(search, SearchScreen)
        await type_text(pilot, "Zhang")  # 1002's member
        await pilot.press("enter")
        status = search.query_one("#search-status", Static)
        await settle(pilot, lambda: "1 more maintained by" in str(status.render()), what="hidden")
        assert search.results == () and search.query_one("#results", DataTable).row_count == 0


async def test_call_view_keys_and_live_counters(stack: Stack) -> None:
    app = stack.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, "1001")
        home = app.home
        assert isinstance(home, HomeScreen)
        call = await stack.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
        await settle(pilot, lambda: home.call_id == call.linkedid and home.call_visible, what="pop")
        await stack.sim.agent_answer(IFACE["1001"])
        await settle(pilot, lambda: app.book.calls[call.linkedid].state == "up", what="answered")
        await settle(pilot, lambda: app.agent_state and app.agent_state.state == "on_call")
        _footer_fits(home, 80)
        # Tabs by key from the call view; ctrl+o back to the notes; F6 reaches the transfer
        # dialog even while the notes box (which binds F6 itself) has the focus.
        tabbed = home.query_one(TabbedContent)
        await pilot.press("ctrl+n")
        await settle(pilot, lambda: tabbed.active == "tab-inquiries", what="inquiries tab")
        await pilot.press("ctrl+o")
        assert app.focused is home.query_one("#notes", TextArea)
        await pilot.press("f6")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "TransferDialog")
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is home)
        # The counters count the call in progress (the hub counts it when it ends).
        state = app.agent_state
        assert state is not None
        line = state_line(state, app.clock().timestamp() + 30)
        assert f"Calls {state.calls_today + 1}" in line
        await pilot.press("f8")
        await settle(pilot, lambda: app.book.calls[call.linkedid].state == "ended", what="ended")


def test_state_line_counts_the_call_in_progress() -> None:
    since = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)
    on_call = AgentState("on_call", None, since, calls_today=3, talk_s_today=600)
    assert state_line(on_call, since.timestamp() + 75) == "ON CALL 01:15 │ Calls 4 │ Talk 11:15"
    done = AgentState("wrap_up", None, since, calls_today=4, talk_s_today=675)
    assert state_line(done, since.timestamp() + 5) == "WRAP-UP 00:05 │ Calls 4 │ Talk 11:15"


async def test_supervisor_screens_by_keyboard(stack: Stack) -> None:
    """m c w v open the supervisor screens; each list has the focus (arrows move in it), the
    footer fits 80 columns, Esc returns home."""
    app = stack.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, "9001")
        home = app.home
        assert isinstance(home, HomeScreen)
        _footer_fits(home, 80)
        for key, name, table in (
            ("m", "MaintainersScreen", "#agents-table"),
            ("c", "CampaignsScreen", "#campaigns-table"),
            ("w", "WallboardScreen", "#agents-table"),
            ("v", "SurveysScreen", None),
        ):
            await pilot.press(key)
            await settle(pilot, functools.partial(_is_screen, app, name), what=name)
            screen = app.screen
            if table is not None:  # the list has the focus, or Tab reaches it
                target = screen.query_one(table)
                for _ in range(6):
                    if app.focused is target:
                        break
                    await pilot.press("tab")
                assert app.focused is target, f"{name}: Tab never reaches {table}"
            _footer_fits(screen, 80)
            await pilot.press("escape")
            await settle(pilot, lambda: app.screen is home, what=f"home after {name}")
