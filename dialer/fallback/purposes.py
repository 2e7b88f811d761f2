"""Why a message is sent, and in which order its channels go out.

Order policies (per purpose, configurable through :class:`dialer.fallback.send_rules.RulesConfig`):

``sms_then_email``
    Both channels are sent, the SMS first: the email row is *held* (``next_attempt_at``
    NULL, never due) until its SMS sibling reaches an outcome of sending (sent, delivered,
    undelivered, failed, skipped or review); then it becomes due at once.
``sms_else_email``
    The email is a fallback: it is released only when the SMS failed, was skipped or came
    back undelivered. When the SMS was accepted but no delivery receipt arrived within
    ``fallback_wait_s`` the email goes out anyway; a delivered SMS skips the email.
``both``
    No ordering: both rows are due immediately.
"""

from __future__ import annotations

import enum


class Purpose(enum.StrEnum):
    EXHAUSTED = "exhausted"
    """The dialer could not reach the member (entry exhausted)."""
    DORMANT_GREETING = "dormant_greeting"
    BIRTHDAY = "birthday"
    HOLIDAY = "holiday"
    """A holiday greeting (dialer.greetings; payload ``holiday`` = its name in the member's language)."""
    SURVEY_INVITATION = "survey_invitation"
    CALLBACK_CONFIRMATION = "callback_confirmation"
    POINTS_REDEMPTION = "points_redemption"


class OrderPolicy(enum.StrEnum):
    SMS_THEN_EMAIL = "sms_then_email"
    SMS_ELSE_EMAIL = "sms_else_email"
    BOTH = "both"


DEFAULT_POLICIES: dict[Purpose, OrderPolicy] = {
    Purpose.EXHAUSTED: OrderPolicy.SMS_THEN_EMAIL,
    Purpose.DORMANT_GREETING: OrderPolicy.SMS_THEN_EMAIL,
    Purpose.BIRTHDAY: OrderPolicy.SMS_THEN_EMAIL,
    Purpose.HOLIDAY: OrderPolicy.SMS_ELSE_EMAIL,
    Purpose.SURVEY_INVITATION: OrderPolicy.SMS_THEN_EMAIL,
    Purpose.CALLBACK_CONFIRMATION: OrderPolicy.SMS_ELSE_EMAIL,
    Purpose.POINTS_REDEMPTION: OrderPolicy.SMS_ELSE_EMAIL,
}
