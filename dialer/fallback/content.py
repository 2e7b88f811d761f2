"""Turns an outbox row plus its member into the text a channel sends (runs on a DB thread)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from crm_bridge.models import Tier
from dialer.fallback.email import EmailSettings, OutgoingEmail, build_message
from dialer.fallback.templates import render_email, render_sms
from dialer.fallback.unsubscribe import unsubscribe_url


@dataclass(frozen=True)
class ContentSettings:
    public_url: str
    """Base URL of our web site (unsubscribe links, status callbacks)."""
    unsubscribe_secret: bytes = field(repr=False)
    email: EmailSettings = field(default_factory=EmailSettings)
    extra_fields: dict[str, Any] = field(default_factory=lambda: {"hotline": "400-800-1234"})
    """Fields every template may use (hotline, brand…); payload and member fields win."""


class MemberLike(Protocol):
    """What content needs of a member: an ORM ``Member`` or a Core row of its columns."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def member_no(self) -> str: ...
    @property
    def tier(self) -> Tier: ...
    @property
    def points_balance(self) -> int: ...


class RowLike(Protocol):
    """What content needs of an outbox row: an ORM ``OutboxMessage`` or a Core row."""

    @property
    def purpose(self) -> str: ...
    @property
    def locale(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any] | None: ...
    @property
    def to_address(self) -> str: ...
    @property
    def idempotency_key(self) -> str: ...


def member_fields(member: MemberLike) -> dict[str, Any]:
    return {
        "name": member.name,
        "member_no": member.member_no,
        "tier": member.tier.value,
        "points": member.points_balance,
    }


def template_fields(settings: ContentSettings, member: MemberLike, row: RowLike) -> dict[str, Any]:
    fields: dict[str, Any] = dict(settings.extra_fields)
    fields.update(member_fields(member))
    fields.update({k: v for k, v in (row.payload or {}).items() if not k.startswith("_")})
    return fields


def sms_body(settings: ContentSettings, member: MemberLike, row: RowLike) -> str:
    return render_sms(row.purpose, row.locale, template_fields(settings, member, row))


def email_message(
    settings: ContentSettings, member: MemberLike, row: RowLike, now: dt.datetime
) -> OutgoingEmail:
    link = unsubscribe_url(settings.public_url, settings.unsubscribe_secret, member.id)
    rendered = render_email(row.purpose, row.locale, template_fields(settings, member, row), link)
    return build_message(
        settings.email,
        row.to_address,
        rendered,
        key=row.idempotency_key,
        unsubscribe_url=link,
        date=now,
    )
