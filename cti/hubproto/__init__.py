"""The console <-> hub protocol: message declarations, framing and an asyncio client.

This package is all ``agent_tui`` may import from the server side: it imports
nothing from the database or AMI layers. See ``docs/hub-protocol.md``.
"""

from cti.hubproto.framing import FrameError, LineFramer, encode
from cti.hubproto.messages import (
    COMMANDS,
    PROTOCOL_VERSION,
    PUSHES,
    CommandSpec,
    ErrorCode,
    Field,
    ProtocolError,
    PushSpec,
    validate_args,
)

__all__ = [
    "COMMANDS",
    "PROTOCOL_VERSION",
    "PUSHES",
    "CommandSpec",
    "ErrorCode",
    "Field",
    "FrameError",
    "LineFramer",
    "ProtocolError",
    "PushSpec",
    "encode",
    "validate_args",
]
