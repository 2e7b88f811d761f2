"""Wiring of the long-running services: ``memberline serve`` and ``memberline demo`` use this.

    running = await start_hub_services(config)        # inside the running asyncio loop
    ...                                                # running.hub.port, running.ami, ...
    await running.stop()

What it starts: the database engine, the AMI client (secret registered for log
redaction), the call tracker, and the hub listening for consoles. The AMI client
connects in the background (``running.ami_task``): the hub serves consoles even
while the PBX is unreachable and PBX commands answer ``pbx_error`` until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crm_bridge.db import make_engine
from crm_bridge.points import Redemption
from cti.ami.client import AmiClient
from cti.hub import HubServer, HubSettings
from cti.tracker import Tracker
from memberline.config import Config
from memberline.logs import register_secret
from memberline.runtime import ensure_reactor_running

log = logging.getLogger(__name__)


def hub_settings(config: Config, **overrides: Any) -> HubSettings:
    """Map the configuration onto the hub's own parameters."""
    h, a, c = config.hub, config.ami, config.calling
    settings = HubSettings(
        bind=h.bind,
        port=h.port,
        tls_cert=h.tls_cert,
        tls_key=h.tls_key,
        max_message_bytes=h.max_message_bytes,
        login_attempts_per_minute=h.login_attempts_per_minute,
        login_attempts_per_address_per_minute=h.login_attempts_per_address_per_minute,
        queue=a.queue,
        agent_interface=a.agent_interface,
        agent_context=a.agent_context,
        outbound_context=a.outbound_context,
        action_timeout_s=a.action_timeout_s,
        default_region=config.database.default_region,
        pause_reasons=c.pause_reasons,
        dispositions=c.dispositions,
        winback_reasons=config.care.winback_reasons,
        reasons_needing_note=config.care.reasons_needing_note,
        abandon_cap=c.abandon_cap,
        transfer_context=a.transfer_context,
        postcall_survey_queues=c.postcall_survey_queues,
        maintainer_queue=a.maintainer_queue,
        maintainer_ring_s=a.maintainer_ring_s,
        wrapup_max_s=c.wrapup_max_s,
        wrapup_max_by_queue=c.wrapup_max_by_queue,
        shift_s=c.shift_hours * 3600.0,
    )
    return dataclasses.replace(settings, **overrides) if overrides else settings


def ami_client(config: Config) -> AmiClient:
    a = config.ami
    secret = a.secret.get()
    register_secret(secret)
    return AmiClient(
        a.host,
        a.port,
        a.username,
        secret,
        action_timeout=a.action_timeout_s,
        ping_interval=a.ping_interval_s,
        reconnect_max=a.reconnect_max_s,
        name="ami",
    )


def confirm_redemption(session: Session, done: Redemption) -> None:
    """Queue the redemption confirmation (SMS, then email) in the redemption's transaction."""
    from dialer.fallback.outbox import enqueue
    from dialer.fallback.purposes import Purpose

    enqueue(
        session,
        Purpose.POINTS_REDEMPTION,
        done.member_id,
        ref=f"ledger:{done.ledger_id}",
        payload={
            "item": done.item_name,
            "points_used": done.points_cost,
            "points": done.balance_after,
        },
    )


def survey_figures(session: Session, since: dt.date) -> dict[str, Any]:
    """survey_summary's data: the same report as ``memberline report surveys``."""
    from surveys.report import survey_figures as figures

    return figures(session, since)


def postcall_actions(channel: str, **kw: Any) -> list[dict[str, str]]:
    from surveys.postcall import postcall_actions as actions

    return actions(channel, **kw)


@dataclass
class Running:
    """Handles of the started services; ``stop()`` shuts them down in order."""

    engine: Engine
    hub: HubServer
    ami: AmiClient
    tracker: Tracker
    ami_task: asyncio.Task[None]
    own_engine: bool = True
    extra: list[Any] = field(default_factory=list)
    """Anything else the caller started and wants stopped with these (``async stop()``)."""

    async def stop(self) -> None:
        for svc in reversed(self.extra):
            with contextlib.suppress(Exception):
                await svc.stop()
        self.ami_task.cancel()
        with contextlib.suppress(BaseException):
            await self.ami_task
        await self.hub.stop()
        await self.ami.close()
        if self.own_engine:
            self.engine.dispose()


async def start_hub_services(
    config: Config,
    *,
    engine: Engine | None = None,
    settings: HubSettings | None = None,
    reactor: Any = None,
    hub_name: str | None = None,
) -> Running:
    """Start AMI client + tracker + hub in the running loop; return their handles.

    ``settings`` overrides the mapping from ``config`` (the demo passes port 0,
    post-call survey queues...); ``engine`` shares an engine the caller owns.
    """
    reactor = reactor or ensure_reactor_running()
    own_engine = engine is None
    engine = engine or make_engine(config.database.url)
    tracker = Tracker()
    settings = settings or hub_settings(config)
    if hub_name is not None:
        settings = dataclasses.replace(settings, hub_name=hub_name)
    hub = HubServer(settings, engine, tracker=tracker)
    ami = ami_client(config)
    ami.subscribe(hub.on_ami_message)
    hub.attach_pbx(ami)
    hub.redemption_hook = confirm_redemption
    hub.survey_report = survey_figures
    hub.postcall = postcall_actions
    await hub.start(reactor)

    async def connect() -> None:
        try:
            await ami.start()
            log.info("AMI connected to %s:%d", config.ami.host, config.ami.port)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the client keeps retrying in the background
            log.error("AMI connection failed: %s", exc)

    ami_task = asyncio.get_running_loop().create_task(connect(), name="ami-connect")
    return Running(engine, hub, ami, tracker, ami_task, own_engine)
