"""The hub: console sessions, request dispatch, pushes, and the AMI/tracker feed.

Wiring (see ``memberline.stack.start_hub``)::

    hub = HubServer(settings, engine, tracker=Tracker())
    hub.attach_pbx(ami_client)              # anything with ``async send_action(dict)``
    ami_client.subscribe(hub.on_ami_message)
    await hub.start(reactor)                # listens; hub.port is the bound port
    ...
    await hub.stop()

Everything runs on the one asyncio loop; database work goes through ``run_db`` (a
worker thread), password hashing too. Requests of one connection run in order on
that connection's worker task; tracker events are handled synchronously as they
arrive (screen-pop lookups are tasks kept in ``_tasks``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crm_bridge.db import run_db
from cti.ami.message import RESYNC_DONE, AmiMessage
from cti.hub import actions
from cti.hub import db as hubdb
from cti.hub.call_records import CallRecord, CallRecords, iso
from cti.hub.desk import Desk
from cti.hub.lookups import PopLookups
from cti.hub.memberdb import RedemptionHook
from cti.hub.persist import Writer
from cti.hub.preview import PreviewService
from cti.hub.ratelimit import FailureLimiter
from cti.hub.sessions import AgentInfo, Connection, SessionRegistry
from cti.hub.settings import HubSettings
from cti.hub.wallboard import WallboardStats
from cti.hubproto.messages import COMMANDS, ErrorCode, ProtocolError, validate_args
from cti.tracker import AgentState, AgentView, DomainEvent, Tracker

log = logging.getLogger(__name__)


class PbxLink(Protocol):
    """What the hub needs from the AMI client."""

    async def send_action(self, action: dict[str, Any]) -> list[AmiMessage]: ...


@dataclass
class Ctx:
    """One request being handled."""

    hub: HubServer
    conn: Connection
    after: list[Callable[[], None]] = field(default_factory=list)
    """Run after the response is written (e.g. state pushes after login)."""

    @property
    def agent(self) -> AgentInfo:
        if self.conn.agent is None:  # pragma: no cover - guarded by the dispatcher
            raise ProtocolError(ErrorCode.NOT_LOGGED_IN, "log in first")
        return self.conn.agent


Handler = Callable[[Ctx, dict[str, Any]], Awaitable[dict[str, Any]]]
SurveyReportFn = Callable[[Session, dt.date], dict[str, Any]]
PostcallFn = Callable[..., list[dict[str, str]]]
"""``postcall(channel, *, survey, member_id, agent_id, context, exten) -> [action, ...]``"""


class HubServer:
    def __init__(
        self,
        settings: HubSettings,
        engine: Engine,
        *,
        tracker: Tracker | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from cti.hub.dispatch import HANDLERS

        self.settings = settings
        self.engine = engine
        self.tracker = tracker if tracker is not None else Tracker()
        self.clock = clock
        self.sessions = SessionRegistry()
        self.calls = CallRecords()
        self.limiter = FailureLimiter(
            settings.login_attempts_per_minute,
            60.0,
            limits={
                "agent": settings.login_attempts_per_minute,
                "peer": settings.login_attempts_per_address_per_minute,
            },
        )
        self.pops_in_flight = 0
        self.writer = Writer(engine, journal_path=settings.journal_path or None)
        self.lookups = PopLookups(self)
        self.stats = WallboardStats(settings.wallboard_window_s)
        self.handlers: dict[str, Handler] = HANDLERS
        self.pbx: PbxLink | None = None
        self.agents_by_code: dict[str, AgentInfo] = {}
        self.agents_by_interface: dict[str, AgentInfo] = {}
        self.pops: dict[tuple[str, str], dict[str, Any]] = {}
        """(call id, agent code) -> the screen_pop pushed, while the call rings that agent."""
        self.grants: dict[str, dict[int, float]] = {}
        """agent code -> member id -> expiry: members a call put within the agent's reach."""
        self.day_stats: dict[str, list[int]] = {}
        """agent code -> [UTC day ordinal, calls that day, talk seconds that day]."""
        self.redemption_hook: RedemptionHook | None = None
        """Runs in a confirmed redemption's transaction (outbox confirmation; set by the wiring)."""
        self.survey_report: SurveyReportFn | None = None
        """survey_summary's data (``surveys.report.survey_figures``; set by the wiring)."""
        self.postcall: PostcallFn | None = None
        """AMI actions that move a member's channel into the post-call survey
        (``surveys.postcall.postcall_actions``; without it a plain Redirect is used)."""
        self.pending_dials: dict[str, str] = {}
        """Originate ActionID -> call id (click-to-dial)."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._port: Any = None
        self._wallboard_task: asyncio.Task[None] | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self.pops_pushed = 0
        self.outbox_review = 0
        """Outbox messages that may have been sent and need a person (wallboard)."""
        self._review_checked = float("-inf")
        self.pop_latencies: list[float] = []
        from cti.hub.tracking import TrackerEvents

        self.events = TrackerEvents(self)
        self.desks: dict[str, Desk] = {}
        """agent code -> what the agent asked for (queues, pause) and their after-call work."""
        self.call_origin: Callable[[str], dict[str, Any] | None] | None = None
        """call id -> ``{"campaign_id", "campaign", "wrapup_max_s"?}`` for a call a campaign
        placed (set by the wiring from the campaign runner), else None."""
        self.campaign_wrapup: dict[int, float | None] = {}
        """campaign id -> its ``settings.wrapup_max_s`` (loaded when its first call rings)."""
        self.reapplied = 0
        """Times the desks were re-applied after a resync (tests, metrics)."""
        self.listeners: list[Callable[[DomainEvent], None]] = []
        """Other services fed every domain event after the hub's own reactions (the dialer runner)."""
        self.wallboard_merge: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        """Adds other hubs' slices to the wallboard (set by the cross-hub bus)."""
        self.preview: PreviewService | None = None
        """The campaign runner's preview cards (``preview_dial``/``preview_skip``; set by the wiring)."""

    # ------------------------------------------------------------------ lifecycle
    async def start(self, reactor: Any = None) -> None:
        """Load the agent directory, start the writer and the periodic tasks, listen."""
        from cti.hub.protocol import listen

        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        await self.load_agents()
        await self.load_desks()
        self.writer.start()
        self._port = await listen(self, reactor)
        self._wallboard_task = self.spawn(self._wallboard_loop(), "hub-wallboard")
        self._tick_task = self.spawn(self._tick_loop(), "hub-tick")
        log.info("hub listening on %s:%d", self.settings.bind, self.port)

    async def stop(self) -> None:
        """Stop listening, drop every console, finish queued writes."""
        if self._port is not None:
            d = self._port.stopListening()
            if d is not None:
                await d.asFuture(asyncio.get_running_loop())
        for conn in list(self.sessions):
            conn.close()
            self.connection_lost(conn)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except BaseException:
                pass
        await self.writer.stop()

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.dispatch_events(self.tracker.tick(self.clock()))
            self.expire_wrapups()
            self.calls.prune(self.clock())

    async def _wallboard_loop(self) -> None:
        from cti.hub.wallboard import wallboard_push

        while True:
            await asyncio.sleep(self.settings.wallboard_period_s)
            subs = self.sessions.wallboard_subscribers()
            self.stats.sample(self.clock(), self.tracker)
            if not subs:
                continue
            if self.clock() >= self._review_checked + 10.0:
                self._review_checked = self.clock()
                # off the push path: the count shows on a later push
                self.spawn(self.refresh_outbox_review(), "outbox-review-count")
            data = wallboard_push(self)
            for conn in subs:
                conn.push("wallboard", data)

    async def refresh_outbox_review(self) -> None:
        """Count outbox messages up for review (shown to supervisors on the wallboard)."""
        from dialer.fallback.store import review_count

        try:
            self.outbox_review = await run_db(self.engine, review_count)
        except Exception:
            log.exception("counting outbox messages under review failed")

    @property
    def port(self) -> int:
        return int(self._port.getHost().port) if self._port is not None else 0

    def attach_pbx(self, pbx: PbxLink | None) -> None:
        self.pbx = pbx

    def spawn(self, coro: Awaitable[Any], name: str = "") -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("hub task %s failed", task.get_name(), exc_info=task.exception())

    # ------------------------------------------------------------------ agents
    async def load_agents(self) -> None:
        rows = await run_db(self.engine, hubdb.load_agents, self.settings.agent_interface)
        for info in rows:
            self.remember_agent(info)

    def remember_agent(self, info: AgentInfo) -> None:
        old = self.agents_by_code.get(info.code)
        if old is not None and old.interface != info.interface:
            self.agents_by_interface.pop(old.interface, None)
        self.agents_by_code[info.code] = info
        self.agents_by_interface[info.interface] = info

    def today_stats(self, code: str) -> list[int]:
        """The agent's [day, calls, talk s] for today (UTC), reset when the day changes."""
        today = dt.datetime.fromtimestamp(self.clock(), dt.UTC).date().toordinal()
        st = self.day_stats.get(code)
        if st is None or st[0] != today:
            st = self.day_stats[code] = [today, 0, 0]
        return st

    def agent_view(self, info: AgentInfo) -> dict[str, Any]:
        view = self.tracker.agent(info.interface)
        now = self.clock()
        _, calls, talk = self.today_stats(info.code)
        if view is None:
            state, reason, since = AgentState.LOGGED_OUT.value, None, now
        else:
            state = view.state.value
            reason = view.pause_reason or None
            since = view.since or now
        desk = self.desks.get(info.code)
        return {
            "agent": info.code,
            "name": info.name,
            "state": state,
            "reason": reason,
            "next_pause": desk.wanted_pause if desk is not None else None,
            "wrapup_call": desk.wrapup_call if desk is not None else None,
            "since": iso(since),
            "time_in_state_s": max(0, int(now - since)),
            "calls_today": calls,
            "talk_s_today": talk,
            "queues": list(view.queues) if view is not None else [],
        }

    # ------------------------------------------------------------------ connections
    def connection_made(
        self,
        peer: str,
        write: Callable[[bytes], None],
        close: Callable[[], None],
        backlog: Callable[[], int] | None = None,
    ) -> Connection:
        conn = Connection(peer, write, close, backlog, self.settings.max_backlog_bytes)
        self.sessions.add(conn)
        conn.worker = self.spawn(self._serve(conn), f"console-{peer}")
        return conn

    def connection_lost(self, conn: Connection) -> None:
        conn.open = False
        self.sessions.remove(conn)
        if conn.worker is not None:
            conn.worker.cancel()

    def request_received(self, conn: Connection, msg: dict[str, Any]) -> None:
        if conn.requests.qsize() >= self.settings.max_pending_requests:
            conn.send(_error(msg.get("id"), ErrorCode.RATE_LIMITED, "too many requests in flight"))
            return
        conn.requests.put_nowait(msg)

    async def _serve(self, conn: Connection) -> None:
        while conn.open:  # not `True`: a cancel swallowed by 3.11's wait_for must not leak us
            msg = await conn.requests.get()
            await self.handle_request(conn, msg)

    async def handle_request(self, conn: Connection, msg: dict[str, Any]) -> None:
        req_id = msg.get("id")
        if not isinstance(req_id, (int, str)) or isinstance(req_id, bool):
            conn.send(_error(None, ErrorCode.BAD_REQUEST, 'request needs an integer "id"'))
            return
        ctx = Ctx(self, conn)
        try:
            cmd = msg.get("cmd")
            spec = COMMANDS.get(cmd) if isinstance(cmd, str) else None
            handler = self.handlers.get(cmd) if isinstance(cmd, str) else None
            if spec is None or handler is None:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown command {cmd!r}")
            if not conn.hello_done and spec.name != "hello":
                raise ProtocolError(ErrorCode.BAD_REQUEST, "send hello first")
            if spec.role != "public":
                if conn.agent is None:
                    raise ProtocolError(ErrorCode.NOT_LOGGED_IN, "log in first")
                if spec.role == "supervisor" and not conn.agent.is_supervisor:
                    raise ProtocolError(ErrorCode.FORBIDDEN, "supervisors only")
            args = validate_args(spec, msg.get("args"))
            result = await handler(ctx, args)
        except ProtocolError as exc:
            conn.send({"re": req_id, "ok": False, "error": exc.to_dict()})
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("command %r failed", msg.get("cmd"))
            conn.send(_error(req_id, ErrorCode.INTERNAL, "internal error; see the hub log"))
            return
        conn.send({"re": req_id, "ok": True, "result": result})
        for fn in ctx.after:
            fn()

    # ------------------------------------------------------------------ pushes
    def push_agent_state(self, info: AgentInfo) -> None:
        self.sessions.push_to_agent(info.code, "agent_state", self.agent_view(info))

    def push_call_state(self, rec: CallRecord, code: str) -> None:
        self.sessions.push_to_agent(code, "call_state", rec.to_push(code))

    def push_full_state(self, conn: Connection) -> None:
        """After login / reconnect: agent state, the agent's calls, a pop still ringing."""
        info = conn.agent
        if info is None:
            return
        conn.push("agent_state", self.agent_view(info))
        for rec in self.calls.of_agent(info.code):
            conn.push("call_state", rec.to_push(info.code))
        if self.preview is not None:
            card = self.preview.current_preview(info.code)
            if card is not None:
                conn.push("preview", card)
        pop = self.current_pop(info.code)
        if pop is not None:
            conn.push("screen_pop", pop)
            return
        for rec in self.calls.of_agent(info.code):
            if info.code in rec.ringing and rec.state == "ringing":
                # Rung before this agent had a console: look the caller up now.
                self.events.start_pop(rec, info, rec.caller_num, rec.caller_name, rec.queue or "")
                break
            if rec.repop and rec.agent_code == info.code and rec.state in ("up", "hold"):
                # Taken up after a hub restart: the console gets the call's pop back.
                rec.repop = False
                self.events.start_pop(rec, info, rec.caller_num, rec.caller_name, rec.queue or "")
                break

    def current_pop(self, code: str) -> dict[str, Any] | None:
        for (call_id, agent_code), pop in self.pops.items():
            if agent_code != code:
                continue
            rec = self.calls.get(call_id)
            if rec is not None and code in rec.ringing:
                return pop
        return None

    def state_snapshot(self, info: AgentInfo) -> dict[str, Any]:
        return {
            "agent_state": self.agent_view(info),
            "calls": [r.to_push(info.code) for r in self.calls.of_agent(info.code)],
            "pop": self.current_pop(info.code),
        }

    # ------------------------------------------------------------------ the dialer's desk
    def console_agents(self) -> list[AgentInfo]:
        """Agents with a console logged in to this hub."""
        return [
            self.agents_by_code[c] for c in self.sessions.agent_codes() if c in self.agents_by_code
        ]

    def agent_busy(self, code: str, include_wrapup: bool = True) -> bool:
        """On a call (ringing, up, held) or, with ``include_wrapup``, one not wrapped up yet."""
        calls = self.calls.of_agent(code)
        if include_wrapup:
            return bool(calls)
        return any(r.state != "ended" for r in calls)

    def push_preview(self, code: str, data: dict[str, Any]) -> int:
        """Show a preview card (the member is within the agent's reach while offered)."""
        member = data.get("member") or {}
        if isinstance(member.get("member_id"), int):
            self.grant(code, [member["member_id"]])
        return self.sessions.push_to_agent(code, "preview", data)

    async def dial_agent_first(
        self,
        agent: AgentInfo,
        *,
        call_id: str,
        member_id: int,
        number: str,
        name: str,
        extra_vars: str = "",
    ) -> None:
        from cti.hub.preview import dial_agent_first

        await dial_agent_first(
            self,
            agent,
            call_id=call_id,
            member_id=member_id,
            number=number,
            name=name,
            extra_vars=extra_vars,
        )

    # ------------------------------------------------------------------ reach
    def grant(self, code: str, member_ids: list[int]) -> None:
        now = self.clock()
        g = self.grants.setdefault(code, {})
        for mid in member_ids:
            g[mid] = now + self.settings.grant_ttl_s
        if len(g) > 1000:
            for mid in [m for m, exp in g.items() if exp < now]:
                del g[mid]

    def granted(self, code: str, member_id: int) -> bool:
        exp = self.grants.get(code, {}).get(member_id)
        return exp is not None and exp >= self.clock()

    async def ensure_reach(self, agent: AgentInfo, member_id: int) -> None:
        """not_found when the member does not exist; forbidden when out of the agent's reach.

        Reach: supervisors see everyone; an agent sees members they maintain, members
        with no maintaining agent, and members a call of theirs offered them (pop,
        chooser, click-to-dial) for ``grant_ttl_s``.
        """
        found, maintainer = await run_db(self.engine, hubdb.member_owner, member_id)
        if not found:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no member {member_id}")
        if not self.in_reach(agent, member_id, maintainer):
            raise ProtocolError(ErrorCode.FORBIDDEN, "this member is maintained by another agent")

    def in_reach(self, agent: AgentInfo, member_id: int, maintainer: int | None) -> bool:
        """The reach rule of :meth:`ensure_reach` for a member whose maintaining agent's id
        is known (search results are filtered with it)."""
        return (
            agent.is_supervisor
            or maintainer is None
            or maintainer == agent.id
            or self.granted(agent.code, member_id)
        )

    # ------------------------------------------------------------------ PBX
    async def send_action(self, action: dict[str, Any]) -> list[AmiMessage]:
        """Send an AMI action; Asterisk errors and timeouts become ``pbx_error``."""
        pbx = self.pbx
        if pbx is None:
            raise ProtocolError(ErrorCode.PBX_ERROR, "not connected to the PBX")
        try:
            replies = await asyncio.wait_for(
                pbx.send_action(action), self.settings.action_timeout_s + 1.0
            )
        except ProtocolError:
            raise
        except TimeoutError:
            raise ProtocolError(ErrorCode.PBX_ERROR, "the PBX did not answer in time") from None
        except Exception as exc:
            raise ProtocolError(ErrorCode.PBX_ERROR, f"PBX action failed: {exc}") from None
        first = replies[0] if replies else None
        if first is not None and first.kind == "response" and first.name.lower() == "error":
            raise ProtocolError(
                ErrorCode.PBX_ERROR, f"{action.get('Action')}: {first.get('Message') or 'error'}"
            )
        return replies

    # ------------------------------------------------------------------ the agent's desk
    async def load_desks(self) -> None:
        """The desks the database remembers (re-applied at the next PBX resync)."""
        rows = await run_db(self.engine, hubdb.load_presence, self.settings.hub_name)
        by_id = {a.id: a for a in self.agents_by_code.values()}
        for agent_id, (queues, reason) in rows.items():
            info = by_id.get(agent_id)
            if info is not None:
                desk = self.desk(info)
                desk.queues, desk.wanted_pause, desk.persisted = set(queues), reason, True

    def desk(self, info: AgentInfo) -> Desk:
        desk = self.desks.get(info.code)
        if desk is None:
            desk = self.desks[info.code] = Desk(info.code, info.interface)
        desk.interface = info.interface
        return desk

    async def save_desk(self, info: AgentInfo) -> None:
        desk = self.desk(info)
        await run_db(
            self.engine,
            hubdb.save_presence,
            info.id,
            self.settings.hub_name,
            sorted(desk.queues),
            desk.wanted_pause,
        )
        desk.persisted = True

    async def apply(self, info: AgentInfo, acts: list[dict[str, Any]], why: str) -> bool:
        """Send a desk's actions; a refusal is logged (the next resync re-applies)."""
        ok = True
        for action in acts:
            try:
                await self.send_action(action)
            except ProtocolError as exc:
                ok = False
                log.info("%s for %s: %s failed: %s", why, info.code, action["Action"], exc.message)
        return ok

    def wrapup_limit(self, rec: CallRecord) -> float:
        """The call's after-call work maximum: its campaign's, else its queue's, else 60 s."""
        if rec.campaign_id is not None:
            limit = self.campaign_wrapup.get(rec.campaign_id)
            if limit is not None:
                return limit
        return self.settings.wrapup_max_for(rec.queue)

    def learn_campaign(self, campaign_id: int) -> None:
        """Load a campaign's wrap-up maximum once (before its first call can end)."""
        if campaign_id in self.campaign_wrapup:
            return
        self.campaign_wrapup[campaign_id] = None

        async def load() -> None:
            limit = await run_db(self.engine, hubdb.campaign_wrapup_max, campaign_id)
            self.campaign_wrapup[campaign_id] = limit

        self.spawn(load(), f"campaign-wrapup-{campaign_id}")

    def begin_wrapup(self, rec: CallRecord, info: AgentInfo) -> None:
        """The agent's call ended: after-call work starts (pause reason wrap-up)."""
        desk = self.desk(info)
        if desk.wrapup_call == rec.call_id or not rec.wrapup_due(info.code):
            return
        pause = self.settings.wrapup_pause and self.sessions.logged_in_anywhere(info.code)
        acts = desk.start_wrapup(rec.call_id, self.clock(), self.wrapup_limit(rec), pause)
        if acts:
            self.spawn(self.apply(info, acts, "wrap-up pause"), f"wrapup-pause-{info.code}")
        self.push_agent_state(info)

    async def finish_wrapup(self, info: AgentInfo, call_id: str) -> None:
        """The disposition of ``call_id`` is saved: end the wrap-up it held, if any."""
        desk = self.desk(info)
        if desk.wrapup_call != call_id:
            desk.drop(call_id)
            return
        acts = desk.end_wrapup(self.settings.wrapup_pause, self.clock())
        if desk.wrapup_call is None:
            self.dispatch_events(self.tracker.end_wrap_up(info.interface, self.clock()))
        await self.apply(info, acts, "end of wrap-up")
        self.push_agent_state(info)

    def to_unfinished(self, info: AgentInfo, call_id: str, why: str) -> None:
        rec = self.calls.get(call_id)
        if rec is not None:
            rec.unfinished.add(info.code)
            self.push_call_state(rec, info.code)
        self.sessions.push_to_agent(
            info.code,
            "notice",
            {
                "level": "warning",
                "kind": "unfinished",
                "call_id": call_id,
                "text": f"Call {call_id} moved to your unfinished calls ({why}). / "
                f"通话 {call_id} 已移入未完成小结列表。",
            },
        )

    def expire_wrapups(self) -> None:
        """Wrap-ups past their maximum: the agent gets the state they asked for, and the
        call goes to their unfinished list (the row keeps no disposition)."""
        now = self.clock()
        for desk in list(self.desks.values()):
            if desk.wrapup_call is None or not desk.expired(now):
                continue
            info = self.agents_by_code.get(desk.code)
            if info is None:
                continue
            acts: list[dict[str, Any]] = []
            while desk.wrapup_call is not None:  # the calls queued behind it go too
                self.to_unfinished(info, desk.wrapup_call, "wrap-up time is up")
                desk.wrapup_deadline = None
                acts = desk.end_wrapup(self.settings.wrapup_pause, now)
            self.dispatch_events(self.tracker.end_wrap_up(info.interface, now))
            self.spawn(self.apply(info, acts, "wrap-up timeout"), f"wrapup-end-{info.code}")
            self.push_agent_state(info)

    async def reapply_desks(self) -> None:
        """After a resync: put every remembered queue login and pause back (a PBX restart
        loses both), then push every console its full agent state."""
        for code, desk in list(self.desks.items()):
            info = self.agents_by_code.get(code)
            if info is None or not (desk.persisted or desk.in_wrapup()):
                continue
            view = self.tracker.agent(info.interface)
            mq = self.settings.maintainer_queue
            penalties = {mq: info.id} if mq else {}  # maintainer-first: penalty = agent id
            acts = desk.reapply(view, info.name, self.settings.wrapup_pause, penalties)
            if acts:
                log.info("re-applying %d action(s) for agent %s after a resync", len(acts), code)
                await self.apply(info, acts, "re-apply")
        self.reapplied += 1
        for code in self.sessions.agent_codes():
            info = self.agents_by_code.get(code)
            if info is not None:
                self.push_agent_state(info)

    # ------------------------------------------------------------------ AMI feed
    def on_ami_message(self, msg: AmiMessage) -> None:
        """Subscriber for the AMI client: every event goes through the tracker."""
        now = self.clock()
        if msg.name == RESYNC_DONE:
            self.spawn(self.reapply_desks(), "hub-reapply")
        try:
            events = self.tracker.feed(msg, now)
        except Exception:
            log.exception("tracker failed on %s", msg.name)
            return
        self.dispatch_events(events)

    def dispatch_events(self, events: list[DomainEvent]) -> None:
        for ev in events:
            try:
                self.events.handle(ev)
            except Exception:
                log.exception("handling %s failed", type(ev).__name__)
            for listener in self.listeners:
                try:
                    listener(ev)
                except Exception:
                    log.exception("listener failed on %s", type(ev).__name__)

    def postcall_actions(self, rec: CallRecord) -> list[dict[str, str]] | None:
        """The actions that send this call's member to the post-call survey, or None."""
        s = self.settings
        if rec.queue not in s.postcall_survey_queues or not rec.member_channel or rec.survey_sent:
            return None
        agent = self.agents_by_code.get(rec.agent_code or "")
        if self.postcall is not None:
            return self.postcall(
                rec.member_channel,
                survey=s.survey_name,
                member_id=rec.member_id,
                agent_id=agent.id if agent else None,
                context=s.survey_context,
                exten=s.survey_exten,
            )

        return [actions.redirect(rec.member_channel, s.survey_context, s.survey_exten)]

    async def send_postcall(self, rec: CallRecord, acts: list[dict[str, str]]) -> None:
        rec.survey_sent = True
        for action in acts:
            await self.send_action(action)

    def pop_started(self) -> None:
        """A screen-pop lookup or delivery is under way (counted for metrics)."""
        self.pops_in_flight += 1

    def pop_finished(self) -> None:
        self.pops_in_flight -= 1
        if self.pops_in_flight <= 0:
            self.pops_in_flight = 0

    def agent_for_view(self, view: AgentView) -> AgentInfo | None:
        return self.agents_by_interface.get(view.interface)


def _error(req_id: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    return {"re": req_id, "ok": False, "error": {"code": code.value, "message": message}}
