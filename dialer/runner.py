"""The campaign runner: the loop that paces campaigns and places their calls.

One runner per hub. Every ``tick_s`` it looks at every campaign whose row says ``running``
(supervisors change that row; the runner follows it), builds a
:class:`~dialer.pacing.PacingSnapshot` from the tracker's agent states and the call
ledger's counts, asks the pacer how many calls to place, leases and checks that many
entries (:mod:`dialer.leasing`), commits an attempt row and only then sends the Originate
(:mod:`dialer.origination`).

What became of each call is the ledger's to say (:mod:`dialer.ledger`, pure): the runner
feeds it every raw AMI event (:meth:`CampaignRunner.on_ami`), the PBX's channel list after
each (re)connection and at start-up, and stores what it decides
(:mod:`dialer.outcomes`) through one writer task, in order. Preview cards and
maintainer-first calls ring an agent first through the hub (the *desk*).

Wiring (``memberline.stack``)::

    runner = CampaignRunner(engine, ami.send_action, tracker.agents, settings, desk=hub)
    ami.subscribe(runner.on_ami)           # raw AMI: the ledger's input
    ami.on_state(runner.on_ami_state)      # when each connection was made
    hub.listeners.append(runner.on_event)  # CallResumed, agent cycles (pacing model)
    await runner.start()
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from crm_bridge.db import run_db
from crm_bridge.models import CampaignStatus
from cti.ami.message import RESYNC_START, AmiMessage
from cti.tracker import (
    AgentState,
    AgentStateChanged,
    AgentView,
    CallCompleted,
    CallResumed,
    DomainEvent,
)
from dialer import entries, leasing, outcomes
from dialer.agentfirst import AgentDesk, DeskAgent
from dialer.dial_rules import CallingWindow, DialOutcome, DialRetryPolicy
from dialer.ledger import CallKind, CallLedger, Fact, FactKind, LiveChannel
from dialer.origination import SendAction, originate_action, send_originate
from dialer.pacing import (
    AbandonCounts,
    AmdGovernor,
    AmdMode,
    DialMode,
    OutcomeEstimator,
    PacingDecision,
    PacingSnapshot,
    PredictivePacer,
    decide,
)
from dialer.previews import AgentFirst

log = logging.getLogger(__name__)

AgentsView = Callable[[], list[AgentView]]


@dataclass(frozen=True)
class RunnerSettings:
    owner: str = "hub-1"
    """This hub's name: lease owner of the entries it dials."""
    window: CallingWindow = field(default_factory=CallingWindow)
    policy: DialRetryPolicy = field(default_factory=DialRetryPolicy)
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
    safe_harbour_s: float = 2.0
    """A live answer not bridged to an agent within this long is an abandoned call."""
    safe_harbour_prompt: str = "memberline/safe-harbour"
    """The prompt the dialplan plays to an abandoned call (checked on every one)."""
    stale_flight_s: float = 120.0
    """A call with no channel this long after its ring timeout is checked against the PBX."""
    preview_lease_s: int = 600
    """How long a preview card holds its entry (the agent reads the member first)."""
    preview_skip_s: int = 900
    """A skipped preview entry is due again after this long (unless the reason cancels it)."""
    maintainer_first: bool = True
    """Progressive/predictive: ring an available maintaining (or assigned) agent first."""
    amd_dispositions: tuple[str, ...] = ("voicemail", "answering-machine")
    """Agents' dispositions that mean "this was an answering machine" (AMD governor)."""

    def lease_rules(self) -> leasing.LeaseRules:
        return leasing.LeaseRules(
            self.owner, self.window, self.policy, self.lease_s, self.preview_lease_s
        )


@dataclass
class _Campaign:
    id: int
    name: str
    mode: DialMode
    queue: str
    cap: float
    survey: str | None
    status: CampaignStatus
    amd: AmdGovernor
    pacer: PredictivePacer = field(default_factory=PredictivePacer)
    estimator: OutcomeEstimator = field(default_factory=lambda: OutcomeEstimator(horizon_s=30))
    last_decision: PacingDecision | None = None
    placed: int = 0
    waits: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    """Live answer -> agent bridge of the latest live answers that reached an agent (s)."""
    no_safe_harbour: int = 0
    """Abandoned calls on which the safe-harbour prompt was not seen playing."""


class CampaignRunner:
    def __init__(
        self,
        engine: Engine,
        send_action: SendAction,
        agents: AgentsView,
        settings: RunnerSettings | None = None,
        *,
        on_exhausted: entries.ExhaustedHook | None = None,
        clock: Callable[[], float] = time.time,
        desk: AgentDesk | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.send_action = send_action
        self.agents = agents
        self.settings = settings or RunnerSettings()
        self.on_exhausted = on_exhausted
        self.clock = clock
        self.desk = desk
        """The hub: consoles, preview cards, agent-first dialling (None: queue calls only)."""
        self.rng = rng or random.Random()
        self.ledger = CallLedger(
            safe_harbour_s=self.settings.safe_harbour_s,
            safe_harbour_prompt=self.settings.safe_harbour_prompt,
        )
        self.previews = AgentFirst(self)
        """Preview cards and maintainer-first calls (agent first, through the desk)."""
        self.campaigns: dict[int, _Campaign] = {}
        self._connected_at = 0.0
        self._agent_last_complete: dict[str, tuple[float, float]] = {}
        self._amd_pending: dict[str, tuple[int, bool, float]] = {}
        """call id -> (campaign, AMD said machine, verify probability): bridged AMD calls
        whose agent's disposition will tell whether they were machines."""
        self._writes: asyncio.Queue[list[Fact]] = asyncio.Queue()
        self._decided = 0
        self._stored = 0
        """Outcomes decided / stored: the window read from the database replaces the
        ledger's own counts only when nothing decided was unstored around the read."""
        self._task: asyncio.Task[None] | None = None
        self.held_back: Counter[str] = Counter()
        """Entries due but not dialled, per dial-time rule (``leasing.rule_of``): an entry
        counts again each time it falls due and a rule holds it back again."""
        self._writer: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.stats = {
            "placed": 0,
            "answered": 0,
            "abandoned": 0,
            "machine": 0,
            "interrupted": 0,
            "not_reached": 0,
            "skipped": 0,
            "offered": 0,
            "agent_first": 0,
            "abandoned_without_safe_harbour": 0,
        }

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="runner-writer")
        await self.recover()
        self._task = asyncio.create_task(self._loop(), name="campaign-runner")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for offer in list(self.previews.offers.values()):
            with contextlib.suppress(Exception):
                await self.previews.release_offer(offer)
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)
        if self._writer is not None:
            self._writes.put_nowait([])  # wakes it to drain and stop
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer, 10)

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._jobs.add(task)
        task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[Any]) -> None:
        self._jobs.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("runner job %s failed", task.get_name(), exc_info=task.exception())

    async def _write_loop(self) -> None:
        """The one writer: facts are stored in the order the ledger produced them."""
        while True:
            batch = await self._writes.get()
            while not self._writes.empty():
                batch += self._writes.get_nowait()
            if batch:
                try:
                    await run_db(
                        self.engine,
                        outcomes.store_facts,
                        batch,
                        self.settings.policy,
                        self.on_exhausted,
                    )
                    self._stored += sum(1 for f in batch if f.kind is FactKind.DECIDED)
                except Exception:
                    log.exception("storing %d call outcome(s) failed; retrying", len(batch))
                    await asyncio.sleep(1.0)
                    self._writes.put_nowait(batch)
                    continue
            if self._stopping and self._writes.empty():
                return

    async def recover(self) -> None:
        """After a (hub) restart: attempts recorded without outcome are adopted by the ledger
        and resolved from the PBX's channel list (now, or at the next login's resync)."""
        await self._refresh_campaigns(with_counts=True)
        rows = await run_db(self.engine, leasing.open_attempts, self.settings.owner)
        for a in rows:
            camp = self.campaigns.get(a.campaign_id)
            if a.agent_id is not None:
                kind = CallKind.AGENT_FIRST
            elif camp is not None and camp.mode is DialMode.IVR:
                kind = CallKind.IVR
            else:
                kind = CallKind.QUEUE
            started = a.started_at
            if started.tzinfo is None:
                started = started.replace(tzinfo=dt.UTC)
            self.ledger.adopt(
                a.channel_id,
                a.campaign_id,
                min(started.timestamp(), self.clock()),
                kind=kind,
                entry_id=a.entry_id,
                member_id=a.member_id,
                agent_id=a.agent_id,
            )
        if rows:
            await self._resync(self.clock())
        log.info("runner recovered: %d call(s) without outcome adopted", len(rows))

    # ------------------------------------------------------------------ inputs
    def on_ami_state(self, state: str) -> None:
        """The AMI client's state (``connected`` after each login)."""
        if state == "connected":
            self._connected_at = self.clock()

    def on_ami(self, msg: AmiMessage) -> None:
        """Every raw AMI event: the ledger's input. A resync start asks for the channel list."""
        if msg.name == RESYNC_START:
            self._spawn(self._resync(self._connected_at or self.clock()), "runner-resync")
            return
        if msg.kind != "event":
            return
        self._apply(self.ledger.feed(msg, self.clock()))

    def on_event(self, ev: DomainEvent) -> None:
        """Tracker domain events (the hub forwards every one)."""
        if isinstance(ev, CallResumed):
            self._apply(self.ledger.resumed(ev.conversation_id, ev.interface, ev.at))
        elif isinstance(ev, CallCompleted):
            self._agent_last_complete[ev.interface] = (ev.at, float(ev.talk_time))
        elif isinstance(ev, AgentStateChanged):
            done = self._agent_last_complete.get(ev.interface)
            if done is not None and ev.state is AgentState.AVAILABLE:
                completed_at, talk = self._agent_last_complete.pop(ev.interface)
                for camp in self.campaigns.values():
                    camp.estimator.record_agent_cycle(talk, max(0.0, ev.at - completed_at))

    async def _resync(self, connected_at: float) -> None:
        """The PBX's channel list decides calls placed before ``connected_at``."""
        try:
            msgs = await self.send_action({"Action": "CoreShowChannels"})
        except Exception as exc:
            log.warning("channel list unavailable (%s); open calls wait for the next one", exc)
            return
        channels = [live_channel(m) for m in msgs if m.name == "CoreShowChannel"]
        self._apply(self.ledger.resync(self.clock(), channels, connected_at))

    def _apply(self, facts: list[Fact]) -> None:
        """Count, learn from and store what the ledger decided."""
        if not facts:
            return
        for fact in facts:
            rec = fact.call
            camp = self.campaigns.get(rec.campaign_id)
            if fact.kind is FactKind.ENDED:
                if rec.outcome is DialOutcome.ABANDONED and not rec.safe_harbour:
                    self.stats["abandoned_without_safe_harbour"] += 1
                    if camp is not None:
                        camp.no_safe_harbour += 1
                    log.warning(
                        "call %s abandoned and the safe-harbour message %r was not played: "
                        "check the dialplan",
                        rec.call_id,
                        self.settings.safe_harbour_prompt,
                    )
                continue
            key = rec.outcome.value if rec.outcome else "not_reached"
            if key not in ("answered", "abandoned", "machine", "interrupted"):
                key = "not_reached"
            self.stats[key] += 1
            log.info("%s", outcomes.describe(fact))
            if camp is not None:
                if rec.bridged_at is not None and rec.bridge_wait_s is not None:
                    camp.waits.append(rec.bridge_wait_s)
                outcomes.feed_estimator(camp.estimator, fact)
                self._amd_learn(camp, fact)
        self._decided += sum(1 for f in facts if f.kind is FactKind.DECIDED)
        self._writes.put_nowait(list(facts))

    # ------------------------------------------------------------------ AMD
    def _amd_learn(self, camp: _Campaign, fact: Fact) -> None:
        rec = fact.call
        if not rec.amd or rec.outcome is not DialOutcome.ANSWERED or rec.amd_status is None:
            return
        # An agent took an AMD-analysed call: their disposition says machine or person.
        machine = rec.amd_status == "MACHINE"
        # a machine verdict reaches an agent when sampled *and* an agent was free at once
        reach = self.ledger.verification_reach(camp.id)
        prob = camp.amd.verify_probability() * reach if machine else 1.0
        self._amd_pending[rec.call_id] = (camp.id, machine, prob)
        while len(self._amd_pending) > 5000:  # calls never given a disposition: forget the oldest
            self._amd_pending.pop(next(iter(self._amd_pending)))

    async def _amd_review(self) -> None:
        if not self._amd_pending:
            return
        got = await run_db(self.engine, leasing.dispositions, list(self._amd_pending))
        for call_id, disposition in got.items():
            campaign_id, machine, prob = self._amd_pending.pop(call_id)
            camp = self.campaigns.get(campaign_id)
            if camp is None:
                continue
            live = disposition not in self.settings.amd_dispositions
            camp.amd.record_verified(verdict_machine=machine, live=live, verify_probability=prob)
            if machine:
                # a verification call: now it counts, as a live answer or a verified machine
                self.ledger.verified(call_id, campaign_id, live=live, at=self.clock())

    # ------------------------------------------------------------------ loop
    async def _loop(self) -> None:
        refresh_every = 10
        n = 0
        while not self._stopping:
            started = time.monotonic()
            try:
                self._apply(self.ledger.expire(self.clock()))
                await self._refresh_campaigns(with_counts=n % refresh_every == 0)
                if n % refresh_every == 0:
                    await self._amd_review()
                for camp in list(self.campaigns.values()):
                    if camp.status is CampaignStatus.RUNNING:
                        await self._tick(camp)
                if self.previews.offers:
                    await self.previews.withdraw_idle_offers()
                await self._sweep_stale()
            except Exception:
                log.exception("campaign runner tick failed; retrying next tick")
            n += 1
            await asyncio.sleep(max(0.0, self.settings.tick_s - (time.monotonic() - started)))

    async def _refresh_campaigns(self, with_counts: bool) -> None:
        decided_before = self._decided
        settled = decided_before == self._stored
        since = _utc(self.clock() - self.settings.abandon_window_s)
        rows = await run_db(
            self.engine,
            leasing.campaign_rows,
            since if with_counts else None,
            self.settings.amd_dispositions,
        )
        seen = set()
        for row in rows:
            seen.add(row["id"])
            camp = self.campaigns.get(row["id"])
            if camp is None:
                amd = (
                    AmdMode(row["amd"]) if row["amd"] in {m.value for m in AmdMode} else AmdMode.OFF
                )
                camp = _Campaign(
                    row["id"],
                    row["name"],
                    DialMode(row["mode"]),
                    row["queue"],
                    row["cap"],
                    row["survey"],
                    CampaignStatus(row["status"]),
                    AmdGovernor(amd, row["cap"]),
                )
                self.campaigns[camp.id] = camp
            camp.status = CampaignStatus(row["status"])
            if "window" in row and settled and self._decided == decided_before:
                w = row["window"]
                self.ledger.set_window(
                    camp.id,
                    w.abandoned,
                    w.live,
                    machine=w.machine,
                    verified=w.verified,
                    verified_live=w.verified_live,
                )
        for cid in set(self.campaigns) - seen:
            if not self.ledger.calls(cid):
                del self.campaigns[cid]

    def snapshot(self, camp: _Campaign) -> PacingSnapshot:
        now = self.clock()
        counts = self.ledger.counts(camp.id, now)
        held = set(counts.agents_held)
        for c in self.campaigns.values():
            if c.id != camp.id:
                held |= self.ledger.counts(c.id, now).agents_held
        free = 0
        wrap: list[float] = []
        talk: list[float] = []
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
        ab = self.ledger.abandons(camp.id, now)
        return PacingSnapshot(
            agents_free=free,
            now_s=now,
            wrap_elapsed_s=tuple(wrap),
            talk_elapsed_s=tuple(talk),
            inflight_elapsed_s=counts.dialling_s,
            queued=counts.waiting,
            model=camp.estimator.model(),
            abandons=AbandonCounts(
                ab.window_abandoned, ab.window_live, ab.hour_abandoned, ab.hour_live, camp.cap
            ),
            amd_active=camp.amd.analysing,
            ivr_active=counts.ivr_active,
            concurrency_cap=self.settings.ivr_concurrency,
        )

    async def _tick(self, camp: _Campaign) -> None:
        if camp.mode is DialMode.PREVIEW:
            await self.previews.offer_previews(camp)
            return  # preview calls are placed by agents (preview_dial from the card)
        snap = self.snapshot(camp)
        decision = decide(camp.mode, snap, camp.pacer)
        camp.last_decision = decision
        if decision.calls <= 0:
            return
        now = self.clock()
        free: dict[int, DeskAgent] = {}
        if self.settings.maintainer_first and camp.mode is not DialMode.IVR:
            free = {a.id: a for a in self.previews.free_agents(camp)}
        started, skipped = await run_db(
            self.engine,
            leasing.claim,
            self.settings.lease_rules(),
            camp.id,
            decision.calls,
            _utc(now),
            dict(free),
        )
        self.stats["skipped"] += skipped.total()
        self.held_back.update(skipped)
        for att, agent, name in started:
            if agent is not None:
                log.info(
                    "campaign %s: entry %d to its agent %s first",
                    camp.name,
                    att.entry_id,
                    agent.code,
                )
                await self.previews.dial_agent_first(camp, att, agent, name, raise_errors=False)
            else:
                await self._originate(camp, att, now, decision)

    async def _originate(
        self, camp: _Campaign, att: entries.StartedAttempt, now: float, why: PacingDecision
    ) -> None:
        variables = {
            "MEMBER_ID": str(att.member_id),
            "CAMPAIGN_ID": str(camp.id),
            "ENTRY_ID": str(att.entry_id),
        }
        amd = verify = False
        if camp.mode is DialMode.IVR:
            kind, context = CallKind.IVR, self.settings.ivr_context
            exten = camp.survey or "satisfaction"
        else:
            kind, context, exten = CallKind.QUEUE, self.settings.campaign_context, camp.queue
            amd = camp.amd.analysing
            verify = amd and self.rng.random() < camp.amd.verify_probability()
            variables["MEMBERLINE_AMD"] = "1" if amd else "0"
            variables["MEMBERLINE_AMD_VERIFY"] = "1" if verify else "0"
        self.ledger.place(
            att.channel_id,
            camp.id,
            now,
            kind=kind,
            entry_id=att.entry_id,
            member_id=att.member_id,
            amd=amd,
            amd_verify=verify,
        )
        action = originate_action(
            call_id=att.channel_id,
            number=att.phone_e164,
            trunk=self.settings.trunk,
            context=context,
            exten=exten,
            ring_timeout_s=self.settings.ring_timeout_s,
            caller_id=self.settings.caller_id,
            variables=variables,
        )
        camp.placed += 1
        self.stats["placed"] += 1
        log.info(
            "campaign %s: dialling entry %d (attempt %d): %s",
            camp.name,
            att.entry_id,
            att.attempt_no,
            why.reason,
        )
        self._apply(await send_originate(self.send_action, action, self.ledger, self.clock))

    async def _sweep_stale(self) -> None:
        """Calls with no sign of life long after their ring timeout: the PBX's channel list
        (not a timer) says whether they still exist; those without a channel are settled."""
        now = self.clock()
        limit = self.settings.ring_timeout_s + self.settings.stale_flight_s
        if not any(
            r.outcome is None
            and r.answered_at is None
            and not r.answered_unknown
            and now - r.placed_at > limit
            for r in self.ledger.calls()
        ):
            return
        await self._resync(now - limit)

    # ------------------------------------------------------------------ agent first
    # (the hub's PreviewService: dialer.previews does the work)
    async def preview_dial(self, agent: DeskAgent, entry_id: int) -> dict[str, Any]:
        return await self.previews.preview_dial(agent, entry_id)

    async def preview_skip(self, agent: DeskAgent, entry_id: int, reason: str) -> dict[str, Any]:
        return await self.previews.preview_skip(agent, entry_id, reason)

    def current_preview(self, code: str) -> dict[str, Any] | None:
        return self.previews.current_preview(code)

    # ------------------------------------------------------------------ reporting
    def pending(self, call_id: str) -> bool:
        """The call is placed and its outcome not yet decided."""
        rec = self.ledger.get(call_id)
        return rec is not None and rec.outcome is None

    def status(self) -> list[dict[str, Any]]:
        out = []
        now = self.clock()
        for camp in self.campaigns.values():
            d = camp.last_decision
            ab = self.ledger.abandons(camp.id, now)
            out.append(
                {
                    "campaign_id": camp.id,
                    "name": camp.name,
                    "status": camp.status.value,
                    "mode": camp.mode.value,
                    "in_flight": self.ledger.counts(camp.id, now).open,
                    "placed": camp.placed,
                    "abandon_rate": ab.rate,
                    # AMD false positives (Ofcom): machine hang-ups counted as abandoned
                    "amd_false_positive_share": round(ab.amd_fp_share, 4),
                    "amd_false_positives_counted": round(ab.window_amd_false_positives, 2),
                    "amd_verifications_pending": self.ledger.pending_verification(camp.id),
                    "abandon_cap": camp.cap,
                    "amd": camp.amd.reason,
                    # the 2-second rule as measured: live answer -> agent
                    "answer_to_agent_max_s": max(camp.waits, default=0.0),
                    "answer_to_agent_over_rule": sum(
                        1 for w in camp.waits if w > self.settings.safe_harbour_s
                    ),
                    "abandoned_without_safe_harbour": camp.no_safe_harbour,
                    "last_decision": d.reason if d else "",
                }
            )
        return out


def live_channel(m: AmiMessage) -> LiveChannel:
    """A ``CoreShowChannel`` list item as the ledger reads it."""
    return LiveChannel(
        uniqueid=m.get("Uniqueid") or "",
        linkedid=m.get("Linkedid") or "",
        up=(m.get("ChannelState") or "") == "6",
        application=m.get("Application") or "",
        bridged=bool(m.get("BridgeId")),
    )


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def entry_counts(s: Any, campaign_id: int) -> dict[str, int]:
    return entries.progress(s, campaign_id)
