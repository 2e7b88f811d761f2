"""The member lookups the pop and the hub's handlers need, as plain dicts (unmasked).

Thin adapter over ``crm_bridge.lookup`` / ``crm_bridge.profile``; callers mask.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from crm_bridge.lookup import get_member_summary, search_members
from crm_bridge.profile import build_profile


def summary(s: Session, member_id: int) -> dict[str, Any] | None:
    m = get_member_summary(s, member_id)
    return m.to_dict() if m is not None else None


def search(s: Session, query: str, limit: int, region: str) -> list[dict[str, Any]]:
    return [m.to_dict() for m in search_members(s, query, limit, region)]


def profile(s: Session, member_id: int) -> dict[str, Any] | None:
    p = build_profile(s, member_id)
    return p.to_dict() if p is not None else None
