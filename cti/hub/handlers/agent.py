"""pause, unpause, queue_login, queue_logout: the agent's own queue membership."""

from __future__ import annotations

import logging
from typing import Any

from cti.hub import actions
from cti.hub.server import Ctx
from cti.hubproto.messages import ErrorCode, ProtocolError
from cti.tracker import AgentState

log = logging.getLogger(__name__)


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
    """Join the queue; joining the main queue also joins the maintainer queue (penalty =
    agent id: ``route-inbound`` rings one agent there by limiting the caller's penalty)."""
    settings, agent = ctx.hub.settings, ctx.agent
    queue = args.get("queue") or settings.queue
    mq = settings.maintainer_queue
    penalty = agent.id if queue == mq else 0
    await ctx.hub.send_action(actions.queue_add(queue, agent.interface, agent.name, penalty))
    if mq and queue == settings.queue:
        try:
            await ctx.hub.send_action(actions.queue_add(mq, agent.interface, agent.name, agent.id))
        except Exception as exc:  # the main queue worked; maintainer-first is a bonus
            log.warning("agent %s could not join %s: %s", agent.code, mq, exc)
    return {}


async def queue_logout(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    settings, agent = ctx.hub.settings, ctx.agent
    queue = args.get("queue") or settings.queue
    await ctx.hub.send_action(actions.queue_remove(queue, agent.interface))
    if settings.maintainer_queue and queue == settings.queue:
        try:
            await ctx.hub.send_action(
                actions.queue_remove(settings.maintainer_queue, agent.interface)
            )
        except Exception as exc:
            log.warning(
                "agent %s could not leave %s: %s", agent.code, settings.maintainer_queue, exc
            )
    return {}
