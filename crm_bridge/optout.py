"""What an agent learns on the phone that stops future calls: the member asked not to be
called (do-not-call), or the number is not theirs (wrong number). Both are audited and take
effect for every campaign at once: the list builders and the dial-time rules read
``members.do_not_call`` and ``member_phones.invalid``.

Used by the console's wrap-up dispositions and by preview-card skips, with the same codes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from crm_bridge.models import AuditLog, Member, MemberPhone

DO_NOT_CALL = "do-not-call"
WRONG_NUMBER = "wrong-number"
CODES = frozenset({DO_NOT_CALL, WRONG_NUMBER})


def apply(
    session: Session,
    code: str,
    member_id: int,
    phone_e164: str | None,
    actor: str,
    details: dict[str, Any],
) -> bool:
    """Apply ``code`` (do-not-call / wrong-number) to the member; False for any other code
    (or a wrong number without a number). In the caller's transaction."""
    if code == DO_NOT_CALL:
        session.execute(update(Member).where(Member.id == member_id).values(do_not_call=True))
        action = "member.do_not_call"
    elif code == WRONG_NUMBER and phone_e164:
        session.execute(
            update(MemberPhone)
            .where(MemberPhone.member_id == member_id, MemberPhone.e164 == phone_e164)
            .values(invalid=True)
        )
        action = "member.phone_invalid"
        details = {**details, "phone": phone_e164[-4:]}
    else:
        return False
    session.add(AuditLog(actor=actor, action=action, member_id=member_id, details=details))
    return True
