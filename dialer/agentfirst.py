"""Agent-first dialling: preview cards and maintainer-first calls (the runner's side).

Both ring a chosen agent's phone first and then the member, through the hub's
click-to-dial path, with the ChannelId of an attempt row the runner committed before.
Here: the dialer's one door to the hub (:class:`DeskAgent` and :class:`AgentDesk`: the
dialer imports no ``cti.hub`` module, the hub implements these), an offer, and the
database reads for a card and for the maintainer lookup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.models import CallListEntry, Campaign, CampaignKind, Member, Purchase
from cti.screenpop.mask import mask_phone
from dialer.entries import LeasedEntry


class DeskAgent(Protocol):
    """An agent seated at a console, as the dialer sees them (the hub's ``AgentInfo`` is one)."""

    @property
    def id(self) -> int: ...

    @property
    def code(self) -> str: ...

    @property
    def interface(self) -> str:
        """Their queue-member interface (``Local/<ext>@agents/n``)."""
        ...


class AgentDesk(Protocol):
    """What the dialer needs from the hub to reach agents and calls (the hub's
    ``HubServer`` implements it): who is seated, who is busy, showing a preview card, and
    ringing an agent first then the member."""

    def console_agents(self) -> list[DeskAgent]: ...

    def agent_busy(self, code: str, include_wrapup: bool = True) -> bool: ...

    def push_preview(self, code: str, data: dict[str, Any]) -> int: ...

    async def dial_agent_first(
        self,
        agent: DeskAgent,
        *,
        call_id: str,
        member_id: int,
        number: str,
        name: str,
        extra_vars: str = "",
    ) -> None: ...


@dataclass
class Offer:
    """One entry shown to one agent; only that agent may dial or skip it."""

    entry: LeasedEntry
    campaign_id: int
    agent_code: str
    agent_id: int
    offered_at: float
    name: str
    card: dict[str, Any]


_KIND_REASON = {
    CampaignKind.POST_PURCHASE: "post-purchase follow-up",
    CampaignKind.DORMANT_WINBACK: "dormant member win-back",
    CampaignKind.SURVEY: "satisfaction survey",
    CampaignKind.GREETING: "greeting",
    CampaignKind.CUSTOM: "campaign list (RFM segment)",
    CampaignKind.MONTHLY_CARE: "monthly care call",
    CampaignKind.SPEND_DECLINE: "buying less than usual",
}


def cards(
    s: Session, campaign_id: int, leased: Sequence[LeasedEntry]
) -> dict[int, tuple[str, dict[str, Any]]]:
    """entry id -> (member name, preview card) for leased entries (masked phone)."""
    if not leased:
        return {}
    camp = s.get(Campaign, campaign_id)
    members = {
        m.id: m
        for m in s.scalars(select(Member).where(Member.id.in_({e.member_id for e in leased})))
    }
    entry_purchase = dict(
        s.execute(
            select(CallListEntry.id, CallListEntry.purchase_id).where(
                CallListEntry.id.in_([e.id for e in leased])
            )
        ).all()
    )
    purchase_ids = {pid for pid in entry_purchase.values() if pid is not None}
    purchases = {p.id: p for p in s.scalars(select(Purchase).where(Purchase.id.in_(purchase_ids)))}
    out: dict[int, tuple[str, dict[str, Any]]] = {}
    for e in leased:
        m = members.get(e.member_id)
        if m is None:
            continue
        reason = _KIND_REASON.get(camp.kind, "campaign list") if camp else "campaign list"
        p = purchases.get(entry_purchase.get(e.id) or -1)
        if p is not None:
            reason += f": {p.category} at {p.store}, {p.amount} {p.currency} on {p.purchased_at.date().isoformat()}"
        if e.attempts:
            reason += f" (attempt {e.attempts + 1})"
        out[e.id] = (
            m.name,
            {
                "entry_id": e.id,
                "campaign_id": campaign_id,
                "campaign": camp.name if camp else "",
                "reason": reason,
                "attempts": e.attempts,
                "member": {
                    "member_id": m.id,
                    "member_no": m.member_no,
                    "name": m.name,
                    "tier": m.tier.value if hasattr(m.tier, "value") else str(m.tier),
                    "phone_masked": mask_phone(e.phone_e164),
                },
                "withdrawn": False,
            },
        )
    return out


def preferred_agents(s: Session, leased: Sequence[LeasedEntry]) -> dict[int, tuple[int, str]]:
    """entry id -> (agent id to ring first, member name): the entry's assigned agent, else
    the member's maintaining agent. Entries with neither are absent."""
    if not leased:
        return {}
    rows = s.execute(
        select(Member.id, Member.maintaining_agent_id, Member.name).where(
            Member.id.in_({e.member_id for e in leased})
        )
    ).all()
    by_member = {mid: (aid, name) for mid, aid, name in rows}
    out: dict[int, tuple[int, str]] = {}
    for e in leased:
        maint, name = by_member.get(e.member_id, (None, ""))
        target = e.assigned_agent_id or maint
        if target is not None:
            out[e.id] = (int(target), str(name))
    return out


def utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)
