"""The simulator's calls go through the live runner's own accounting.

The simulator knows the truth (person or machine); the runner does not. So the simulator
emits, for each call, the AMI events the runner receives from Asterisk — ``Newchannel``,
``Newstate Up`` when the member answers, ``VarSet AMDSTATUS`` with AMD, ``AgentConnect`` when
an agent takes the call, the safe-harbour ``Newexten`` and ``Hangup`` — into the same
:class:`~dialer.ledger.CallLedger` the runner uses. The ledger decides every outcome (the
2-second rule measured from the live answer to the bridge), and its facts teach the pacer's
estimator through the runner's own :func:`dialer.outcomes.feed_estimator`. The pacer's
snapshot is built from the ledger's counts (calls dialling, members waiting) and abandonment
statistics, as ``CampaignRunner.snapshot`` builds it. Nothing here decides anything itself.
"""

from __future__ import annotations

from dialer.dial_rules import DialOutcome
from dialer.ledger import CallKind, CallLedger, Fact, FactKind
from dialer.outcomes import feed_estimator
from dialer.pacing.estimators import OutcomeEstimator
from dialer.pacing.snapshot import AbandonCounts

CAMPAIGN = 1
SAFE_HARBOUR = "memberline/safe-harbour"


class _Event:
    """An AMI event as the ledger reads it (``name`` and ``get``)."""

    __slots__ = ("_fields", "name")

    def __init__(self, name: str, **fields: str) -> None:
        self.name = name
        self._fields = fields

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._fields.get(key, default)


class RunnerAccounting:
    """One campaign's calls, as the runner accounts for them (the ledger and the estimator)."""

    def __init__(self, horizon_s: int, cap: float) -> None:
        self.ledger = CallLedger(safe_harbour_s=2.0, safe_harbour_prompt=SAFE_HARBOUR)
        self.estimator = OutcomeEstimator(horizon_s)
        self.cap = cap
        self.outcomes: dict[DialOutcome, int] = {}

    def _apply(self, facts: list[Fact]) -> None:
        for fact in facts:
            feed_estimator(self.estimator, fact)
            if fact.kind is FactKind.DECIDED:
                out = fact.outcome
                self.outcomes[out] = self.outcomes.get(out, 0) + 1

    def _feed(self, name: str, at: float, **fields: str) -> None:
        self._apply(self.ledger.feed(_Event(name, **fields), at))

    # -- what the simulator's calls do ---------------------------------------------------------
    def placed(self, cid: int, at: float, *, amd: bool, verify: bool) -> None:
        """The runner commits the attempt, then sends the Originate (``ChannelId`` = ``cid``)."""
        call = str(cid)
        self.ledger.place(call, CAMPAIGN, at, kind=CallKind.QUEUE, amd=amd, amd_verify=verify)
        self.ledger.sent(call, at)
        self._feed("Newchannel", at, Uniqueid=call, Linkedid=call)

    def not_answered(self, cid: int, at: float) -> None:
        """Rang out (no answer at the ring timeout)."""
        call = str(cid)
        self._feed("Hangup", at, Uniqueid=call, Linkedid=call, Cause="19")

    def answered(self, cid: int, at: float) -> None:
        call = str(cid)
        self._feed("Newstate", at, Uniqueid=call, Linkedid=call, ChannelStateDesc="Up")

    def amd_verdict(self, cid: int, at: float, *, machine: bool) -> None:
        call = str(cid)
        value = "MACHINE" if machine else "HUMAN"
        self._feed("VarSet", at, Uniqueid=call, Linkedid=call, Variable="AMDSTATUS", Value=value)

    def bridged(self, cid: int, at: float, agent: int, hold_s: float) -> None:
        call = str(cid)
        self._feed(
            "AgentConnect",
            at,
            Uniqueid=call,
            Linkedid=call,
            Interface=f"Local/{agent}@agents/n",
            HoldTime=str(int(hold_s)),
        )

    def verified(self, cid: int, at: float, *, live: bool) -> None:
        """The agent's disposition of a verification call (AMD said machine): person or not."""
        self.ledger.verified(str(cid), CAMPAIGN, live=live, at=at)

    def dropped(self, cid: int, at: float) -> None:
        """No agent within 2 s: the dialplan plays the safe-harbour message and hangs up."""
        call = str(cid)
        self._feed(
            "Newexten", at, Uniqueid=call, Linkedid=call, Application="Playback",
            AppData=SAFE_HARBOUR,
        )  # fmt: skip
        self.hung_up(cid, at)

    def hung_up(self, cid: int, at: float) -> None:
        """The call ended (normal clearing): after talk, a machine handled, AMD's hang-up."""
        call = str(cid)
        self._feed("Hangup", at, Uniqueid=call, Linkedid=call, Cause="16")

    def expire(self, at: float) -> None:
        """The runner's tick: live answers past the 2-second rule are abandoned by now."""
        self._apply(self.ledger.expire(at))

    def agent_cycle(self, talk_s: float, wrap_s: float) -> None:
        """``CallCompleted`` then ``AgentStateChanged`` to available (talk, wrap-up)."""
        self.estimator.record_agent_cycle(talk_s, wrap_s)

    # -- what the pacer reads -------------------------------------------------------------------
    def dialling_and_waiting(self, at: float) -> tuple[tuple[float, ...], int]:
        counts = self.ledger.counts(CAMPAIGN, at)
        return counts.dialling_s, counts.waiting

    def counts(self, at: float) -> AbandonCounts:
        ab = self.ledger.abandons(CAMPAIGN, at)
        return AbandonCounts(
            ab.window_abandoned, ab.window_live, ab.hour_abandoned, ab.hour_live, self.cap
        )


class NoAccounting(RunnerAccounting):
    """For baselines that are not Memberline's (VICIdial keeps its own statistics): the calls
    are not fed to a ledger, which keeps the baseline's level scans cheap."""

    def __init__(self, horizon_s: int, cap: float) -> None:
        super().__init__(horizon_s, cap)

    def _feed(self, name: str, at: float, **fields: str) -> None:
        return

    def placed(self, cid: int, at: float, *, amd: bool, verify: bool) -> None:
        return

    def expire(self, at: float) -> None:
        return

    def agent_cycle(self, talk_s: float, wrap_s: float) -> None:
        return
