"""Agent-first dialling for the campaign runner: preview cards and maintainer-first calls.

The hub does not know campaigns; the dialer's runner does. They meet here:

* the runner is the hub's :class:`PreviewService` (``hub.preview``): ``preview_dial`` and
  ``preview_skip`` from a console are handed to it, and it answers what the agent's
  current card is (pushed again after a reconnect);
* the hub is the runner's desk: which agents have a console (:meth:`HubServer.console_agents`),
  whether one is busy with a call, pushing a ``preview`` card, and
  :func:`dial_agent_first` — the click-to-dial Originate (the agent's phone rings
  first, then the member through the outbound context) with the ChannelId the runner
  recorded in its attempt row before, so the hub's call row *is* that attempt row
  (:func:`cti.hub.persist.call_row` finds it by ``channel_id``) and wrap-up stores the
  disposition there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from cti.hub import actions
from cti.hub.call_records import CallRecord
from cti.hubproto.messages import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from cti.hub.server import HubServer
    from cti.hub.sessions import AgentInfo


class PreviewService(Protocol):
    """What the hub needs from the campaign runner (``dialer.runner.CampaignRunner``)."""

    async def preview_dial(self, agent: AgentInfo, entry_id: int) -> dict[str, Any]: ...

    async def preview_skip(
        self, agent: AgentInfo, entry_id: int, reason: str
    ) -> dict[str, Any]: ...

    def current_preview(self, code: str) -> dict[str, Any] | None: ...


def caller_id_name(name: str) -> str:
    return name.replace('"', "").replace("<", "").replace(">", "")[:64]


async def dial_agent_first(
    hub: HubServer,
    agent: AgentInfo,
    *,
    call_id: str,
    member_id: int,
    number: str,
    name: str,
    extra_vars: str = "",
) -> CallRecord:
    """Ring ``agent`` first, then ``number``; the call is the agent's (``call_state``, wrap-up).

    The caller has written the call's row before (keyed by ``channel_id`` = ``call_id``).
    ``conflict`` when the agent is already on a call; ``pbx_error`` when the PBX refuses
    (the call is then ended here; the caller records the failure on its row).
    """
    if hub.agent_busy(agent.code, include_wrapup=False):
        raise ProtocolError(ErrorCode.CONFLICT, "already on a call")
    action_id = f"dial-{call_id}"
    now = hub.clock()
    rec = hub.calls.add(
        CallRecord(
            call_id=call_id,
            direction="outbound",
            started=now,
            since=now,
            caller_num=number,
            caller_name=name,
            member_id=member_id,
            agent_code=agent.code,
            owners=[agent.code],
            action_id=action_id,
            state="ringing",
        )
    )
    campaign = _campaign_var(extra_vars)
    if campaign is not None:  # a campaign's agent-first call: the console shows which one
        rec.campaign_id = campaign
        origin = hub.call_origin(call_id) if hub.call_origin is not None else None
        rec.campaign = (origin or {}).get("campaign")
        hub.learn_campaign(campaign)
    hub.pending_dials[action_id] = call_id
    while len(hub.pending_dials) > 10_000:  # results lost in a PBX restart: forget the oldest
        hub.pending_dials.pop(next(iter(hub.pending_dials)))
    hub.grant(agent.code, [member_id])
    action = actions.originate_click_to_dial(
        interface=agent.interface,
        number=number,
        context=hub.settings.outbound_context,
        caller_id=f'"{caller_id_name(name)}" <{number}>',
        channel_id=call_id,
        member_id=member_id,
        agent_code=agent.code,
        timeout_ms=hub.settings.originate_timeout_ms,
        action_id=action_id,
    )
    if extra_vars:
        action["Variable"] = f"{action['Variable']},{extra_vars}"
    hub.push_call_state(rec, agent.code)
    try:
        await hub.send_action(action)
    except ProtocolError:
        hub.pending_dials.pop(action_id, None)
        rec.state = "ended"
        hub.calls.ended(rec, hub.clock())
        hub.push_call_state(rec, agent.code)
        raise
    return rec


def _campaign_var(extra_vars: str) -> int | None:
    """``CAMPAIGN_ID=4,ENTRY_ID=9`` -> 4."""
    for part in extra_vars.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "CAMPAIGN_ID" and value.strip().isdigit():
            return int(value.strip())
    return None
