"""The supervisor's RFM screen against the real hub: the grid and the segments show, and a
segment becomes a preview campaign in two keys."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from agent_tui.screens.rfm import RfmScreen, SegmentCampaignDialog, grid_table
from crm_bridge.db import session_scope
from crm_bridge.models import CallListEntry, Campaign, CampaignKind, DialMode
from crm_bridge.segments import refresh_rfm
from tests.agent_tui.stack import Stack, log_in, settle

pytestmark = pytest.mark.e2e


async def test_supervisor_builds_a_campaign_for_a_segment(stack: Stack) -> None:
    with session_scope(stack.engine) as s:
        refresh_rfm(s, dt.datetime.now(dt.UTC))
    app = stack.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await log_in(pilot, "9001")
        await pilot.press("r")
        await settle(pilot, lambda: isinstance(app.screen, RfmScreen), what="rfm screen")
        screen = app.screen
        assert isinstance(screen, RfmScreen)
        rfm: RfmScreen = screen
        await settle(pilot, lambda: bool(rfm.data), what="grid")
        assert len(rfm.data["cells"]) == 25
        table = grid_table(rfm.data)
        assert table.row_count == 5 and len(table.columns) == 6
        await pilot.press("6")  # hibernating
        await settle(pilot, lambda: isinstance(app.screen, SegmentCampaignDialog), what="dialog")
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.screen is rfm, what="back")
        await stack.hub.writer.flush()
        for _ in range(100):
            with session_scope(stack.engine) as s:
                camp = s.scalars(
                    select(Campaign).where(Campaign.kind == CampaignKind.CUSTOM)
                ).first()
            if camp is not None:
                break
            await pilot.pause(0.05)
    assert camp is not None and camp.mode is DialMode.PREVIEW
    assert camp.settings == {"segment": "hibernating"} and camp.name.startswith("rfm-hibernating-")
    with session_scope(stack.engine) as s:
        assert s.scalars(select(CallListEntry).where(CallListEntry.campaign_id == camp.id)).first()


async def test_campaign_form_offers_the_care_kinds() -> None:
    """The supervisor's campaign form: spend_decline in percent, preview chosen for care kinds."""
    from textual.app import App
    from textual.widgets import Input, Select

    from agent_tui.dialogs.campaign import CampaignDialog

    results: list[object] = []

    class Harness(App[None]):
        def on_mount(self) -> None:
            self.push_screen(CampaignDialog(), results.append)

    app = Harness()
    async with app.run_test(size=(100, 30)) as pilot:
        dialog = app.screen
        assert isinstance(dialog, CampaignDialog)
        dialog.query_one("#cmp-name", Input).value = "drop-dec"
        dialog.query_one("#cmp-kind", Select).value = "spend_decline"
        await pilot.pause()
        assert dialog.query_one("#cmp-mode", Select).value == "preview"
        assert dialog.query_one("#cmp-param", Input).value == "40"
        dialog.query_one("#cmp-param", Input).value = "55"
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert results == [
        {
            "name": "drop-dec",
            "kind": "spend_decline",
            "mode": "preview",
            "settings": {"share": 0.55},
        }
    ]
