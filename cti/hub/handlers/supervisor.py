"""Supervisor commands: reassign members, agents list, campaigns, wallboard, survey summary."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from crm_bridge import campaigns
from cti.hub import db as cti_db
from cti.hub import memberdb
from cti.hub.handlers.members import _db
from cti.hub.server import Ctx
from cti.hub.wallboard import wallboard_push
from cti.hubproto.messages import ErrorCode, ProtocolError

MAX_REASSIGN_IDS = 100_000


async def reassign_members(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    ids = args.get("member_ids")
    from_agent = args.get("from_agent")
    if (ids is None) == (from_agent is None):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "give exactly one of member_ids, from_agent")
    if ids is not None:
        if not ids or len(ids) > MAX_REASSIGN_IDS:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"member_ids: 1..{MAX_REASSIGN_IDS} ids")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "member_ids: integers only")
        ids = sorted(set(ids))
    done = await _db(ctx, memberdb.reassign, ctx.agent, args["to_agent"], ids, from_agent)
    if done.moved:
        # The new maintainer's console hears of it at once (forwarded to its hub if remote).
        ctx.hub.sessions.push_to_agent(
            args["to_agent"], "notice", handover_notice(done, ctx.agent.code, from_agent)
        )
    return {
        "moved": done.moved,
        "complaints": done.complaints,
        "callbacks": done.callbacks,
        "entries": done.entries,
    }


def handover_notice(done: memberdb.Reassigned, by: str, from_agent: str | None) -> dict[str, Any]:
    """The ``notice`` push a new maintainer gets: both languages, and the figures."""
    source = f" from {from_agent}" if from_agent else ""
    source_zh = f"（原维护人 {from_agent}）" if from_agent else ""
    text = (
        f"{done.moved} member(s) handed over to you{source} by {by}: "
        f"{done.complaints} open complaint(s), {done.callbacks} callback(s) now yours. / "
        f"{by} 将 {done.moved} 位会员移交给您{source_zh}："
        f"{done.complaints} 项未结投诉、{done.callbacks} 个回访任务已转给您。"
    )
    return {
        "level": "info",
        "text": text,
        "kind": "handover",
        "moved": done.moved,
        "complaints": done.complaints,
        "callbacks": done.callbacks,
        "entries": done.entries,
        "from_agent": from_agent,
        "by": by,
    }


async def agents_list(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    hub = ctx.hub
    await hub.load_agents()
    agents = [hub.agent_view(a) for a in sorted(hub.agents_by_code.values(), key=lambda a: a.code)]
    stale_before = dt.datetime.fromtimestamp(hub.clock() - hub.settings.shift_s, dt.UTC)
    await hub.writer.flush()
    counts = await _db(ctx, cti_db.unfinished_counts, stale_before)
    for view in agents:
        view["logged_in"] = hub.sessions.logged_in(view["agent"])
        n, stale = counts.get(view["agent"], (0, 0))
        view["unfinished"], view["unfinished_stale"] = n, stale
    return {"agents": agents}


async def campaigns_list(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    return {"campaigns": await _db(ctx, campaigns.list_campaigns)}


async def campaign_create(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    hub_settings, who = ctx.hub.settings, ctx.agent

    def create(s: Session) -> tuple[int, int]:
        return campaigns.create_campaign(
            s,
            actor=who.actor,
            agent_id=who.id,
            name=args["name"],
            kind=args["kind"],
            mode=args.get("mode"),
            settings=args.get("settings") or {},
            queue=hub_settings.queue,
            abandon_cap=hub_settings.abandon_cap,
            known_queues={hub_settings.queue, *hub_settings.postcall_survey_queues},
        )

    campaign_id, entries = await _db(ctx, create)
    return {"campaign_id": campaign_id, "entries": entries}


async def campaign_control(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    who = ctx.agent

    def control(s: Session) -> str:
        return campaigns.control_campaign(
            s, actor=who.actor, campaign_id=args["campaign_id"], action=args["action"]
        )

    return {"status": await _db(ctx, control)}


async def wallboard_subscribe(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    conn = ctx.conn
    conn.wallboard = True
    ctx.after.append(lambda: conn.push("wallboard", wallboard_push(ctx.hub)))
    return {}


def _rfm(s: Session) -> dict[str, Any]:
    from crm_bridge.rfm import rfm_report

    return rfm_report(s, dt.datetime.now(dt.UTC).date()).to_dict()


async def rfm_grid(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    return {"rfm": await _db(ctx, _rfm)}


async def survey_summary(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """The survey report's data: ``rows`` = the weekly figures, plus groups/total/distributions."""
    report = ctx.hub.survey_report
    if report is None:
        raise ProtocolError(ErrorCode.CONFLICT, "survey reports are not available in this hub")
    if args.get("since"):
        try:
            since = dt.date.fromisoformat(args["since"])
        except ValueError:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "since: expected YYYY-MM-DD") from None
    else:
        since = dt.datetime.now(dt.UTC).date() - dt.timedelta(weeks=12)
    data = await _db(ctx, report, since)
    return {"rows": data.get("weekly", []), **data}
