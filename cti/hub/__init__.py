"""The hub: agent consoles connect here (Twisted TCP, optional TLS) and get screen pops,
call and agent state; their commands become AMI actions and database rows.

See :mod:`cti.hub.server` for the wiring and ``docs/hub-protocol.md`` for the protocol.
"""

from cti.hub.server import HubServer, PbxLink
from cti.hub.settings import HubSettings

__all__ = ["HubServer", "HubSettings", "PbxLink"]
