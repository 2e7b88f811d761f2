"""Indexes for the list builders at a million members (issue #15/#16: every list <= 2 s).

- ``ix_member_phones_member_valid`` (member, invalid, e164): each builder reads "the member's
  first valid phone" once per candidate; with this index that is one seek of a covering index
  instead of the unique index plus a table read for ``invalid``.
- ``ix_purchases_member_time_amount`` replaces ``ix_purchases_member_time`` (same leading
  columns, so every query that used it still can): the spend-decline aggregate then reads
  amounts from the index instead of one table row per purchase.
- ``ix_members_timezone``: the zones in use (whose month starts the monthly-care list needs)
  are then read in one seek per zone (a loose index scan) instead of a scan of every member.
- ``ix_call_list_entries_purchase_id`` becomes partial (``purchase_id IS NOT NULL``): only
  post-purchase entries name a purchase, so the other lists' inserts skip this index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOT_NULL = sa.text("purchase_id IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_members_timezone", "members", ["timezone"])
    op.create_index(
        "ix_member_phones_member_valid", "member_phones", ["member_id", "invalid", "e164"]
    )
    op.create_index(
        "ix_purchases_member_time_amount", "purchases", ["member_id", "purchased_at", "amount"]
    )
    op.drop_index("ix_purchases_member_time", table_name="purchases")
    op.drop_index("ix_call_list_entries_purchase_id", table_name="call_list_entries")
    op.create_index(
        "ix_call_list_entries_purchase_id",
        "call_list_entries",
        ["purchase_id"],
        sqlite_where=_NOT_NULL,
        postgresql_where=_NOT_NULL,
    )


def downgrade() -> None:
    op.drop_index("ix_call_list_entries_purchase_id", table_name="call_list_entries")
    op.create_index("ix_call_list_entries_purchase_id", "call_list_entries", ["purchase_id"])
    op.create_index("ix_purchases_member_time", "purchases", ["member_id", "purchased_at"])
    op.drop_index("ix_purchases_member_time_amount", table_name="purchases")
    op.drop_index("ix_member_phones_member_valid", table_name="member_phones")
    op.drop_index("ix_members_timezone", table_name="members")
