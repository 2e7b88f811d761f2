"""The composition root: the whole hub process built from a :class:`Config`, in one place.

``memberline serve``, ``memberline demo``, the benchmarks that start a hub (``bench pop``
in process; ``bench soak`` and ``bench pop --load`` through ``memberline serve``), the
``outbox work`` command and the end-to-end tests (:mod:`memberline.testing`) all build
their services here::

    stack = await start_stack(config)      # inside the running asyncio loop
    ...
    await stack.stop()

The module has three parts:

* **config -> parameters**: the one mapping from the configuration sections onto each
  package's own settings (:func:`hub_settings`, :func:`ami_client`,
  :func:`runner_settings`, :func:`rules_config`, :func:`email_settings`...);
* **pieces**: :func:`start_hub` (AMI client + tracker + console hub),
  :func:`start_fallback` (outbox worker, webhook context, local sinks),
  :func:`attach_runner` (the campaign runner wired to the hub and the AMI feed),
  :func:`greetings_loop`;
* **the whole**: :func:`start_stack`, in this order (each step needs the one before):

  1. the database engine;
  2. the SMS/email fallback (:func:`start_fallback`): outbox worker, webhook context, and
     the local SMS/SMTP sinks when no Twilio credentials are configured;
  3. one twisted.web site (``messaging.webhook_bind``/``webhook_port``) carrying the SMS
     webhooks, the unsubscribe link and the Twilio voice survey endpoint;
  4. the FastAGI server (``agi.bind``/``agi.port``): surveys, and after step 5 the hotline
     IVR and the maintainer-first ``route-inbound`` lookup;
  5. the AMI client, tracker and console hub (:func:`start_hub`). The AMI client connects
     in the background (``Running.ami_task``): the hub serves consoles even while the PBX
     is unreachable and PBX commands answer ``pbx_error`` until it is back;
  6. the campaign runner (:func:`attach_runner`), fed every tracker domain event by the
     hub, with exhausted entries handed to the outbox in the same transaction;
  7. the cross-hub LISTEN/NOTIFY bus, on PostgreSQL only;
  8. the outbox worker loop;
  9. the daily greetings (:func:`greetings_loop`, birthday and holiday messages through
     the outbox);
  10. the daily RFM refresh and monthly snapshot (:func:`rfm_loop`).

The unsubscribe-link HMAC secret is ``messaging.unsubscribe_secret`` (usually set through
``MEMBERLINE_UNSUBSCRIBE_SECRET``); without it a per-database secret is derived (fine for the
demo; ``check-config`` fails when ``public_url`` is not a loopback address).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
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
from crm_bridge.points import Redemption
from cti.ami.client import AmiClient
from cti.hub import HubServer, HubSettings
from cti.tracker import Tracker
from dialer.dial_rules import CallingWindow, DialRetryPolicy
from dialer.fallback import (
    ContentSettings,
    EmailSettings,
    OutboxWorker,
    RulesConfig,
    SmsSettings,
    SmtpEmail,
    TwilioSms,
    WebhookContext,
    WorkerSettings,
    parse_hhmm,
    run_worker,
)
from dialer.fallback.outbox import enqueue
from dialer.fallback.purposes import Purpose
from dialer.fallback.sinks import LocalSinks
from dialer.fallback.sinks.local import SinkMailProbe
from dialer.runner import CampaignRunner, RunnerSettings
from memberline.config import Config
from memberline.logs import register_secret
from memberline.runtime import ensure_reactor_running
from surveys.service import SurveyServices, start_survey_services

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ config -> parameters
_HUB_FROM = ("database", "ami", "calling", "care", "hub")
"""The config sections whose same-named fields are the hub's settings (later ones win:
``hub.port`` is the hub's port, not ``ami.port``)."""
_NOT_THE_HUBS = {("ami", "port"), ("ami", "survey_context")}
"""Same name, another job: the PBX's AMI port; the dialplan context of IVR campaign calls
(the hub's ``survey_context`` is the post-call survey's, and is not configured)."""


def hub_settings(config: Config, **overrides: Any) -> HubSettings:
    """The hub's parameters from the configuration: every :class:`HubSettings` field that a
    config section has under the same name (``memberline.config`` takes those fields'
    defaults from ``HubSettings``), plus ``shift_s`` from ``calling.shift_hours``."""
    names = {f.name for f in dataclasses.fields(HubSettings)}
    values: dict[str, Any] = {}
    for section_name in _HUB_FROM:
        section = getattr(config, section_name)
        for f in dataclasses.fields(section):
            if f.name in names and (section_name, f.name) not in _NOT_THE_HUBS:
                values[f.name] = getattr(section, f.name)
    values["shift_s"] = config.calling.shift_hours * 3600.0
    values.update(overrides)
    return HubSettings(**values)


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


def connect_hub(hub: HubServer, ami: AmiClient) -> None:
    """The hub reads every AMI message (tracker, resync) and sends its PBX actions through
    ``ami``: the one link between the two."""
    ami.subscribe(hub.on_ami_message)
    hub.attach_pbx(ami)


async def start_hub(
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
    connect_hub(hub, ami)
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


def unsubscribe_secret(cfg: Config) -> bytes:
    """``messaging.unsubscribe_secret``, or, when empty, a key derived from the database URL
    (stable for one installation; ``check-config`` asks for a real one when public)."""
    value = cfg.messaging.unsubscribe_secret.get()
    if value:
        register_secret(value)
        return value.encode()
    seed = f"memberline-unsubscribe:{cfg.database.url}:{cfg.messaging.twilio_auth_token.get()}"
    return hashlib.sha256(seed.encode()).digest()


def rules_config(cfg: Config) -> RulesConfig:
    m = cfg.messaging
    return RulesConfig(
        quiet_start=parse_hhmm(m.quiet_start),
        quiet_end=parse_hhmm(m.quiet_end),
        daily_cap=m.daily_cap_per_member,
    )


def email_settings(cfg: Config) -> EmailSettings:
    m = cfg.messaging
    if m.smtp_password:
        register_secret(m.smtp_password.get())
    return EmailSettings(
        host=m.smtp_host,
        port=m.smtp_port,
        tls=m.smtp_tls,
        username=m.smtp_username,
        password=m.smtp_password.get(),
        timeout_s=m.smtp_timeout_s,
        sender=m.email_from,
    )


@dataclass
class FallbackRuntime:
    """Everything the fallbacks need at run time, built from the config."""

    worker: OutboxWorker
    webhooks: WebhookContext
    sinks: LocalSinks | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def run(
        self, stop: asyncio.Event | None = None, *, until_idle: bool = False
    ) -> dict[str, int]:
        stats = await run_worker(self.worker, until_idle=until_idle, stop=stop)
        return stats.as_dict()

    async def close(self) -> None:
        await self.webhooks.close()
        if self.sinks is not None:
            await self.sinks.stop()


async def start_fallback(
    cfg: Config,
    engine: Engine,
    *,
    worker: WorkerSettings | None = None,
    local_sinks: bool | None = None,
    mail_probe_url: str | None = None,
) -> FallbackRuntime:
    """Build the worker and the webhook context; start the local sinks when there are no
    Twilio credentials (or ``local_sinks=True``). Call inside the running loop."""
    m = cfg.messaging
    sid, token, base_url = (
        m.twilio_account_sid,
        m.twilio_auth_token.get(),
        m.twilio_base_url or None,
    )
    email = email_settings(cfg)
    sinks: LocalSinks | None = None
    if local_sinks or (local_sinks is None and not (sid and token)):
        sinks = await LocalSinks.start()
        sid, token, base_url = sinks.sms.account_sid, sinks.sms.auth_token, sinks.sms.base_url
        email = dataclasses.replace(
            email, host="127.0.0.1", port=sinks.mail.port, tls="none", username="", password=""
        )
        mail_probe_url = mail_probe_url or sinks.sms.base_url
        log.info("local sinks: SMS %s, SMTP 127.0.0.1:%d", sinks.sms.base_url, sinks.mail.port)
    register_secret(token)
    secret = unsubscribe_secret(cfg)
    content = ContentSettings(public_url=m.public_url, unsubscribe_secret=secret, email=email)
    sms = TwilioSms(SmsSettings(sid, token, m.sms_from, m.public_url, base_url=base_url))
    probe = SinkMailProbe(mail_probe_url) if mail_probe_url else None
    w = OutboxWorker(
        engine,
        content=content,
        rules=rules_config(cfg),
        settings=worker,
        sms=sms,
        email=SmtpEmail(email),
        mail_probe=probe,
    )
    ctx = WebhookContext(
        engine, token, m.public_url, secret, retry=(worker or WorkerSettings()).retry
    )
    return FallbackRuntime(worker=w, webhooks=ctx, sinks=sinks)


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


def attach_runner(
    engine: Engine,
    hub: HubServer,
    ami: AmiClient,
    settings: RunnerSettings,
    *,
    on_exhausted: Callable[[Session, CallListEntry], None] | None = hand_to_fallback,
    clock: Callable[[], float] = time.time,
) -> CampaignRunner:
    """A campaign runner wired to the hub and the AMI feed, as ``serve`` runs it.

    The hub feeds it every tracker domain event; it answers the consoles' preview_dial/skip
    and maintainer-first calls (``desk``); its call ledger reads every dialer call from the
    raw AMI feed and resolves what was in flight from the channel list after each login;
    ``hub.call_origin`` tells the console pushes which campaign an answered call came from.
    Start it with ``await runner.start()``, stop it with ``await runner.stop()``.
    """
    camp_runner = CampaignRunner(
        engine,
        ami.send_action,
        hub.tracker.agents,
        settings,
        on_exhausted=on_exhausted,
        clock=clock,
        desk=hub,
    )
    hub.listeners.append(camp_runner.on_event)

    def call_origin(call_id: str) -> dict[str, Any] | None:
        """A dialer call reaching an agent: outbound, and which campaign (console pushes)."""
        rec = camp_runner.ledger.get(call_id)
        if rec is None:
            return None
        camp = camp_runner.campaigns.get(rec.campaign_id)
        return {"campaign_id": rec.campaign_id, "campaign": camp.name if camp else None}

    hub.call_origin = call_origin
    hub.preview = camp_runner
    ami.subscribe(camp_runner.on_ami)
    ami.on_state(camp_runner.on_ami_state)
    if ami.connected:
        camp_runner.on_ami_state("connected")
    return camp_runner


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
    rfm_task: asyncio.Task[Any] | None = None
    started_at: float = field(default_factory=time.time)

    @property
    def web_port(self) -> int:
        return int(self.web.getHost().port)

    async def stop(self) -> None:
        if self.runner_start is not None:
            self.runner_start.cancel()
        self.worker_stop.set()
        for task in (self.greetings_task, self.rfm_task):
            if task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 30)
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


async def _daily(
    name: str,
    job: Callable[[dt.datetime], Any],
    run_at: str,
    stop: asyncio.Event,
    clock: Callable[[], dt.datetime],
) -> None:
    """Run ``job(now)`` on a worker thread at start (catching up after downtime), then every
    day at ``run_at`` (this host's local time) until ``stop``. The job itself must be
    idempotent for the day: restarts and several hubs call it again."""
    hh, mm = (int(x) for x in run_at.split(":"))
    while True:
        now = clock()
        try:
            await asyncio.to_thread(job, now)
        except Exception:
            log.exception("%s run failed; trying again at the next run", name)
        if stop.is_set():
            return
        nxt = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(hh, mm), now.tzinfo)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(1.0, (nxt - clock()).total_seconds())):
                await stop.wait()
        if stop.is_set():
            return


async def rfm_loop(
    engine: Engine,
    config: Config,
    stop: asyncio.Event,
    *,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now().astimezone(),
) -> None:
    """The daily RFM refresh inside ``serve`` (:func:`crm_bridge.rfm.refresh_daily`): once a
    day, at start and at ``care.greeting_run_at``, plus the month's snapshot that the RFM
    report's "movement since last month" compares against."""
    from crm_bridge.db import session_scope
    from crm_bridge.rfm import refresh_daily

    def job(now: dt.datetime) -> None:
        with session_scope(engine) as s:
            scored = refresh_daily(s, now)
        if scored is not None:
            log.info("RFM scores refreshed for %d members", scored)

    await _daily("RFM refresh", job, config.care.greeting_run_at, stop, clock)


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

    def job(now: dt.datetime) -> None:
        run_for(engine, config, now.date())

    await _daily("greetings", job, config.care.greeting_run_at, stop, clock)


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
        settings = hub_settings(config, **hub_overrides)
    hub = await start_hub(config, engine=engine, settings=settings, reactor=reactor, hub_name=owner)
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

    camp_runner = attach_runner(
        engine,
        hub.hub,
        hub.ami,
        runner or runner_settings(config, owner),
        on_exhausted=hand_to_fallback,
    )
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
    if config.care.rfm_in_serve:
        stack.rfm_task = asyncio.create_task(
            rfm_loop(engine, config, stack.worker_stop), name="rfm-refresh"
        )
    log.info(
        "memberline stack up: hub %d, FastAGI %d, webhooks %d", hub.hub.port, surveys.agi.port, port
    )
    return stack
