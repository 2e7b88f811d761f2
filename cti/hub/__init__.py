"""The hub: agent consoles connect here (Twisted TCP, optional TLS) and get screen pops,
call and agent state; their commands become AMI actions and database rows.

See :mod:`cti.hub.server` for the wiring and ``docs/hub-protocol.md`` for the protocol.
The names below load on first use, so ``cti.hub.settings`` (plain values, read by
``memberline.config`` for its defaults) imports without Twisted or SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cti.hub.server import HubServer, PbxLink
    from cti.hub.settings import HubSettings

__all__ = ["HubServer", "HubSettings", "PbxLink"]


def __getattr__(name: str) -> Any:
    if name in ("HubServer", "PbxLink"):
        from cti.hub import server

        return getattr(server, name)
    if name == "HubSettings":
        from cti.hub.settings import HubSettings

        return HubSettings
    raise AttributeError(f"module 'cti.hub' has no attribute {name!r}")
