"""Whole-centre figures for supervisors: rolling rates and per-minute history.

Counters are timestamped (``now`` passed in) and kept for ``window_s`` (one hour by
default): abandon rate = abandoned / (answered + abandoned) of queue calls in the
window, compared with the cap; contact rate = answered / placed click-to-dial and
dialer originates; utilisation = agents ringing, on a call or in wrap-up / agents
logged in and not paused. History: one sample per minute (at most 60) for sparklines.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from cti.tracker import AgentState, Tracker

if TYPE_CHECKING:
    from cti.hub.server import HubServer

_BUSY = (AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP)


class WallboardStats:
    def __init__(self, window_s: float = 3600.0, history_len: int = 60) -> None:
        self.window_s = window_s
        self._offered: deque[float] = deque()
        self._answered: deque[float] = deque()
        self._abandoned: deque[float] = deque()
        self._dialled: deque[tuple[float, bool]] = deque()
        self.history: deque[dict[str, Any]] = deque(maxlen=history_len)
        self._last_minute: int | None = None

    def offered(self, at: float) -> None:
        self._offered.append(at)

    def answered(self, at: float) -> None:
        self._answered.append(at)

    def abandoned(self, at: float) -> None:
        self._abandoned.append(at)

    def dialled(self, at: float, contact: bool) -> None:
        self._dialled.append((at, contact))

    def _trim(self, now: float) -> None:
        cut = now - self.window_s
        for q in (self._offered, self._answered, self._abandoned):
            while q and q[0] < cut:
                q.popleft()
        while self._dialled and self._dialled[0][0] < cut:
            self._dialled.popleft()

    def figures(self, now: float, tracker: Tracker) -> dict[str, Any]:
        self._trim(now)
        answered, abandoned = len(self._answered), len(self._abandoned)
        placed = len(self._dialled)
        contacts = sum(1 for _, c in self._dialled if c)
        wb = tracker.wallboard()
        logged_in = sum(n for st, n in wb.agents.items() if st is not AgentState.LOGGED_OUT)
        working = logged_in - wb.agents.get(AgentState.PAUSED, 0)
        busy = sum(wb.agents.get(st, 0) for st in _BUSY)
        return {
            "waiting": wb.waiting,
            "ringing": wb.ringing,
            "talking": wb.talking,
            "offered": len(self._offered),
            "answered": answered,
            "abandoned": abandoned,
            "abandon_rate": round(abandoned / (answered + abandoned), 4)
            if answered + abandoned
            else 0.0,
            "contact_rate": round(contacts / placed, 4) if placed else 0.0,
            "utilization": round(busy / working, 4) if working > 0 else 0.0,
            "agents_by_state": {st.value: n for st, n in wb.agents.items()},
        }

    def sample(self, now: float, tracker: Tracker) -> None:
        """Record one history point per minute."""
        minute = int(now // 60)
        if minute == self._last_minute:
            return
        self._last_minute = minute
        f = self.figures(now, tracker)
        self.history.append(
            {
                "minute": minute * 60,
                "waiting": f["waiting"],
                "talking": f["talking"],
                "abandon_rate": f["abandon_rate"],
                "utilization": f["utilization"],
            }
        )


def wallboard_push(hub: HubServer) -> dict[str, Any]:
    now = hub.clock()
    fig = hub.stats.figures(now, hub.tracker)
    agents = [
        hub.agent_view(info) for info in sorted(hub.agents_by_code.values(), key=lambda a: a.code)
    ]
    hist = list(hub.stats.history)
    data: dict[str, Any] = {
        **fig,
        "agents": agents,
        "abandon_cap": hub.settings.abandon_cap,
        "outbox_review": hub.outbox_review,
        "history": {
            "minutes": [h["minute"] for h in hist],
            "waiting": [h["waiting"] for h in hist],
            "talking": [h["talking"] for h in hist],
            "abandon_rate": [h["abandon_rate"] for h in hist],
            "utilization": [h["utilization"] for h in hist],
        },
    }
    return hub.wallboard_merge(data) if hub.wallboard_merge is not None else data
