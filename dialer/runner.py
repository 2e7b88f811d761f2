"""The campaign runner: leases entries, checks the rules at dial time, paces and originates.

One runner per hub. Every ``tick_s`` it looks at every campaign whose row says
``running`` (supervisors change that row from the CLI or the console; the runner
just follows it), builds a :class:`~dialer.pacing.PacingSnapshot` from the tracker's
live agent states and its own in-flight calls, asks the pacer how many calls to
place, leases that many entries, re-checks each member at dial time
(:mod:`dialer.rules`), commits an attempt row and only then sends ``Originate``
(``Async``, with ``ChannelId`` preset so every AMI event of the call carries our id
as Uniqueid/Linkedid).

Where an answered call goes is dialplan (see ``docs/dialer-pacing.md``):

* agent campaigns: ``Context: <campaign_context>``, ``Exten: <queue>`` — on Asterisk
  ``Queue(<queue>,,,,2)`` then ``Playback(<safe-harbour>)``: the 2-second rule;
* survey campaigns (mode ``ivr``): ``Context: <ivr_context>``, ``Exten: <survey>``
  — ``AGI(agi://…/survey)``.

Outcomes come back as tracker domain events: ``OriginateResult`` (not answered →
busy / no answer / congestion / failed), ``CallAnswered`` for our conversation (a
person reached an agent → answered), ``ConversationEnded`` after an answer without
an agent (→ abandoned; the safe-harbour message played). Each is stored once
(:func:`dialer.entries.finish_attempt` is idempotent) and fed to the pacer's
estimators. An entry that runs out of attempts is handed to the SMS/email
fallback in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Integer, func, select
from sqlalchemy.orm import Session

from crm_bridge.db import run_db
from crm_bridge.models import CallAttempt, Campaign, CampaignStatus
from cti.ami.message import AmiMessage
from cti.hub.sessions import AgentInfo
from cti.hubproto.messages import ErrorCode, ProtocolError
from cti.tracker import (
    AgentState,
    AgentStateChanged,
    AgentView,
    CallAnswered,
    CallCompleted,
    ConversationEnded,
    DomainEvent,
    OriginateOutcome,
    OriginateResult,
)
from dialer import agentfirst, entries
from dialer.agentfirst import AgentDesk, Offer
from dialer.pacing import (
    AbandonCounts,
    Decision,
    DialMode,
    OutcomeEstimator,
    PacingSnapshot,
    PredictivePacer,
    decide,
)
from dialer.rules import CallingWindow, Outcome, RetryPolicy, Verdict, check

log = logging.getLogger(__name__)

SendAction = Callable[[dict[str, str]], Awaitable[Any]]
AgentsView = Callable[[], list[AgentView]]
LiveChannels = Callable[[], Awaitable[list[str]]]

_ORIGINATE_OUTCOME = {
    OriginateOutcome.NO_ANSWER: Outcome.NO_ANSWER,
    OriginateOutcome.BUSY: Outcome.BUSY,
    OriginateOutcome.REJECTED: Outcome.BUSY,
    OriginateOutcome.CONGESTION: Outcome.CONGESTION,
    OriginateOutcome.FAILED: Outcome.FAILED,
    OriginateOutcome.HUNG_UP: Outcome.NO_ANSWER,
}

_DIAL_STATUS = {
    "ANSWER": Outcome.ANSWERED,
    "BUSY": Outcome.BUSY,
    "NOANSWER": Outcome.NO_ANSWER,
    "CANCEL": Outcome.NO_ANSWER,
    "CONGESTION": Outcome.CONGESTION,
    "CHANUNAVAIL": Outcome.FAILED,
}
"""DialEnd ``DialStatus`` of the member's leg of an agent-first call -> outcome."""


@dataclass(frozen=True)
class RunnerSettings:
    owner: str = "hub-1"
    """This hub's name: lease owner of the entries it dials."""
    window: CallingWindow = field(default_factory=CallingWindow)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    tick_s: float = 1.0
    ring_timeout_s: int = 25
    lease_s: int = 120
    trunk: str = "Local/{number}@members-out/n"
    campaign_context: str = "campaign"
    ivr_context: str = "surveys"
    caller_id: str = '"Memberline" <4000>'
    ivr_concurrency: int = 10
    abandon_window_s: int = 30 * 86400
    """The legal window the abandonment rate is held over (US: 30 days per campaign)."""
    stale_flight_s: float = 120.0
    """An attempt with no result this long after its ring timeout is checked against the PBX."""
    preview_lease_s: int = 600
    """How long a preview card holds its entry (the agent reads the member first)."""
    preview_skip_s: int = 900
    """A skipped preview entry is due again after this long (unless the reason cancels it)."""
    maintainer_first: bool = True
    """Progressive/predictive: ring an available maintaining (or assigned) agent first."""


@dataclass
class _Flight:
    channel_id: str
    entry_id: int
    campaign_id: int
    member_id: int
    placed_at: float
    action_id: str
    answered_at: float | None = None
    agent: str | None = None
    agent_first: bool = False
    """Rings ``agent`` first, then the member (preview, maintainer-first)."""
    agent_id: int | None = None
    agent_answered_at: float | None = None


@dataclass
class _Campaign:
    id: int
    name: str
    mode: DialMode
    queue: str
    cap: float
    survey: str | None
    status: CampaignStatus
    pacer: PredictivePacer = field(default_factory=PredictivePacer)
    estimator: OutcomeEstimator = field(default_factory=lambda: OutcomeEstimator(horizon_s=30))
    window_abandoned: float = 0.0
    window_live: float = 0.0
    hour: list[tuple[float, bool]] = field(default_factory=list)
    """(time, abandoned?) of live answers in the last hour."""
    last_decision: Decision | None = None
    placed: int = 0


class CampaignRunner:
    def __init__(
        self,
        engine: Engine,
        send_action: SendAction,
        agents: AgentsView,
        settings: RunnerSettings | None = None,
        *,
        live_channels: LiveChannels | None = None,
        on_exhausted: entries.ExhaustedHook | None = None,
        clock: Callable[[], float] = time.time,
        desk: AgentDesk | None = None,
    ) -> None:
        self.engine = engine
        self.send_action = send_action
        self.agents = agents
        self.settings = settings or RunnerSettings()
        self.live_channels = live_channels
        self.on_exhausted = on_exhausted
        self.clock = clock
        self.desk = desk
        """The hub: consoles, preview cards, agent-first dialling (None: queue calls only)."""
        self.offers: dict[int, Offer] = {}
        """entry id -> the preview card showing it."""
        self.offered_to: dict[str, int] = {}
        """agent code -> entry id of their card."""
        self.campaigns: dict[int, _Campaign] = {}
        self.flights: dict[str, _Flight] = {}
        self._by_action: dict[str, str] = {}
        self._agent_last_complete: dict[str, tuple[float, float]] = {}
        self._task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.stats = {
            "placed": 0,
            "answered": 0,
            "abandoned": 0,
            "not_reached": 0,
            "skipped": 0,
            "offered": 0,
            "agent_first": 0,
        }

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self.recover()
        self._task = asyncio.create_task(self._loop(), name="campaign-runner")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for offer in list(self.offers.values()):
            with contextlib.suppress(Exception):
                await self._release_offer(offer)
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._jobs.add(task)
        task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[Any]) -> None:
        self._jobs.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("runner job %s failed", task.get_name(), exc_info=task.exception())

    async def recover(self) -> None:
        """After a restart: attempts without an outcome are re-attached or marked interrupted."""
        live: list[str] = []
        if self.live_channels is not None:
            try:
                live = await self.live_channels()
            except Exception:
                log.warning(
                    "could not list live channels; in-flight attempts stay unresolved for now"
                )
                return
        now = _utc(self.clock())
        alive = await run_db(
            self.engine,
            entries.recover_interrupted,
            live,
            now,
            self.settings.policy,
            self.on_exhausted,
            self.settings.owner,
        )
        if alive:
            talking = {a.conversation_id: a.interface for a in self.agents() if a.conversation_id}
            rows = await run_db(self.engine, _flights_for, alive)
            for channel_id, entry_id, campaign_id, member_id, agent_id in rows:
                if agent_id is not None and channel_id not in talking:
                    # Agent-first (preview / maintainer): whether the member answered was
                    # lost with the old process; its end is recorded as interrupted, never
                    # as an abandoned call.
                    flight = _Flight(
                        channel_id,
                        entry_id,
                        campaign_id,
                        member_id,
                        self.clock(),
                        f"dial-{channel_id}",
                        agent_first=True,
                        agent_id=agent_id,
                    )
                    self.flights[channel_id] = flight
                    self._by_action[flight.action_id] = channel_id
                    continue
                flight = _Flight(
                    channel_id,
                    entry_id,
                    campaign_id,
                    member_id,
                    self.clock(),
                    f"dial-{channel_id}",
                    answered_at=self.clock(),
                )
                self.flights[channel_id] = flight
                if channel_id in talking:
                    # Connected to an agent before the restart: that attempt reached a person.
                    flight.agent = talking[channel_id]
                    self._finish(flight, Outcome.ANSWERED, self.clock())
        log.info("runner recovered: %d live attempt(s) re-attached", len(alive))

    # ------------------------------------------------------------------ events
    def on_event(self, ev: DomainEvent) -> None:
        """Feed tracker domain events (the hub forwards every one)."""
        if isinstance(ev, OriginateResult):
            channel_id = self._by_action.get(ev.action_id)
            flight = self.flights.get(channel_id) if channel_id else None
            if flight is None:
                return
            if flight.agent_first:
                if ev.outcome is OriginateOutcome.ANSWERED:
                    flight.agent_answered_at = ev.at  # the agent; the member is dialled now
                else:
                    # The agent's phone did not answer: the member was never rung.
                    self._finish(flight, Outcome.INTERRUPTED, ev.at, cause=ev.cause)
                return
            if ev.outcome is OriginateOutcome.ANSWERED:
                flight.answered_at = ev.at
                camp = self.campaigns.get(flight.campaign_id)
                if camp is not None and camp.mode is DialMode.IVR:
                    self._finish(flight, Outcome.ANSWERED, ev.at)
            else:
                self._finish(
                    flight,
                    _ORIGINATE_OUTCOME.get(ev.outcome, Outcome.FAILED),
                    ev.at,
                    cause=ev.cause,
                )
        elif isinstance(ev, CallAnswered):
            flight = self.flights.get(ev.conversation_id)
            if flight is not None:
                flight.agent = ev.interface
                self._finish(flight, Outcome.ANSWERED, ev.at)
        elif isinstance(ev, ConversationEnded):
            flight = self.flights.get(ev.conversation_id)
            if flight is not None and flight.agent_first:
                # Ended before the member's leg reported (no DialEnd seen).
                late = Outcome.NO_ANSWER if flight.agent_answered_at else Outcome.INTERRUPTED
                self._finish(flight, late, ev.at)
            elif flight is not None and flight.answered_at is not None:
                # Answered by a person, never reached an agent: the 2-second rule dropped it.
                self._finish(flight, Outcome.ABANDONED, ev.at)
        elif isinstance(ev, CallCompleted):
            self._agent_last_complete[ev.interface] = (ev.at, float(ev.talk_time))
        elif isinstance(ev, AgentStateChanged):
            done = self._agent_last_complete.get(ev.interface)
            if done is not None and ev.state is AgentState.AVAILABLE:
                completed_at, talk = self._agent_last_complete.pop(ev.interface)
                for camp in self.campaigns.values():
                    camp.estimator.record_agent_cycle(talk, max(0.0, ev.at - completed_at))

    def on_ami(self, msg: AmiMessage) -> None:
        """Raw AMI events (subscribe to the AMI client): the member leg of agent-first calls.

        The agent's phone was the Originate's channel; the member is dialled by the
        dialplan after the agent answers, and that ``Dial()``'s ``DialEnd`` (it has a
        calling ``Channel``; the Originate's own dial phase has none) tells the outcome.
        """
        if msg.name != "DialEnd" or not msg.get("Channel"):
            return
        flight = self.flights.get(msg.get("Linkedid") or "")
        if flight is None or not flight.agent_first:
            return
        if (msg.get("DestChannel") or "").startswith(_iface_base(flight.agent)):
            return
        outcome = _DIAL_STATUS.get((msg.get("DialStatus") or "").upper())
        if outcome is None:
            return
        now = self.clock()
        if outcome is Outcome.ANSWERED:
            flight.answered_at = now
        self._finish(flight, outcome, now)

    def _finish(
        self, flight: _Flight, outcome: Outcome, at: float, cause: int | None = None
    ) -> None:
        self.flights.pop(flight.channel_id, None)
        self._by_action.pop(flight.action_id, None)
        camp = self.campaigns.get(flight.campaign_id)
        if camp is not None and not flight.agent_first:
            reached = outcome in (Outcome.ANSWERED, Outcome.ABANDONED)
            delay = (flight.answered_at or at) - flight.placed_at
            camp.estimator.record_attempt(
                reached_queue=reached, reach_delay_s=delay if reached else None
            )
            if reached:
                camp.estimator.record_connection(live=True)
                abandoned = outcome is Outcome.ABANDONED
                camp.window_live += 1
                camp.window_abandoned += 1 if abandoned else 0
                camp.hour.append((at, abandoned))
        key = {Outcome.ANSWERED: "answered", Outcome.ABANDONED: "abandoned"}.get(
            outcome, "not_reached"
        )
        self.stats[key] += 1
        answered_at = _utc(flight.answered_at) if flight.answered_at is not None else None
        self._spawn(
            run_db(
                self.engine,
                entries.finish_attempt,
                flight.channel_id,
                outcome,
                _utc(at),
                self.settings.policy,
                hangup_cause=cause,
                answered_at=answered_at,
                agent_id=flight.agent_id,
                on_exhausted=self.on_exhausted,
            ),
            f"finish-{flight.channel_id}",
        )

    # ------------------------------------------------------------------ loop
    async def _loop(self) -> None:
        refresh_every = 10
        n = 0
        while not self._stopping:
            started = time.monotonic()
            try:
                await self._refresh_campaigns(with_counts=n % refresh_every == 0)
                for camp in list(self.campaigns.values()):
                    if camp.status is CampaignStatus.RUNNING:
                        await self._tick(camp)
                if self.offers:
                    await self._withdraw_idle_offers()
                await self._sweep_stale()
            except Exception:
                log.exception("campaign runner tick failed; retrying next tick")
            n += 1
            await asyncio.sleep(max(0.0, self.settings.tick_s - (time.monotonic() - started)))

    async def _refresh_campaigns(self, with_counts: bool) -> None:
        since = _utc(self.clock() - self.settings.abandon_window_s)
        rows = await run_db(self.engine, _campaign_rows, since if with_counts else None)
        seen = set()
        for row in rows:
            seen.add(row["id"])
            camp = self.campaigns.get(row["id"])
            if camp is None:
                camp = _Campaign(
                    row["id"],
                    row["name"],
                    DialMode(row["mode"]),
                    row["queue"],
                    row["cap"],
                    row["survey"],
                    CampaignStatus(row["status"]),
                )
                self.campaigns[camp.id] = camp
            camp.status = CampaignStatus(row["status"])
            if "live" in row:
                camp.window_live, camp.window_abandoned = row["live"], row["abandoned"]
        for cid in set(self.campaigns) - seen:
            if not any(f.campaign_id == cid for f in self.flights.values()):
                del self.campaigns[cid]

    def snapshot(self, camp: _Campaign) -> PacingSnapshot:
        now = self.clock()
        free = 0
        wrap: list[float] = []
        talk: list[float] = []
        held = {f.agent for f in self.flights.values() if f.agent_first}
        for a in self.agents():
            if camp.queue not in a.queues:
                continue
            if camp.queue in a.paused_queues and a.state is not AgentState.WRAP_UP:
                continue  # paused for a reason of their own; a wrap-up pause ends by itself
            if a.state is AgentState.AVAILABLE and a.interface in held:
                talk.append(0.0)  # ringing for an agent-first call the queue does not see
            elif a.state is AgentState.AVAILABLE:
                free += 1
            elif a.state is AgentState.WRAP_UP:
                wrap.append(max(0.0, now - a.since))
            elif a.state in (AgentState.ON_CALL, AgentState.RINGING):
                talk.append(max(0.0, now - a.since) if a.state is AgentState.ON_CALL else 0.0)
        mine = [f for f in self.flights.values() if f.campaign_id == camp.id]
        inflight = [
            max(0.0, now - f.placed_at) for f in mine if f.answered_at is None and not f.agent_first
        ]
        queued = sum(1 for f in mine if f.answered_at is not None and f.agent is None)
        camp.hour = [(t, a) for t, a in camp.hour if t >= now - 3600]
        hour_ab = sum(1 for _, a in camp.hour if a)
        return PacingSnapshot(
            agents_free=free,
            now_s=now,
            wrap_elapsed_s=tuple(wrap),
            talk_elapsed_s=tuple(talk),
            inflight_elapsed_s=tuple(inflight),
            queued=queued,
            model=camp.estimator.model(),
            abandons=AbandonCounts(
                camp.window_abandoned, camp.window_live, hour_ab, len(camp.hour), camp.cap
            ),
            ivr_active=queued if camp.mode is DialMode.IVR else 0,
            concurrency_cap=self.settings.ivr_concurrency,
        )

    async def _tick(self, camp: _Campaign) -> None:
        if camp.mode is DialMode.PREVIEW:
            await self._offer_previews(camp)
            return  # preview calls are placed by agents (preview_dial from the card)
        snap = self.snapshot(camp)
        decision = decide(camp.mode, snap, camp.pacer)
        camp.last_decision = decision
        if decision.calls <= 0:
            return
        now = self.clock()
        free: dict[int, AgentInfo] = {}
        if self.settings.maintainer_first and camp.mode is not DialMode.IVR:
            free = {a.id: a for a in self.free_agents(camp)}
        started = await run_db(
            self.engine, self._claim, camp.id, decision.calls, _utc(now), dict(free)
        )
        for att, agent, name in started:
            if agent is not None:
                log.info(
                    "campaign %s: entry %d to its agent %s first",
                    camp.name,
                    att.entry_id,
                    agent.code,
                )
                await self._dial_agent_first(camp, att, agent, name, raise_errors=False)
            else:
                await self._originate(camp, att, now, decision)

    # ------------------------------------------------------------------ agent first
    def free_agents(self, camp: _Campaign) -> list[AgentInfo]:
        """Agents with a console, in the campaign's queue, available, not paused, not busy
        (nor wrapping up, nor holding a card or an agent-first call)."""
        if self.desk is None:
            return []
        views = {a.interface: a for a in self.agents()}
        ringing = {f.agent for f in self.flights.values() if f.agent_first}
        out = []
        for info in self.desk.console_agents():
            v = views.get(info.interface)
            if v is None or camp.queue not in v.queues or camp.queue in v.paused_queues:
                continue
            if v.state is not AgentState.AVAILABLE or info.interface in ringing:
                continue
            if info.code in self.offered_to or self.desk.agent_busy(info.code):
                continue
            out.append(info)
        return out

    async def _offer_previews(self, camp: _Campaign) -> None:
        await self._expire_offers(camp)
        free = self.free_agents(camp)
        if not free:
            return
        now = self.clock()
        got = await run_db(self.engine, self._claim_previews, camp.id, len(free), _utc(now))
        by_id = {a.id: a for a in free}
        rest = list(free)
        for leased, name, card, preferred in got:
            agent = by_id.get(preferred) if preferred is not None else None
            if agent is None or agent not in rest:
                agent = rest[0] if rest else None
            if agent is None:  # pragma: no cover - one entry leased per free agent
                break
            rest.remove(agent)
            if agent.code in self.offered_to or self.desk is None:
                continue
            offer = Offer(leased, camp.id, agent.code, agent.id, now, name, card)
            self.offers[leased.id] = offer
            self.offered_to[agent.code] = leased.id
            self.stats["offered"] += 1
            self.desk.push_preview(agent.code, card)
            log.info("campaign %s: entry %d offered to %s", camp.name, leased.id, agent.code)

    def _claim_previews(
        self, s: Session, campaign_id: int, n: int, now: dt.datetime
    ) -> list[tuple[entries.LeasedEntry, str, dict[str, Any], int | None]]:
        leased = entries.lease_entries(
            s, campaign_id, self.settings.owner, n, now, self.settings.preview_lease_s
        )
        ok = self._check_leased(s, leased, now)
        shown = agentfirst.cards(s, campaign_id, ok)
        preferred = agentfirst.preferred_agents(s, ok)
        out = []
        for e in ok:
            if e.id not in shown:
                entries.release(
                    s, e.id, self.settings.owner, retry_at=None, cancel=True, reason="member gone"
                )
                continue
            name, card = shown[e.id]
            pref = preferred.get(e.id)
            out.append((e, name, card, pref[0] if pref else None))
        return out

    def _check_leased(
        self, s: Session, leased: list[entries.LeasedEntry], now: dt.datetime
    ) -> list[entries.LeasedEntry]:
        """The dial-time rules; entries that may not be dialled now are given back (or cancelled)."""
        facts = entries.candidates(s, leased, now)
        ok = []
        for e in leased:
            c = facts.get(e.id)
            decision = check(c, now, self.settings.window, self.settings.policy) if c else None
            if decision is None or decision.verdict is not Verdict.DIAL:
                reason = decision.reason if decision else "member gone"
                cancel = decision is None or decision.verdict is Verdict.NEVER
                entries.release(
                    s,
                    e.id,
                    self.settings.owner,
                    retry_at=decision.retry_at if decision else None,
                    cancel=cancel,
                    reason=reason,
                )
                self.stats["skipped"] += 1
                log.info("entry %d not dialled: %s", e.id, reason)
                continue
            ok.append(e)
        return ok

    async def _expire_offers(self, camp: _Campaign) -> None:
        """Withdraw cards whose agent left, whose lease is nearly over, or whose campaign stopped."""
        now = self.clock()
        consoles = {a.code for a in self.desk.console_agents()} if self.desk else set()
        for offer in [o for o in self.offers.values() if o.campaign_id == camp.id]:
            stale = now - offer.offered_at > self.settings.preview_lease_s - 30
            if offer.agent_code in consoles and not stale and camp.status is CampaignStatus.RUNNING:
                continue
            await self._release_offer(offer)

    async def _withdraw_idle_offers(self) -> None:
        """Cards of campaigns paused or stopped meanwhile are withdrawn."""
        for offer in list(self.offers.values()):
            camp = self.campaigns.get(offer.campaign_id)
            if camp is not None and camp.status is CampaignStatus.RUNNING:
                continue
            await self._release_offer(offer)

    async def _release_offer(self, offer: Offer) -> None:
        """Give the card's entry back (due now), then tell the agent the card is gone."""
        await run_db(
            self.engine,
            entries.release,
            offer.entry.id,
            self.settings.owner,
            retry_at=None,
            cancel=False,
            reason="withdrawn",
        )
        self._drop_offer(offer, withdrawn=True)

    def _drop_offer(self, offer: Offer, withdrawn: bool) -> None:
        self.offers.pop(offer.entry.id, None)
        if self.offered_to.get(offer.agent_code) == offer.entry.id:
            del self.offered_to[offer.agent_code]
        if withdrawn and self.desk is not None:
            self.desk.push_preview(offer.agent_code, {**offer.card, "withdrawn": True})

    def current_preview(self, code: str) -> dict[str, Any] | None:
        entry_id = self.offered_to.get(code)
        offer = self.offers.get(entry_id) if entry_id is not None else None
        return offer.card if offer is not None else None

    def _offer_of(self, agent: AgentInfo, entry_id: int) -> Offer:
        offer = self.offers.get(entry_id)
        if offer is None or offer.agent_code != agent.code:
            raise ProtocolError(ErrorCode.FORBIDDEN, "that entry is not offered to you")
        return offer

    async def preview_dial(self, agent: AgentInfo, entry_id: int) -> dict[str, Any]:
        """The agent pressed dial on their card: re-check, record the attempt, ring them first."""
        offer = self._offer_of(agent, entry_id)
        camp = self.campaigns.get(offer.campaign_id)
        if camp is None or camp.status is not CampaignStatus.RUNNING:
            raise ProtocolError(ErrorCode.CONFLICT, "the campaign is not running")
        if self.desk is None or self.desk.agent_busy(agent.code, include_wrapup=False):
            raise ProtocolError(ErrorCode.CONFLICT, "already on a call")
        self._drop_offer(offer, withdrawn=False)
        att, why = await run_db(
            self.engine, self._begin_offered, offer.entry, agent.id, _utc(self.clock())
        )
        if att is None:
            raise ProtocolError(ErrorCode.CONFLICT, f"not dialled: {why}")
        await self._dial_agent_first(camp, att, agent, offer.name, raise_errors=True)
        return {"call_id": att.channel_id, "attempt_id": att.attempt_id}

    def _begin_offered(
        self, s: Session, leased: entries.LeasedEntry, agent_id: int, now: dt.datetime
    ) -> tuple[entries.StartedAttempt | None, str]:
        if not self._check_leased(s, [leased], now):
            return None, "the dial-time rules do not allow this call now"
        att = entries.begin_attempt(s, leased, self.settings.owner, now, agent_id=agent_id)
        return att, "ok" if att is not None else "the entry's lease was lost"

    async def preview_skip(self, agent: AgentInfo, entry_id: int, reason: str) -> dict[str, Any]:
        offer = self._offer_of(agent, entry_id)
        self._drop_offer(offer, withdrawn=False)
        cancel = await run_db(
            self.engine,
            entries.skip_entry,
            entry_id,
            self.settings.owner,
            reason=reason,
            retry_at=_utc(self.clock() + self.settings.preview_skip_s),
            actor=f"agent:{agent.code}",
        )
        log.info("entry %d skipped by %s: %s", entry_id, agent.code, reason)
        return {"entry_status": "cancelled" if cancel else "pending"}

    async def _dial_agent_first(
        self,
        camp: _Campaign,
        att: entries.StartedAttempt,
        agent: AgentInfo,
        name: str,
        *,
        raise_errors: bool,
    ) -> None:
        now = self.clock()
        action_id = f"dial-{att.channel_id}"
        flight = _Flight(
            att.channel_id,
            att.entry_id,
            camp.id,
            att.member_id,
            now,
            action_id,
            agent=agent.interface,
            agent_first=True,
            agent_id=agent.id,
        )
        self.flights[att.channel_id] = flight
        self._by_action[action_id] = att.channel_id
        camp.placed += 1
        self.stats["placed"] += 1
        self.stats["agent_first"] += 1
        try:
            if self.desk is None:
                raise ProtocolError(ErrorCode.PBX_ERROR, "no hub to dial through")
            await self.desk.dial_agent_first(
                agent,
                call_id=att.channel_id,
                member_id=att.member_id,
                number=att.phone_e164,
                name=name,
                extra_vars=f"CAMPAIGN_ID={camp.id},ENTRY_ID={att.entry_id}",
            )
        except Exception as exc:
            log.warning("agent-first dial of entry %d failed: %s", att.entry_id, exc)
            if att.channel_id in self.flights:
                self._finish(flight, Outcome.FAILED, self.clock())
            if raise_errors:
                raise

    def _claim(
        self,
        s: Session,
        campaign_id: int,
        n: int,
        now: dt.datetime,
        free: dict[int, AgentInfo] | None = None,
    ) -> list[tuple[entries.StartedAttempt, AgentInfo | None, str]]:
        """Lease, check and record attempts in one transaction (committed before any Originate)."""
        leased = entries.lease_entries(
            s, campaign_id, self.settings.owner, n, now, self.settings.lease_s
        )
        ok = self._check_leased(s, leased, now)
        preferred = agentfirst.preferred_agents(s, ok) if free else {}
        out: list[tuple[entries.StartedAttempt, AgentInfo | None, str]] = []
        for e in ok:
            target, name = preferred.get(e.id, (None, ""))
            agent = free.pop(target, None) if free and target is not None else None
            att = entries.begin_attempt(
                s, e, self.settings.owner, now, agent_id=agent.id if agent else None
            )
            if att is not None:
                out.append((att, agent, name))
        return out

    async def _originate(
        self, camp: _Campaign, att: entries.StartedAttempt, now: float, why: Decision
    ) -> None:
        action_id = f"dial-{att.channel_id}"
        flight = _Flight(att.channel_id, att.entry_id, camp.id, att.member_id, now, action_id)
        self.flights[att.channel_id] = flight
        self._by_action[action_id] = att.channel_id
        if camp.mode is DialMode.IVR:
            context, exten = self.settings.ivr_context, camp.survey or "satisfaction"
        else:
            context, exten = self.settings.campaign_context, camp.queue
        action = {
            "Action": "Originate",
            "ActionID": action_id,
            "Channel": self.settings.trunk.format(number=att.phone_e164),
            "Context": context,
            "Exten": exten,
            "Priority": "1",
            "Timeout": str(self.settings.ring_timeout_s * 1000),
            "CallerID": self.settings.caller_id,
            "Async": "true",
            "ChannelId": att.channel_id,
            "OtherChannelId": f"{att.channel_id}-2",
            "Variable": f"MEMBER_ID={att.member_id},CAMPAIGN_ID={camp.id},ENTRY_ID={att.entry_id}",
        }
        camp.placed += 1
        self.stats["placed"] += 1
        log.info(
            "campaign %s: dialling entry %d (attempt %d): %s",
            camp.name,
            att.entry_id,
            att.attempt_no,
            why.reason,
        )
        try:
            await self.send_action(action)
        except Exception as exc:
            # Refused or not sent (PBX down): the attempt is over; it will be retried per policy.
            log.warning("originate for entry %d failed: %s", att.entry_id, exc)
            if att.channel_id in self.flights:
                self._finish(flight, Outcome.FAILED, self.clock())

    async def _sweep_stale(self) -> None:
        now = self.clock()
        limit = self.settings.ring_timeout_s + self.settings.stale_flight_s
        stale = [
            f for f in self.flights.values() if f.answered_at is None and now - f.placed_at > limit
        ]
        if not stale:
            return
        live: set[str] = set()
        if self.live_channels is not None:
            try:
                live = set(await self.live_channels())
            except Exception:
                return
        for f in stale:
            if not any(c.startswith(f.channel_id) for c in live):
                self._finish(f, Outcome.INTERRUPTED, now)

    # ------------------------------------------------------------------ reporting
    def status(self) -> list[dict[str, Any]]:
        out = []
        for camp in self.campaigns.values():
            d = camp.last_decision
            out.append(
                {
                    "campaign_id": camp.id,
                    "name": camp.name,
                    "status": camp.status.value,
                    "mode": camp.mode.value,
                    "in_flight": sum(1 for f in self.flights.values() if f.campaign_id == camp.id),
                    "placed": camp.placed,
                    "abandon_rate": camp.window_abandoned / camp.window_live
                    if camp.window_live
                    else 0.0,
                    "abandon_cap": camp.cap,
                    "last_decision": d.reason if d else "",
                }
            )
        return out


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _iface_base(interface: str | None) -> str:
    """``Local/1001@agents/n`` -> ``Local/1001@agents`` (channel names add ``-xxxx;1``)."""
    if not interface:
        return "\0"
    return interface.split("/n")[0] if interface.endswith("/n") else interface


def _campaign_rows(s: Session, since: dt.datetime | None) -> list[dict[str, Any]]:
    rows = s.execute(
        select(
            Campaign.id,
            Campaign.name,
            Campaign.mode,
            Campaign.queue,
            Campaign.abandon_cap,
            Campaign.survey_name,
            Campaign.status,
        ).where(Campaign.status.in_([CampaignStatus.RUNNING, CampaignStatus.PAUSED]))
    ).all()
    out = [
        {
            "id": r[0],
            "name": r[1],
            "mode": r[2].value,
            "queue": r[3],
            "cap": r[4],
            "survey": r[5],
            "status": r[6].value,
        }
        for r in rows
    ]
    if since is not None and out:
        counts = s.execute(
            select(
                CallAttempt.campaign_id,
                func.sum(func.cast(CallAttempt.outcome == Outcome.ABANDONED.value, Integer)),
                func.count(),
            )
            .where(
                CallAttempt.campaign_id.in_([r["id"] for r in out]),
                CallAttempt.started_at >= since,
                CallAttempt.outcome.in_([Outcome.ANSWERED.value, Outcome.ABANDONED.value]),
            )
            .group_by(CallAttempt.campaign_id)
        ).all()
        by_id = {cid: (float(ab or 0), float(n)) for cid, ab, n in counts}
        for r in out:
            r["abandoned"], r["live"] = by_id.get(r["id"], (0.0, 0.0))
    return out


def _flights_for(s: Session, channel_ids: list[str]) -> list[tuple[str, int, int, int, int | None]]:
    """(channel id, entry, campaign, member, agent id) of attempts; an agent id set at
    dial time marks an agent-first call (preview, maintainer first)."""
    rows = s.execute(
        select(
            CallAttempt.channel_id,
            CallAttempt.entry_id,
            CallAttempt.campaign_id,
            CallAttempt.member_id,
            CallAttempt.agent_id,
        ).where(CallAttempt.channel_id.in_(channel_ids))
    ).all()
    return [
        (str(a), int(b), int(c), int(d), e)
        for a, b, c, d, e in rows
        if b is not None and c is not None and d is not None
    ]


def entry_counts(s: Session, campaign_id: int) -> dict[str, int]:
    return entries.progress(s, campaign_id)
