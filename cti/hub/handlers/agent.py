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
    hub, agent = ctx.hub, ctx.agent
    desk = hub.desk(agent)
    acts = desk.pause(reason, _busy(ctx))
    await hub.save_desk(agent)
    for action in acts:
        await hub.send_action(action)
    hub.push_agent_state(agent)
    return {"deferred": not acts}


def _busy(ctx: Ctx) -> bool:
    """On a call (ringing, up, held): a pause asked now is applied after its wrap-up."""
    view = ctx.hub.tracker.agent(ctx.agent.interface)
    on_call = view is not None and view.state in (AgentState.ON_CALL, AgentState.RINGING)
    return on_call or ctx.hub.agent_busy(ctx.agent.code, include_wrapup=False)


async def unpause(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    hub, agent = ctx.hub, ctx.agent
    desk = hub.desk(agent)
    busy = _busy(ctx)
    view = hub.tracker.agent(agent.interface)
    paused = view is not None and (view.state is AgentState.PAUSED or bool(view.paused_queues))
    if not paused and not busy and not desk.in_wrapup() and desk.wanted_pause is None:
        raise ProtocolError(ErrorCode.CONFLICT, "not paused")
    acts = desk.unpause(busy)
    await hub.save_desk(agent)
    for action in acts:
        await hub.send_action(action)
    hub.push_agent_state(agent)
    return {"deferred": not acts}


async def queue_login(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Join the queue; joining the main queue also joins the maintainer queue (penalty =
    agent id: ``route-inbound`` rings one agent there by limiting the caller's penalty).
    Remembered (``agent_presence``) and re-applied after a PBX restart."""
    hub, settings, agent = ctx.hub, ctx.hub.settings, ctx.agent
    queue = args.get("queue") or settings.queue
    mq = settings.maintainer_queue
    penalty = agent.id if queue == mq else 0
    desk = hub.desk(agent)
    desk.queues.add(queue)
    await hub.save_desk(agent)
    await hub.send_action(actions.queue_add(queue, agent.interface, agent.name, penalty))
    if mq and queue == settings.queue:
        try:
            await hub.send_action(actions.queue_add(mq, agent.interface, agent.name, agent.id))
        except Exception as exc:  # the main queue worked; maintainer-first is a bonus
            log.warning("agent %s could not join %s: %s", agent.code, mq, exc)
        else:  # remembered only once joined: logout then leaves only what was joined
            desk.queues.add(mq)
            await hub.save_desk(agent)
    return {}


async def queue_logout(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    hub, settings, agent = ctx.hub, ctx.hub.settings, ctx.agent
    queue = args.get("queue") or settings.queue
    desk = hub.desk(agent)
    desk.queues.discard(queue)
    mq = settings.maintainer_queue
    # Leave the maintainer queue only if this desk joined it: a static queue member (the
    # demo's agents) never did, and asking would only log Asterisk's "Not there".
    joined_mq = bool(mq) and queue == settings.queue and mq in desk.queues
    if joined_mq:
        desk.queues.discard(mq)
    await hub.save_desk(agent)
    await hub.send_action(actions.queue_remove(queue, agent.interface))
    if joined_mq:
        try:
            await hub.send_action(actions.queue_remove(settings.maintainer_queue, agent.interface))
        except Exception as exc:
            log.warning(
                "agent %s could not leave %s: %s", agent.code, settings.maintainer_queue, exc
            )
    return {}
