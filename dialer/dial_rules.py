"""Dial-time rules (pure): calling windows, consent/DNC, attempt caps, retries.

These are checked when an entry is about to be dialled, not only when the list
was built: a member who asked for do-not-call after the list was built, or whose
local clock has passed 21:00, is not dialled.

All times are aware datetimes. The calling window is checked by :mod:`dialer.hours` (the
one module the outbox uses for quiet hours too): the member's zone from their record, else
from their number, all of the number's zones when it could be in several; a member whose
zone cannot be known is not dialled (fail closed, the reason recorded on the entry).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from dialer import hours

LEGAL_START = dt.time(8, 0)
LEGAL_END = dt.time(21, 0)


class DialOutcome(enum.StrEnum):
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

    @property
    def hours(self) -> hours.Window:
        return hours.Window(self.start, self.end)

    @classmethod
    def parse(cls, start: str, end: str) -> CallingWindow:
        s, e = dt.time.fromisoformat(start), dt.time.fromisoformat(end)
        # Never outside the legal 08:00-21:00, whatever the configuration says.
        return cls(max(s, LEGAL_START), min(e, LEGAL_END))


@dataclass(frozen=True)
class DialRetryPolicy:
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

    timezone: str | None
    """The member's record; None/empty/invalid = derive from ``phones``."""
    do_not_call: bool
    consent_call: bool
    phone_valid: bool
    attempts: int
    attempts_today_all_campaigns: int
    last_abandoned_at: dt.datetime | None
    phones: tuple[str, ...] = ()
    """The number being dialled first, then the member's others (zones come from the first
    that gives any)."""


class Verdict(enum.StrEnum):
    DIAL = "dial"
    LATER = "later"
    """Not now; ``retry_at`` says when."""
    NEVER = "never"
    """Remove from the campaign (DNC, no consent, attempts exhausted)."""


@dataclass(frozen=True)
class DialDecision:
    verdict: Verdict
    reason: str
    retry_at: dt.datetime | None = None


def candidate_zones(c: Candidate) -> tuple[ZoneInfo, ...]:
    return hours.member_zones(c.timezone, c.phones)


def next_window_start(
    now: dt.datetime, tz: str | None, window: CallingWindow, phones: Sequence[str] = ()
) -> dt.datetime | None:
    """None if ``now`` is inside the member's local window (in every zone they may be in),
    else the next such opening (UTC). Raises LookupError when the zone cannot be known or
    the zones share no hour of the window."""
    zones = hours.member_zones(tz, phones)
    if not zones:
        raise LookupError(hours.UNKNOWN_ZONE)
    at = hours.next_open(now, zones, window.hours)
    if at is None:
        raise LookupError(hours.NEVER_OPEN)
    return None if at == now else at


def check(
    c: Candidate, now: dt.datetime, window: CallingWindow, policy: DialRetryPolicy
) -> DialDecision:
    """May this entry be dialled now?"""
    if c.do_not_call:
        return DialDecision(Verdict.NEVER, "member is on the do-not-call list")
    if not c.consent_call:
        return DialDecision(Verdict.NEVER, "member has not consented to calls")
    if not c.phone_valid:
        return DialDecision(Verdict.NEVER, "no valid phone number")
    if c.attempts >= policy.max_attempts:
        return DialDecision(
            Verdict.NEVER, f"{c.attempts} attempts made (max {policy.max_attempts})"
        )
    if c.last_abandoned_at is not None:
        until = c.last_abandoned_at + dt.timedelta(seconds=policy.no_redial_after_abandon_s)
        if now < until:
            return DialDecision(Verdict.LATER, "abandoned call in the last 72 h", until)
    zones = candidate_zones(c)
    if not zones:
        # Fail closed: never dial at an hour we cannot check. The entry is cancelled with
        # this reason (fits last_outcome); a list built after the zone is known adds it again.
        return DialDecision(Verdict.NEVER, "no time zone (record or number)")
    opening = hours.next_open(now, zones, window.hours)
    if opening is None:
        return DialDecision(Verdict.NEVER, "zones share no calling hour")
    if opening > now:
        return DialDecision(Verdict.LATER, "outside the member's local calling window", opening)
    if c.attempts_today_all_campaigns >= policy.max_attempts_per_member_per_day:
        at = hours.next_open(hours.next_local_day(now, zones), zones, window.hours)
        return DialDecision(Verdict.LATER, "daily attempt cap for this member reached", at)
    return DialDecision(Verdict.DIAL, "ok")


_RETRY_DELAY = {
    DialOutcome.BUSY: "busy_s",
    DialOutcome.NO_ANSWER: "no_answer_s",
    DialOutcome.MACHINE: "machine_s",
    DialOutcome.FAILED: "failed_s",
    DialOutcome.CONGESTION: "congestion_s",
    DialOutcome.INTERRUPTED: "interrupted_s",
    DialOutcome.ABANDONED: "no_redial_after_abandon_s",
}


def after_attempt(
    outcome: DialOutcome, attempts: int, now: dt.datetime, policy: DialRetryPolicy
) -> tuple[str, dt.datetime | None]:
    """The entry's next status and due time after an attempt: ``("done"|"pending"|"exhausted", due)``."""
    if outcome is DialOutcome.ANSWERED:
        return "done", None
    if attempts >= policy.max_attempts:
        return "exhausted", None
    delay = getattr(policy, _RETRY_DELAY[outcome])
    return "pending", now + dt.timedelta(seconds=delay)
