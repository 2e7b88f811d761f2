"""hello, login, logout, state."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm_bridge.db import run_db
from cti.hub import db as hubdb
from cti.hub.server import Ctx
from cti.hubproto.messages import MAX_MESSAGE_BYTES, PROTOCOL_VERSION, ErrorCode, ProtocolError


async def hello(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    if args["protocol"] != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"this hub speaks protocol {PROTOCOL_VERSION}, not {args['protocol']}",
        )
    ctx.conn.hello_done = True
    return {
        "server": ctx.hub.settings.server_name,
        "protocol": PROTOCOL_VERSION,
        "max_message_bytes": min(ctx.hub.settings.max_message_bytes, MAX_MESSAGE_BYTES),
        "tracker_anomalies": ctx.hub.events.health(),
    }


async def login(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    hub, conn = ctx.hub, ctx.conn
    code: str = args["agent"]
    keys = [f"agent:{code}", f"peer:{conn.peer}"]
    now = hub.clock()
    blocking = hub.limiter.blocking(keys, now)
    if blocking is not None:
        wait = int(hub.limiter.retry_after([blocking], now)) + 1
        limit = hub.limiter.limit_for(blocking)
        window = int(hub.limiter.window_s)
        who = f"agent {code}" if blocking == keys[0] else f"this address ({conn.peer})"
        raise ProtocolError(
            ErrorCode.RATE_LIMITED,
            f"{who}: {limit} failed logins within {window} s; try again in {wait} s",
        )
    info = await run_db(
        hub.engine, hubdb.check_login, code, args["password"], hub.settings.agent_interface
    )
    if info is None:
        hub.limiter.fail(keys, hub.clock())
        raise ProtocolError(ErrorCode.BAD_CREDENTIALS, "wrong agent id or password")
    hub.limiter.succeed(keys[0])
    hub.remember_agent(info)
    today = dt.datetime.fromtimestamp(hub.clock(), dt.UTC).date()
    if hub.day_stats.get(info.code, [0])[0] != today.toordinal():
        midnight = dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC)
        calls, talk = await run_db(hub.engine, hubdb.agent_day_stats, info.id, midnight)
        hub.day_stats[info.code] = [today.toordinal(), calls, talk]
    hub.sessions.bind(conn, info)
    ctx.after.append(lambda: hub.push_full_state(conn))
    s = hub.settings
    return {
        "agent": {
            "code": info.code,
            "name": info.name,
            "role": info.role,
            "extension": info.extension,
        },
        "pause_reasons": list(s.pause_reasons),
        "dispositions": [list(d) for d in s.dispositions],
        "winback_reasons": [
            [code, en, zh, code in s.reasons_needing_note] for code, en, zh in s.winback_reasons
        ],
    }


async def logout(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    ctx.hub.sessions.unbind(ctx.conn)
    return {}


async def state(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    return ctx.hub.state_snapshot(ctx.agent)
