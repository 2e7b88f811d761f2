"""A preview campaign's card on the console, against the real hub, runner and PBX simulator:
the card shows the member (masked phone, why), F7 dials it agent-first, the call is wrapped
up on the dialer's attempt row."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from agent_tui.dialogs.reasons import ReasonDialog
from agent_tui.screens.home import HomeScreen
from agent_tui.screens.wrapup import WrapUpScreen
from agent_tui.widgets.preview import PreviewCard
from crm_bridge.db import session_scope
from crm_bridge.models import CallAttempt, CallListEntry, CampaignKind, EntryStatus, MemberPhone
from tests.agent_tui.stack import IFACE, LI_WEI, Stack, log_in, settle
from tests.dialer.support import desk_runner, running_campaign

pytestmark = pytest.mark.e2e


async def test_preview_card_f7_dials_and_wraps_up_on_the_attempt(stack: Stack) -> None:
    liwei = stack.ids.members["liwei"]
    running_campaign(stack.engine, [liwei], name="preview", kind=CampaignKind.POST_PURCHASE)
    async with desk_runner(stack.engine, stack.hub, stack.ami) as runner:
        await runner.start()
        app = stack.app()
        async with app.run_test(size=(100, 30)) as pilot:
            await log_in(pilot, "1001")
            home = app.home
            assert isinstance(home, HomeScreen)
            card = home.query_one(PreviewCard)
            await settle(pilot, lambda: app.preview is not None and card.display, what="card")
            shown = str(card.render())
            assert "李伟" in shown and "Gold" in shown and "+86 138****8000" in shown
            assert "post-purchase follow-up" in shown and LI_WEI not in shown

            await pilot.press("f7")
            await settle(pilot, lambda: home.call_visible and bool(home.call_id), what="pop")
            call_id = home.call_id
            assert app.preview is None and not card.display
            await stack.sim.agent_answer(IFACE["1001"])
            await settle(pilot, lambda: not runner.pending(call_id), what="member answered")
            await pilot.press("f8")
            await settle(pilot, lambda: isinstance(app.screen, WrapUpScreen), what="wrap-up")
            await pilot.press("f")  # follow-up
            await settle(pilot, lambda: app.screen is home and not home.call_visible, what="home")
            await stack.hub.writer.flush()
    with session_scope(stack.engine) as s:
        row = s.scalars(select(CallAttempt)).one()
        assert row.channel_id == call_id and row.entry_id is not None
        assert row.outcome == "answered" and row.disposition == "follow-up"
        assert row.agent_id == stack.ids.agents["1001"]
        assert s.get(CallListEntry, row.entry_id).status is EntryStatus.DONE  # type: ignore[union-attr]


async def test_winback_wrapup_asks_why_the_member_stopped_buying(stack: Stack) -> None:
    """An answered win-back call: the disposition alone is refused (reason_required), the
    console offers the reasons, the pick is stored on the attempt row and in the audit."""
    from agent_tui.screens.wrapup import WrapUpScreen as Wrap
    from crm_bridge.models import AuditLog

    liwei = stack.ids.members["liwei"]
    running_campaign(stack.engine, [liwei], name="winback", kind=CampaignKind.DORMANT_WINBACK)
    async with desk_runner(stack.engine, stack.hub, stack.ami) as runner:
        await runner.start()
        app = stack.app()
        async with app.run_test(size=(100, 30)) as pilot:
            await log_in(pilot, "1001")
            home = app.home
            assert isinstance(home, HomeScreen)
            card = home.query_one(PreviewCard)
            await settle(pilot, lambda: app.preview is not None and card.display, what="card")
            await pilot.press("f7")
            await settle(pilot, lambda: home.call_visible and bool(home.call_id), what="pop")
            call_id = home.call_id
            await stack.sim.agent_answer(IFACE["1001"])
            await settle(pilot, lambda: not runner.pending(call_id), what="member answered")
            await pilot.press("f8")
            await settle(pilot, lambda: isinstance(app.screen, Wrap), what="wrap-up")
            await pilot.press("n")  # not-interested: the hub wants a reason first
            await settle(pilot, lambda: isinstance(app.screen, ReasonDialog), what="reasons")
            dialog = app.screen
            assert isinstance(dialog, ReasonDialog)
            assert dialog.reasons[2] == ("price", "Price · 价格")
            await pilot.press("3")  # price
            await settle(pilot, lambda: app.screen is home and not home.call_visible, what="home")
            await stack.hub.writer.flush()
    with session_scope(stack.engine) as s:
        row = s.scalars(select(CallAttempt)).one()
        assert (row.disposition, row.reason) == ("not-interested", "price")
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "call.wrapup")).one()
        assert audit.details["reason"] == "price"


async def test_preview_skip_asks_why_and_wrong_number_flags_the_phone(stack: Stack) -> None:
    liwei = stack.ids.members["liwei"]
    _, entries = running_campaign(
        stack.engine, [liwei], name="preview-skip", kind=CampaignKind.DORMANT_WINBACK
    )
    entry_id = entries[liwei]
    async with desk_runner(stack.engine, stack.hub, stack.ami) as runner:
        await runner.start()
        app = stack.app()
        async with app.run_test(size=(80, 24)) as pilot:
            await log_in(pilot, "1001")
            home = app.home
            assert isinstance(home, HomeScreen)
            card = home.query_one(PreviewCard)
            await settle(pilot, lambda: app.preview is not None and card.display, what="card")
            await pilot.press("k")
            await settle(pilot, lambda: isinstance(app.screen, ReasonDialog), what="reasons")
            await pilot.press("escape")  # changed their mind: the card stays
            await settle(pilot, lambda: app.screen is home, what="home")
            assert app.preview is not None and card.display
            await pilot.press("k")
            await settle(pilot, lambda: isinstance(app.screen, ReasonDialog), what="reasons")
            await pilot.press("2")  # wrong number
            await settle(pilot, lambda: app.preview is None and not card.display, what="skipped")
    with session_scope(stack.engine) as s:
        assert s.get(CallListEntry, entry_id).status is EntryStatus.CANCELLED  # type: ignore[union-attr]
        phone = s.scalars(select(MemberPhone).where(MemberPhone.e164 == LI_WEI)).one()
        assert phone.invalid
        assert not s.scalars(select(CallAttempt)).all()


def test_card_text_and_withdrawn_parse() -> None:
    from agent_tui.model import Preview
    from agent_tui.widgets.preview import card_text

    data = {
        "entry_id": 7,
        "campaign_id": 2,
        "campaign": "spring",
        "reason": "dormant member win-back",
        "attempts": 1,
        "member": {
            "member_id": 3,
            "member_no": "M000003",
            "name": "Zhang San",
            "tier": "Silver",
            "phone_masked": "+86 136****6000",
        },
        "withdrawn": False,
    }
    card = Preview.parse(data)
    assert (card.entry_id, card.member.member_id, card.withdrawn) == (7, 3, False)
    text = card_text(card).plain
    assert "Zhang San  Silver  No. M000003  ☎ +86 136****6000" in text
    assert "Why: dormant member win-back  · 1 earlier attempt(s)" in text
    assert "F7 dial · k skip" in text
    assert Preview.parse({**data, "withdrawn": True}).withdrawn


def test_skip_reasons_are_the_protocols() -> None:
    from agent_tui.dialogs.reasons import SKIP_REASONS
    from cti.hubproto.messages import COMMANDS

    reason = next(f for f in COMMANDS["preview_skip"].args if f.name == "reason")
    assert tuple(code for code, _label in SKIP_REASONS) == reason.choices
