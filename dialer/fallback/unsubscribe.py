"""Signed unsubscribe links: ``<base>/unsubscribe?m=<member id>&t=<HMAC token>``.

The token is HMAC-SHA256(secret, ``unsubscribe:email:<member id>``), base64url, 128 bits.
Links do not expire (an unsubscribe link must keep working); rotating the secret
invalidates old links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode


def unsubscribe_token(secret: bytes, member_id: int) -> str:
    mac = hmac.new(secret, f"unsubscribe:email:{member_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).rstrip(b"=").decode()


def verify_token(secret: bytes, member_id: int, token: str) -> bool:
    return hmac.compare_digest(unsubscribe_token(secret, member_id), token)


def unsubscribe_url(base_url: str, secret: bytes, member_id: int) -> str:
    query = urlencode({"m": member_id, "t": unsubscribe_token(secret, member_id)})
    return f"{base_url.rstrip('/')}/unsubscribe?{query}"
