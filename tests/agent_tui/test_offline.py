"""The console without a hub (recorded pushes): re-sent pops keep the notes, the chooser,
the CLI's --hub parsing."""

from __future__ import annotations

import argparse

import pytest
from textual.widgets import TextArea

from agent_tui.screens.home import HomeScreen
from memberline.commands.console import parse_hub
from tests.agent_tui import recorded as R
from tests.agent_tui.snapshot_app import offline_app


async def test_repushed_pop_keeps_notes_and_chooser_opens() -> None:
    app = offline_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.start_session(R.LOGIN_AGENT)
        await pilot.pause()
        home = app.home
        assert isinstance(home, HomeScreen) and not home.call_visible
        assert not home.check_action("hangup", ())  # no call: call keys are off
        app.handle_push("screen_pop", R.POP_MEMBER)
        await pilot.pause()
        assert home.call_visible and app.screen is home
        notes = home.query_one("#notes", TextArea)
        notes.text = "会员想兑换杯子"
        await pilot.pause()
        app.handle_push("screen_pop", R.POP_MEMBER)  # e.g. after a reconnect
        await pilot.pause()
        assert (
            notes.text == "会员想兑换杯子" and app.book.notes[R.POP_MEMBER["call_id"]] == notes.text
        )

        chooser = {
            **R.POP_MEMBER,
            "call_id": "c2",
            "kind": "chooser",
            "profile": None,
            "matches": R.MATCHES,
        }
        app.handle_push("screen_pop", chooser)
        await pilot.pause()
        assert home.call_id == "c2" and notes.text == ""
        assert app.screen.__class__.__name__ == "ChooserDialog"
        assert not home.check_action("redeem", ())  # no member chosen yet


def test_parse_hub() -> None:
    assert parse_hub("127.0.0.1:7070") == ("127.0.0.1", 7070)
    assert parse_hub("[::1]:7070") == ("::1", 7070)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_hub("hub-without-port")
