"""Dial-time rules (pure): calling windows, consent/DNC, attempt caps, retries.

These are checked when an entry is about to be dialled, not only when the list
was built: a member who asked for do-not-call after the list was built, or whose
local clock has passed 21:00, is not dialled.

All times are aware datetimes; local times come from the member's IANA zone via
:mod:`zoneinfo`, so daylight-saving changes are handled by construction.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LEGAL_START = dt.time(8, 0)
LEGAL_END = dt.time(21, 0)


class Outcome(enum.StrEnum):
    """What became of one dial attempt."""

    ANSWERED = "answered"
    """A person reached an agent (or the IVR)."""
    ABANDONED = "abandoned"
    """A person answered and no agent took the call within 2 s (safe-harbour message played)."""
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CONGESTION = "congestion"
    FAILED = "failed"
    MACHINE = "machine"
    INTERRUPTED = "interrupted"
    """The hub died between recording the attempt and learning its result."""


@dataclass(frozen=True)
class CallingWindow:
    """Local hours in which members may be called; always inside 08:00-21:00."""

    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(21, 0)

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise ValueError("calling window must start before it ends")

    @classmethod
    def parse(cls, start: str, end: str) -> CallingWindow:
        s, e = dt.time.fromisoformat(start), dt.time.fromisoformat(end)
        # Never outside the legal 08:00-21:00, whatever the configuration says.
        return cls(max(s, LEGAL_START), min(e, LEGAL_END))


@dataclass(frozen=True)
class RetryPolicy:
    busy_s: int = 600
    no_answer_s: int = 7200
    machine_s: int = 86400
    failed_s: int = 86400
    congestion_s: int = 600
    interrupted_s: int = 3600
    max_attempts: int = 3
    max_attempts_per_member_per_day: int = 2
    no_redial_after_abandon_s: int = 72 * 3600


@dataclass(frozen=True)
class Candidate:
    """What the rules need to know about an entry at dial time (read fresh from the DB)."""

    timezone: str
    do_not_call: bool
    consent_call: bool
    phone_valid: bool
    attempts: int
    attempts_today_all_campaigns: int
    last_abandoned_at: dt.datetime | None


class Verdict(enum.StrEnum):
    DIAL = "dial"
    LATER = "later"
    """Not now; ``retry_at`` says when."""
    NEVER = "never"
    """Remove from the campaign (DNC, no consent, attempts exhausted)."""


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    retry_at: dt.datetime | None = None


def member_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def next_window_start(now: dt.datetime, tz: str, window: CallingWindow) -> dt.datetime | None:
    """None if ``now`` is inside the member's local window, else the next local opening (UTC)."""
    zone = member_zone(tz)
    local = now.astimezone(zone)
    if window.start <= local.time() < window.end:
        return None
    day = local.date() if local.time() < window.start else local.date() + dt.timedelta(days=1)
    opening = dt.datetime.combine(day, window.start, tzinfo=zone)
    return opening.astimezone(dt.UTC)


def check(c: Candidate, now: dt.datetime, window: CallingWindow, policy: RetryPolicy) -> Decision:
    """May this entry be dialled now?"""
    if c.do_not_call:
        return Decision(Verdict.NEVER, "member is on the do-not-call list")
    if not c.consent_call:
        return Decision(Verdict.NEVER, "member has not consented to calls")
    if not c.phone_valid:
        return Decision(Verdict.NEVER, "no valid phone number")
    if c.attempts >= policy.max_attempts:
        return Decision(Verdict.NEVER, f"{c.attempts} attempts made (max {policy.max_attempts})")
    if c.last_abandoned_at is not None:
        until = c.last_abandoned_at + dt.timedelta(seconds=policy.no_redial_after_abandon_s)
        if now < until:
            return Decision(Verdict.LATER, "abandoned call in the last 72 h", until)
    opening = next_window_start(now, c.timezone, window)
    if opening is not None:
        return Decision(Verdict.LATER, "outside the member's local calling window", opening)
    if c.attempts_today_all_campaigns >= policy.max_attempts_per_member_per_day:
        zone = member_zone(c.timezone)
        tomorrow = now.astimezone(zone).date() + dt.timedelta(days=1)
        at = dt.datetime.combine(tomorrow, window.start, tzinfo=zone).astimezone(dt.UTC)
        return Decision(Verdict.LATER, "daily attempt cap for this member reached", at)
    return Decision(Verdict.DIAL, "ok")


_RETRY_DELAY = {
    Outcome.BUSY: "busy_s",
    Outcome.NO_ANSWER: "no_answer_s",
    Outcome.MACHINE: "machine_s",
    Outcome.FAILED: "failed_s",
    Outcome.CONGESTION: "congestion_s",
    Outcome.INTERRUPTED: "interrupted_s",
    Outcome.ABANDONED: "no_redial_after_abandon_s",
}


def after_attempt(
    outcome: Outcome, attempts: int, now: dt.datetime, policy: RetryPolicy
) -> tuple[str, dt.datetime | None]:
    """The entry's next status and due time after an attempt: ``("done"|"pending"|"exhausted", due)``."""
    if outcome is Outcome.ANSWERED:
        return "done", None
    if attempts >= policy.max_attempts:
        return "exhausted", None
    delay = getattr(policy, _RETRY_DELAY[outcome])
    return "pending", now + dt.timedelta(seconds=delay)
