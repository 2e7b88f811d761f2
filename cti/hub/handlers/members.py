"""Member commands: search, profile (audited), reveal (audited), create, inquiry, complaint,
callback, points catalogue and redemption. Phones and emails leave the hub masked."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from crm_bridge.campaigns import CampaignError
from crm_bridge.db import run_db
from crm_bridge.phones import normalise
from cti.hub import memberdb
from cti.hub.server import Ctx
from cti.hubproto.messages import ErrorCode, ProtocolError
from cti.screenpop import crm
from cti.screenpop.mask import mask_tree

T = TypeVar("T")


async def _db(ctx: Ctx, fn: Callable[..., T], *args: Any) -> T:
    """run_db with the business refusals mapped onto protocol errors."""
    try:
        return await run_db(ctx.hub.engine, fn, *args)
    except (memberdb.Refused, CampaignError) as exc:
        code = {"not_found": ErrorCode.NOT_FOUND, "bad_request": ErrorCode.BAD_REQUEST}
        raise ProtocolError(code.get(exc.code, ErrorCode.CONFLICT), str(exc)) from None


async def member_search(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    limit = args.get("limit") or 20
    if not 1 <= limit <= 100:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "limit: 1..100")
    # Only members this agent may open (the reach rule of member_profile): a list of names
    # the agent cannot open would be a listing without an audit trail. Over-fetch so the
    # filter rarely leaves the page short; ``hidden`` says how many matches were left out.
    hub, who = ctx.hub, ctx.agent
    fetch = limit if who.is_supervisor else min(limit * 4, 400)
    rows = await _db(ctx, crm.search, args["query"], fetch, hub.settings.default_region)
    shown = [
        r for r in rows if hub.in_reach(who, int(r["member_id"]), r.get("maintaining_agent_id"))
    ]
    return {"members": mask_tree(shown[:limit]), "hidden": len(rows) - len(shown)}


def _profile_and_audit(s: Session, who: Any, member_id: int) -> dict[str, Any] | None:
    profile = crm.profile(s, member_id)
    if profile is not None:
        memberdb.audit_view(s, who, "profile.view", member_id)
    return profile


async def member_profile(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    member_id = args["member_id"]
    await ctx.hub.ensure_reach(ctx.agent, member_id)
    profile = await _db(ctx, _profile_and_audit, ctx.agent, member_id)
    if profile is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"no member {member_id}")
    return {"profile": mask_tree(profile)}


async def member_reveal(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    member_id = args["member_id"]
    await ctx.hub.ensure_reach(ctx.agent, member_id)
    values = await _db(ctx, memberdb.reveal, ctx.agent, member_id, args["field"], args["reason"])
    return {"values": values}


async def member_create(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    name = args["name"].strip()
    if not name:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "name: empty")
    e164 = normalise(args["phone"], ctx.hub.settings.default_region)
    if e164 is None:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "phone: not a valid phone number")
    email = args.get("email")
    if email is not None and "@" not in email:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "email: not an email address")
    member_id, member_no = await _db(
        ctx, memberdb.create_member, ctx.agent, name, e164, args.get("locale") or "zh-CN", email
    )
    ctx.hub.grant(ctx.agent.code, [member_id])
    return {"member_id": member_id, "member_no": member_no}


async def member_update(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    member_id = args["member_id"]
    await ctx.hub.ensure_reach(ctx.agent, member_id)
    await _db(ctx, memberdb.update_member_field, ctx.agent, member_id, args["field"], args["value"])
    profile = await _db(ctx, crm.profile, member_id)
    return {"profile": mask_tree(profile)}


async def inquiry_create(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    await ctx.hub.ensure_reach(ctx.agent, args["member_id"])
    inquiry_id = await _db(
        ctx,
        memberdb.create_inquiry,
        ctx.agent,
        args["member_id"],
        args["category"],
        args["subject"],
        args.get("body"),
    )
    return {"inquiry_id": inquiry_id}


async def complaint_create(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    await ctx.hub.ensure_reach(ctx.agent, args["member_id"])
    complaint_id = await _db(
        ctx,
        memberdb.create_complaint,
        ctx.agent,
        args["member_id"],
        args["severity"],
        args["category"],
        args["description"],
    )
    return {"complaint_id": complaint_id}


async def callback_create(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    await ctx.hub.ensure_reach(ctx.agent, args["member_id"])
    due = dt.datetime.fromisoformat(args["due_at"]).astimezone(dt.UTC)
    if due < dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "due_at: in the past")
    task_id = await _db(
        ctx,
        memberdb.create_callback,
        ctx.agent,
        args["member_id"],
        due,
        args["reason"],
        ctx.hub.settings.queue,
    )
    return {"task_id": task_id}


async def points_catalogue(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    return {"items": await _db(ctx, memberdb.catalogue)}


async def points_redeem(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    await ctx.hub.ensure_reach(ctx.agent, args["member_id"])
    return await _db(
        ctx,
        memberdb.redeem,
        ctx.agent,
        args["member_id"],
        args["item_code"],
        bool(args.get("confirm")),
        ctx.hub.redemption_hook,
    )
