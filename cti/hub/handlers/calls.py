"""dial, hangup, transfer, wrapup: an agent acts only on their own calls."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from crm_bridge.db import run_db
from cti.hub import actions
from cti.hub import db as hubdb
from cti.hub.call_records import CallRecord
from cti.hub.preview import dial_agent_first
from cti.hub.server import Ctx
from cti.hubproto.messages import ErrorCode, ProtocolError

_EXTEN = re.compile(r"^[0-9A-Za-z*#+_-]{1,32}$")


async def dial(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    hub, agent = ctx.hub, ctx.agent
    member_id: int = args["member_id"]
    await hub.ensure_reach(agent, member_id)
    info = await run_db(hub.engine, hubdb.member_dial_info, member_id)
    if info is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"no member {member_id}")
    name, phones, no_call = info
    if no_call:
        raise ProtocolError(ErrorCode.CONFLICT, "member is on do-not-call or has not consented")
    wanted = args.get("phone")
    if wanted is not None:
        if wanted not in phones:
            raise ProtocolError(ErrorCode.NOT_FOUND, "that number is not one of the member's")
        number = wanted
    elif phones:
        number = phones[0]
    else:
        raise ProtocolError(ErrorCode.NOT_FOUND, "member has no valid phone number")
    if hub.agent_busy(agent.code, include_wrapup=False):
        raise ProtocolError(ErrorCode.CONFLICT, "already on a call")
    call_id = f"ml-{uuid.uuid4().hex[:24]}"
    await run_db(hub.engine, hubdb.create_dial_attempt, call_id, member_id, agent.id, number)
    try:
        await dial_agent_first(
            hub, agent, call_id=call_id, member_id=member_id, number=number, name=name
        )
    except ProtocolError as exc:
        if exc.code is ErrorCode.PBX_ERROR:
            await run_db(hub.engine, hubdb.fail_dial_attempt, call_id, "failed")
        raise
    return {"call_id": call_id}


def _own_call(ctx: Ctx, call_id: str) -> CallRecord:
    rec = ctx.hub.calls.get(call_id)
    if rec is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"no call {call_id}")
    agent = ctx.agent
    if not rec.concerns(agent.code) and not agent.is_supervisor:
        raise ProtocolError(ErrorCode.FORBIDDEN, "not your call")
    if rec.state == "ended":
        raise ProtocolError(ErrorCode.NOT_FOUND, f"call {call_id} has ended")
    return rec


def _member_channel(ctx: Ctx, rec: CallRecord) -> str | None:
    if rec.member_channel:
        return rec.member_channel
    conv = ctx.hub.tracker.conversation(rec.call_id)
    if conv is None:
        return None
    agent_bases = {c.rsplit(";", 1)[0] for c in rec.agent_channels.values()}
    others = [c for c in conv.channels if c.rsplit(";", 1)[0] not in agent_bases]
    return others[-1] if others else None


async def hangup(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    hub = ctx.hub
    rec = _own_call(ctx, args["call_id"])
    owner = rec.agent_code or ctx.agent.code
    member_channel = _member_channel(ctx, rec)
    acts = hub.postcall_actions(rec) if rec.state in ("up", "hold") else None
    if rec.direction == "inbound" and acts:
        # Post-call survey: moving the member away ends the agent's bridge too.
        await hub.send_postcall(rec, acts)
        return {}
    channel = rec.agent_channels.get(owner) or member_channel
    if channel is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "the call has no channel to hang up yet")
    await hub.send_action(actions.hangup(channel))
    return {}


async def transfer(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    hub = ctx.hub
    rec = _own_call(ctx, args["call_id"])
    target: str = args["target"]
    if not _EXTEN.match(target):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "target: not an extension")
    channel = _member_channel(ctx, rec)
    if channel is None or rec.state not in ("up", "hold"):
        raise ProtocolError(ErrorCode.NOT_FOUND, "the call is not connected")
    await hub.send_action(actions.redirect(channel, hub.settings.transfer_context, target))
    return {}


async def wrapup(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    hub, agent = ctx.hub, ctx.agent
    call_id: str = args["call_id"]
    disposition: str = args["disposition"]
    if disposition not in hub.settings.disposition_codes:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown disposition {disposition!r}")
    reason: str | None = args.get("reason")
    if reason is not None and reason not in {c for c, _, _ in hub.settings.winback_reasons}:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown reason {reason!r}")
    if reason in hub.settings.reasons_needing_note and not (args.get("notes") or "").strip():
        raise ProtocolError(ErrorCode.REASON_REQUIRED, f"reason {reason!r} needs a note")
    callback_at = None
    if args.get("callback_at"):
        callback_at = dt.datetime.fromisoformat(args["callback_at"]).astimezone(dt.UTC)
    rec = hub.calls.get(call_id)
    if rec is not None:
        if agent.code not in rec.owners and not agent.is_supervisor:
            raise ProtocolError(ErrorCode.FORBIDDEN, "not your call")
    else:
        found, owner_id = await run_db(hub.engine, hubdb.call_owner, call_id)
        if not found:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no call {call_id}")
        if owner_id != agent.id and not agent.is_supervisor:
            raise ProtocolError(ErrorCode.FORBIDDEN, "not your call")
    await hub.writer.flush()  # the row's facts queued before this are committed
    attempt_id = await run_db(
        hub.engine,
        hubdb.store_wrapup,
        call_id,
        agent,
        disposition,
        args.get("notes"),
        callback_at,
        rec.queue if rec else None,
        rec.member_id if rec else None,
        reason,
    )
    if attempt_id is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"no call {call_id}")
    owner = agent
    if rec is not None:
        if agent.code not in rec.owners and rec.agent_code in hub.agents_by_code:
            owner = hub.agents_by_code[rec.agent_code]  # a supervisor finishing it for them
        rec.wrapped_up.add(owner.code)
        rec.unfinished.discard(owner.code)
    desk = hub.desk(owner)
    if desk.in_wrapup():
        await hub.finish_wrapup(owner, call_id)
    else:
        hub.dispatch_events(hub.tracker.end_wrap_up(owner.interface, hub.clock()))
    return {"attempt_id": attempt_id}


async def unfinished_calls(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """The agent's answered calls with no disposition (a supervisor: anyone's, or all)."""
    hub, agent = ctx.hub, ctx.agent
    who: str | None = args.get("agent")
    if who is None and not agent.is_supervisor:
        who = agent.code
    if who is not None and who != agent.code and not agent.is_supervisor:
        raise ProtocolError(ErrorCode.FORBIDDEN, "supervisors only")
    agent_id = None
    if who is not None:
        info = hub.agents_by_code.get(who)
        if info is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no agent {who}")
        agent_id = info.id
    await hub.writer.flush()
    stale_before = dt.datetime.fromtimestamp(hub.clock() - hub.settings.shift_s, dt.UTC)
    rows = await run_db(hub.engine, hubdb.unfinished_calls, agent_id, stale_before)
    live = {d.wrapup_call for d in hub.desks.values() if d.wrapup_call}
    live |= {c for d in hub.desks.values() for c, _ in d.wrapup_queue}
    live |= {r.call_id for r in hub.calls.live()}  # still on the phone
    return {"calls": [r for r in rows if r["call_id"] not in live]}
