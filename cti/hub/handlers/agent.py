"""pause, unpause, queue_login, queue_logout: the agent's own queue membership."""

from __future__ import annotations

from typing import Any

from cti.hub import actions
from cti.hub.server import Ctx
from cti.hubproto.messages import ErrorCode, ProtocolError
from cti.tracker import AgentState


async def pause(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    reason: str = args["reason"]
    if reason not in ctx.hub.settings.pause_reasons:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"unknown pause reason {reason!r}; one of {', '.join(ctx.hub.settings.pause_reasons)}",
        )
    await ctx.hub.send_action(actions.queue_pause(ctx.agent.interface, True, reason))
    return {}


async def unpause(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    view = ctx.hub.tracker.agent(ctx.agent.interface)
    if view is None or (view.state is not AgentState.PAUSED and not view.paused_queues):
        raise ProtocolError(ErrorCode.CONFLICT, "not paused")
    await ctx.hub.send_action(actions.queue_pause(ctx.agent.interface, False))
    return {}


async def queue_login(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    queue = args.get("queue") or ctx.hub.settings.queue
    await ctx.hub.send_action(actions.queue_add(queue, ctx.agent.interface, ctx.agent.name))
    return {}


async def queue_logout(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    queue = args.get("queue") or ctx.hub.settings.queue
    await ctx.hub.send_action(actions.queue_remove(queue, ctx.agent.interface))
    return {}
