"""Shared set-up for the dialer tests: running campaigns with call-list entries, and a
campaign runner wired to a hub the way ``memberline serve`` wires it."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm_bridge.db import session_scope
from crm_bridge.models import (
    CallListEntry,
    Campaign,
    CampaignKind,
    CampaignStatus,
    DialMode,
    MemberPhone,
)
from cti.ami.client import AmiClient
from cti.hub import HubServer
from dialer.dial_rules import CallingWindow
from dialer.runner import CampaignRunner, RunnerSettings

ALL_DAY = CallingWindow(dt.time(0), dt.time(23, 59, 59, 999999))
"""Every hour of the day: a test must not depend on CI's clock."""


def add_campaign(
    s: Session, name: str, kind: CampaignKind, mode: DialMode, queue: str = "members"
) -> Campaign:
    """A running campaign, flushed (it has its id)."""
    c = Campaign(name=name, kind=kind, mode=mode, status=CampaignStatus.RUNNING, queue=queue)
    s.add(c)
    s.flush()
    return c


def running_campaign(
    engine: Engine,
    members: list[int],
    *,
    name: str | None = None,
    kind: CampaignKind = CampaignKind.POST_PURCHASE,
    mode: DialMode = DialMode.PREVIEW,
    queue: str = "members",
    assigned: int | None = None,
) -> tuple[int, dict[int, int]]:
    """A running campaign with one entry per member, on the member's phone;
    (campaign id, member id -> entry id)."""
    with session_scope(engine) as s:
        c = add_campaign(s, name or f"c-{mode.value}-{queue}-{len(members)}", kind, mode, queue)
        out = {}
        for mid in members:
            phone = s.scalars(select(MemberPhone.e164).where(MemberPhone.member_id == mid)).first()
            e = CallListEntry(
                campaign_id=c.id, member_id=mid, phone_e164=phone, assigned_agent_id=assigned
            )
            s.add(e)
            s.flush()
            out[mid] = e.id
        return c.id, out


@contextlib.asynccontextmanager
async def desk_runner(
    engine: Engine, hub: HubServer, ami: AmiClient, **settings: Any
) -> AsyncIterator[CampaignRunner]:
    """A campaign runner with ``hub`` as its desk (preview cards, agent-first dialling),
    fed the hub's domain events and the raw AMI feed, ticking every 0.1 s, dialling at
    any hour; ``settings`` override the rest of its RunnerSettings.

    Not started: the test starts it once its campaign and consoles are in place. Stopped
    on the way out.
    """
    runner = CampaignRunner(
        engine,
        ami.send_action,
        hub.tracker.agents,
        RunnerSettings(tick_s=0.1, window=ALL_DAY, **settings),
        desk=hub,
    )
    hub.listeners.append(runner.on_event)
    hub.preview = runner
    ami.subscribe(runner.on_ami)
    ami.on_state(runner.on_ami_state)
    if ami.connected:
        runner.on_ami_state("connected")
    try:
        yield runner
    finally:
        await runner.stop()
