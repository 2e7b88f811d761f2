"""Dialer attempts keep the 2-second rule's measurement and AMD's verdict.

``bridge_wait_s``: seconds from the member's live answer (AMD's verdict when AMD listened) to
the agent's bridge, as the call ledger measured it — the figure the 2-second rule is judged
on (a live answer waiting longer is abandoned whatever the dialplan did). Kept on the row so
reports and audits can show it after the runner's memory is gone.

``amd_status``: AMD's verdict (``HUMAN``, ``MACHINE``, ``NOTSURE``, ``HANGUP``) when AMD
listened. A ``MACHINE`` verdict an agent took (outcome answered/abandoned) is a *verified*
sample: its disposition says whether AMD was wrong, which is how the share of machine
hang-ups that were live people (AMD false positives, counted as abandoned calls) is
estimated from the database over the legal window.

Both nullable (inbound calls, calls never answered, rows written before this revision).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bridge_wait_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("amd_status", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.drop_column("amd_status")
        batch_op.drop_column("bridge_wait_s")
