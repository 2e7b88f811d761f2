"""Each agent's desk as the hub wants it: queue logins, the pause they asked for, after-call work.

Pure (data in, AMI action dicts out); :mod:`cti.hub.server` sends the actions and
persists :class:`Desk` (``agent_presence``) so that it survives a PBX restart — and a hub
restart — and is re-applied from the database (:meth:`Desk.reapply`).

After-call work, as contact centres do it: when the agent's call ends the hub pauses
them in every queue with reason ``wrap-up`` (:data:`WRAP_UP_REASON`) until the
disposition is saved or the call's maximum passes (``0`` = until saved). Then the agent
gets the state they asked for: a pause requested during the call or the wrap-up
(break, lunch...) is applied instead of Available. A wrap-up left unsaved when its
maximum passes becomes an *unfinished call* (the ``call_attempts`` row keeps no
disposition) that the agent or a supervisor finishes later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cti.hub import actions
from cti.tracker import AgentView
from cti.tracker.model import WRAP_UP_REASON

Action = dict[str, Any]


@dataclass
class Desk:
    code: str
    interface: str
    wanted_pause: str | None = None
    """The pause the agent asked for (``None``: available when not in wrap-up)."""
    queues: set[str] = field(default_factory=set)
    """Queues the agent logged in to through the hub (dynamic members, QueueAdd)."""
    persisted: bool = False
    """The database has this desk: it is re-applied after a (re)connection to the PBX."""
    wrapup_call: str | None = None
    """The call being wrapped up now."""
    wrapup_deadline: float | None = None
    """When the wrap-up ends by itself (``None``: only when the disposition is saved)."""
    wrapup_queue: list[tuple[str, float]] = field(default_factory=list)
    """Calls that ended while another was being wrapped up (the next queue call can ring
    in the instant before the wrap-up pause lands): (call id, maximum), wrapped up next."""

    # ------------------------------------------------------------------ requests
    def in_wrapup(self) -> bool:
        return self.wrapup_call is not None

    def pause(self, reason: str, busy: bool) -> list[Action]:
        """The agent asks to pause. On a call or in wrap-up it is applied afterwards."""
        self.wanted_pause = reason
        if busy or self.in_wrapup():
            return []
        return [actions.queue_pause(self.interface, True, reason)]

    def unpause(self, busy: bool) -> list[Action]:
        self.wanted_pause = None
        if busy or self.in_wrapup():
            return []
        return [actions.queue_pause(self.interface, False)]

    # ------------------------------------------------------------------ after-call work
    def start_wrapup(self, call_id: str, now: float, max_s: float, pause: bool) -> list[Action]:
        """The agent's call ended. Returns the pause (reason wrap-up) when the hub pauses.
        During another wrap-up the call waits behind it (that wrap-up is never displaced)."""
        if self.wrapup_call is not None and self.wrapup_call != call_id:
            if all(c != call_id for c, _ in self.wrapup_queue):
                self.wrapup_queue.append((call_id, max_s))
        else:
            self.wrapup_call = call_id
            self.wrapup_deadline = now + max_s if max_s > 0 else None
        return [actions.queue_pause(self.interface, True, WRAP_UP_REASON)] if pause else []

    def end_wrapup(self, pause: bool, now: float = 0.0) -> list[Action]:
        """The current wrap-up is over (saved or timed out): the next queued one starts (the
        agent stays paused), else the agent gets the state they asked for."""
        if self.wrapup_queue:
            self.wrapup_call, max_s = self.wrapup_queue.pop(0)
            self.wrapup_deadline = now + max_s if max_s > 0 else None
            return []
        self.wrapup_call = None
        self.wrapup_deadline = None
        if not pause:
            return []
        return [self.restore()]

    def drop(self, call_id: str) -> None:
        """A queued wrap-up was saved before its turn."""
        self.wrapup_queue = [(c, m) for c, m in self.wrapup_queue if c != call_id]

    def restore(self) -> Action:
        if self.wanted_pause:
            return actions.queue_pause(self.interface, True, self.wanted_pause)
        return actions.queue_pause(self.interface, False)

    def expired(self, now: float) -> bool:
        return self.wrapup_deadline is not None and self.wrapup_deadline <= now

    # ------------------------------------------------------------------ resync
    def reapply(
        self,
        view: AgentView | None,
        name: str,
        pause: bool,
        penalties: dict[str, int] | None = None,
    ) -> list[Action]:
        """What brings the PBX back to this desk after a (re)connection: QueueAdd for each
        queue the member is missing from (a restart drops dynamic members), then the pause
        (a restart unpauses everyone). Nothing when the PBX already agrees."""
        out: list[Action] = []
        have = set(view.queues) if view is not None else set()
        for q in sorted(self.queues - have):
            out.append(actions.queue_add(q, self.interface, name, (penalties or {}).get(q, 0)))
        if not (self.queues | have):
            return out  # in no queue: nothing to pause
        want = WRAP_UP_REASON if (self.in_wrapup() and pause) else self.wanted_pause
        paused_everywhere = view is not None and have and set(view.paused_queues) == have
        reason = _reason(view)
        if want:
            if out or not paused_everywhere or reason != want:
                out.append(actions.queue_pause(self.interface, True, want))
        elif view is not None and view.paused_queues:
            out.append(actions.queue_pause(self.interface, False))
        return out


def _reason(view: AgentView | None) -> str:
    if view is None:
        return ""
    from cti.tracker import AgentState

    if view.state is AgentState.WRAP_UP and view.paused_queues:
        return WRAP_UP_REASON
    return view.pause_reason
