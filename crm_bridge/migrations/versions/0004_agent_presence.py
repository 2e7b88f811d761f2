"""agent_presence: each agent's queue logins and requested pause, re-applied after a PBX restart.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 17:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_bridge.models

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Asterisk forgets dynamic members and every pause on restart (persistentmembers = no
    # is common): the hub keeps what the agent asked for here and puts it back.
    op.create_table('agent_presence',
    sa.Column('agent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hub', sa.String(length=64), server_default='hub-1', nullable=False),
    sa.Column('queues', sa.JSON(), nullable=False),
    sa.Column('pause_reason', sa.String(length=32), nullable=True),
    sa.Column('updated_at', crm_bridge.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_presence_agent_id_agents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('agent_id', name=op.f('pk_agent_presence'))
    )


def downgrade() -> None:
    op.drop_table('agent_presence')
