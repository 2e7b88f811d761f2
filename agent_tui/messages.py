"""Hub traffic as Textual messages: the client's callbacks post these to the app."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class HubPush(Message):
    """A push frame from the hub (``screen_pop``, ``call_state``, ``agent_state`` ...)."""

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        super().__init__()
        self.name = name
        self.data = data


class HubStatus(Message):
    """The connection changed: connecting | connected | disconnected | auth_failed."""

    def __init__(self, status: str) -> None:
        super().__init__()
        self.status = status
