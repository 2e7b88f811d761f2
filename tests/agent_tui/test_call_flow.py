"""Inbound calls through the console against the real hub and PBX simulator: the pop, notes
kept across a hub reconnect, inquiry, points redemption, hang-up, wrap-up; the chooser,
quick-create, complaint and callback."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import select
from textual.widgets import Static, TextArea

from agent_tui.screens.home import HomeScreen
from agent_tui.screens.wrapup import WrapUpScreen
from agent_tui.widgets.member import ProfileHeader
from agent_tui.widgets.status import HubBanner
from crm_bridge.db import session_scope
from crm_bridge.models import CallAttempt, CallbackTask, Complaint, Inquiry, Member
from tests.agent_tui.stack import IFACE, LI_WEI, SHARED, UNKNOWN, Stack, log_in, settle, type_text

pytestmark = pytest.mark.e2e


def _header(app: object) -> str:
    from agent_tui.app import ConsoleApp

    assert isinstance(app, ConsoleApp) and app.home is not None
    return str(app.home.query_one(ProfileHeader).render())


async def test_pop_notes_reconnect_inquiry_redeem_wrapup(stack: Stack) -> None:
    app = stack.app()
    async with app.run_test(size=(100, 30)) as pilot:
        await log_in(pilot, "1001")
        home = app.home
        assert isinstance(home, HomeScreen)

        call = await stack.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
        started = time.perf_counter()
        await settle(pilot, lambda: home.call_id == call.linkedid and home.call_visible, what="pop")
        assert time.perf_counter() - started < 5
        assert "李伟" in _header(app) and "+86 138****8000" in _header(app)
        with session_scope(stack.engine) as s:
            balance = s.get(Member, stack.ids.members["liwei"]).points_balance  # type: ignore[union-attr]
        assert f"Points {balance:,}" in _header(app) and "Maintainer 王芳 (1001)" in _header(app)
        assert app.screen is home  # shown in place: no screen switch
        # Li Wei is 1001's own member: the call bar says so.
        bar = str(home.query_one("#call-bar", Static).render())
        assert "your member · 您的会员" in bar

        # Notes typed while ringing survive the hub dropping us.
        notes = home.query_one("#notes", TextArea)
        await settle(pilot, lambda: notes.region.width > 0, what="notes laid out")
        await pilot.click("#notes")
        await type_text(pilot, "wants a mug")
        await settle(pilot, lambda: app.book.notes.get(call.linkedid) == "wants a mug")
        statuses: list[str] = []
        assert app.client is not None
        app.client.on_status(statuses.append)
        await stack.sim.agent_answer(IFACE["1001"])
        await settle(pilot, lambda: app.book.calls[call.linkedid].state == "up", what="answered")
        for conn in list(stack.hub.sessions):
            conn.close()
        await settle(pilot, lambda: "disconnected" in statuses, what="disconnect seen")
        await settle(pilot, lambda: app.hub_status == "connected", what="reconnected")
        assert not home.query_one(HubBanner).has_class("-down")
        await pilot.pause(0.2)  # the hub re-pushes state and calls after login
        assert notes.text == "wants a mug"
        await type_text(pilot, " later")
        assert app.book.notes[call.linkedid] == "wants a mug later"

        # F2: log an inquiry.
        await pilot.press("f2")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "InquiryDialog")
        await type_text(pilot, "points")
        await pilot.press("enter")
        await type_text(pilot, "Mug redemption")
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.screen is home, what="inquiry dialog closed")

        # F5: redeem from the catalogue, quote first, then confirm: new balance at once.
        await pilot.press("f5")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "RedeemDialog")
        quote = app.screen.query_one("#quote", Static)
        await settle(pilot, lambda: "Pick an item" in str(quote.render()), what="catalogue")
        await pilot.press("enter")
        after = balance - 1200
        await settle(pilot, lambda: f"{balance:,} → {after:,}" in str(quote.render()), what="quote")
        with session_scope(stack.engine) as s:  # a quote changes nothing
            assert s.get(Member, stack.ids.members["liwei"]).points_balance == balance  # type: ignore[union-attr]
        await pilot.press("y")
        await settle(pilot, lambda: f"Points {after:,}" in _header(app), what="new balance")

        # F8: hang up; wrap-up opens; the disposition hotkey sends it with the notes.
        await pilot.press("f8")
        await settle(pilot, lambda: isinstance(app.screen, WrapUpScreen), what="wrap-up")
        wrap = app.screen
        assert wrap.query_one("#wrap-notes", TextArea).text == "wants a mug later"
        await pilot.press("f")  # follow-up
        await settle(pilot, lambda: app.screen is home and not home.call_visible, what="home")
        await settle(pilot, lambda: app.agent_state and app.agent_state.state == "available")
        await stack.hub.writer.flush()

    with session_scope(stack.engine) as s:
        attempt = s.scalars(select(CallAttempt)).one()
        assert attempt.disposition == "follow-up" and attempt.notes == "wants a mug later"
        inquiry = s.scalars(select(Inquiry)).one()
        assert (inquiry.category, inquiry.subject) == ("points", "Mug redemption")
        assert s.get(Member, stack.ids.members["liwei"]).points_balance == after  # type: ignore[union-attr]


async def test_chooser_quick_create_complaint_callback(stack: Stack) -> None:
    app = stack.app()
    async with app.run_test(size=(100, 30)) as pilot:
        await log_in(pilot, "1001")
        home = app.home
        assert isinstance(home, HomeScreen)

        # Two members share the number: the chooser; Enter picks the highlighted one.
        call = await stack.sim.inbound_call(SHARED, "", queue="members")
        await settle(
            pilot, lambda: app.screen.__class__.__name__ == "ChooserDialog", what="chooser"
        )
        await pilot.press("enter")
        await settle(pilot, lambda: home.profile is not None, what="chosen profile")
        assert home.profile is not None and home.profile.name in ("Wang Fang", "王芳芳")

        # F3: a complaint with a severity and a category.
        await pilot.press("f3")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "ComplaintDialog")
        await pilot.click("#cmp-category")
        await type_text(pilot, "delivery")
        await pilot.click("#cmp-description")
        await type_text(pilot, "parcel late")
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.screen is home, what="complaint saved")

        # F4: a callback tomorrow 10:00 in the member's zone (Asia/Shanghai).
        await pilot.press("f4")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "CallbackDialog")
        preview = app.screen.query_one("#cb-preview", Static)
        assert "(Asia/Shanghai)" in str(preview.render()) and "(you)" in str(preview.render())
        await pilot.click("#cb-reason")
        await type_text(pilot, "call back about parcel")
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.screen is home, what="callback saved")

        await stack.sim.agent_answer(IFACE["1001"])
        await settle(pilot, lambda: app.book.calls[call.linkedid].state == "up")
        await pilot.press("f8")
        await settle(pilot, lambda: isinstance(app.screen, WrapUpScreen), what="wrap-up 1")
        await pilot.press("c")
        await settle(pilot, lambda: app.screen is home and not home.call_visible)

        # An unknown number: quick-create, then the new member's profile.
        call = await stack.sim.inbound_call(UNKNOWN, "", queue="members")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "QuickCreateDialog")
        await type_text(pilot, "Zhao Lei")
        await pilot.press("enter")
        await type_text(pilot, "13700137000")
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: home.profile is not None, what="created profile")
        assert home.profile is not None and home.profile.name == "Zhao Lei"
        await stack.sim.agent_answer(IFACE["1001"])
        await settle(pilot, lambda: app.book.calls[call.linkedid].state == "up")
        await pilot.press("f8")
        await settle(pilot, lambda: isinstance(app.screen, WrapUpScreen), what="wrap-up 2")
        await pilot.press("i")
        await settle(pilot, lambda: app.screen is home and not home.call_visible)

    with session_scope(stack.engine) as s:
        complaint = s.scalars(select(Complaint)).one()
        assert (complaint.severity.value, complaint.category) == ("medium", "delivery")
        task = s.scalars(select(CallbackTask)).one()
        local = task.due_at.astimezone(dt.timezone(dt.timedelta(hours=8)))
        assert (local.hour, local.minute) == (10, 0) and task.reason == "call back about parcel"
        created = s.scalars(select(Member).where(Member.name == "Zhao Lei")).one()
        assert created.phones[0].e164 == "+8613700137000"
