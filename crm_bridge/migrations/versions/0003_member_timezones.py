"""Member time zones from their numbers; no blanket Asia/Shanghai default.

Until now every member got ``Asia/Shanghai`` whatever the country of their number, and the
contact rules trusted it: a UK member could be called at 06:00. From now on a new member's
zone defaults to ``''`` = unknown (the rules derive it from the number at contact time, and
hold the member when the number says nothing either). The default was Python-side, so the
schema does not change (on SQLite, rebuilding ``members`` to relax NOT NULL would cascade-
delete every ``member_phones`` row). Existing rows:

- a member with no zone, or with the old default ``Asia/Shanghai`` while none of their
  numbers can be in Shanghai's zone, gets the zone of their first number that gives exactly
  one (``phonenumbers``);
- when that number could be in several zones the column is set to ``''``: the rules then
  use every one of the number's zones (only hours allowed in all of them);
- an explicit zone that agrees with the number, or a member without numbers, is left as is.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_DEFAULT = "Asia/Shanghai"
_CHUNK = 5000


def upgrade() -> None:
    fill_zones(op.get_bind())


def fill_zones(conn: sa.Connection) -> int:
    """Set members' zones from their numbers as described above; returns rows changed."""
    from dialer.hours import zones_for_number

    members = sa.table("members", sa.column("id", sa.Integer), sa.column("timezone", sa.String))
    phones = sa.table(
        "member_phones",
        sa.column("id", sa.Integer),
        sa.column("member_id", sa.Integer),
        sa.column("e164", sa.String),
    )
    changed = 0
    last = 0
    while True:
        ids = [
            r[0]
            for r in conn.execute(
                sa.select(members.c.id)
                .where(
                    members.c.id > last,
                    sa.or_(
                        members.c.timezone.is_(None),
                        members.c.timezone == "",
                        members.c.timezone == OLD_DEFAULT,
                    ),
                )
                .order_by(members.c.id)
                .limit(_CHUNK)
            )
        ]
        if not ids:
            return changed
        last = ids[-1]
        current = {
            mid: tz
            for mid, tz in conn.execute(
                sa.select(members.c.id, members.c.timezone).where(members.c.id.in_(ids))
            )
        }
        numbers: dict[int, list[str]] = {}
        for mid, e164 in conn.execute(
            sa.select(phones.c.member_id, phones.c.e164)
            .where(phones.c.member_id.in_(ids))
            .order_by(phones.c.member_id, phones.c.id)
        ):
            numbers.setdefault(mid, []).append(e164)
        updates = []
        for mid in ids:
            zones: tuple[str, ...] = ()
            for e164 in numbers.get(mid, ()):
                zones = zones_for_number(e164)
                if zones:
                    break
            if not zones:
                continue  # nothing better known: an old default stays, unknown stays unknown
            tz = current.get(mid)
            if tz == OLD_DEFAULT and OLD_DEFAULT in zones:
                continue  # the number agrees with the record
            new = zones[0] if len(zones) == 1 else ""
            if new != tz:
                updates.append({"b_id": mid, "b_tz": new})
        if updates:
            conn.execute(
                sa.update(members)
                .where(members.c.id == sa.bindparam("b_id"))
                .values(timezone=sa.bindparam("b_tz")),
                updates,
            )
            changed += len(updates)


def downgrade() -> None:
    """Zones filled in stay (they are better data); nothing to undo in the schema."""
