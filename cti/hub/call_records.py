"""The hub's view of calls, per agent: what ``call_state`` pushes and ownership checks use.

The tracker knows conversations and agents; the hub adds who the call belongs to in
*our* terms (agent code, member id, the agent's and the member's channels, the
``call_attempts`` key). Ended calls stay until wrapped up (or ``keep_ended_s``), so a
console that reconnects after a hang-up still sees the call it has to wrap up.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


@dataclass
class CallRecord:
    call_id: str
    """The conversation id (Asterisk Linkedid; the preset ChannelId for click-to-dial)."""
    direction: str
    started: float
    caller_num: str = ""
    caller_name: str = ""
    queue: str | None = None
    member_id: int | None = None
    agent_code: str | None = None
    """The agent who owns the call (answered it, or placed it)."""
    agent_channels: dict[str, str] = field(default_factory=dict)
    """agent code -> that agent's channel for this call (ringing or connected)."""
    member_channel: str | None = None
    ringing: set[str] = field(default_factory=set)
    """Agent codes being rung now (inbound)."""
    state: str = "ringing"
    since: float = 0.0
    hangup_by: str | None = None
    action_id: str | None = None
    owners: list[str] = field(default_factory=list)
    """Every agent who answered it, in order (a transfer adds one); each may wrap up."""
    wrapped_up: set[str] = field(default_factory=set)
    """Agents who have wrapped it up."""
    unfinished: set[str] = field(default_factory=set)
    """Owners whose wrap-up time ran out unsaved: the call is on their unfinished list."""
    campaign_id: int | None = None
    campaign: str | None = None
    """The campaign that placed it (a dialer call answered by a queue agent)."""
    survey_sent: bool = False
    repop: bool = False
    """Taken up again after a hub restart (CallResumed): pop it to its agent's console once."""
    ended_at: float | None = None

    @property
    def attempt_key(self) -> str:
        return f"call:{self.call_id}"

    def concerns(self, code: str) -> bool:
        return code == self.agent_code or code in self.ringing

    def to_push(self, for_agent: str | None = None) -> dict[str, Any]:
        state = self.state
        if for_agent is not None and for_agent != self.agent_code and for_agent not in self.ringing:
            state = "ended"  # rang this agent, went elsewhere
        return {
            "call_id": self.call_id,
            "state": state,
            "direction": self.direction,
            "member_id": self.member_id,
            "since": iso(self.since or self.started),
            "hangup_by": self.hangup_by,
            "queue": self.queue,
            "campaign_id": self.campaign_id,
            "campaign": self.campaign,
            "agent": self.agent_code,
            "wrapup_due": for_agent is not None and self.wrapup_due(for_agent),
        }

    def wrapup_due(self, code: str) -> bool:
        """This agent answered it, it has ended (or was handed over to another agent), and
        their disposition is still owed here."""
        return (
            (self.state == "ended" or (self.agent_code is not None and code != self.agent_code))
            and code in self.owners
            and code not in self.wrapped_up
            and code not in self.unfinished
        )


class CallRecords:
    """Live and recently ended calls, bounded."""

    def __init__(self, keep_ended_s: float = 3600.0, max_ended: int = 10_000) -> None:
        self.keep_ended_s = keep_ended_s
        self.max_ended = max_ended
        self._calls: dict[str, CallRecord] = {}
        self._ended: OrderedDict[str, float] = OrderedDict()

    def get(self, call_id: str) -> CallRecord | None:
        return self._calls.get(call_id)

    def add(self, rec: CallRecord) -> CallRecord:
        self._calls[rec.call_id] = rec
        return rec

    def reopened(self, rec: CallRecord) -> None:
        """An ended call is offered again (transferred into a queue)."""
        rec.ended_at = None
        self._ended.pop(rec.call_id, None)

    def ended(self, rec: CallRecord, now: float) -> None:
        rec.ended_at = now
        self._ended[rec.call_id] = now
        self._ended.move_to_end(rec.call_id)
        self.prune(now)

    def forget(self, call_id: str) -> None:
        self._calls.pop(call_id, None)
        self._ended.pop(call_id, None)

    def prune(self, now: float) -> None:
        while self._ended:
            call_id, at = next(iter(self._ended.items()))
            if at > now - self.keep_ended_s and len(self._ended) <= self.max_ended:
                break
            self._ended.popitem(last=False)
            self._calls.pop(call_id, None)

    def of_agent(self, code: str) -> list[CallRecord]:
        """Calls an agent should see: live ones concerning them, ended ones not wrapped up."""
        out = []
        for rec in self._calls.values():
            if rec.state == "ended":
                if rec.wrapup_due(code):
                    out.append(rec)
            elif rec.concerns(code):
                out.append(rec)
        return out

    def live(self) -> list[CallRecord]:
        return [r for r in self._calls.values() if r.state != "ended"]

    def __len__(self) -> int:
        return len(self._calls)
