"""One call, one owner, on two real consoles (Pilot) over the hub and the PBX simulator:
a ringall call pops on both; the agent who does not answer loses the pop and never sees a
wrap-up for it; the answerer's break asked mid-call is applied after their wrap-up."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from agent_tui.app import ConsoleApp
from agent_tui.screens.wrapup import WrapUpScreen
from tests.agent_tui.stack import IFACE, LI_WEI, log_in, seed, settle
from tests.cti import hub_stack
from tests.cti.test_hub_desk import member, ringall

pytestmark = pytest.mark.e2e


def wrapups(app: ConsoleApp) -> list[str]:
    return [s.call_id for s in app.screen_stack if isinstance(s, WrapUpScreen)]


async def test_only_the_answering_console_wraps_up(engine: Engine) -> None:
    seed(engine)
    async with hub_stack.pbx_stack(
        engine, ringall(), ami_ping_s=10.0, resync_within=10.0, login_attempts_per_minute=20
    ) as st:
        a1 = ConsoleApp("127.0.0.1", st.hub.port, reconnect_initial=0.05)
        a2 = ConsoleApp("127.0.0.1", st.hub.port, reconnect_initial=0.05)
        async with a1.run_test(size=(100, 30)) as p1, a2.run_test(size=(100, 30)) as p2:
            await log_in(p1, "1001")
            await log_in(p2, "1002")
            call = await st.sim.inbound_call(LI_WEI, "Li Wei", queue="members")
            cid = str(call.linkedid)
            assert a1.home is not None and a2.home is not None
            await settle(p1, lambda: a1.home is not None and a1.home.call_id == cid, what="pop 1")
            await settle(p2, lambda: a2.home is not None and a2.home.call_id == cid, what="pop 2")
            await st.sim.agent_answer(IFACE["1002"])
            await settle(p2, lambda: a2.book.calls[cid].state == "up", what="answered")
            await settle(p1, lambda: a1.home is not None and not a1.home.call_id, what="gone")
            assert cid not in a1.book.calls and cid not in a1.book.pops
            assert await a2.call_hub("pause", reason="break") == {"deferred": True}
            await st.sim.agent_hangup(IFACE["1002"])
            await settle(p2, lambda: wrapups(a2) == [cid], what="wrap-up on the answerer")
            await p1.pause(0.3)
            assert wrapups(a1) == [] and a1.book.awaiting_wrapup() == []
            await settle(p2, lambda: member(st, "1002") == (True, "wrap-up"), what="wrap-up pause")
            await p2.press("s")  # the "satisfied" hotkey
            await settle(p2, lambda: wrapups(a2) == [], what="wrap-up sent")
            await settle(p2, lambda: member(st, "1002") == (True, "break"), what="break applied")
            await settle(
                p2,
                lambda: a2.agent_state is not None and a2.agent_state.reason == "break",
                what="state bar",
            )
            assert wrapups(a1) == [] and a1.book.awaiting_wrapup() == []
