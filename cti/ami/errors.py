"""Exceptions raised by :class:`cti.ami.client.AmiClient`."""

from __future__ import annotations

from cti.ami.message import AmiMessage


class AmiError(Exception):
    """Base class."""


class AmiAuthError(AmiError):
    """Login refused (wrong secret or unknown user: Asterisk does not say which)."""


class AmiNotConnected(AmiError):
    """No logged-in connection, or it was lost while the action was in flight."""


class AmiConnectionLost(AmiNotConnected):
    """The connection was lost (or closed) after the action was written: it may have run."""


class AmiTimeout(AmiError):
    """No (complete) answer within the action's timeout."""


class AmiNoBanner(AmiError):
    """The TCP connection was accepted but no ``Asterisk Call Manager/`` banner came."""


class AmiActionError(AmiError):
    """``Response: Error`` to an action; ``response`` is the message."""

    def __init__(self, response: AmiMessage) -> None:
        self.response = response
        super().__init__(f"{response.get('Message') or 'error'} (ActionID {response.action_id})")
