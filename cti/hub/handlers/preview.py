"""preview_dial, preview_skip: the agent's answer to a campaign's preview card."""

from __future__ import annotations

from typing import Any

from cti.hub.server import Ctx
from cti.hubproto.messages import ErrorCode, ProtocolError


def _service(ctx: Ctx) -> Any:
    svc = ctx.hub.preview
    if svc is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "no preview campaign runs on this hub")
    return svc


async def preview_dial(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await _service(ctx).preview_dial(ctx.agent, args["entry_id"])
    return result


async def preview_skip(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await _service(ctx).preview_skip(
        ctx.agent, args["entry_id"], args["reason"]
    )
    return result
