"""The call ledger: every dialer call from ``Originate`` to its one final outcome (pure, no I/O).

The ledger is the only place that decides what became of a dialer call. The live runner
feeds it the raw AMI events; the pacing simulator feeds it the same events; both read the
pacer's counts (calls dialling, members waiting for an agent, IVR calls up) and the
abandonment statistics from it. Nothing here sleeps, reads a clock or touches a database:
every method takes ``at`` (seconds, any epoch, the caller's clock) and returns the
:class:`Fact` list it produced, which the caller stores and feeds to its estimators.

API (stable; the simulator and the runner use exactly this)::

    led = CallLedger(safe_harbour_s=2.0, safe_harbour_prompt="memberline/safe-harbour")
    led.place(call_id, campaign_id, at, kind=CallKind.QUEUE, entry_id=…, member_id=…,
              amd=False, action_id=None, agent=None)       # attempt committed, Originate next
    led.sent(call_id, at)                   # Originate accepted ("successfully queued")
    led.send_failed(call_id, at, refused=True)  # never dialled: failed (refused) or
                                                #   interrupted (not sent: no connection)
    led.send_unknown(call_id, at)           # no answer to the action: in flight, *unknown*
    facts = led.feed(msg, at)               # any AMI event (``.name`` and ``.get(key)``)
    facts = led.resync(at, channels, connected_at)  # the CoreShowChannel list after a login
    facts = led.resumed(call_id, agent, at) # CallResumed: an agent already talks (hub restart)
    facts = led.expire(at)                  # live answers past the 2-second rule -> abandoned
    led.adopt(call_id, campaign_id, at, …)  # after a hub restart: a call recorded in the DB
    led.counts(campaign_id, at)             # -> Counts for the pacer
    led.abandons(campaign_id, at)           # -> Abandons (legal window and last hour)
    led.set_window(campaign_id, abandoned, live)   # legal-window base read from the DB

A :class:`Fact` is ``DECIDED`` once per call (its :class:`~dialer.dial_rules.DialOutcome` is now
fixed, store it) and ``ENDED`` once per call (every channel of it is gone: ``ended_at``;
the call leaves the ledger). ``DECIDED`` always comes first, possibly in the same list.

How outcomes are decided (any order of OriginateResponse, Newchannel, Newstate, DialEnd,
queue events and Hangup):

* The member answered: ``Newstate Up`` of the call's own channel (``Uniqueid`` = the preset
  ChannelId), ``DialEnd ANSWER`` of that channel, or ``OriginateResponse`` Success. With AMD
  the *live answer* is the AMD verdict (``VarSet AMDSTATUS``): the 2-second clock starts when
  the greeting is over, as the FTC rule says.
* ``AgentConnect`` (the bridge) within ``safe_harbour_s`` of the live answer -> ``answered``;
  later, or never (hang-up, :meth:`expire`) -> ``abandoned`` — whatever the dialplan did. The
  wait is recorded (``bridge_wait_s``); so is whether the safe-harbour prompt was played
  (``Newexten Playback`` of ``safe_harbour_prompt`` on the call), which an abandoned call
  must show.
* Not answered: decided when every channel of the call is gone (or by a failed
  OriginateResponse when no channel exists), from the most telling evidence: a hang-up cause
  (17/21 busy, 34/38/41/42/44 congestion, 18/19 no answer, 1/3/28 failed), else the
  ``DialEnd`` status, else the OriginateResponse ``Reason``.
* An Originate whose action got no reply (:meth:`send_unknown`) is *unknown* and stays in
  flight: its own events decide it, or the next channel list (:meth:`resync`) does.
* A PBX restart hangs calls up with ``SoftHangupRequest`` cause 4 (shutdown) before its
  ``Shutdown`` event: a call it cuts is ``interrupted`` (retry soon), not the member's
  failure — unless it was a live answer already past the 2-second rule (abandoned).
* A reconnect: :meth:`resync` with the CoreShowChannel list; every call
  placed before that connection whose channels are all gone becomes ``interrupted`` (cut by
  the restart, retry soon — not the member's failure) unless already decided. Never a timer.
* ``AMDSTATUS=MACHINE`` -> ``machine`` (hung up), unless the call was sampled for
  verification (``amd_verify``) *and* the dialplan found an agent ready to take it at once
  (``QUEUE_MEMBER(q,ready)`` > callers waiting): then it goes to the queue as a
  *verification call*. It is not a live answer yet (nobody knows whether a person is
  there): bridged within the safe harbour it is decided ``answered`` but left out of the
  abandonment counts until :meth:`CallLedger.verified` says what the agent found (a person:
  a live answer; a machine: a verified AMD verdict, nothing more); not bridged in time, it
  is ``machine`` like any other machine hang-up.

AMD false positives (Ofcom: a person AMD hung up on is an abandoned call): every machine
hang-up counts as :func:`amd_false_positive_share` of an abandoned live answer (in both the
abandoned and the live count), the share estimated from the verification calls agents
dispositioned. :class:`Abandons` carries the estimate; the pacer reads it from here, the
reports through :func:`window_abandons` over the stored rows (one definition).

Agent-first calls (preview, maintainer-first; ``kind=AGENT_FIRST``) ring the agent first:
the Originate's channel is the agent's phone, the member is the dialplan ``Dial()`` whose
``DialEnd`` (with a calling ``Channel``) decides: ``ANSWER`` -> answered (an agent is already
there, wait 0). If the agent's phone never answered the member was never rung:
``interrupted``.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

from dialer.dial_rules import DialOutcome

__all__ = [
    "Abandons",
    "AmiLike",
    "CallKind",
    "CallLedger",
    "CallRecord",
    "Counts",
    "Fact",
    "FactKind",
    "LedgerError",
    "LiveChannel",
    "WindowCounts",
    "amd_false_positive_share",
    "window_abandons",
]

REACHED = frozenset({DialOutcome.ANSWERED, DialOutcome.ABANDONED})
"""Outcomes where a person answered and was live: the abandonment rate's denominator."""

_CAUSE_OUTCOME = {
    17: DialOutcome.BUSY,
    21: DialOutcome.BUSY,
    34: DialOutcome.CONGESTION,
    38: DialOutcome.CONGESTION,
    41: DialOutcome.CONGESTION,
    42: DialOutcome.CONGESTION,
    44: DialOutcome.CONGESTION,
    18: DialOutcome.NO_ANSWER,
    19: DialOutcome.NO_ANSWER,
    1: DialOutcome.FAILED,
    3: DialOutcome.FAILED,
    28: DialOutcome.FAILED,
}
_DIAL_OUTCOME = {
    "BUSY": DialOutcome.BUSY,
    "NOANSWER": DialOutcome.NO_ANSWER,
    "CANCEL": DialOutcome.NO_ANSWER,
    "CONGESTION": DialOutcome.CONGESTION,
    "CHANUNAVAIL": DialOutcome.FAILED,
}
_REASON_OUTCOME = {
    1: DialOutcome.NO_ANSWER,
    3: DialOutcome.NO_ANSWER,
    5: DialOutcome.BUSY,
    8: DialOutcome.CONGESTION,
}


class LedgerError(ValueError):
    """A call placed twice, or an operation on a call the ledger does not hold."""


class CallKind(enum.StrEnum):
    QUEUE = "queue"
    """Progressive/predictive: the answered member goes to a queue (2-second rule)."""
    IVR = "ivr"
    """Survey campaigns: the answered member goes to the IVR; no agent, no abandonment."""
    AGENT_FIRST = "agent_first"
    """Preview and maintainer-first: the agent's phone rings first, then the member."""


class FactKind(enum.StrEnum):
    DECIDED = "decided"
    ENDED = "ended"


class AmiLike(Protocol):
    """What :meth:`CallLedger.feed` reads: :class:`cti.ami.message.AmiMessage` fits."""

    @property
    def name(self) -> str: ...

    def get(self, key: str, default: str | None = None) -> str | None: ...


@dataclass(frozen=True, slots=True)
class LiveChannel:
    """One ``CoreShowChannel`` of a resync."""

    uniqueid: str
    linkedid: str
    up: bool = False
    """ChannelState 6 (Up)."""
    application: str = ""
    bridged: bool = False
    """In a bridge (``BridgeId`` set)."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """Everything the ledger knows about one call (a snapshot; times on the caller's clock)."""

    call_id: str
    campaign_id: int
    kind: CallKind
    placed_at: float
    entry_id: int | None = None
    member_id: int | None = None
    agent_id: int | None = None
    send: str = "pending"
    """``pending`` (not yet acknowledged), ``sent``, ``unknown`` (action timed out)."""
    amd: bool = False
    amd_verify: bool = False
    answered_at: float | None = None
    """The member's channel answered."""
    live_at: float | None = None
    """The live answer the 2-second clock starts from (= ``answered_at`` without AMD)."""
    answered_unknown: bool = False
    """A resync found the member's channel up: answered, time unknown."""
    bridged_at: float | None = None
    agent: str | None = None
    """Queue-member interface of the agent who took the call."""
    bridge_wait_s: float | None = None
    """Live answer -> agent bridge (or the queue's HoldTime when the answer time is unknown)."""
    amd_status: str | None = None
    safe_harbour: bool = False
    """The safe-harbour prompt was played on this call."""
    queued: bool = False
    reason: int | None = None
    """OriginateResponse Reason (failures)."""
    dial_status: str | None = None
    cause: int | None = None
    """The most telling hang-up cause seen."""
    outcome: DialOutcome | None = None
    decided_at: float | None = None
    ended_at: float | None = None
    agent_answered_at: float | None = None
    """Agent-first: the agent's phone answered."""
    cut: bool = False
    """The PBX hung it up for a shutdown/restart (SoftHangupRequest cause 4, Shutdown)."""
    dialplan_hangup: bool = False
    """Our dialplan ran ``Hangup()`` on the call's channel (else the member hung up)."""

    @property
    def hung_up_by(self) -> str:
        """``system`` (our dialplan or a PBX restart ended it) or ``customer``."""
        return "system" if self.dialplan_hangup or self.cut else "customer"

    @property
    def reached(self) -> bool:
        return self.outcome in REACHED

    @property
    def verifying(self) -> bool:
        """A sampled machine verdict routed towards an agent: live or not is the agent's to say."""
        return self.amd_verify and self.amd_status == "MACHINE"

    @property
    def answer_wait_s(self) -> float | None:
        """What the attempt row stores as the 2-second rule's measurement: live answer ->
        agent bridge; for a live answer no agent ever took, live answer -> the call's end
        (or, while it lasts, -> the decision): the member waited that long and nobody came.
        None when there was no live answer (or, after a restart, its time is unknown)."""
        if self.bridge_wait_s is not None:
            return self.bridge_wait_s
        if self.kind is not CallKind.QUEUE or self.live_at is None or self.bridged_at is not None:
            return None
        end = self.ended_at if self.ended_at is not None else self.decided_at
        return max(0.0, end - self.live_at) if end is not None else None


@dataclass(frozen=True, slots=True)
class Fact:
    kind: FactKind
    call: CallRecord

    @property
    def outcome(self) -> DialOutcome:
        assert self.call.outcome is not None
        return self.call.outcome


@dataclass(frozen=True, slots=True)
class Counts:
    """What the pacer needs from the calls of one campaign."""

    dialling_s: tuple[float, ...] = ()
    """Seconds since placement of every call not yet answered nor decided (not agent-first)."""
    waiting: int = 0
    """Members answered and live, waiting for an agent (not yet decided)."""
    ivr_active: int = 0
    """IVR campaigns: answered calls not yet ended (each holds a line and an IVR port)."""
    agents_held: frozenset[str] = frozenset()
    """Agent interfaces held by agent-first calls still ringing or dialling."""
    open: int = 0


@dataclass(frozen=True, slots=True)
class Abandons:
    """Abandoned and live answers over the legal window and the last hour, both including
    the estimated AMD false positives (``amd_fp_share`` of every machine hang-up counts as a
    live answer that was abandoned)."""

    window_abandoned: float = 0.0
    window_live: float = 0.0
    hour_abandoned: float = 0.0
    hour_live: float = 0.0
    amd_fp_share: float = 0.0
    """Estimated share of machine hang-ups that were people (:func:`amd_false_positive_share`)."""
    window_amd_false_positives: float = 0.0
    """Of ``window_abandoned``: the estimated people AMD hung up on."""

    @property
    def rate(self) -> float:
        return self.window_abandoned / self.window_live if self.window_live else 0.0


def amd_false_positive_share(verified: float, verified_live: float) -> float:
    """Estimated share of AMD "machine" verdicts that were live people, from the verdicts
    agents verified (``verified_live`` of ``verified`` turned out to be people).

    The posterior mean under a uniform Beta(1, 1) prior: with no verified sample it is 1/2 (an
    AMD nobody checks earns no credit), and it moves to the measured share as agents verify.
    Verification calls are drawn at random among machine verdicts and taken only when an
    agent is free (which does not depend on who answered), so the share carries over to the
    verdicts that were hung up."""
    if verified < 0 or not 0 <= verified_live <= verified:
        raise ValueError(f"bad verification counts: {verified_live} live of {verified}")
    return (verified_live + 1.0) / (verified + 2.0)


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """One campaign's calls over a window, as stored (or as the ledger decided them)."""

    abandoned: float = 0.0
    """Live answers (people) not bridged within the safe harbour."""
    live: float = 0.0
    """Live answers: answered + abandoned (a verification call once an agent found a person)."""
    machine: float = 0.0
    """Calls hung up on an AMD machine verdict (unverified)."""
    verified: float = 0.0
    """Machine verdicts an agent took and dispositioned."""
    verified_live: float = 0.0
    """... that were people (AMD false positives caught)."""

    def __add__(self, other: WindowCounts) -> WindowCounts:
        return WindowCounts(
            self.abandoned + other.abandoned,
            self.live + other.live,
            self.machine + other.machine,
            self.verified + other.verified,
            self.verified_live + other.verified_live,
        )


def window_abandons(w: WindowCounts) -> tuple[float, float, float, float]:
    """(abandoned, live, false positives, share) with AMD's estimated false positives counted
    as abandoned live answers: the one definition the pacer and the reports use (pure)."""
    share = amd_false_positive_share(w.verified, w.verified_live) if w.machine else 0.0
    fp = share * w.machine
    return w.abandoned + fp, w.live + fp, fp, share


@dataclass
class _Call:
    rec: CallRecord
    action_id: str
    channels: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)


@dataclass
class _Tally:
    placed: int = 0
    outcomes: dict[DialOutcome, int] = field(default_factory=dict)
    base: WindowCounts = WindowCounts()
    """The legal window as stored (:meth:`CallLedger.set_window`)."""
    since: WindowCounts = WindowCounts()
    """Decided since ``base`` was read."""
    hour: list[tuple[float, str]] = field(default_factory=list)
    """(decided at, ``live``/``abandoned``/``machine``), in time order."""
    pending: dict[str, tuple[float, bool]] = field(default_factory=dict)
    """Verification calls bridged, awaiting the agent's finding: (decided at, late)."""
    sampled: int = 0
    """Machine verdicts sampled for verification (``amd_verify``)."""
    routed: int = 0
    """... that the dialplan sent to an agent (one was free at once)."""


class CallLedger:
    def __init__(
        self,
        *,
        safe_harbour_s: float = 2.0,
        safe_harbour_prompt: str = "memberline/safe-harbour",
    ) -> None:
        self.safe_harbour_s = safe_harbour_s
        self.safe_harbour_prompt = safe_harbour_prompt
        self._calls: dict[str, _Call] = {}
        self._by_action: dict[str, str] = {}
        self._tally: dict[int, _Tally] = {}
        self._seen_ids: set[str] = set()

    # ------------------------------------------------------------------ placing
    def place(
        self,
        call_id: str,
        campaign_id: int,
        at: float,
        *,
        kind: CallKind = CallKind.QUEUE,
        entry_id: int | None = None,
        member_id: int | None = None,
        agent_id: int | None = None,
        agent: str | None = None,
        amd: bool = False,
        amd_verify: bool = False,
        action_id: str | None = None,
    ) -> CallRecord:
        """A call is about to be originated with ``ChannelId: call_id``.

        Raises :class:`LedgerError` for a call id already used: a call is never dialled twice.
        """
        if call_id in self._seen_ids:
            raise LedgerError(f"call {call_id} was already placed")
        self._seen_ids.add(call_id)
        rec = CallRecord(
            call_id,
            campaign_id,
            kind,
            at,
            entry_id=entry_id,
            member_id=member_id,
            agent_id=agent_id,
            agent=agent,
            amd=amd,
            amd_verify=amd_verify,
        )
        aid = action_id or f"dial-{call_id}"
        self._calls[call_id] = _Call(rec, aid)
        self._by_action[aid] = call_id
        self._tally.setdefault(campaign_id, _Tally()).placed += 1
        return rec

    def adopt(
        self,
        call_id: str,
        campaign_id: int,
        at: float,
        *,
        kind: CallKind = CallKind.QUEUE,
        entry_id: int | None = None,
        member_id: int | None = None,
        agent_id: int | None = None,
        agent: str | None = None,
    ) -> CallRecord:
        """After a hub restart: a call recorded without outcome; whether it is still alive is
        for the next :meth:`resync` (and its own events) to say."""
        self.place(
            call_id,
            campaign_id,
            at,
            kind=kind,
            entry_id=entry_id,
            member_id=member_id,
            agent_id=agent_id,
            agent=agent,
        )
        self._set(self._calls[call_id], send="unknown")
        return self._calls[call_id].rec

    def sent(self, call_id: str, at: float) -> None:
        c = self._calls.get(call_id)
        if c is not None and c.rec.send != "sent":
            self._set(c, send="sent")

    def send_unknown(self, call_id: str, at: float) -> None:
        """The Originate got no reply: Asterisk may be dialling. Stays in flight, unknown."""
        c = self._calls.get(call_id)
        if c is not None and c.rec.send == "pending":
            self._set(c, send="unknown")

    def send_failed(self, call_id: str, at: float, *, refused: bool = True) -> list[Fact]:
        """Nothing was dialled: the PBX refused the Originate (``failed``), or it could not be
        sent at all (``refused=False``: no connection -> ``interrupted``, retry soon)."""
        c = self._calls.get(call_id)
        if c is None or c.channels or c.gone:
            return []
        out = self._decide(c, DialOutcome.FAILED if refused else DialOutcome.INTERRUPTED, at)
        return out + self._end(c, at)

    # ------------------------------------------------------------------ AMI events
    def feed(self, msg: AmiLike, at: float) -> list[Fact]:
        """One AMI event; events of other calls are ignored."""
        name = msg.name
        if name == "OriginateResponse":
            return self._originate_response(msg, at)
        if name == "Shutdown":
            for each in self._calls.values():
                self._set(each, cut=True)
            return []
        c = self._find(msg)
        if c is None:
            return []
        uid = msg.get("Uniqueid") or ""
        if name == "Newchannel":
            if uid and uid not in c.gone:
                c.channels.add(uid)
            return []
        if name == "Hangup":
            return self._hangup(c, uid, _int(msg.get("Cause")), at)
        if uid and uid not in c.gone and name not in ("DialEnd", "AgentConnect"):
            c.channels.add(uid)  # a channel we missed the Newchannel of (resync, reorder)
        if name == "Newstate":
            if (msg.get("ChannelStateDesc") or "") == "Up" and uid == c.rec.call_id:
                return self._channel_up(c, at)
            return []
        if name == "DialEnd":
            return self._dial_end(c, msg, at)
        if name == "VarSet":
            if (msg.get("Variable") or "") == "AMDSTATUS" and uid == c.rec.call_id:
                return self._amd(c, (msg.get("Value") or "").upper(), at)
            return []
        if name == "Newexten":
            app = (msg.get("Application") or "").lower()
            data = msg.get("AppData") or ""
            if app in ("playback", "background") and self.safe_harbour_prompt in data:
                self._set(c, safe_harbour=True)
            elif app == "hangup" and uid == c.rec.call_id:
                self._set(c, dialplan_hangup=True)
            return []
        if name == "SoftHangupRequest":
            if (msg.get("Cause") or "") == "4":  # AST_SOFTHANGUP_SHUTDOWN
                self._set(c, cut=True)
            return []
        if name == "QueueCallerJoin":
            if c.rec.verifying and not c.rec.queued:
                self._tally.setdefault(c.rec.campaign_id, _Tally()).routed += 1
            self._set(c, queued=True)
            return []
        if name == "AgentConnect":
            hold = _int(msg.get("HoldTime"))
            return self.bridged(c.rec.call_id, at, msg.get("Interface") or "", hold)
        return []

    def bridged(
        self, call_id: str, at: float, agent: str, hold_s: float | None = None
    ) -> list[Fact]:
        """An agent took the call (AgentConnect)."""
        c = self._calls.get(call_id)
        if c is None or c.rec.bridged_at is not None:
            return []
        r = c.rec
        if r.live_at is not None:
            wait: float | None = max(0.0, at - r.live_at)
        else:
            wait = float(hold_s) if hold_s is not None else None
        self._set(c, bridged_at=at, agent=agent or r.agent, bridge_wait_s=wait)
        if r.verifying and not r.queued:  # reached an agent (no QueueCallerJoin seen)
            self._tally.setdefault(r.campaign_id, _Tally()).routed += 1
            self._set(c, queued=True)
        if r.outcome is not None or r.kind is not CallKind.QUEUE:
            return []
        if r.answered_at is None and not r.answered_unknown:
            # The answer's event is still to come (reordered): it was answered by now.
            self._set(c, answered_at=at, live_at=at if not r.amd else r.live_at)
        late = wait is not None and wait > self.safe_harbour_s
        if r.verifying and late:
            # A machine verdict nobody took in time: unverified, counted as a machine
            # hang-up (its false-positive share) even if an agent picks it up now.
            return self._decide(c, DialOutcome.MACHINE, at)
        return self._decide(c, DialOutcome.ABANDONED if late else DialOutcome.ANSWERED, at)

    def resumed(self, call_id: str, agent: str, at: float) -> list[Fact]:
        """A resync found an agent talking to this call (the hub restarted mid-call)."""
        c = self._calls.get(call_id)
        if c is None:
            return []
        if c.rec.answered_at is None:
            self._set(c, answered_unknown=True)
        if c.rec.bridged_at is None:
            self._set(c, bridged_at=at, agent=agent)
        if c.rec.outcome is None:
            # The dialplan bridged it (no wait known); an agent talks to the member now.
            return self._decide(c, DialOutcome.ANSWERED, at)
        return []

    def resync(self, at: float, channels: Iterable[LiveChannel], connected_at: float) -> list[Fact]:
        """The PBX's channel list after a (re)connection made at ``connected_at``.

        Calls placed before that connection are matched to their channels; those with none
        left ended while we were not listening (a PBX restart cuts them all): decided
        ``interrupted`` unless already decided, then ended. Calls placed since are left to
        their own events (their Originate may not have made a channel yet)."""
        by_call: dict[str, list[LiveChannel]] = {}
        for ch in channels:
            cid = self._owner(ch.linkedid) or self._owner(ch.uniqueid)
            if cid is not None:
                by_call.setdefault(cid, []).append(ch)
        out: list[Fact] = []
        for c in list(self._calls.values()):
            if c.rec.placed_at >= connected_at:
                continue
            live = by_call.get(c.rec.call_id, [])
            if not live:
                if c.rec.outcome is None:
                    out += self._decide(c, DialOutcome.INTERRUPTED, at)
                out += self._end(c, at)
                continue
            ids = {ch.uniqueid for ch in live}
            c.gone |= c.channels - ids
            c.channels = ids - c.gone
            own = next((ch for ch in live if ch.uniqueid == c.rec.call_id), None)
            if own is not None and own.up and c.rec.answered_at is None:
                if c.rec.kind is CallKind.AGENT_FIRST:
                    self._set(c, agent_answered_at=c.rec.agent_answered_at or at)
                else:
                    self._set(c, answered_unknown=True)
                    if c.rec.kind is CallKind.IVR and c.rec.outcome is None:
                        out += self._decide(c, DialOutcome.ANSWERED, at)
            if (
                own is not None
                and own.bridged
                and c.rec.kind is CallKind.QUEUE
                and c.rec.bridged_at is None
            ):
                # In a bridge: the queue connected an agent while we were not listening
                # (as CallResumed says); the wait is unknown, the dialplan allowed 2 s.
                out += self.resumed(c.rec.call_id, c.rec.agent or "", at)
        return out

    def expire(self, at: float) -> list[Fact]:
        """Live answers not bridged within the 2-second rule are abandoned (a fact by now)."""
        out: list[Fact] = []
        for c in list(self._calls.values()):
            r = c.rec
            if (
                r.kind is CallKind.QUEUE
                and r.outcome is None
                and r.live_at is not None
                and r.bridged_at is None
                and at - r.live_at > self.safe_harbour_s
            ):
                late = DialOutcome.MACHINE if r.verifying else DialOutcome.ABANDONED
                out += self._decide(c, late, at)
        return out

    # ------------------------------------------------------------------ reading
    def get(self, call_id: str) -> CallRecord | None:
        c = self._calls.get(call_id)
        return c.rec if c is not None else None

    def calls(self, campaign_id: int | None = None) -> list[CallRecord]:
        """Every open call (not yet ended), optionally of one campaign."""
        return [
            c.rec
            for c in self._calls.values()
            if campaign_id is None or c.rec.campaign_id == campaign_id
        ]

    def call_for_action(self, action_id: str) -> str | None:
        return self._by_action.get(action_id)

    def counts(self, campaign_id: int, at: float) -> Counts:
        dialling: list[float] = []
        waiting = ivr = 0
        held: set[str] = set()
        n = 0
        for c in self._calls.values():
            r = c.rec
            if r.campaign_id != campaign_id:
                continue
            n += 1
            unanswered = r.answered_at is None and not r.answered_unknown and r.outcome is None
            if r.kind is CallKind.IVR:
                if unanswered:
                    dialling.append(max(0.0, at - r.placed_at))
                else:
                    ivr += 1
            elif r.kind is CallKind.AGENT_FIRST:
                if r.outcome is None and r.agent:
                    held.add(r.agent)
            elif unanswered:
                dialling.append(max(0.0, at - r.placed_at))
            elif r.outcome is None and r.bridged_at is None:
                waiting += 1
        return Counts(tuple(dialling), waiting, ivr, frozenset(held), n)

    def set_window(self, campaign_id: int, abandoned: float, live: float, **amd: float) -> None:
        """The legal window's counts as stored (the DB; ``amd``: ``machine``, ``verified``,
        ``verified_live`` of :class:`WindowCounts`); decisions from now on add to them."""
        t = self._tally.setdefault(campaign_id, _Tally())
        t.base = WindowCounts(abandoned, live, **amd)
        t.since = WindowCounts()

    def abandons(self, campaign_id: int, at: float) -> Abandons:
        """The abandonment statistic over the legal window and the last hour, AMD's
        estimated false positives included (:func:`window_abandons`)."""
        t = self._tally.get(campaign_id)
        if t is None:
            return Abandons()
        cut = bisect.bisect_left(t.hour, (at - 3600,))
        del t.hour[:cut]
        whole = t.base + t.since
        abandoned, live, fp, share = window_abandons(whole)
        hour = WindowCounts(
            abandoned=sum(1 for _, k in t.hour if k == "abandoned"),
            live=sum(1 for _, k in t.hour if k != "machine"),
            machine=sum(1 for _, k in t.hour if k == "machine"),
        )
        hour_fp = share * hour.machine
        return Abandons(
            abandoned,
            live,
            hour.abandoned + hour_fp,
            hour.live + hour_fp,
            amd_fp_share=share,
            window_amd_false_positives=fp,
        )

    def verified(self, call_id: str, campaign_id: int, *, live: bool, at: float) -> None:
        """The agent's disposition of a verification call (a machine verdict an agent took):
        a person (AMD was wrong: now a live answer, abandoned if the agent came late) or a
        machine. Calls this ledger does not know as pending verification are ignored."""
        t = self._tally.get(campaign_id)
        if t is None or call_id not in t.pending:
            return
        decided_at, late = t.pending.pop(call_id)
        t.since = t.since + WindowCounts(
            abandoned=float(live and late),
            live=float(live),
            verified=1.0,
            verified_live=float(live),
        )
        if live:
            bisect.insort(t.hour, (decided_at, "abandoned" if late else "live"))

    def verification_reach(self, campaign_id: int) -> float:
        """Share of machine verdicts sampled for verification that reached an agent (the
        dialplan routes one only when an agent is free at once); 1.0 before any sample."""
        t = self._tally.get(campaign_id)
        if t is None or t.sampled == 0:
            return 1.0
        return t.routed / t.sampled

    def pending_verification(self, campaign_id: int) -> int:
        t = self._tally.get(campaign_id)
        return len(t.pending) if t is not None else 0

    def tally(self, campaign_id: int) -> tuple[int, dict[DialOutcome, int]]:
        """(calls placed, decided outcomes) of a campaign since this ledger started."""
        t = self._tally.get(campaign_id) or _Tally()
        return t.placed, dict(t.outcomes)

    # ------------------------------------------------------------------ internals
    def _set(self, c: _Call, **changes: object) -> None:
        c.rec = replace(c.rec, **changes)  # type: ignore[arg-type]

    def _owner(self, some_id: str) -> str | None:
        """The call a Uniqueid/Linkedid belongs to: the ChannelId itself, ``<id>-2`` (our
        OtherChannelId) or ``<id>;2`` (Asterisk's derived one)."""
        if not some_id:
            return None
        if some_id in self._calls:
            return some_id
        for sep in (";", "-"):
            base = some_id.rpartition(sep)[0]
            if base and base in self._calls:
                return base
        return None

    def _find(self, msg: AmiLike) -> _Call | None:
        for key in ("Linkedid", "Uniqueid", "DestLinkedid", "DestUniqueid"):
            cid = self._owner(msg.get(key) or "")
            if cid is not None:
                return self._calls[cid]
        return None

    def _originate_response(self, msg: AmiLike, at: float) -> list[Fact]:
        cid = self._by_action.get(msg.get("ActionID") or "") or self._owner(
            msg.get("Uniqueid") or ""
        )
        c = self._calls.get(cid) if cid else None
        if c is None:
            return []
        self._set(c, send="sent")
        if (msg.get("Response") or "") == "Success":
            return self._channel_up(c, at)
        self._set(c, reason=_int(msg.get("Reason")))
        if c.channels:
            return []  # Hang-ups to come carry the better cause (Reason 0 + cause 17 = busy)
        if c.rec.answered_at is not None or c.rec.answered_unknown:
            return []
        # No channel left: Asterisk sends a failure after the channels are gone.
        return self._decide(c, self._unanswered(c.rec), at) + self._end(c, at)

    def _channel_up(self, c: _Call, at: float) -> list[Fact]:
        r = c.rec
        if r.kind is CallKind.AGENT_FIRST:
            if r.agent_answered_at is None:
                self._set(c, agent_answered_at=at)
            return []
        if r.answered_at is not None:
            return []
        self._set(c, answered_at=at, live_at=None if r.amd else at)
        if r.kind is CallKind.IVR and r.outcome is None:
            return self._decide(c, DialOutcome.ANSWERED, at)
        return []

    def _amd(self, c: _Call, status: str, at: float) -> list[Fact]:
        r = c.rec
        if r.amd_status is not None:
            return []
        self._set(c, amd_status=status)
        if r.answered_at is None:
            self._set(c, answered_at=at)
        if r.outcome is not None:
            return []
        if status == "MACHINE" and not r.amd_verify:
            return self._decide(c, DialOutcome.MACHINE, at)
        if status == "MACHINE":
            # Sampled for verification: the dialplan sends it to an agent only if one is
            # free at once, else hangs it up (then it ends as `machine`, see _at_end). The
            # clock starts at the verdict; expire() leaves it alone (not a live answer yet).
            self._tally.setdefault(r.campaign_id, _Tally()).sampled += 1
            self._set(c, live_at=at)
            return []
        if status == "HANGUP":
            # The member hung up during the greeting: the 2-second clock never started.
            return self._decide(c, DialOutcome.NO_ANSWER, at)
        self._set(c, live_at=at)
        return []

    def _dial_end(self, c: _Call, msg: AmiLike, at: float) -> list[Fact]:
        status = (msg.get("DialStatus") or "").upper()
        r = c.rec
        if r.kind is CallKind.AGENT_FIRST:
            # The member's leg: dialled by the dialplan from the agent's channel.
            if not msg.get("Channel") or (msg.get("DestUniqueid") or "") == r.call_id:
                return []
            if _is_agent(msg.get("DestChannel") or "", r.agent):
                return []
            if r.agent_answered_at is None:
                self._set(c, agent_answered_at=at)  # the dialplan runs: the agent answered
            if status == "ANSWER":
                self._set(c, answered_at=at, live_at=at, bridged_at=at, bridge_wait_s=0.0)
                return self._decide(c, DialOutcome.ANSWERED, at) if r.outcome is None else []
            if status in _DIAL_OUTCOME:
                self._set(c, dial_status=status)
                if r.outcome is None:
                    return self._decide(c, _DIAL_OUTCOME[status], at)
            return []
        if (msg.get("DestUniqueid") or "") not in ("", r.call_id) or msg.get("Channel"):
            return []  # a Dial() of the call's dialplan (the queue ringing agents)
        if status == "ANSWER":
            return self._channel_up(c, at)
        if status in _DIAL_OUTCOME and r.dial_status is None:
            self._set(c, dial_status=status)
        return []

    def _hangup(self, c: _Call, uid: str, cause: int | None, at: float) -> list[Fact]:
        if uid:
            c.channels.discard(uid)
            c.gone.add(uid)
        if cause is not None and cause not in (0, 16) and (c.rec.cause in (None, 0, 16)):
            self._set(c, cause=cause)
        elif cause is not None and c.rec.cause is None:
            self._set(c, cause=cause)
        if c.channels:
            return []
        out: list[Fact] = []
        if c.rec.outcome is None:
            out += self._decide(c, self._at_end(c.rec, at), at)
        return out + self._end(c, at)

    def _at_end(self, r: CallRecord, end: float) -> DialOutcome:
        """Every channel is gone and nothing decided yet."""
        if r.kind is CallKind.AGENT_FIRST:
            if r.cut or r.agent_answered_at is None:
                return DialOutcome.INTERRUPTED
            return DialOutcome.NO_ANSWER
        if r.cut and not (r.live_at is not None and end - r.live_at > self.safe_harbour_s):
            return DialOutcome.INTERRUPTED  # the PBX restart cut it: not the member's doing
        if r.answered_at is not None or r.answered_unknown:
            if r.kind is CallKind.IVR:
                return DialOutcome.ANSWERED
            if r.amd and r.live_at is None:
                # Hung up before AMD's verdict: the greeting never completed.
                return DialOutcome.NO_ANSWER
            if r.verifying:
                return DialOutcome.MACHINE  # no agent was free: the dialplan hung it up
            return DialOutcome.ABANDONED  # a live answer that never reached an agent
        return self._unanswered(r)

    @staticmethod
    def _unanswered(r: CallRecord) -> DialOutcome:
        if r.cause in _CAUSE_OUTCOME:
            return _CAUSE_OUTCOME[r.cause]
        if r.dial_status in _DIAL_OUTCOME:
            return _DIAL_OUTCOME[r.dial_status]
        if r.reason in _REASON_OUTCOME:
            return _REASON_OUTCOME[r.reason]
        if r.cause == 16:
            return DialOutcome.NO_ANSWER  # cleared while ringing
        if r.kind is CallKind.AGENT_FIRST:
            return DialOutcome.INTERRUPTED  # the agent's phone never answered: member not rung
        return DialOutcome.FAILED

    def _decide(self, c: _Call, outcome: DialOutcome, at: float) -> list[Fact]:
        if c.rec.outcome is not None:
            return []
        if c.rec.kind is CallKind.AGENT_FIRST and outcome in _CAUSE_OUTCOME.values():
            if c.rec.agent_answered_at is None and c.rec.answered_at is None:
                outcome = DialOutcome.INTERRUPTED  # the agent never answered: member never rung
        self._set(c, outcome=outcome, decided_at=at)
        t = self._tally.setdefault(c.rec.campaign_id, _Tally())
        t.outcomes[outcome] = t.outcomes.get(outcome, 0) + 1
        if c.rec.kind is not CallKind.QUEUE:
            pass
        elif outcome in REACHED and c.rec.verifying:
            # Person or machine: the agent's disposition will say (verified()).
            t.pending[c.rec.call_id] = (at, outcome is DialOutcome.ABANDONED)
            while len(t.pending) > 5000:  # never dispositioned: forget the oldest
                t.pending.pop(next(iter(t.pending)))
        elif outcome in REACHED:
            ab = outcome is DialOutcome.ABANDONED
            t.since = t.since + WindowCounts(abandoned=float(ab), live=1.0)
            bisect.insort(t.hour, (at, "abandoned" if ab else "live"))
        elif outcome is DialOutcome.MACHINE:
            t.since = t.since + WindowCounts(machine=1.0)
            bisect.insort(t.hour, (at, "machine"))
        return [Fact(FactKind.DECIDED, c.rec)]

    def _end(self, c: _Call, at: float) -> list[Fact]:
        if self._calls.pop(c.rec.call_id, None) is None:
            return []
        self._by_action.pop(c.action_id, None)
        self._set(c, ended_at=at)
        return [Fact(FactKind.ENDED, c.rec)]


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v else None
    except ValueError:
        return None


def _is_agent(dest_channel: str, interface: str | None) -> bool:
    """``Local/1001@agents-0000;1`` is a channel of interface ``Local/1001@agents/n``."""
    if not interface:
        return False
    base = interface[:-2] if interface.endswith("/n") else interface
    return dest_channel.startswith(base)
