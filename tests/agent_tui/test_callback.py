"""Callback times: typed in the member's zone, shown in both, DST gaps refused."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from textual.app import App
from textual.widgets import Input, Static

from agent_tui.dialogs.callback import CallbackDialog, both_zones, parse_local

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_parse_local_and_both_zones() -> None:
    when = parse_local("2026-11-24", "10:30", ZoneInfo("Asia/Shanghai"))
    assert when.isoformat() == "2026-11-24T10:30:00+08:00"
    shown = both_zones(when, ZoneInfo("Europe/London"))
    assert shown == "2026-11-24 10:30 CST (Asia/Shanghai) = 2026-11-24 02:30 GMT (you)"
    with pytest.raises(ValueError, match="does not exist"):
        parse_local("2026-03-08", "02:30", ZoneInfo("America/New_York"))
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_local("24/11/2026", "10:30", ZoneInfo("Asia/Shanghai"))


async def test_dialog_refuses_the_past_and_returns_an_aware_time() -> None:
    results: list[tuple[dt.datetime, str] | None] = []

    class Harness(App[None]):
        def on_mount(self) -> None:
            self.push_screen(
                CallbackDialog(ZoneInfo("America/New_York"), dt.UTC, NOW), results.append
            )

    app = Harness()
    async with app.run_test() as pilot:
        dialog = app.screen
        dialog.query_one("#cb-date", Input).value = "2026-02-01"
        await pilot.pause()
        assert "already passed" in str(dialog.query_one("#cb-preview", Static).render())
        await pilot.press("ctrl+s")
        assert app.screen is dialog and not results
        dialog.query_one("#cb-date", Input).value = "2026-03-09"
        dialog.query_one("#cb-time", Input).value = "09:15"
        await pilot.pause()
        assert "= 2026-03-09 13:15 UTC (you)" in str(
            dialog.query_one("#cb-preview", Static).render()
        )
        await pilot.press("ctrl+s")
    ((when, reason),) = results  # type: ignore[misc]
    assert when.isoformat() == "2026-03-09T09:15:00-04:00" and reason == "callback"
