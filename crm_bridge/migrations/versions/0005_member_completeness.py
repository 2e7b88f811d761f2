"""Member data completeness: the member's city and when their consent choices were recorded.

Both nullable: existing members simply count as missing them (the completeness report and the
screen pop then ask the agent to fill them in). SQLite adds the columns in place.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 16:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_bridge.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("city", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "consent_recorded_at", crm_bridge.models.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("consent_recorded_at")
        batch_op.drop_column("city")
