"""The one table of console commands -> handlers (every declared command, no more)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cti.hub.handlers import agent, calls, members, preview, session, supervisor

if TYPE_CHECKING:
    from cti.hub.server import Handler

HANDLERS: dict[str, Handler] = {
    # session
    "hello": session.hello,
    "login": session.login,
    "logout": session.logout,
    "state": session.state,
    # the agent's queue membership
    "pause": agent.pause,
    "unpause": agent.unpause,
    "queue_login": agent.queue_login,
    "queue_logout": agent.queue_logout,
    # calls
    "dial": calls.dial,
    "hangup": calls.hangup,
    "transfer": calls.transfer,
    "wrapup": calls.wrapup,
    "unfinished_calls": calls.unfinished_calls,
    # campaign preview cards
    "preview_dial": preview.preview_dial,
    "preview_skip": preview.preview_skip,
    # members
    "member_search": members.member_search,
    "member_profile": members.member_profile,
    "member_reveal": members.member_reveal,
    "member_create": members.member_create,
    "member_update": members.member_update,
    "inquiry_create": members.inquiry_create,
    "complaint_create": members.complaint_create,
    "callback_create": members.callback_create,
    "points_catalogue": members.points_catalogue,
    "points_redeem": members.points_redeem,
    # supervisors
    "reassign_members": supervisor.reassign_members,
    "agents_list": supervisor.agents_list,
    "campaigns_list": supervisor.campaigns_list,
    "campaign_create": supervisor.campaign_create,
    "campaign_control": supervisor.campaign_control,
    "wallboard_subscribe": supervisor.wallboard_subscribe,
    "survey_summary": supervisor.survey_summary,
    "rfm_grid": supervisor.rfm_grid,
}
