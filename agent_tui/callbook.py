"""What the console remembers about the agent's calls (pure).

Notes live here, keyed by call id, not in a widget: a screen can be rebuilt, the
hub can drop and come back and re-push the same pop, and the notes being typed stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent_tui.model import CallState, ScreenPop


@dataclass
class CallBook:
    pops: dict[str, ScreenPop] = field(default_factory=dict)
    calls: dict[str, CallState] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)
    """call id -> the member the agent settled on (from the pop, the chooser or quick-create)."""
    wrapped: set[str] = field(default_factory=set)

    def add_pop(self, pop: ScreenPop) -> bool:
        """Record a pop; True when it is new (False: the hub re-sent one we have)."""
        is_new = pop.call_id not in self.pops
        self.pops[pop.call_id] = pop
        if pop.profile is not None and pop.call_id not in self.members:
            self.members[pop.call_id] = pop.profile.member_id
        return is_new

    def update_call(self, call: CallState) -> CallState | None:
        """Record a call_state; returns the previous state of that call, if any."""
        previous = self.calls.get(call.call_id)
        self.calls[call.call_id] = call
        return previous

    def active_call(self) -> CallState | None:
        """The agent's live call (ringing, up or on hold), newest first."""
        live = [c for c in self.calls.values() if c.state in ("ringing", "up", "hold")]
        return live[-1] if live else None

    def awaiting_wrapup(self) -> list[str]:
        return [
            cid
            for cid, c in self.calls.items()
            if c.state == "ended" and cid not in self.wrapped and c.wrapup_due is not False
        ]

    def withdraw(self, call_id: str) -> None:
        """Another agent took the call (or its ring stopped): nothing of it is ours."""
        self.pops.pop(call_id, None)
        self.notes.pop(call_id, None)
        self.calls.pop(call_id, None)
        self.members.pop(call_id, None)

    def finish(self, call_id: str) -> None:
        """Wrap-up sent: forget the call (notes included)."""
        self.wrapped.add(call_id)
        self.pops.pop(call_id, None)
        self.notes.pop(call_id, None)
        self.calls.pop(call_id, None)
        self.members.pop(call_id, None)
