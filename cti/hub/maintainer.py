"""Maintainer-first inbound routing: the ``route-inbound`` FastAGI lookup.

Every member has a maintaining agent (维护人) whose members' calls go to them first. The
shipped dialplan (``docs/asterisk/extensions.conf``, context ``from-pstn``) runs::

    same => n,AGI(agi://127.0.0.1:4573/route-inbound)
    same => n,GotoIf($["${ML_MAINTAINER_PENALTY}" = ""]?queue)
    same => n,Gosub(maintainer-first,s,1(${ML_MAINTAINER_PENALTY},${ML_MAINTAINER_RING}))
    same => n(queue),Queue(members,t,,,60)

    [maintainer-first]   ; LOCAL(): the limits are gone after Return
    exten => s,1,Set(LOCAL(QUEUE_MIN_PENALTY)=${ARG1})
     same => n,Set(LOCAL(QUEUE_MAX_PENALTY)=${ARG1})
     same => n,Queue(maintainers,t,,,${ARG2})
     same => n,Return()

Agents join ``maintainers`` with their agent id as penalty when they join the queue
(:func:`cti.hub.handlers.agent.queue_login`), so limiting the caller's penalty to one id
rings exactly that agent, through app_queue: the hub pops on ``AgentCalled`` as for any
queue call. This route sets ``ML_MAINTAINER_PENALTY`` only when the caller is one known
member (by caller ID, or ``MEMBER_ID`` already set by the hotline) whose maintainer has a
console logged in and is available in ``maintainers`` (not ringing, talking, in wrap-up or
paused); ``ML_ROUTE`` says why (``maintainer``, ``busy``, ``logged_out``, ``none``,
``unknown``) for the CDR.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.db import run_db
from crm_bridge.lookup import find_members_by_phone
from crm_bridge.models import Agent, Member
from cti.tracker import AgentState

if TYPE_CHECKING:
    from cti.hub.server import HubServer
    from surveys.agi import SurveyAgiRequest

log = logging.getLogger(__name__)

ROUTE = "route-inbound"


def _maintainer(s: Session, member_id: int | None, caller: str, region: str) -> tuple[str, str]:
    """(member id or "", maintainer's agent code or "") for one identified member."""
    if member_id is None:
        found = find_members_by_phone(s, caller, region)
        if len(found) != 1:
            return "", ""
        member_id = found[0].member_id
    row = s.execute(
        select(Member.id, Agent.code)
        .outerjoin(Agent, Agent.id == Member.maintaining_agent_id)
        .where(Member.id == member_id)
    ).first()
    if row is None:
        return "", ""
    return str(row[0]), str(row[1] or "")


class MaintainerRoute:
    """The ``route-inbound`` FastAGI route; needs the hub's live agent states."""

    ROUTE = ROUTE

    def __init__(self, hub: HubServer) -> None:
        self.hub = hub

    def availability(self, code: str) -> str:
        """``maintainer`` (ring them), ``busy`` or ``logged_out``."""
        hub = self.hub
        info = hub.agents_by_code.get(code)
        queue = hub.settings.maintainer_queue
        if info is None or not queue or not hub.sessions.logged_in_anywhere(code):
            return "logged_out"
        view = hub.tracker.agent(info.interface)
        if view is None or queue not in view.queues:
            return "logged_out"
        if (
            view.state is not AgentState.AVAILABLE
            or queue in view.paused_queues
            or hub.agent_busy(code)
        ):
            return "busy"
        return "maintainer"

    async def run(self, req: SurveyAgiRequest) -> None:
        hub = self.hub
        known = await req.get_variable("MEMBER_ID")
        member_id = int(known) if known and known.strip().isdigit() else None
        caller = req.info.headers.get("agi_callerid", "")
        member, code = await run_db(
            hub.engine, _maintainer, member_id, caller, hub.settings.default_region
        )
        if code and code not in hub.agents_by_code:
            await hub.load_agents()
        if not member:
            route = "unknown"
        elif not code:
            route = "none"
        else:
            route = self.availability(code)
        if member:
            await req.set_variable("MEMBER_ID", member)
        await req.set_variable("ML_ROUTE", route)
        if route == "maintainer":
            info = hub.agents_by_code[code]
            await req.set_variable("ML_MAINTAINER", code)
            await req.set_variable("ML_MAINTAINER_PENALTY", str(info.id))
            await req.set_variable("ML_MAINTAINER_RING", f"{hub.settings.maintainer_ring_s:g}")
        log.info("route-inbound %s: member %s -> %s %s", req.info.uniqueid, member, route, code)
