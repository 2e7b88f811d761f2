"""The agent's desk (pure): requested pause vs after-call work, the wrap-up queue, and what a
resync must re-apply. The exact AMI dicts are asserted."""

from __future__ import annotations

from cti.hub.desk import Desk
from cti.tracker import AgentState, AgentView

IF = "Local/1001@agents/n"


def pause(reason: str) -> dict[str, str]:
    return {"Action": "QueuePause", "Interface": IF, "Paused": "true", "Reason": reason}


UNPAUSE = {"Action": "QueuePause", "Interface": IF, "Paused": "false"}


def view(
    state: AgentState, queues: tuple[str, ...], paused: tuple[str, ...] = (), reason: str = ""
) -> AgentView:
    return AgentView(IF, "Agent 1001", state, 0.0, reason, queues, paused, None)


def test_pause_asked_on_a_call_is_applied_after_the_wrapup() -> None:
    d = Desk("1001", IF)
    assert d.pause("break", busy=True) == []  # deferred
    assert d.start_wrapup("c1", now=100.0, max_s=60.0, pause=True) == [pause("wrap-up")]
    assert d.wrapup_deadline == 160.0 and not d.expired(159.9) and d.expired(160.0)
    assert d.end_wrapup(pause=True, now=120.0) == [pause("break")]
    assert d.wrapup_call is None


def test_unpause_during_wrapup_means_available_after_it() -> None:
    d = Desk("1001", IF, wanted_pause="lunch")
    d.start_wrapup("c1", now=0.0, max_s=0.0, pause=True)
    assert d.wrapup_deadline is None  # 0 = until saved
    assert d.unpause(busy=False) == []
    assert d.end_wrapup(pause=True) == [UNPAUSE]


def test_a_second_call_waits_behind_the_wrapup_in_progress() -> None:
    d = Desk("1001", IF)
    d.start_wrapup("c1", now=0.0, max_s=60.0, pause=True)
    d.start_wrapup("c2", now=5.0, max_s=30.0, pause=True)
    assert d.wrapup_call == "c1"  # never displaced
    assert d.end_wrapup(pause=True, now=10.0) == []  # still paused: c2's turn
    assert d.wrapup_call == "c2" and d.wrapup_deadline == 40.0
    assert d.end_wrapup(pause=True, now=12.0) == [UNPAUSE]
    d.start_wrapup("c3", now=20.0, max_s=60.0, pause=True)
    d.start_wrapup("c4", now=21.0, max_s=60.0, pause=True)
    d.drop("c4")  # saved before its turn
    assert d.end_wrapup(pause=True, now=22.0) == [UNPAUSE]


def test_no_pbx_pause_when_the_pbx_enforces_wrapuptime() -> None:
    d = Desk("1001", IF, wanted_pause="break")
    assert d.start_wrapup("c1", now=0.0, max_s=60.0, pause=False) == []
    assert d.end_wrapup(pause=False) == []


def test_reapply_after_a_restart_puts_back_logins_and_pause() -> None:
    d = Desk("1001", IF, wanted_pause="lunch", queues={"members", "sales"})
    # after the restart: the static member is back unpaused, the dynamic one is gone
    after = view(AgentState.AVAILABLE, ("members",))
    assert d.reapply(after, "Agent 1001", pause=True, penalties={"sales": 7}) == [
        {
            "Action": "QueueAdd",
            "Queue": "sales",
            "Interface": IF,
            "MemberName": "Agent 1001",
            "Penalty": "7",
            "Paused": "false",
        },
        pause("lunch"),
    ]


def test_reapply_is_silent_when_the_pbx_agrees() -> None:
    d = Desk("1001", IF, wanted_pause="lunch", queues={"members"})
    same = view(AgentState.PAUSED, ("members",), ("members",), "lunch")
    assert d.reapply(same, "Agent 1001", pause=True) == []
    d2 = Desk("1001", IF, queues={"members"})
    assert d2.reapply(view(AgentState.AVAILABLE, ("members",)), "Agent 1001", pause=True) == []
    # paused by the PBX without being asked (the desk says available): unpaused
    stray = view(AgentState.PAUSED, ("members",), ("members",), "break")
    assert d2.reapply(stray, "Agent 1001", pause=True) == [UNPAUSE]


def test_reapply_during_wrapup_restores_the_wrapup_pause() -> None:
    d = Desk("1001", IF, wanted_pause="break", queues=set())
    d.start_wrapup("c1", now=0.0, max_s=60.0, pause=True)
    reset = view(AgentState.AVAILABLE, ("members",))  # a static member, reset unpaused
    assert d.reapply(reset, "Agent 1001", pause=True) == [pause("wrap-up")]
