"""Masking of phone numbers and emails for agent screens (pure).

Agents see ``+86 138****8000`` and ``l***@example.com``; the full value only through
the hub's audited ``member_reveal``. :func:`mask_tree` walks a profile dict and masks
every value under a phone/email key, so a new field added to the profile by
``crm_bridge`` cannot leak unmasked by accident.
"""

from __future__ import annotations

import functools
from typing import Any

import phonenumbers

_PHONE_KEYS = frozenset({"phone", "phones", "e164", "phone_e164", "mobile", "number", "caller_num"})
_EMAIL_KEYS = frozenset({"email", "emails", "to_address"})


@functools.lru_cache(maxsize=8192)
def mask_phone(value: str) -> str:
    """``+8613800138000`` -> ``+86 138****8000``; anything unparsable keeps only its last 2 chars."""
    if not value:
        return ""
    try:
        num = phonenumbers.parse(value if value.startswith("+") else "+" + value, None)
    except phonenumbers.NumberParseException:
        num = None
    if num is not None and num.national_number:
        cc = num.country_code
        national = str(num.national_number)
        return f"+{cc} {_mask_middle(national)}"
    digits = "".join(ch for ch in value if ch.isalnum())
    if len(digits) <= 2:
        return "*" * len(digits)
    return "*" * (len(digits) - 2) + digits[-2:]


def _mask_middle(digits: str) -> str:
    n = len(digits)
    if n >= 10:
        return digits[:3] + "****" + digits[-4:]
    if n >= 7:
        return digits[:2] + "*" * (n - 5) + digits[-3:]
    if n >= 3:
        return "*" * (n - 2) + digits[-2:]
    return "*" * n


def mask_email(value: str) -> str:
    """``li.wei@example.com`` -> ``l***@example.com``."""
    if not value:
        return ""
    local, at, domain = value.partition("@")
    if not at:
        return value[:1] + "***"
    return f"{local[:1]}***@{domain}"


def _mask_value(value: Any, masker: Any) -> Any:
    if isinstance(value, str):
        return masker(value)
    if isinstance(value, list):
        return [_mask_value(v, masker) for v in value]
    if isinstance(value, dict):
        return mask_tree(value)
    return value


def mask_tree(data: Any) -> Any:
    """A deep copy of ``data`` with every phone/email value masked (keys matched by name)."""
    if isinstance(data, list):
        return [mask_tree(v) for v in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        k = key.lower() if isinstance(key, str) else key
        if k in _PHONE_KEYS:
            out[key] = _mask_value(value, mask_phone)
        elif k in _EMAIL_KEYS:
            out[key] = _mask_value(value, mask_email)
        else:
            out[key] = mask_tree(value)
    return out
