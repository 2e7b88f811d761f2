"""AMI actions for agent commands, as plain dicts (pure; tests assert the exact dict).

The hub sends them through the AMI client's ``send_action``; ActionIDs are added
by the client unless one is given here (Originate sets its own for correlation).
"""

from __future__ import annotations

from typing import Any

Action = dict[str, Any]


def queue_pause(interface: str, paused: bool, reason: str = "", queue: str | None = None) -> Action:
    """QueuePause in every queue (``queue`` None) with a reason code."""
    action: Action = {
        "Action": "QueuePause",
        "Interface": interface,
        "Paused": "true" if paused else "false",
    }
    if queue:
        action["Queue"] = queue
    if reason:
        action["Reason"] = reason
    return action


def queue_add(queue: str, interface: str, member_name: str, penalty: int = 0) -> Action:
    return {
        "Action": "QueueAdd",
        "Queue": queue,
        "Interface": interface,
        "MemberName": member_name,
        "Penalty": str(penalty),
        "Paused": "false",
    }


def queue_remove(queue: str, interface: str) -> Action:
    return {"Action": "QueueRemove", "Queue": queue, "Interface": interface}


def originate_click_to_dial(
    *,
    interface: str,
    number: str,
    context: str,
    caller_id: str,
    channel_id: str,
    member_id: int,
    agent_code: str,
    timeout_ms: int,
    action_id: str,
) -> Action:
    """Ring the agent's interface first; when they answer, dial ``number`` in ``context``.

    ``ChannelId``/``OtherChannelId`` preset the Uniqueids, so the call's Linkedid is
    ``channel_id``: that is the console's call id and the attempt's correlation key.
    """
    return {
        "Action": "Originate",
        "Channel": interface,
        "Context": context,
        "Exten": number,
        "Priority": "1",
        "CallerID": caller_id,
        "Timeout": str(timeout_ms),
        "Async": "true",
        "ChannelId": channel_id,
        "OtherChannelId": f"{channel_id}-2",
        "Variable": f"MEMBER_ID={member_id},ML_AGENT={agent_code},ML_CALL_ID={channel_id}",
        "ActionID": action_id,
    }


def hangup(channel: str, cause: int = 16) -> Action:
    return {"Action": "Hangup", "Channel": channel, "Cause": str(cause)}


def redirect(channel: str, context: str, exten: str, priority: int = 1) -> Action:
    return {
        "Action": "Redirect",
        "Channel": channel,
        "Context": context,
        "Exten": exten,
        "Priority": str(priority),
    }
