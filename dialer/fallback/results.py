"""The outcome of one provider call, classified for the worker (pure values)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SendOutcome(enum.StrEnum):
    SENT = "sent"
    """The provider accepted the message (``provider_id`` set)."""
    TRANSIENT = "transient"
    """Refused before acceptance, worth retrying later (SMTP 4xx, Twilio 429/5xx, connect)."""
    PERMANENT = "permanent"
    """Refused for good (SMTP 5xx, Twilio 21211/21614/21610...): never retried."""
    AMBIGUOUS = "ambiguous"
    """The request may or may not have been accepted (timeout or disconnect after it was
    sent): never blindly resent, the row goes through recovery (ask the provider)."""


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    provider_id: str | None = None
    code: str | None = None
    """Provider error code: Twilio's numeric code or ``smtp:<reply code>``."""
    detail: str = ""
    flag_address: bool = False
    """Permanent and the address itself is bad: flag the phone or the email."""
    revoke_consent: bool = False
    """Twilio 21610: the member replied STOP to our sender."""


# Twilio error codes (send time and status callback) and what they mean for us.
TWILIO_FLAG_PHONE = frozenset({"21211", "21614", "30005", "30006"})
TWILIO_PERMANENT = frozenset(
    {"21211", "21614", "21610", "30005", "30006", "21408", "21612", "30004", "30007"}
)
TWILIO_TRANSIENT = frozenset({"30003", "30001", "30008", "20429"})
