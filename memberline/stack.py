"""The whole hub process, wired: what ``memberline serve`` and ``memberline demo`` run.

    stack = await start_stack(config)      # inside the running asyncio loop
    ...
    await stack.stop()

Start order (each step needs the one before):

1. the database engine;
2. the SMS/email fallback (:func:`memberline.commands.outbox.start_fallback`): outbox
   worker, webhook context, and the local SMS/SMTP sinks when no Twilio credentials
   are configured;
3. one twisted.web site (``messaging.webhook_bind``/``webhook_port``) carrying the SMS
   webhooks, the unsubscribe link and the Twilio voice survey endpoint;
4. the FastAGI server (``agi.bind``/``agi.port``): surveys, and after step 5 the hotline
   IVR and the maintainer-first ``route-inbound`` lookup;
5. the AMI client, tracker and console hub (:func:`memberline.services.start_hub_services`);
6. the campaign runner, fed every tracker domain event by the hub, with exhausted
   entries handed to the outbox in the same transaction;
7. the outbox worker loop;
8. the daily greetings (:func:`greetings_loop`, birthday and holiday messages through the outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from twisted.web.resource import Resource
from twisted.web.server import Site

from crm_bridge.db import make_engine
from crm_bridge.models import CallListEntry
from cti.hub import HubSettings
from dialer.dial_rules import CallingWindow, DialRetryPolicy
from dialer.fallback.outbox import enqueue
from dialer.fallback.purposes import Purpose
from dialer.runner import CampaignRunner, RunnerSettings
from memberline.commands.outbox import FallbackRuntime, start_fallback
from memberline.config import Config
from memberline.runtime import ensure_reactor_running
from memberline.services import Running, start_hub_services
from surveys.service import SurveyServices, start_survey_services

log = logging.getLogger(__name__)


def retry_policy(config: Config) -> DialRetryPolicy:
    c = config.calling
    return DialRetryPolicy(
        busy_s=c.retry_busy_s,
        no_answer_s=c.retry_no_answer_s,
        machine_s=c.retry_machine_s,
        failed_s=c.retry_failed_s,
        max_attempts=c.max_attempts,
        max_attempts_per_member_per_day=c.max_attempts_per_member_per_day,
        no_redial_after_abandon_s=c.no_redial_after_abandon_s,
    )


def runner_settings(config: Config, owner: str) -> RunnerSettings:
    return RunnerSettings(
        owner=owner,
        window=CallingWindow.parse(config.calling.window_start, config.calling.window_end),
        policy=retry_policy(config),
        trunk=config.ami.trunk,
        campaign_context=config.ami.campaign_context,
        ivr_context=config.ami.survey_context,
        safe_harbour_prompt=config.calling.safe_harbour_prompt,
    )


def hand_to_fallback(session: Session, entry: CallListEntry) -> None:
    """An entry ran out of attempts: queue the SMS (then email) in the same transaction."""
    enqueue(
        session,
        Purpose.EXHAUSTED,
        entry.member_id,
        campaign_id=entry.campaign_id,
        ref=f"entry:{entry.id}",
    )


@dataclass
class Stack:
    config: Config
    engine: Engine
    hub: Running
    runner: CampaignRunner
    surveys: SurveyServices
    fallback: FallbackRuntime
    web: Any
    """The twisted.web listening port."""
    bus: Any = None
    """The cross-hub LISTEN/NOTIFY bus (:class:`cti.hub.bus.HubBus`), on PostgreSQL only."""
    worker_stop: asyncio.Event = field(default_factory=asyncio.Event)
    worker_task: asyncio.Task[Any] | None = None
    runner_start: asyncio.Task[Any] | None = None
    greetings_task: asyncio.Task[Any] | None = None
    started_at: float = field(default_factory=time.time)

    @property
    def web_port(self) -> int:
        return int(self.web.getHost().port)

    async def stop(self) -> None:
        if self.runner_start is not None:
            self.runner_start.cancel()
        self.worker_stop.set()
        if self.greetings_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.greetings_task, 10)
        if self.worker_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.worker_task, 10)
        with contextlib.suppress(Exception):
            await self.runner.stop()
        if self.bus is not None:
            await self.bus.stop()
        await self.hub.stop()
        with contextlib.suppress(Exception):
            await self.surveys.close()
        with contextlib.suppress(Exception):
            await self.web.stopListening()
        with contextlib.suppress(Exception):
            await self.fallback.close()
        self.engine.dispose()


async def greetings_loop(
    engine: Engine,
    config: Config,
    stop: asyncio.Event,
    *,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now().astimezone(),
) -> None:
    """The daily greetings inside ``serve``: today's at start (catching up after downtime),
    then every day at ``care.greeting_run_at`` (this host's local time) until ``stop``.
    Each run is idempotent (dialer.greetings), so restarts and several hubs are harmless."""
    from memberline.commands.greetings import run_for

    hh, mm = (int(x) for x in config.care.greeting_run_at.split(":"))
    while True:
        now = clock()
        try:
            await asyncio.to_thread(run_for, engine, config, now.date())
        except Exception:
            log.exception("greetings run failed; trying again at the next run")
        if stop.is_set():
            return
        nxt = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(hh, mm), now.tzinfo)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(1.0, (nxt - clock()).total_seconds())):
                await stop.wait()
        if stop.is_set():
            return


async def start_stack(
    config: Config,
    *,
    engine: Engine | None = None,
    hub_overrides: dict[str, Any] | None = None,
    runner: RunnerSettings | None = None,
    local_sinks: bool | None = None,
    owner: str = "hub-1",
) -> Stack:
    reactor = ensure_reactor_running()
    engine = engine or make_engine(config.database.url)
    from twisted.internet import endpoints

    from dialer.fallback.webhooks import mount_webhooks

    m = config.messaging
    root = Resource()
    endpoint = endpoints.TCP4ServerEndpoint(reactor, m.webhook_port, interface=m.webhook_bind)
    web = await endpoint.listen(Site(root)).asFuture(asyncio.get_running_loop())
    port = web.getHost().port
    if m.webhook_port == 0 and m.public_url.startswith("http://127.0.0.1"):
        # Loopback (demo, tests): the public URL is wherever we actually listen.
        m = dataclasses.replace(m, public_url=f"http://127.0.0.1:{port}")
        config = dataclasses.replace(config, messaging=m)
    fallback = await start_fallback(config, engine, local_sinks=local_sinks)
    mount_webhooks(root, fallback.webhooks)
    token = fallback.webhooks.auth_token
    surveys = await start_survey_services(
        engine,
        agi_host=config.agi.bind,
        agi_port=config.agi.port,
        web_root=root,
        twilio_auth_token=token,
        public_url=config.messaging.public_url,
        default_queue=config.ami.queue,
    )
    settings: HubSettings | None = None
    if hub_overrides:
        from memberline.services import hub_settings

        settings = hub_settings(config, **hub_overrides)
    hub = await start_hub_services(
        config, engine=engine, settings=settings, reactor=reactor, hub_name=owner
    )
    hub.own_engine = False
    # The same FastAGI server runs the hotline IVR and the maintainer-first lookup
    # (docs/asterisk/extensions.conf: contexts hotline and from-pstn).
    from cti.hub.maintainer import MaintainerRoute
    from surveys.hotline import HotlineAgi

    if surveys.agi.app is not None:
        hotline = HotlineAgi(
            engine,
            region=hub.hub.settings.default_region,
            default_locale=config.agi.hotline_locale,
        )
        surveys.agi.app.add_route(HotlineAgi.ROUTE, hotline.run)
        surveys.agi.app.add_route(MaintainerRoute.ROUTE, MaintainerRoute(hub.hub).run)

    camp_runner = CampaignRunner(
        engine,
        hub.ami.send_action,
        hub.tracker.agents,
        runner or runner_settings(config, owner),
        on_exhausted=hand_to_fallback,
        desk=hub.hub,
    )
    hub.hub.listeners.append(camp_runner.on_event)

    def call_origin(call_id: str) -> dict[str, Any] | None:
        """A dialer call reaching an agent: outbound, and which campaign (console pushes)."""
        rec = camp_runner.ledger.get(call_id)
        if rec is None:
            return None
        camp = camp_runner.campaigns.get(rec.campaign_id)
        return {"campaign_id": rec.campaign_id, "campaign": camp.name if camp else None}

    hub.hub.call_origin = call_origin
    # Preview cards and maintainer-first calls: the runner answers preview_dial/skip. Its
    # call ledger reads every dialer call from the raw AMI feed, and resolves what was in
    # flight from the channel list after each login.
    hub.hub.preview = camp_runner
    hub.ami.subscribe(camp_runner.on_ami)
    hub.ami.on_state(camp_runner.on_ami_state)
    if hub.ami.connected:
        camp_runner.on_ami_state("connected")
    stack = Stack(config, engine, hub, camp_runner, surveys, fallback, web)
    if engine.dialect.name == "postgresql":
        # Scale-out: pops for consoles on other hubs and the whole-centre wallboard.
        from cti.hub.bus import BusSettings, HubBus, libpq_url

        stack.bus = HubBus(hub.hub, libpq_url(engine.url), BusSettings(hub_name=owner))
        stack.bus.start()

    async def start_runner() -> None:
        # Calls left in flight by a previous process are adopted and resolved from the
        # PBX's channel list now, or at the next login's resync when the PBX is down.
        await camp_runner.start()

    stack.runner_start = asyncio.create_task(start_runner(), name="runner-start")
    stack.worker_task = asyncio.create_task(fallback.run(stack.worker_stop), name="outbox-worker")
    if config.care.greetings_in_serve:
        stack.greetings_task = asyncio.create_task(
            greetings_loop(engine, config, stack.worker_stop), name="greetings"
        )
    log.info(
        "memberline stack up: hub %d, FastAGI %d, webhooks %d", hub.hub.port, surveys.agi.port, port
    )
    return stack
