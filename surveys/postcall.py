"""Post-call survey: move the member's channel into the survey when the agent hangs up.

The hub calls :func:`postcall_actions` when a queue or campaign has the post-call survey on
and the agent leaves the bridge (``AgentComplete`` with ``Reason: agent``), and sends the
actions in order over AMI. ``Setvar`` puts the ids on the member's channel (``Redirect`` has
no ``Variable`` header), then ``Redirect`` sends the channel to the survey context, where the
dialplan runs the FastAGI survey (see :mod:`surveys.agi`)::

    [survey]
    exten => start,1,AGI(agi://127.0.0.1:4573/survey?name=${SURVEY_NAME})
     same => n,Hangup()

For the Redirect to find the member's channel alive after the agent hangs up, the queue's
dialplan must not hang it up at once: put ``same => n,Wait(5)`` after ``Queue()`` (or let
the dialplan itself ``Goto(survey,start,1)`` when the hub is not involved).
"""

from __future__ import annotations

__all__ = ["postcall_actions", "redirect_action"]


def redirect_action(
    channel: str, *, context: str = "survey", exten: str = "start", priority: int = 1
) -> dict[str, str]:
    """The AMI ``Redirect`` that moves ``channel`` (the member's) into the survey."""
    if not channel:
        raise ValueError("channel is required")
    return {
        "Action": "Redirect",
        "Channel": channel,
        "Context": context,
        "Exten": exten,
        "Priority": str(priority),
    }


def postcall_actions(
    channel: str,
    *,
    survey: str = "satisfaction",
    member_id: int | None = None,
    agent_id: int | None = None,
    campaign_id: int | None = None,
    context: str = "survey",
    exten: str = "start",
) -> list[dict[str, str]]:
    """``Setvar`` for each known id (and ``SURVEY_NAME``), then the ``Redirect``."""
    actions = []
    for var, value in (
        ("SURVEY_NAME", survey),
        ("MEMBER_ID", member_id),
        ("AGENT_ID", agent_id),
        ("CAMPAIGN_ID", campaign_id),
    ):
        if value is not None:
            actions.append(
                {"Action": "Setvar", "Channel": channel, "Variable": var, "Value": str(value)}
            )
    actions.append(redirect_action(channel, context=context, exten=exten))
    return actions
