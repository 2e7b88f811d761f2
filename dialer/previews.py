"""Agent-first dialling for the campaign runner: preview cards and maintainer-first calls.

A preview campaign offers each available agent with a console one card (the member
first); the agent dials (:meth:`AgentFirst.preview_dial`) or skips with a reason. A
progressive/predictive call whose member has an available maintaining (or assigned) agent
rings that agent first. Both ring the agent's phone through the hub
(:meth:`dialer.agentfirst.AgentDesk.dial_agent_first`) with the ChannelId of an attempt the
runner committed before; the call ledger follows them as ``CallKind.AGENT_FIRST`` calls.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from crm_bridge.db import run_db
from crm_bridge.models import CampaignStatus
from cti.hubproto.messages import ErrorCode, ProtocolError
from cti.tracker import AgentState
from dialer import entries, leasing
from dialer.agentfirst import DeskAgent, Offer
from dialer.ledger import CallKind

if TYPE_CHECKING:
    from dialer.runner import CampaignRunner, _Campaign

log = logging.getLogger(__name__)


class AgentFirst:
    def __init__(self, runner: CampaignRunner) -> None:
        self.r = runner
        self.offers: dict[int, Offer] = {}
        """entry id -> the preview card showing it."""
        self.offered_to: dict[str, int] = {}
        """agent code -> entry id of their card."""

    def free_agents(self, camp: _Campaign) -> list[DeskAgent]:
        """Agents with a console, in the campaign's queue, available, not paused, not busy
        (nor wrapping up, nor holding a card or an agent-first call)."""
        if self.r.desk is None:
            return []
        views = {a.interface: a for a in self.r.agents()}
        ringing = self.agents_held()
        out = []
        for info in self.r.desk.console_agents():
            v = views.get(info.interface)
            if v is None or camp.queue not in v.queues or camp.queue in v.paused_queues:
                continue
            if v.state is not AgentState.AVAILABLE or info.interface in ringing:
                continue
            if info.code in self.offered_to or self.r.desk.agent_busy(info.code):
                continue
            out.append(info)
        return out

    async def offer_previews(self, camp: _Campaign) -> None:
        await self.expire_offers(camp)
        free = self.free_agents(camp)
        if not free:
            return
        now = self.r.clock()
        got, skipped = await run_db(
            self.r.engine,
            leasing.claim_previews,
            self.r.settings.lease_rules(),
            camp.id,
            len(free),
            _utc(now),
        )
        self.r.stats["skipped"] += skipped.total()
        self.r.held_back.update(skipped)
        by_id = {a.id: a for a in free}
        rest = list(free)
        for leased, name, card, preferred in got:
            agent = by_id.get(preferred) if preferred is not None else None
            if agent is None or agent not in rest:
                agent = rest[0] if rest else None
            if agent is None:  # pragma: no cover - one entry leased per free agent
                break
            rest.remove(agent)
            if agent.code in self.offered_to or self.r.desk is None:
                continue
            offer = Offer(leased, camp.id, agent.code, agent.id, now, name, card)
            self.offers[leased.id] = offer
            self.offered_to[agent.code] = leased.id
            self.r.stats["offered"] += 1
            self.r.desk.push_preview(agent.code, card)
            log.info("campaign %s: entry %d offered to %s", camp.name, leased.id, agent.code)

    async def expire_offers(self, camp: _Campaign) -> None:
        """Withdraw cards whose agent left, whose lease is nearly over, or whose campaign stopped."""
        now = self.r.clock()
        consoles = {a.code for a in self.r.desk.console_agents()} if self.r.desk else set()
        for offer in [o for o in self.offers.values() if o.campaign_id == camp.id]:
            stale = now - offer.offered_at > self.r.settings.preview_lease_s - 30
            if offer.agent_code in consoles and not stale and camp.status is CampaignStatus.RUNNING:
                continue
            await self.release_offer(offer)

    async def withdraw_idle_offers(self) -> None:
        """Cards of campaigns paused or stopped meanwhile are withdrawn."""
        for offer in list(self.offers.values()):
            camp = self.r.campaigns.get(offer.campaign_id)
            if camp is not None and camp.status is CampaignStatus.RUNNING:
                continue
            await self.release_offer(offer)

    async def release_offer(self, offer: Offer) -> None:
        """Give the card's entry back (due now), then tell the agent the card is gone."""
        await run_db(
            self.r.engine,
            entries.release,
            offer.entry.id,
            self.r.settings.owner,
            retry_at=None,
            cancel=False,
            reason="withdrawn",
        )
        self.drop_offer(offer, withdrawn=True)

    def drop_offer(self, offer: Offer, withdrawn: bool) -> None:
        self.offers.pop(offer.entry.id, None)
        if self.offered_to.get(offer.agent_code) == offer.entry.id:
            del self.offered_to[offer.agent_code]
        if withdrawn and self.r.desk is not None:
            self.r.desk.push_preview(offer.agent_code, {**offer.card, "withdrawn": True})

    def current_preview(self, code: str) -> dict[str, Any] | None:
        entry_id = self.offered_to.get(code)
        offer = self.offers.get(entry_id) if entry_id is not None else None
        return offer.card if offer is not None else None

    def offer_of(self, agent: DeskAgent, entry_id: int) -> Offer:
        offer = self.offers.get(entry_id)
        if offer is None or offer.agent_code != agent.code:
            raise ProtocolError(ErrorCode.FORBIDDEN, "that entry is not offered to you")
        return offer

    async def preview_dial(self, agent: DeskAgent, entry_id: int) -> dict[str, Any]:
        """The agent pressed dial on their card: re-check, record the attempt, ring them first."""
        offer = self.offer_of(agent, entry_id)
        camp = self.r.campaigns.get(offer.campaign_id)
        if camp is None or camp.status is not CampaignStatus.RUNNING:
            raise ProtocolError(ErrorCode.CONFLICT, "the campaign is not running")
        if self.r.desk is None or self.r.desk.agent_busy(agent.code, include_wrapup=False):
            raise ProtocolError(ErrorCode.CONFLICT, "already on a call")
        self.drop_offer(offer, withdrawn=False)
        att, why = await run_db(
            self.r.engine,
            leasing.begin_offered,
            self.r.settings.lease_rules(),
            offer.entry,
            agent.id,
            _utc(self.r.clock()),
        )
        if att is None:
            raise ProtocolError(ErrorCode.CONFLICT, f"not dialled: {why}")
        await self.dial_agent_first(camp, att, agent, offer.name, raise_errors=True)
        return {"call_id": att.channel_id, "attempt_id": att.attempt_id}

    async def preview_skip(self, agent: DeskAgent, entry_id: int, reason: str) -> dict[str, Any]:
        offer = self.offer_of(agent, entry_id)
        self.drop_offer(offer, withdrawn=False)
        cancel = await run_db(
            self.r.engine,
            entries.skip_entry,
            entry_id,
            self.r.settings.owner,
            reason=reason,
            retry_at=_utc(self.r.clock() + self.r.settings.preview_skip_s),
            actor=f"agent:{agent.code}",
        )
        log.info("entry %d skipped by %s: %s", entry_id, agent.code, reason)
        return {"entry_status": "cancelled" if cancel else "pending"}

    async def dial_agent_first(
        self,
        camp: _Campaign,
        att: entries.StartedAttempt,
        agent: DeskAgent,
        name: str,
        *,
        raise_errors: bool,
    ) -> None:
        self.r.ledger.place(
            att.channel_id,
            camp.id,
            self.r.clock(),
            kind=CallKind.AGENT_FIRST,
            entry_id=att.entry_id,
            member_id=att.member_id,
            agent_id=agent.id,
            agent=agent.interface,
        )
        camp.placed += 1
        self.r.stats["placed"] += 1
        self.r.stats["agent_first"] += 1
        try:
            if self.r.desk is None:
                raise ProtocolError(ErrorCode.PBX_ERROR, "no hub to dial through")
            await self.r.desk.dial_agent_first(
                agent,
                call_id=att.channel_id,
                member_id=att.member_id,
                number=att.phone_e164,
                name=name,
                extra_vars=f"CAMPAIGN_ID={camp.id},ENTRY_ID={att.entry_id}",
            )
        except Exception as exc:
            log.warning("agent-first dial of entry %d failed: %s", att.entry_id, exc)
            # The hub's Originate was refused or not sent: nobody was rung.
            self.r._apply(self.r.ledger.send_failed(att.channel_id, self.r.clock(), refused=False))
            if raise_errors:
                raise

    def agents_held(self) -> set[str]:
        """Agents ringing or talking on an agent-first call the queue does not see."""
        now = self.r.clock()
        held: set[str] = set()
        for cid in self.r.campaigns:
            held |= self.r.ledger.counts(cid, now).agents_held
        return held


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)
